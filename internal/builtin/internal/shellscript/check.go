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

// CheckSources reports, with the key's JSON pointer, when none or more than
// one of sources is set.
func CheckSources(sources ...Source) []pluginkit.ConfigError {
	keys := make([]string, len(sources))
	var set []string
	for i, s := range sources {
		keys[i] = s.Key
		if s.Set {
			set = append(set, s.Key)
		}
	}
	list := strings.Join(keys[:len(keys)-1], ", ")
	last := keys[len(keys)-1]
	var errs []pluginkit.ConfigError
	switch {
	case len(set) == 0:
		errs = append(errs, pluginkit.ConfigError{Message: fmt.Sprintf("one of %s or %s is required", list, last)})
	case len(set) > 1:
		for _, k := range set[1:] {
			errs = append(errs, pluginkit.ConfigError{Path: "/" + k, Message: fmt.Sprintf("only one of %s and %s may be set; %s is set too", list, last, set[0])})
		}
	}
	return errs
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
