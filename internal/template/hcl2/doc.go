// Package hcl2 is the HCL2 front end of templates: it reads a .pkr.hcl or
// .pkr.json file, or a directory of them, and produces the same
// [template.Template] the JSON front end does, which cmd/packer turns into
// the builds internal/build runs. It knows nothing of plugins or their wire
// types; what it needs of them comes through two small interfaces:
// [Schemas] gives the JSON Schema of a component's configuration (from the
// plugin's handshake), which becomes an HCL decoding spec, and
// [Datasources] runs a data source.
//
// [Load] works in this order, as Packer does:
//
//  1. parse every file; the blocks are packer, variable, variables, locals,
//     local, data, source and build;
//  2. check packer.required_version;
//  3. give each variable its value: default, then PKR_VAR_name, then
//     *.auto.pkrvars.hcl files in lexical order, then each -var-file, then
//     each -var (later wins); convert to the declared type and run the
//     validation blocks;
//  4. evaluate locals and data sources in the order their references
//     require (a data source runs through [Datasources]);
//  5. decode each source used by a build with its component's schema,
//     merged with the build's overrides, and each provisioner and
//     post-processor once per source, with source.name, source.type and
//     build.name set; build.ID and the other values the builder shares
//     become {{build `X`}} placeholders the runner fills in.
//
// Every problem is an hcl.Diagnostic with its file, line and column; the
// returned [*Error] prints them with the source line and a caret.
//
// The commands built on it: [Result.Eval] evaluates expressions for packer
// console ([Empty] without a template), [ReadRequiredPlugins] reads only
// the packer blocks for packer init, and [Upgrade] writes the HCL2
// equivalent of a JSON template for packer hcl2_upgrade. [LeftOut] lists
// Packer's functions that are not here.
package hcl2
