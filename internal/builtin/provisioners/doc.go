// Package provisioners holds packer's builtin provisioners: shell-local,
// shell, file and breakpoint. Each is a [pluginkit.Provisioner]; register a
// new value (for example new(Shell)) on a [pluginkit.Server]. Their
// behaviour follows Packer's provisioners of the same names; where it
// differs, the type's doc comment says so.
package provisioners
