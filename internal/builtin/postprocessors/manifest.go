package postprocessors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/packer-stdio/packer/pluginkit"
)

// EnvRunUUID is the environment variable in which the host gives every
// plugin of one packer run the same identifier.
const EnvRunUUID = "PACKER_RUN_UUID"

// DefaultManifestOutput is the manifest's default output path.
const DefaultManifestOutput = "packer-manifest.json"

// Lock timing of the manifest: how long to wait for another process's
// lock, and how often to look.
const (
	manifestLockWait = 10 * time.Second
	manifestLockPoll = 50 * time.Millisecond
)

// ManifestConfig is the configuration of [Manifest].
type ManifestConfig struct {
	pluginkit.PackerConfig
	Output     string            `json:"output,omitempty" jsonschema:"default=packer-manifest.json" jsonschema_description:"Path of the manifest file; created if missing, appended to if present."`
	StripPath  bool              `json:"strip_path,omitempty" jsonschema_description:"Record only the base name of each artifact file."`
	StripTime  bool              `json:"strip_time,omitempty" jsonschema_description:"Leave build_time out of the record."`
	CustomData map[string]string `json:"custom_data,omitempty" jsonschema_description:"Free-form strings copied into the record's custom_data."`
}

// ManifestFile is the JSON document the manifest post-processor writes:
// Packer's format.
type ManifestFile struct {
	Builds      []ManifestBuild `json:"builds"`
	LastRunUUID string          `json:"last_run_uuid"`
}

// ManifestBuild records one artifact.
type ManifestBuild struct {
	Name          string            `json:"name"`
	BuilderType   string            `json:"builder_type"`
	BuildTime     int64             `json:"build_time,omitempty"`
	Files         []ManifestEntry   `json:"files"`
	ArtifactID    string            `json:"artifact_id"`
	PackerRunUUID string            `json:"packer_run_uuid"`
	CustomData    map[string]string `json:"custom_data"`
}

// ManifestEntry is one artifact file and its size in bytes (0 when it
// cannot be read).
type ManifestEntry struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// Manifest is the manifest post-processor: it appends a record of the
// input artifact (build name, builder type, build time in Unix seconds
// unless strip_time, files with sizes, artifact id, the run's UUID from
// $PACKER_RUN_UUID, custom_data) to the JSON manifest at output and sets
// last_run_uuid. Concurrent builds coordinate through output+".lock"
// (created exclusively; waited for up to 10 seconds) and the file is
// replaced atomically. With -force, the records of earlier runs are
// dropped first, so that the file holds this run's builds only. It returns
// the input artifact with keep true, as Packer does.
type Manifest struct {
	config ManifestConfig
	// now returns the build time; nil means time.Now.
	now func() time.Time
}

var _ pluginkit.PostProcessor = (*Manifest)(nil)

// Config implements [pluginkit.Configurable].
func (p *Manifest) Config() any { return &p.config }

// Prepare implements [pluginkit.Configurable].
func (p *Manifest) Prepare() ([]string, error) {
	if p.config.Output == "" {
		p.config.Output = DefaultManifestOutput
	}
	return nil, nil
}

// PostProcess appends the record.
func (p *Manifest) PostProcess(ctx context.Context, ui pluginkit.UI, in pluginkit.Artifact) (pluginkit.Artifact, bool, bool, error) {
	c := &p.config
	build := ManifestBuild{
		Name:          c.BuildName,
		BuilderType:   c.BuilderType,
		ArtifactID:    in.ID(),
		PackerRunUUID: os.Getenv(EnvRunUUID),
		CustomData:    c.CustomData,
	}
	if !c.StripTime {
		now := time.Now
		if p.now != nil {
			now = p.now
		}
		build.BuildTime = now().Unix()
	}
	for _, name := range in.Files() {
		e := ManifestEntry{Name: name}
		if fi, err := os.Stat(name); err == nil {
			e.Size = fi.Size()
		}
		if c.StripPath {
			e.Name = filepath.Base(name)
		}
		build.Files = append(build.Files, e)
	}
	unlock, err := lockFile(ctx, c.Output+".lock")
	if err != nil {
		return nil, false, false, err
	}
	defer unlock()
	var m ManifestFile
	data, err := os.ReadFile(c.Output)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, false, false, fmt.Errorf("reading manifest: %w", err)
	case len(data) > 0:
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, false, false, fmt.Errorf("manifest %s is not a packer manifest: %w", c.Output, err)
		}
	}
	if c.Force {
		// As Packer: with -force the manifest starts afresh with each run.
		// Packer truncates the file when the post-processor is configured,
		// which it does for every build before any runs; here builds are
		// prepared as they start, so what goes is every record of another
		// run, and the builds of this run still all land in the file.
		kept := m.Builds[:0]
		for _, b := range m.Builds {
			if b.PackerRunUUID == build.PackerRunUUID && build.PackerRunUUID != "" {
				kept = append(kept, b)
			}
		}
		m.Builds = kept
	}
	m.Builds = append(m.Builds, build)
	m.LastRunUUID = build.PackerRunUUID
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, false, false, err
	}
	err = atomicWrite(c.Output, func(f *os.File) error {
		_, err := f.Write(append(out, '\n'))
		return err
	})
	if err != nil {
		return nil, false, false, fmt.Errorf("writing manifest: %w", err)
	}
	ui.Say(fmt.Sprintf("Recorded the artifact in %s", c.Output))
	return in, true, false, nil
}

// lockFile creates path exclusively, waiting while another process holds
// it, and returns the function that removes it.
func lockFile(ctx context.Context, path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(manifestLockWait)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%d\n", os.Getpid())
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("locking manifest: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("manifest is locked by %s; remove it if no packer is running", path)
		}
		t := time.NewTimer(manifestLockPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		case <-t.C:
		}
	}
}
