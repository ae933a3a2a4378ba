package pluginkit

import (
	"io"

	"github.com/packer-stdio/packer/pluginkit/internal/archive"
)

// ArchiveDir returns a tar stream of the contents of dir, for
// [Communicator.UploadDir]: directories, regular files and symbolic links
// (as links), with names relative to dir and slash-separated; entries whose
// names match a glob pattern in exclude (path.Match, also matching any
// parent directory) are left out. The archive is written by a goroutine as
// the stream is read; the caller must Close the stream, which stops it. A
// failure to read dir is returned by Read.
func ArchiveDir(dir string, exclude []string) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(archive.Write(pw, dir, exclude))
	}()
	return pr
}

// ExtractArchive reads a tar stream from r and creates its entries under
// dir, creating dir if needed. It refuses, with an error, entries that would
// land outside dir: absolute names, names with "..", symbolic links whose
// targets are absolute or lead outside dir, and writes through existing
// links that lead outside; hard links and special files are refused too.
// Entries before the refused one stay extracted.
func ExtractArchive(r io.Reader, dir string) error {
	return archive.Extract(r, dir, nil)
}
