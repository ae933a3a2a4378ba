package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/packer-stdio/packer/bench/internal/report"
)

// buildGoPlugin builds the bench/goplugin module found in dir (a separate
// module, so that this one never depends on go-plugin) into out.
func buildGoPlugin(dir, out string) (string, error) {
	bin := filepath.Join(out, "goplugin")
	c := exec.Command("go", "build", "-o", bin, ".")
	c.Dir = dir
	c.Env = append(os.Environ(), "GOWORK=off")
	if b, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %w\n%s", dir, err, b)
	}
	return bin, nil
}

// runGoPlugin runs one repetition of go-plugin's scenarios with the same
// sizes as this program's and returns its rows.
func runGoPlugin(bin string, n, cold int, scales, relayMB string) ([]report.Row, error) {
	var stdout, stderr bytes.Buffer
	c := exec.Command(bin, "-json", "-n", strconv.Itoa(n), "-cold", strconv.Itoa(cold), "-scale", scales, "-relay-mb", relayMB)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", bin, err, stderr.Bytes())
	}
	return report.ReadJSON(&stdout)
}
