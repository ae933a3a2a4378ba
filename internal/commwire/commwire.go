// Package commwire is the one implementation of the communicator/* methods
// that both ends of the protocol speak: [Serve] answers communicator/start,
// upload, download, uploadDir and downloadDir with a local [Communicator],
// and [Remote] is a Communicator that sends those requests to the peer.
//
// The host serves the communicator it relays to provisioners and calls the
// one a builder offers in hook/run; a plugin serves the communicator its
// builder offers and calls the one the host gives its provisioner. Each side
// keeps its own policy (how errors are answered, when a handle expires)
// around this package; the wire work — params, handles, streams, file
// modes — is here.
package commwire

import (
	"github.com/packer-stdio/packer/protocol"

	"context"
	"io"
	"io/fs"
)

// RemoteCmd is a command to run through a [Communicator].
type RemoteCmd = protocol.RemoteCmd

// Communicator reaches a machine. Directories travel as tar streams. Every
// method blocks until the operation has finished; cancelling ctx stops it.
// Methods may be called concurrently.
type Communicator interface {
	// Start runs cmd, waits for it and returns its exit status. A non-zero
	// status is not an error; err reports a failure to run it.
	Start(ctx context.Context, cmd *RemoteCmd) (exitStatus int, err error)
	// Upload writes src to the file dst with permission bits mode (0: the
	// communicator's default); size is -1 when unknown.
	Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode, size int64) error
	// Download writes the contents of the file src to dst.
	Download(ctx context.Context, src string, dst io.Writer) error
	// UploadDir extracts the tar stream archive into the directory dst,
	// skipping entries that match a glob in exclude.
	UploadDir(ctx context.Context, dst string, archive io.Reader, exclude []string) error
	// DownloadDir writes a tar stream of the directory src's contents to
	// archive, skipping entries that match a glob in exclude.
	DownloadDir(ctx context.Context, src string, archive io.Writer, exclude []string) error
}

// FileMode converts the mode of communicator/upload — Unix permission bits
// with setuid (0o4000), setgid (0o2000) and sticky (0o1000) — to an
// fs.FileMode. Other bits are ignored.
func FileMode(wire uint32) fs.FileMode {
	mode := fs.FileMode(wire & 0o777)
	if wire&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if wire&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if wire&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// WireMode is the inverse of [FileMode]: the permission, setuid, setgid and
// sticky bits of mode as Unix mode bits. Other bits (the file type) are
// dropped.
func WireMode(mode fs.FileMode) uint32 {
	wire := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		wire |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		wire |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		wire |= 0o1000
	}
	return wire
}
