package schemagen

import (
	"strings"
	"testing"
)

// TestStalePatchFails checks that a patch for a member or a type that no
// longer exists stops generation instead of silently dropping the
// constraint.
func TestStalePatchFails(t *testing.T) {
	tests := []struct {
		name string
		m    member
		want string
	}{
		{"renamed member", member{"Peer", "nickname"}, `no member "nickname"`},
		{"removed type", member{"NoSuchParams", "x"}, "NoSuchParams.x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			patches[tt.m] = nonEmpty
			defer delete(patches, tt.m)
			_, err := Generate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Generate() error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := Generate(); err != nil {
		t.Errorf("Generate() with the real patches: %v", err)
	}
}
