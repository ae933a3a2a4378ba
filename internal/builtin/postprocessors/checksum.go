package postprocessors

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/packer-stdio/packer/internal/builtin/internal/output"
	"github.com/packer-stdio/packer/internal/ctxio"
	"github.com/packer-stdio/packer/pluginkit"
)

// ChecksumBuilderID is the builder id of checksum's artifacts.
const ChecksumBuilderID = "packer.post-processor.checksum"

// DefaultChecksumOutput is Packer's default output template of checksum.
const DefaultChecksumOutput = "packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum"

// checksumTypes are the supported checksum_types.
var checksumTypes = map[string]func() hash.Hash{
	"md5":    md5.New,
	"sha1":   sha1.New,
	"sha224": sha256.New224,
	"sha256": sha256.New,
	"sha384": sha512.New384,
	"sha512": sha512.New,
}

// ChecksumConfig is the configuration of [Checksum].
type ChecksumConfig struct {
	pluginkit.PackerConfig
	ChecksumTypes []string `json:"checksum_types,omitempty" jsonschema:"default=md5,enum=md5,enum=sha1,enum=sha224,enum=sha256,enum=sha384,enum=sha512" jsonschema_description:"Checksums to compute; one output file each."`
	Output        string   `json:"output,omitempty" jsonschema:"default=packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum" jsonschema_description:"Path of each checksum file: a Go template with {{.BuildName}}, {{.BuilderType}} and {{.ChecksumType}}."`
}

// ChecksumData is what checksum's output template sees.
type ChecksumData struct {
	BuildName    string
	BuilderType  string
	ChecksumType string
}

// Checksum is the checksum post-processor: for each checksum type it
// appends to the file its output template names one line per artifact
// file, "HEX<TAB>BASENAME" (the format of md5sum and its kin, with a tab),
// as Packer does. Unlike Packer, which appends whatever the file holds, a
// file that already has a line for the same BASENAME (from an earlier run)
// is an error unless packer runs with -force, which replaces that line;
// lines for other files stay, so several builds can share one file. An
// output that is not a regular file is refused. It reads each artifact file once whatever the number of
// types, and writes nothing until every digest is computed, so a cancelled
// run leaves the checksum files as they were. The new artifact (builder id
// "packer.post-processor.checksum") holds the checksum files (Packer's also
// lists the input's files); keep is true, as in Packer. Destroying it
// removes the checksum files.
type Checksum struct {
	config ChecksumConfig
	paths  []string // output path per checksum type
}

var _ pluginkit.PostProcessor = (*Checksum)(nil)

// Config implements [pluginkit.Configurable].
func (p *Checksum) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable].
func (p *Checksum) Prepare() ([]string, error) {
	c := &p.config
	var errs pluginkit.ConfigErrors
	if len(c.ChecksumTypes) == 0 {
		c.ChecksumTypes = []string{"md5"}
	}
	for i, t := range c.ChecksumTypes {
		if checksumTypes[t] == nil {
			errs = append(errs, pluginkit.ConfigError{Path: fmt.Sprintf("/checksum_types/%d", i), Message: fmt.Sprintf("unknown checksum type %q; use md5, sha1, sha224, sha256, sha384 or sha512", t)})
		}
	}
	if c.Output == "" {
		c.Output = DefaultChecksumOutput
	}
	p.paths = nil
	for _, t := range c.ChecksumTypes {
		path, err := renderOutput(c.Output, ChecksumData{BuildName: c.BuildName, BuilderType: c.BuilderType, ChecksumType: t})
		if err != nil {
			errs = append(errs, pluginkit.ConfigError{Path: "/output", Message: err.Error()})
			break
		}
		p.paths = append(p.paths, path)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return nil, nil
}

// PostProcess computes the digests and appends the lines.
func (p *Checksum) PostProcess(ctx context.Context, ui pluginkit.UI, in pluginkit.Artifact) (pluginkit.Artifact, bool, bool, error) {
	c := &p.config
	files := in.Files()
	if len(files) == 0 {
		return nil, false, false, fmt.Errorf("checksum: the artifact has no files")
	}
	// lines[i] holds what goes to p.paths[i].
	lines := make([]strings.Builder, len(c.ChecksumTypes))
	for _, f := range files {
		sums, err := digests(ctx, f, c.ChecksumTypes)
		if err != nil {
			return nil, false, false, err
		}
		for i, sum := range sums {
			fmt.Fprintf(&lines[i], "%x\t%s\n", sum, filepath.Base(f))
		}
	}
	var outputs []string
	for i, path := range p.paths {
		if err := addSums(ctx, path, lines[i].String(), c.Force); err != nil {
			return nil, false, false, fmt.Errorf("checksum: writing %s: %w", path, err)
		}
		ui.Message(fmt.Sprintf("%s checksums written to %s", c.ChecksumTypes[i], path))
		if !slices.Contains(outputs, path) {
			outputs = append(outputs, path)
		}
	}
	return &pluginkit.BasicArtifact{
		BuilderIDValue: ChecksumBuilderID,
		StringValue:    "Created artifact from files: " + strings.Join(outputs, ", "),
		FilesValue:     outputs,
		DestroyFunc:    func(context.Context) error { return removeFiles(outputs) },
	}, true, false, nil
}

// digests reads the file once and returns its digest for each type.
func digests(ctx context.Context, path string, types []string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	hs := make([]hash.Hash, len(types))
	ws := make([]io.Writer, len(types))
	for i, t := range types {
		hs[i] = checksumTypes[t]()
		ws[i] = hs[i]
	}
	if _, err := io.Copy(io.MultiWriter(ws...), ctxio.Reader(ctx, f)); err != nil {
		return nil, fmt.Errorf("checksum of %s: %w", path, err)
	}
	sums := make([][]byte, len(hs))
	for i, h := range hs {
		sums[i] = h.Sum(nil)
	}
	return sums, nil
}

// addSums adds the "HEX<TAB>NAME" lines text to the checksum file path,
// creating it and its parents. A file that already holds a line for one
// of the names is the output of an earlier run: that is an error wrapping
// output.ErrExists unless force is set, which replaces those lines. Lines
// for other names are kept, so builds of one run can share a file. A path
// that is not a regular file is refused. The file is locked while it is
// read and written (PATH.lock, as the manifest does), so parallel builds
// sharing it do not lose lines.
func addSums(ctx context.Context, path, text string, force bool) error {
	if err := output.Check(path, true); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, path+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|openNoFollow, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return output.Check(path, true)
	}
	old, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if _, name, ok := strings.Cut(l, "\t"); ok {
			names[name] = true
		}
	}
	var kept []string
	replaced := false
	for _, l := range strings.SplitAfter(string(old), "\n") {
		if l == "" {
			continue
		}
		_, name, _ := strings.Cut(strings.TrimRight(l, "\r\n"), "\t")
		if !names[name] {
			kept = append(kept, l)
			continue
		}
		if !force {
			return fmt.Errorf("%w: %s already has a checksum of %s from an earlier run; run packer build with -force to replace it, or remove the file",
				output.ErrExists, path, name)
		}
		replaced = true
	}
	if !replaced {
		if len(old) > 0 && old[len(old)-1] != '\n' {
			text = "\n" + text
		}
		_, err = f.WriteString(text) // at the end: ReadAll left the offset there
		return err
	}
	content := strings.Join(kept, "")
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	content += text
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(content), 0)
	return err
}
