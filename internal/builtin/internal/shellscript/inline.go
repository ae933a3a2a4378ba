package shellscript

import (
	"fmt"
	"os"
	"strings"
)

// DefaultShebang is Packer's inline_shebang.
const DefaultShebang = "/bin/sh -e"

// InlineScript returns the text of a script that runs commands in order,
// one per line, under the interpreter shebang ("" means [DefaultShebang]).
func InlineScript(shebang string, commands []string) string {
	if shebang == "" {
		shebang = DefaultShebang
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#!%s\n", shebang)
	for _, c := range commands {
		b.WriteString(c)
		b.WriteByte('\n')
	}
	return b.String()
}

// WriteTemp writes text to a new executable file in the system's temporary
// directory and returns its path. The caller removes it with [RemoveTemp];
// until then [Cleanup] removes it too.
func WriteTemp(pattern, text string) (string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("creating script file: %w", err)
	}
	name := f.Name()
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(name, 0o700)
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("writing script file: %w", err)
	}
	live.Lock()
	live.files[name] = true
	live.Unlock()
	return name, nil
}
