package build_test

import (
	"testing"

	"github.com/packer-stdio/packer/internal/build"
	"github.com/packer-stdio/packer/protocol"
)

func TestServedName(t *testing.T) {
	served := []protocol.Component{
		{Type: protocol.TypeBuilder, Name: "example"},
		{Type: protocol.TypeProvisioner, Name: "example-shell"},
		{Type: protocol.TypeProvisioner, Name: "shell"},
		{Type: protocol.TypePostProcessor, Name: "default"},
	}
	tests := []struct {
		name string
		c    build.Component
		want string
	}{
		{"component served", build.Component{Type: protocol.TypeProvisioner, Name: "example-shell", Component: "shell"}, "shell"},
		{"full name served", build.Component{Type: protocol.TypeBuilder, Name: "example", Component: "default"}, "example"},
		{"type must match", build.Component{Type: protocol.TypeBuilder, Name: "example-shell", Component: "shell"}, "shell"},
		{"default served", build.Component{Type: protocol.TypePostProcessor, Name: "example", Component: "default"}, "default"},
		{"neither: ask for the component", build.Component{Type: protocol.TypeBuilder, Name: "x-y", Component: "y"}, "y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := build.ServedName(served, tt.c); got != tt.want {
				t.Errorf("ServedName = %q; want %q", got, tt.want)
			}
		})
	}
}
