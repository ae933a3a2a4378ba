package main

import (
	"fmt"

	"github.com/packer-stdio/packer/host"
	"github.com/packer-stdio/packer/internal/template"
)

// secretsMasker returns the masker for everything build and validate print
// about template t: the values of its sensitive variables, resolved (tctx
// may be nil when resolving failed) and as the inputs gave them, so that
// an error raised while rendering shows none of them. It exists before the
// first error can be printed. A nil t gives a nil masker, which masks
// nothing.
func secretsMasker(t *template.Template, tctx *template.Context, vars *varFlags) *template.Masker {
	if t == nil {
		return nil
	}
	var resolved map[string]string
	if tctx != nil {
		resolved = tctx.UserVars
	}
	return t.InputMasker(resolved, vars.vars, vars.files)
}

// warnShortSecrets says which sensitive variables are too short to be
// masked everywhere (see template.ShortSecret).
func warnShortSecrets(e *env, t *template.Template, tctx *template.Context) {
	for _, name := range t.ShortSecrets(tctx.UserVars) {
		fmt.Fprintf(e.stderr, "warning: sensitive variable %q is shorter than %d characters: packer masks it only where it stands as a whole word, "+
			"so it can show inside longer words; use a longer secret\n", name, template.ShortSecret)
	}
}

// redactor is m for the host, which masks plugins' stderr before cutting
// it; nil when there is nothing to mask.
func redactor(m *template.Masker) host.Redactor {
	if m == nil {
		return nil
	}
	return m
}
