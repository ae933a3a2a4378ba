package shellscript_test

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/builtin/internal/bttest"
	"github.com/packer-stdio/packer/internal/builtin/internal/shellscript"
	"github.com/packer-stdio/packer/pluginkit"
)

func TestFlatten(t *testing.T) {
	tests := []struct {
		name   string
		env    []string
		format string
		want   string
		reason string
	}{
		{"default format sorted", []string{"B=2", "A=1"}, "", "A='1' B='2' ", "Packer sorts the variables by name"},
		{"later wins", []string{"A=1", "A=2"}, "", "A='2' ", "a user's environment_vars entry replaces PACKER_* ones"},
		{"single quote escaped", []string{"A=it's"}, "", `A='it'"'"'s' `, ""},
		{"value with equals", []string{"A=x=y"}, "", "A='x=y' ", ""},
		{"custom format not quoted", []string{"A=it's"}, "export %s=%s; ", "export A=it's; ", "escaping only applies to '%s'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := shellscript.Flatten(tt.env, tt.format)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Flatten (-want +got):\n%s\n%s", diff, tt.reason)
			}
		})
	}
}

// TestFlattenShell runs the flattened string through sh to check that
// values survive quoting.
func TestFlattenShell(t *testing.T) {
	vars := shellscript.Flatten([]string{`A=it's "quoted" $HOME`}, "")
	out, err := exec.Command("/bin/sh", "-c", vars+` sh -c 'printf %s "$A"'`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`it's "quoted" $HOME`, string(out)); diff != "" {
		t.Errorf("value through sh (-want +got):\n%s", diff)
	}
}

func TestCheckEnv(t *testing.T) {
	got := shellscript.CheckEnv([]string{"OK=1", "noequals", "=x", "1A=2", "A_b9=", "A-B=1"}, "/environment_vars")
	var paths []string
	for _, e := range got {
		paths = append(paths, e.Path)
	}
	want := []string{"/environment_vars/1", "/environment_vars/2", "/environment_vars/3", "/environment_vars/5"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("error paths (-want +got):\n%s", diff)
	}
}

func TestEnv(t *testing.T) {
	got := shellscript.Env(pluginkit.PackerConfig{BuildName: "b", BuilderType: "null"}, []string{"X=1"}, []string{"Y=2"})
	want := []string{"PACKER_BUILD_NAME=b", "PACKER_BUILDER_TYPE=null", "X=1", "Y=2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Env (-want +got):\n%s", diff)
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		codes  shellscript.ExitCodes
		status int
		want   bool
	}{
		{nil, 0, true},
		{nil, 1, false},
		{shellscript.ExitCodes{0, 2}, 2, true},
		{shellscript.ExitCodes{2}, 0, false},
	}
	for _, tt := range tests {
		if got := tt.codes.Valid(tt.status); got != tt.want {
			t.Errorf("%v.Valid(%d) = %v, want %v", tt.codes, tt.status, got, tt.want)
		}
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := shellscript.NewLineWriter(func(l string) { got = append(got, l) })
	for _, chunk := range []string{"one\ntw", "o\r\n", "\nthree", strings.Repeat("x", 70<<10)} {
		w.Write([]byte(chunk))
	}
	w.Flush()
	want := []string{"one", "two", "", "three" + strings.Repeat("x", (64<<10)-5), strings.Repeat("x", (6<<10)+5)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestInlineScript(t *testing.T) {
	got := shellscript.InlineScript("", []string{"echo a", "echo b"})
	if diff := cmp.Diff("#!/bin/sh -e\necho a\necho b\n", got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestCommandKillsGroup checks that cancelling kills the command's
// children too, not only the command.
func TestCommandKillsGroup(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := shellscript.Command(ctx, []string{"/bin/sh", "-c", "sleep 1000 & echo $!; wait"})
	var lines []string
	cmd.Stdout = shellscript.NewLineWriter(func(l string) {
		lines = append(lines, l)
		cancel()
	})
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Errorf("Run error = %v, want the command killed by a signal", err)
	}
	if len(lines) != 1 {
		t.Fatalf("output lines = %q, want the child's pid", lines)
	}
	pid, err := strconv.Atoi(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	bttest.WaitGone(t, pid)
}
