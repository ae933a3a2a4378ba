// Package postprocessors holds packer's builtin post-processors:
// shell-local, manifest, checksum, compress and artifice. Each is a
// [pluginkit.PostProcessor]; register a new value (for example
// new(Checksum)) on a [pluginkit.Server]. Their behaviour, including what
// they answer for keep and force_override, follows Packer's post-processors
// of the same names; where it differs, the type's doc comment says so.
//
// Output templates (checksum's and compress's output) are Go templates
// rendered by the post-processor itself with the fields the type documents;
// they are checked at prepare time, with errors at "/output".
package postprocessors
