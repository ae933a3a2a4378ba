// Package template reads Packer's JSON templates and interpolates the
// strings in them.
//
// A run uses the package in four steps:
//
//  1. [Parse] or [ParseFile] decodes and validates a template. Every problem
//     is reported with the file, line and column it is at (an [*Error]; many
//     problems come together as an [ErrorList]). Nothing is interpolated yet.
//  2. [NewContext] fixes what all builds of the run share: the template
//     directory, the packer version and the timestamp.
//  3. [Context.ResolveVariables] merges variable defaults, -var-file files and
//     -var flags, in that order, and interpolates them; env is allowed only
//     here. The result becomes [Context.UserVars].
//  4. For each build, [Context.ForBuild] gives a context that knows the build
//     name and type, and [Context.RenderConfig] interpolates a component's
//     configuration before it is sent to the plugin. Until the builder has run,
//     [Context.Build] is nil and {{build `X`}} renders a placeholder that a
//     second rendering, with Build set, replaces.
//
// Sensitive variable values are hidden from output by a [Masker].
//
// Positions are 1-based; columns count bytes, as go/token does.
package template
