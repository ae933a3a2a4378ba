package postprocessors

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/flate"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/packer-stdio/packer/internal/ctxio"
	"github.com/packer-stdio/packer/pluginkit"
)

// CompressBuilderID is the builder id of compress's artifacts.
const CompressBuilderID = "packer.post-processor.compress"

// DefaultCompressOutput is compress's default output template.
const DefaultCompressOutput = "packer_{{.BuildName}}_{{.BuilderType}}.tar.gz"

// DefaultCompressionLevel is compress's default compression_level.
const DefaultCompressionLevel = 6

// Archive formats of compress.
const (
	FormatTarGz = "tar.gz"
	FormatTar   = "tar"
	FormatZip   = "zip"
	FormatGzip  = "gz"
)

// CompressConfig is the configuration of [Compress].
type CompressConfig struct {
	pluginkit.PackerConfig
	Output           string `json:"output,omitempty" jsonschema:"default=packer_{{.BuildName}}_{{.BuilderType}}.tar.gz" jsonschema_description:"Path of the archive: a Go template with {{.BuildName}} and {{.BuilderType}}. The extension chooses the format: .tar.gz or .tgz, .tar, .zip, or .gz (one file only); any other is written as .tar.gz, as Packer does."`
	Format           string `json:"format,omitempty" jsonschema:"enum=tar.gz,enum=tgz,enum=tar,enum=zip,enum=gz" jsonschema_description:"Use this format whatever output's extension."`
	CompressionLevel *int   `json:"compression_level,omitempty" jsonschema:"minimum=0,maximum=9,default=6" jsonschema_description:"0 (store, no compression) to 9 (smallest); ignored for .tar."`
}

// CompressData is what compress's output template sees.
type CompressData struct {
	BuildName   string
	BuilderType string
}

// Compress is the compress post-processor: it puts the artifact's files in
// one archive and returns that archive as the artifact (builder id
// "packer.post-processor.compress"); keep is false, as in Packer. Each
// file is stored under its base name; a directory with everything in it.
// The archive is written to a temporary file next to output and renamed
// only when complete, so a failed or cancelled run never leaves a partial
// archive. As in Packer, an existing output is an error unless packer
// runs with -force, which replaces it; an output that is not a regular
// file (a device, a directory, a symbolic link) is refused either way.
// Destroying the artifact removes the archive.
//
// Unlike Packer, which cannot tell an explicit 0 from no value,
// compression_level 0 stores the files uncompressed.
type Compress struct {
	config CompressConfig
	output string // rendered output path
	format string // one of the Format constants
	level  int
}

var _ pluginkit.PostProcessor = (*Compress)(nil)

// Config implements [pluginkit.Configurable].
func (p *Compress) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable].
func (p *Compress) Prepare() ([]string, error) {
	c := &p.config
	var warnings []string
	var errs pluginkit.ConfigErrors
	if c.Output == "" {
		c.Output = DefaultCompressOutput
	}
	out, err := renderOutput(c.Output, CompressData{BuildName: c.BuildName, BuilderType: c.BuilderType})
	if err != nil {
		errs = append(errs, pluginkit.ConfigError{Path: "/output", Message: err.Error()})
	}
	p.output = out
	switch c.Format {
	case "":
		var ok bool
		if p.format, ok = formatOf(out); !ok && err == nil {
			p.format = FormatTarGz
			warnings = append(warnings, fmt.Sprintf("cannot tell the archive format from the name %q; writing a gzip-compressed tar (use .tar.gz, .tgz, .tar, .zip or .gz)", out))
		}
	case "tgz":
		p.format = FormatTarGz
	case FormatTarGz, FormatTar, FormatZip, FormatGzip:
		p.format = c.Format
	default:
		errs = append(errs, pluginkit.ConfigError{Path: "/format", Message: fmt.Sprintf("unknown format %q; use tar.gz, tgz, tar, zip or gz", c.Format)})
	}
	p.level = DefaultCompressionLevel
	if c.CompressionLevel != nil {
		p.level = *c.CompressionLevel
		if p.level < 0 || p.level > 9 {
			errs = append(errs, pluginkit.ConfigError{Path: "/compression_level", Message: "must be from 0 to 9"})
		}
	}
	if len(errs) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

// formatOf tells the format from a file name's extension.
func formatOf(name string) (string, bool) {
	lower := strings.ToLower(name)
	switch {
	case strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		return FormatTarGz, true
	case strings.HasSuffix(lower, ".tar"):
		return FormatTar, true
	case strings.HasSuffix(lower, ".zip"):
		return FormatZip, true
	case strings.HasSuffix(lower, ".gz"):
		return FormatGzip, true
	}
	return "", false
}

// PostProcess writes the archive.
func (p *Compress) PostProcess(ctx context.Context, ui pluginkit.UI, in pluginkit.Artifact) (pluginkit.Artifact, bool, bool, error) {
	files := in.Files()
	if len(files) == 0 {
		return nil, false, false, fmt.Errorf("compress: the artifact has no files")
	}
	entries, err := collectEntries(files)
	if err != nil {
		return nil, false, false, fmt.Errorf("compress: %w", err)
	}
	if p.format == FormatGzip && (len(files) != 1 || !entries[0].info.Mode().IsRegular()) {
		return nil, false, false, fmt.Errorf("compress: %s is a gzip file, which holds exactly one file, but the artifact has %d files or directories; use a .tar.gz or .zip output", p.output, len(files))
	}
	ui.Say(fmt.Sprintf("Compressing %s into %s (%s, level %d)", strings.Join(files, ", "), p.output, p.format, p.level))
	err = createOutput(p.output, p.config.Force, func(f *os.File) error {
		bw := bufio.NewWriterSize(f, 256<<10)
		if err := writeArchive(ctx, bw, p.format, p.level, entries); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return nil, false, false, fmt.Errorf("compress: writing %s: %w", p.output, err)
	}
	out := p.output
	return &pluginkit.BasicArtifact{
		BuilderIDValue: CompressBuilderID,
		IDValue:        out,
		StringValue:    "compressed artifacts in: " + out,
		FilesValue:     []string{out},
		DestroyFunc:    func(context.Context) error { return removeFiles([]string{out}) },
	}, false, false, nil
}

// entry is one member of an archive.
type entry struct {
	name string // slash-separated name in the archive
	path string // local path
	info fs.FileInfo
	link string // target, for a symbolic link inside a directory
}

// collectEntries lists the archive members for the artifact files: each
// file under its base name, each directory with its contents (symbolic
// links inside stored as links). Two members with the same name are an
// error.
func collectEntries(files []string) ([]entry, error) {
	var out []entry
	seen := map[string]string{}
	add := func(e entry) error {
		if prev, ok := seen[e.name]; ok {
			return fmt.Errorf("%s and %s would both be stored as %s", prev, e.path, e.name)
		}
		seen[e.name] = e.path
		out = append(out, e)
		return nil
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		base := filepath.Base(f)
		if !fi.IsDir() {
			if err := add(entry{name: base, path: f, info: fi}); err != nil {
				return nil, err
			}
			continue
		}
		root, err := filepath.EvalSymlinks(f)
		if err != nil {
			return nil, err
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			e := entry{name: path.Join(base, filepath.ToSlash(rel)), path: p, info: info}
			if p == root {
				e.name = base
				info = fi
				e.info = fi
			}
			if info.Mode()&fs.ModeSymlink != 0 {
				if e.link, err = os.Readlink(p); err != nil {
					return err
				}
			} else if !info.IsDir() && !info.Mode().IsRegular() {
				return nil // sockets, devices: not archived
			}
			return add(e)
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// writeArchive writes entries to w in format.
func writeArchive(ctx context.Context, w io.Writer, format string, level int, entries []entry) error {
	switch format {
	case FormatGzip:
		zw, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return err
		}
		zw.Name = entries[0].name
		zw.ModTime = entries[0].info.ModTime()
		if err := copyFile(ctx, zw, entries[0].path); err != nil {
			return err
		}
		return zw.Close()
	case FormatTarGz:
		zw, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return err
		}
		if err := writeTar(ctx, zw, entries); err != nil {
			return err
		}
		return zw.Close()
	case FormatTar:
		return writeTar(ctx, w, entries)
	case FormatZip:
		return writeZip(ctx, w, level, entries)
	}
	return fmt.Errorf("unknown format %q", format)
}

func writeTar(ctx context.Context, w io.Writer, entries []entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h, err := tar.FileInfoHeader(e.info, e.link)
		if err != nil {
			return err
		}
		h.Name = e.name
		if e.info.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if e.info.Mode().IsRegular() {
			if err := copyFile(ctx, tw, e.path); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func writeZip(ctx context.Context, w io.Writer, level int, entries []entry) error {
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, level)
	})
	for _, e := range entries {
		h, err := zip.FileInfoHeader(e.info)
		if err != nil {
			return err
		}
		h.Name = e.name
		switch {
		case e.info.IsDir():
			h.Name += "/"
			h.Method = zip.Store
		case level == 0:
			h.Method = zip.Store
		default:
			h.Method = zip.Deflate
		}
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		switch {
		case e.link != "":
			_, err = io.WriteString(fw, e.link)
		case e.info.Mode().IsRegular():
			err = copyFile(ctx, fw, e.path)
		}
		if err != nil {
			return err
		}
	}
	return zw.Close()
}

func copyFile(ctx context.Context, w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, ctxio.Reader(ctx, f))
	return err
}
