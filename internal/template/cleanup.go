package template

// ErrorCleanupFor returns the error cleanup provisioner of the build named
// build: its entry in ErrorCleanupByBuild, else ErrorCleanupProvisioner
// (nil when there is none).
func (t *Template) ErrorCleanupFor(build string) *Provisioner {
	if p, ok := t.ErrorCleanupByBuild[build]; ok {
		return p
	}
	return t.ErrorCleanupProvisioner
}

// MaskedValues returns the values output must hide: those vars gives the
// sensitive variables, then SensitiveValues.
func (t *Template) MaskedValues(vars map[string]string) []string {
	values := make([]string, 0, len(t.SensitiveVariables)+len(t.SensitiveValues))
	for _, name := range t.SensitiveVariables {
		values = append(values, vars[name])
	}
	return append(values, t.SensitiveValues...)
}
