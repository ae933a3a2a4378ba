package dockertest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// Registry is an in-memory container registry speaking the part of the
// Docker Registry HTTP API V2 that docker push and docker pull use: blob
// existence checks, chunked and monolithic blob uploads, manifests by tag
// and by digest. No registry image can be pulled on this project's machines,
// so tests run this one; the engine reaches it on 127.0.0.1, which it
// treats as an insecure (plain HTTP) registry by default. It keeps
// everything in memory and has no authentication.
type Registry struct {
	srv *httptest.Server

	mu        sync.Mutex
	blobs     map[string][]byte   // digest → content
	uploads   map[string][]byte   // upload id → content so far
	manifests map[string]manifest // name + "@" + tag or digest
}

type manifest struct {
	mediaType string
	body      []byte
}

// StartRegistry starts a Registry on a free port of 127.0.0.1.
func StartRegistry() *Registry {
	r := &Registry{blobs: map[string][]byte{}, uploads: map[string][]byte{}, manifests: map[string]manifest{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

// Host returns the registry's host:port, the prefix of its image
// references.
func (r *Registry) Host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// Close stops the registry.
func (r *Registry) Close() { r.srv.Close() }

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func regError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	p := req.URL.Path
	if p == "/v2/" || p == "/v2" {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
		return
	}
	if !strings.HasPrefix(p, "/v2/") {
		regError(w, http.StatusNotFound, "UNSUPPORTED", "not a v2 path")
		return
	}
	rest := p[len("/v2/"):]
	switch {
	case strings.Contains(rest, "/blobs/uploads"):
		i := strings.LastIndex(rest, "/blobs/uploads")
		r.upload(w, req, rest[:i], strings.Trim(rest[i+len("/blobs/uploads"):], "/"))
	case strings.Contains(rest, "/blobs/"):
		i := strings.LastIndex(rest, "/blobs/")
		r.blob(w, req, rest[i+len("/blobs/"):])
	case strings.Contains(rest, "/manifests/"):
		i := strings.LastIndex(rest, "/manifests/")
		r.manifest(w, req, rest[:i], rest[i+len("/manifests/"):])
	default:
		regError(w, http.StatusNotFound, "UNSUPPORTED", "unknown path")
	}
}

func (r *Registry) blob(w http.ResponseWriter, req *http.Request, digest string) {
	r.mu.Lock()
	b, ok := r.blobs[digest]
	r.mu.Unlock()
	if !ok {
		regError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown: "+digest)
		return
	}
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	if req.Method == http.MethodGet {
		w.Write(b)
	}
}

func (r *Registry) upload(w http.ResponseWriter, req *http.Request, name, id string) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		regError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", err.Error())
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case req.Method == http.MethodPost && id == "":
		var b [8]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
		r.uploads[id] = body
		if d := req.URL.Query().Get("digest"); d != "" { // monolithic
			r.finish(w, name, id, d)
			return
		}
	case req.Method == http.MethodPatch:
		if _, ok := r.uploads[id]; !ok {
			regError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", id)
			return
		}
		r.uploads[id] = append(r.uploads[id], body...)
	case req.Method == http.MethodPut:
		if _, ok := r.uploads[id]; !ok {
			regError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", id)
			return
		}
		r.uploads[id] = append(r.uploads[id], body...)
		r.finish(w, name, id, req.URL.Query().Get("digest"))
		return
	default:
		regError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", req.Method)
		return
	}
	n := len(r.uploads[id])
	w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", max(n-1, 0)))
	w.WriteHeader(http.StatusAccepted)
}

// finish completes upload id as the blob digest; r.mu is held.
func (r *Registry) finish(w http.ResponseWriter, name, id, digest string) {
	b := r.uploads[id]
	delete(r.uploads, id)
	if got := digestOf(b); got != digest {
		regError(w, http.StatusBadRequest, "DIGEST_INVALID", "got "+got+", want "+digest)
		return
	}
	r.blobs[digest] = b
	w.Header().Set("Location", "/v2/"+name+"/blobs/"+digest)
	w.Header().Set("Docker-Content-Digest", digest)
	w.WriteHeader(http.StatusCreated)
}

func (r *Registry) manifest(w http.ResponseWriter, req *http.Request, name, ref string) {
	switch req.Method {
	case http.MethodPut:
		body, err := io.ReadAll(req.Body)
		if err != nil {
			regError(w, http.StatusBadRequest, "MANIFEST_INVALID", err.Error())
			return
		}
		m := manifest{mediaType: req.Header.Get("Content-Type"), body: body}
		d := digestOf(body)
		r.mu.Lock()
		r.manifests[name+"@"+ref] = m
		r.manifests[name+"@"+d] = m
		r.mu.Unlock()
		w.Header().Set("Location", "/v2/"+name+"/manifests/"+d)
		w.Header().Set("Docker-Content-Digest", d)
		w.WriteHeader(http.StatusCreated)
	case http.MethodGet, http.MethodHead:
		r.mu.Lock()
		m, ok := r.manifests[name+"@"+ref]
		r.mu.Unlock()
		if !ok {
			regError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", name+":"+ref)
			return
		}
		w.Header().Set("Content-Type", m.mediaType)
		w.Header().Set("Docker-Content-Digest", digestOf(m.body))
		w.Header().Set("Content-Length", fmt.Sprint(len(m.body)))
		if req.Method == http.MethodGet {
			w.Write(m.body)
		}
	default:
		regError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", req.Method)
	}
}
