package discovery

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Writable returns a warning for each file that lets a user other than the
// owner replace what packer runs for e: the binary when group or others
// may write it, and each directory between the binary and the directory
// it was found in (e.Dir; for a versioned install, NAME/VERSION and the
// plugins directory) when group or others may write it and it is not
// sticky (in a sticky directory, such as /tmp, only a file's owner may
// rename or remove it). Each warning names the file and the chmod that
// fixes it. Builtins and Windows, which has no such mode bits, get none.
func Writable(e *Entry) []string {
	if isWindows || e.Source == SourceBuiltin || e.Path == "" {
		return nil
	}
	var warns []string
	check := func(path string, dir bool) {
		fi, err := os.Stat(path)
		if err != nil {
			return
		}
		mode := fi.Mode()
		if mode.Perm()&0o022 == 0 || (dir && mode&fs.ModeSticky != 0) {
			return
		}
		who := "group and others"
		switch mode.Perm() & 0o022 {
		case 0o020:
			who = "its group"
		case 0o002:
			who = "others"
		}
		what := "plugin binary"
		if dir {
			what = "directory of plugin " + filepath.Base(e.Path) + ","
		}
		warns = append(warns, fmt.Sprintf("%s %s is writable by %s (mode %v), who can replace what packer runs: fix it with chmod go-w %s",
			what, path, who, mode.Perm(), shellQuote(path)))
	}
	check(e.Path, false)
	dir := filepath.Dir(e.Path)
	for {
		check(dir, true)
		if e.Dir == "" || dir == filepath.Clean(e.Dir) || !strings.HasPrefix(dir, filepath.Clean(e.Dir)+string(filepath.Separator)) {
			break
		}
		dir = filepath.Dir(dir)
	}
	return warns
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+=:,@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
