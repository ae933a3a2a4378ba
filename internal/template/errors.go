package template

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels for the kinds of template problems. Every [*Error] wraps exactly
// one of them, so callers classify with errors.Is.
var (
	// ErrSyntax is malformed JSON.
	ErrSyntax = errors.New("syntax error")
	// ErrDuplicateKey is an object key that appears twice in one object.
	// encoding/json would silently keep the last; a template rejects it.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrUnknownKey is a root key that is not part of the template format
	// and does not start with "_".
	ErrUnknownKey = errors.New("unknown key")
	// ErrDuplicateName is a second builder with the name of an earlier one.
	ErrDuplicateName = errors.New("duplicate builder name")
	// ErrUnknownBuild is an only, except or override entry that names no
	// builder of the template.
	ErrUnknownBuild = errors.New("unknown build name")
	// ErrInvalid is a value of the wrong type or form, or a missing value.
	ErrInvalid = errors.New("invalid value")
	// ErrVariable is a problem with user variables: a required one that is
	// not set, an unknown one set by -var, a cycle between defaults.
	ErrVariable = errors.New("variable error")
	// ErrRender is a failed interpolation: an unknown function or variable, a
	// function used where it is not available, or a function's own error.
	ErrRender = errors.New("interpolation error")
	// ErrVersion is a template that needs a newer packer.
	ErrVersion = errors.New("version error")
)

// Pos is a position in a file: 1-based line and byte column. The zero Pos
// means "no position".
type Pos struct {
	Line, Col int
}

// IsValid reports whether p is a real position.
func (p Pos) IsValid() bool { return p.Line > 0 }

// String returns "line:col", or "-" for the zero Pos.
func (p Pos) String() string {
	if !p.IsValid() {
		return "-"
	}
	return fmt.Sprintf("%d:%d", p.Line, p.Col)
}

// Error is one problem in a template or variable file.
type Error struct {
	// File is the path the input was read from, as given to Parse.
	File string
	// Pos is where the problem is; the zero Pos when it has no place.
	Pos Pos
	// Kind is one of the sentinels above; Error wraps it.
	Kind error
	// Msg says what is wrong, in lower case, without the position.
	Msg string
	// Err is an underlying error, if any; Error wraps it too.
	Err error
}

// Error returns "file:line:col: msg".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Pos.IsValid() {
		b.WriteString(e.Pos.String())
		b.WriteString(":")
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	b.WriteString(e.Msg)
	if e.Err != nil {
		if e.Msg != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the kind and the underlying error.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// ErrorList is several problems found in one pass, in input order.
// errors.Is and errors.As see every element.
type ErrorList []*Error

// Error returns one problem per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the elements.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// err returns nil for an empty list, so that a nil ErrorList is never
// returned as a non-nil error.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
