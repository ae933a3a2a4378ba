// Package shellscript holds what the builtin shell components share: the
// environment-variable string a script's {{.Vars}} expands to, inline
// commands written as a script file, exit-code checks, process groups that
// die with their context, and a writer that hands output to the UI one line
// at a time.
package shellscript
