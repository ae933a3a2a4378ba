// Package builders holds packer's builtin builders: file and null. Each is a
// [pluginkit.Builder]; register a new value (new(File), new(Null)) on a
// [pluginkit.Server]. Their behaviour follows Packer's builders of the same
// names; where it differs, the type's doc comment says so.
package builders
