package provisioners

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/packer-stdio/packer/pluginkit"
)

// Directions of the file provisioner.
const (
	DirectionUpload   = "upload"
	DirectionDownload = "download"
)

// FileConfig is the configuration of [File].
type FileConfig struct {
	pluginkit.PackerConfig
	Content     string   `json:"content,omitempty" jsonschema_description:"Text to upload to destination, instead of a file (uploads only). When destination ends with a slash the text is written to the file pkr-file-content in it."`
	Source      string   `json:"source,omitempty" jsonschema_description:"Path to copy: a local path when uploading, a path on the machine when downloading. Exactly one of source, sources and content is required. A directory named with a trailing slash (dir/) is copied as its contents, without one as the directory itself."`
	Sources     []string `json:"sources,omitempty" jsonschema_description:"Several paths to copy, in order, each like source; destination must then end with a slash."`
	Destination string   `json:"destination" jsonschema:"required" jsonschema_description:"Where to copy to: on the machine when uploading, locally when downloading. A trailing slash means a directory into which files keep their names."`
	Direction   string   `json:"direction,omitempty" jsonschema:"enum=upload,enum=download,default=upload" jsonschema_description:"upload copies local files to the machine, download copies the other way."`
	Generated   bool     `json:"generated,omitempty" jsonschema_description:"The upload sources are made during the build: do not check that they exist before it starts."`
}

// File is the file provisioner: it copies files and directories between
// the machine packer runs on and the build's machine, through the build's
// communicator, streaming them with progress.
//
// Uploads: a local directory is sent as a tar stream with UploadDir, to
// destination/NAME when the source is written "NAME" and into destination
// itself when it is written "NAME/" (Packer's rule). A file goes to
// destination, or to destination/NAME when destination ends with "/".
//
// Downloads: a source ending with "/" is a directory whose contents are
// extracted into the local directory destination; any other source is a
// file, written to destination (or destination/NAME when it ends with "/")
// through a temporary file that replaces it only once the download is
// complete. Local parent directories are created.
type File struct {
	config FileConfig
}

var _ pluginkit.Provisioner = (*File)(nil)

// KeyRules implements [pluginkit.KeyRuler].
func (FileConfig) KeyRules() []pluginkit.KeyRule {
	return []pluginkit.KeyRule{pluginkit.ExactlyOneOf("source", "sources", "content")}
}

// Config implements [pluginkit.Configurable].
func (p *File) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable].
func (p *File) Prepare() ([]string, error) {
	c := &p.config
	var errs pluginkit.ConfigErrors
	if c.Direction == "" {
		c.Direction = DirectionUpload
	}
	if c.Direction != DirectionUpload && c.Direction != DirectionDownload {
		errs = append(errs, pluginkit.ConfigError{Path: "/direction", Message: fmt.Sprintf("must be %q or %q, not %q", DirectionUpload, DirectionDownload, c.Direction)})
	}
	var set []string
	for _, k := range []struct {
		key string
		set bool
	}{{"source", c.Source != ""}, {"sources", len(c.Sources) > 0}, {"content", c.Content != ""}} {
		if k.set {
			set = append(set, k.key)
		}
	}
	switch {
	case len(set) > 1:
		errs = append(errs, pluginkit.ConfigError{Path: "/" + set[1], Message: fmt.Sprintf("only one of source, sources and content may be set, not %s", strings.Join(set, " and "))})
	case len(set) == 0:
		errs = append(errs, pluginkit.ConfigError{Path: "/source", Message: "one of source, sources or content is required"})
	}
	if c.Content != "" && c.Direction == DirectionDownload {
		errs = append(errs, pluginkit.ConfigError{Path: "/content", Message: "content can only be uploaded, not downloaded"})
	}
	if c.Destination == "" {
		errs = append(errs, pluginkit.ConfigError{Path: "/destination", Message: "must not be empty"})
	}
	if len(c.Sources) > 1 && !strings.HasSuffix(c.Destination, "/") {
		errs = append(errs, pluginkit.ConfigError{Path: "/destination", Message: "must end with / (a directory) when there are several sources"})
	}
	if c.Direction == DirectionUpload && !c.Generated {
		for i, src := range c.sources() {
			pointer := "/source"
			if len(c.Sources) > 0 {
				pointer = fmt.Sprintf("/sources/%d", i)
			}
			if src == "" {
				errs = append(errs, pluginkit.ConfigError{Path: pointer, Message: "must not be empty"})
			} else if _, err := os.Stat(src); err != nil {
				errs = append(errs, pluginkit.ConfigError{Path: pointer, Message: fmt.Sprintf("bad source: %v", err)})
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return nil, nil
}

func (c *FileConfig) sources() []string {
	if c.Source != "" {
		return []string{c.Source}
	}
	return c.Sources
}

// Provision copies each source in order and stops at the first failure.
func (p *File) Provision(ctx context.Context, ui pluginkit.UI, comm pluginkit.Communicator, _ map[string]any) error {
	if p.config.Content != "" {
		return p.uploadContent(ctx, ui, comm)
	}
	for _, src := range p.config.sources() {
		var err error
		if p.config.Direction == DirectionDownload {
			err = p.download(ctx, ui, comm, src)
		} else {
			err = p.upload(ctx, ui, comm, src)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *File) upload(ctx context.Context, ui pluginkit.UI, comm pluginkit.Communicator, src string) error {
	dst := p.config.Destination
	ui.Say(fmt.Sprintf("Uploading %s => %s", src, dst))
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("uploading %s: %w", src, err)
	}
	if fi.IsDir() {
		if !strings.HasSuffix(src, "/") && !strings.HasSuffix(src, string(filepath.Separator)) {
			dst = path.Join(dst, filepath.Base(src))
		}
		r := ui.TrackProgress(filepath.Base(filepath.Clean(src)), 0, -1, pluginkit.ArchiveDir(src, nil))
		defer r.Close()
		if err := comm.UploadDir(ctx, dst, r, nil); err != nil {
			return fmt.Errorf("uploading directory %s to %s: %w", src, dst, err)
		}
		return nil
	}
	if strings.HasSuffix(dst, "/") {
		dst += filepath.Base(src)
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("uploading %s: %w", src, err)
	}
	r := ui.TrackProgress(filepath.Base(src), 0, fi.Size(), f)
	defer r.Close()
	if err := comm.Upload(ctx, dst, r, fi.Mode().Perm(), fi.Size()); err != nil {
		return fmt.Errorf("uploading %s to %s: %w", src, dst, err)
	}
	return nil
}

// contentFile is the file content is written to when destination is a
// directory, as in Packer.
const contentFile = "pkr-file-content"

// uploadContent writes content to destination. The text is not shown: it
// may hold what the template renders from secrets.
func (p *File) uploadContent(ctx context.Context, ui pluginkit.UI, comm pluginkit.Communicator) error {
	dst := p.config.Destination
	if strings.HasSuffix(dst, "/") {
		dst += contentFile
	}
	ui.Say(fmt.Sprintf("Uploading content (%d bytes) => %s", len(p.config.Content), dst))
	if err := comm.Upload(ctx, dst, strings.NewReader(p.config.Content), 0o644, int64(len(p.config.Content))); err != nil {
		return fmt.Errorf("uploading content to %s: %w", dst, err)
	}
	return nil
}

func (p *File) download(ctx context.Context, ui pluginkit.UI, comm pluginkit.Communicator, src string) error {
	dst := p.config.Destination
	ui.Say(fmt.Sprintf("Downloading %s => %s", src, dst))
	if strings.HasSuffix(src, "/") {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("downloading %s: %w", src, err)
		}
		err := pipeTo(ui, path.Base(src), func(w io.Writer) error {
			return comm.DownloadDir(ctx, src, w, nil)
		}, func(r io.Reader) error {
			return pluginkit.ExtractArchive(r, dst)
		})
		if err != nil {
			return fmt.Errorf("downloading directory %s to %s: %w", src, dst, err)
		}
		return nil
	}
	if strings.HasSuffix(dst, "/") || strings.HasSuffix(dst, string(filepath.Separator)) {
		dst = filepath.Join(dst, path.Base(src))
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("downloading %s: %w", src, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.part")
	if err != nil {
		return fmt.Errorf("downloading %s: %w", src, err)
	}
	err = pipeTo(ui, path.Base(src), func(w io.Writer) error {
		return comm.Download(ctx, src, w)
	}, func(r io.Reader) error {
		_, err := io.Copy(tmp, r)
		return err
	})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("downloading %s to %s: %w", src, dst, err)
	}
	return nil
}

// pipeTo connects a producer that writes (a communicator download) to a
// consumer that reads, through ui.TrackProgress so that the transfer shows
// progress. A failure on either side stops the other; the producer's error
// is preferred.
func pipeTo(ui pluginkit.UI, label string, produce func(io.Writer) error, consume func(io.Reader) error) error {
	pr, pw := io.Pipe()
	tracked := ui.TrackProgress(label, 0, -1, pr)
	done := make(chan error, 1)
	go func() {
		err := consume(tracked)
		if err == nil {
			// Drain what the producer still writes (trailing tar padding).
			_, err = io.Copy(io.Discard, tracked)
		}
		pr.CloseWithError(consumerStopped(err))
		tracked.Close()
		done <- err
	}()
	perr := produce(pw)
	pw.CloseWithError(perr)
	cerr := <-done
	if perr != nil {
		return perr
	}
	return cerr
}

// consumerStopped is the error the producer sees once the consumer stopped
// reading.
func consumerStopped(err error) error {
	if err == nil {
		return io.ErrClosedPipe
	}
	return err
}
