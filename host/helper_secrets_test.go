//go:build unix

package host_test

import (
	"bufio"
	"os"
	"strings"
)

// stderrSecret is what the secret-stderr helper writes where the host cuts
// its stderr: across the 64 KiB piece boundary of a long line, and across
// the 512 bytes a line keeps in the stderr tail.
const stderrSecret = "s3cr3t-Pa55w0rd-xyzzy"

func writeSecretStderr() {
	w := bufio.NewWriter(os.Stderr)
	w.WriteString(strings.Repeat("a", 64<<10-10) + stderrSecret + " end of the long line\n")
	w.WriteString(strings.Repeat("b", 500) + stderrSecret + "\n")
	w.WriteString(strings.Repeat("c", 64<<10-10) + stderrSecret[:15])
	w.Flush()
	w.WriteString(stderrSecret[15:] + "\n")
	w.Flush()
}
