package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFmtExitStatus(t *testing.T) {
	tests := []struct {
		name string
		src  string
		args []string
		want int
		// wantSrc is the file afterwards.
		wantSrc string
	}{
		{name: "check unformatted", src: "a   = 1\n", args: []string{"-check"}, want: 3, wantSrc: "a   = 1\n"},
		{name: "check formatted", src: "a = 1\n", args: []string{"-check"}, want: 0, wantSrc: "a = 1\n"},
		{name: "write", src: "a   = 1\n", want: 0, wantSrc: "a = 1\n"},
		{name: "no write", src: "a   = 1\n", args: []string{"-write=false"}, want: 0, wantSrc: "a   = 1\n"},
		{name: "syntax error", src: "a = \n", want: 1, wantSrc: "a = \n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.pkr.hcl")
			if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
			if got := run(e, append(append([]string{"fmt"}, tc.args...), path)); got != tc.want {
				t.Errorf("exit status %d, want %d; stderr:\n%s", got, tc.want, stderr.String())
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.wantSrc {
				t.Errorf("file afterwards %q, want %q", got, tc.wantSrc)
			}
		})
	}
}
