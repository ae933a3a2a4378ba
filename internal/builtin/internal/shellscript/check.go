package shellscript

import (
	"fmt"
	"os"
	"strings"

	"github.com/packer-stdio/packer/pluginkit"
)

// Source is one of a shell component's mutually exclusive keys that say
// what to run (command, inline, script, scripts).
type Source struct {
	Key string
	Set bool
}

// CheckSources reports when none or more than one of sources is set, as
// the configuration schema's key rule does (a component states the rule
// with [pluginkit.ExactlyOneOf], so pluginkit refuses such a configuration
// before Prepare): at each key when none is set, at each key set when
// several are.
func CheckSources(sources ...Source) []pluginkit.ConfigError {
	keys := make([]string, len(sources))
	var set []string
	for i, s := range sources {
		keys[i] = s.Key
		if s.Set {
			set = append(set, s.Key)
		}
	}
	var msg string
	var involved []string
	switch {
	case len(set) == 0:
		msg, involved = fmt.Sprintf("one of %s is required", listWords(keys, "or")), keys
	case len(set) > 1:
		msg, involved = fmt.Sprintf("only one of %s may be set; %s are set", listWords(keys, "and"), listWords(set, "and")), set
	}
	var errs []pluginkit.ConfigError
	for _, k := range involved {
		errs = append(errs, pluginkit.ConfigError{Path: "/" + k, Message: msg})
	}
	return errs
}

// listWords joins words as English does: "a or b", "a, b or c".
func listWords(words []string, conj string) string {
	return strings.Join(words[:len(words)-1], ", ") + " " + conj + " " + words[len(words)-1]
}

// CheckScripts checks that script (if set) and every one of scripts name a
// regular file on this machine.
func CheckScripts(script string, scripts []string) []pluginkit.ConfigError {
	var errs []pluginkit.ConfigError
	if script != "" {
		errs = append(errs, checkScript(script, "/script")...)
	}
	for i, s := range scripts {
		errs = append(errs, checkScript(s, fmt.Sprintf("/scripts/%d", i))...)
	}
	return errs
}

func checkScript(path, pointer string) []pluginkit.ConfigError {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return []pluginkit.ConfigError{{Path: pointer, Message: fmt.Sprintf("bad script: %v", err)}}
	case !fi.Mode().IsRegular():
		return []pluginkit.ConfigError{{Path: pointer, Message: fmt.Sprintf("bad script: %s is not a regular file", path)}}
	}
	return nil
}

// CheckEnvVarFormat sets *format to DefaultEnvVarFormat when it is empty,
// and otherwise checks that it has a verb for the name and the value.
func CheckEnvVarFormat(format *string) []pluginkit.ConfigError {
	if *format == "" {
		*format = DefaultEnvVarFormat
		return nil
	}
	if strings.Count(*format, "%s") != 2 {
		return []pluginkit.ConfigError{{Path: "/env_var_format", Message: "must hold exactly two %s verbs (name and value)"}}
	}
	return nil
}
