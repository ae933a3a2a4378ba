// Package docs holds the plugin author's guide, writing-a-plugin.md, and a
// test that every code block in it is the file region it says it is.
package docs
