package shellscript

import (
	"fmt"
	"sort"
	"strings"

	"github.com/packer-stdio/packer/pluginkit"
)

// DefaultEnvVarFormat is Packer's env_var_format: each variable becomes
// KEY='value' followed by a space.
const DefaultEnvVarFormat = "%s='%s' "

// CheckEnv reports each entry of env that is not "KEY=value" with a
// non-empty KEY made of letters, digits and underscores, not starting with
// a digit. path is the JSON pointer of the list, e.g. "/environment_vars";
// each error points at its element ("/environment_vars/1").
func CheckEnv(env []string, path string) []pluginkit.ConfigError {
	var errs []pluginkit.ConfigError
	for i, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !validName(k) {
			errs = append(errs, pluginkit.ConfigError{
				Path:    fmt.Sprintf("%s/%d", path, i),
				Message: fmt.Sprintf("environment variable not in format 'KEY=value': %q", kv),
			})
		}
	}
	return errs
}

func validName(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Env returns the variables a script sees, in order: PACKER_BUILD_NAME and
// PACKER_BUILDER_TYPE from pc, then extra ("KEY=value" entries, such as
// PACKER_ARTIFACT_FILES), then the user's environment_vars, so that the
// user's own entries win. Entries are assumed checked by [CheckEnv].
func Env(pc pluginkit.PackerConfig, extra, user []string) []string {
	env := []string{
		"PACKER_BUILD_NAME=" + pc.BuildName,
		"PACKER_BUILDER_TYPE=" + pc.BuilderType,
	}
	env = append(env, extra...)
	return append(env, user...)
}

// Flatten renders env ("KEY=value" entries, later keys replacing earlier
// ones) as the string {{.Vars}} expands to: each variable through format
// (two %s verbs: key and value; "" means [DefaultEnvVarFormat]), sorted by
// key as Packer does. Single quotes in values are escaped for a POSIX
// shell ('"'"') when the format quotes with single quotes.
func Flatten(env []string, format string) string {
	if format == "" {
		format = DefaultEnvVarFormat
	}
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	quote := strings.Contains(format, "'%s'")
	var b strings.Builder
	for _, k := range keys {
		v := m[k]
		if quote {
			v = strings.ReplaceAll(v, "'", `'"'"'`)
		}
		fmt.Fprintf(&b, format, k, v)
	}
	return b.String()
}
