package discovery

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
)

// CacheFile is the name of the component cache in the home plugins
// directory.
const CacheFile = ".components-cache.json"

// Probed is what a plugin binary said about itself in its handshake.
type Probed struct {
	Version    string            `json:"version"`
	Components []ProbedComponent `json:"components"`
}

// ProbedComponent is one component a binary serves.
type ProbedComponent struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// Cache remembers what plugin binaries serve, so that listing many
// installed plugins does not start each of them. An entry is keyed by the
// binary's path and is valid while the binary's size and modification time,
// and the checksum in its SHA256SUM file (for a versioned install), are
// those recorded. Cache is safe for concurrent use; Save writes it back.
type Cache struct {
	path string

	mu      sync.Mutex
	entries map[string]cacheEntry
	dirty   bool
}

type cacheEntry struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256,omitempty"`
	Probed
}

// OpenCache reads the cache file at path. A missing or unreadable file
// gives an empty cache (it is only a cache); path "" gives one that Save
// does not write.
func OpenCache(path string) *Cache {
	c := &Cache{path: path, entries: map[string]cacheEntry{}}
	if path == "" {
		return c
	}
	if data, err := os.ReadFile(path); err == nil {
		if json.Unmarshal(data, &c.entries) != nil {
			c.entries = map[string]cacheEntry{}
		}
	}
	return c
}

// CachePath returns where packer keeps the cache for o: in the home plugins
// directory, or "" without a home.
func CachePath(o Options) string {
	if d := PluginsDir(o); d != "" {
		return filepath.Join(d, CacheFile)
	}
	return ""
}

// stamp returns the current key fields of e's binary.
func stamp(e *Entry) (cacheEntry, bool) {
	fi, err := os.Stat(e.Path)
	if err != nil {
		return cacheEntry{}, false
	}
	ce := cacheEntry{Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
	if e.SumFile != "" {
		sum, err := ReadSum(e.SumFile)
		if err != nil {
			return cacheEntry{}, false
		}
		ce.SHA256 = sum
	}
	return ce, true
}

// Get returns what e's binary serves, if the cache has it for the binary
// as it is now.
func (c *Cache) Get(e *Entry) (Probed, bool) {
	now, ok := stamp(e)
	if !ok {
		return Probed{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	have, ok := c.entries[e.Path]
	if !ok || have.Size != now.Size || have.ModTime != now.ModTime || have.SHA256 != now.SHA256 {
		return Probed{}, false
	}
	return have.Probed, true
}

// Put records what e's binary serves.
func (c *Cache) Put(e *Entry, p Probed) {
	now, ok := stamp(e)
	if !ok {
		return
	}
	now.Probed = p
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[e.Path] = now
	c.dirty = true
}

// Lookup returns what e's binary serves: from the cache, or by calling
// probe (which starts the binary) and caching the answer.
func (c *Cache) Lookup(e *Entry, probe func(*Entry) (Probed, error)) (Probed, error) {
	if p, ok := c.Get(e); ok {
		return p, nil
	}
	p, err := probe(e)
	if err != nil {
		return Probed{}, err
	}
	c.Put(e, p)
	return p, nil
}

// Save writes the cache back if it changed, dropping entries whose binary
// is gone. It writes a temporary file and renames it.
func (c *Cache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty || c.path == "" {
		return nil
	}
	for p := range c.entries {
		if _, err := os.Stat(p); err != nil {
			delete(c.entries, p)
		}
	}
	data, err := json.MarshalIndent(c.entries, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".cache-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		return err
	}
	c.dirty = false
	return nil
}
