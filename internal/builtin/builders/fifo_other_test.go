//go:build !unix

package builders_test

import "errors"

func mkfifo(string) error { return errors.New("no named pipes here") }
