// Package datasources holds the builtin data sources: null, which returns
// its input (Packer's null data source, for tests and for giving a value a
// name), and http, which reads a URL (Packer's http data source).
package datasources
