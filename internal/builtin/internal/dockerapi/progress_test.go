package dockerapi_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/packer-stdio/packer/internal/builtin/internal/dockerapi"
	"github.com/packer-stdio/packer/pluginkit"
)

// lines records the detail lines shown; the other UI methods are not
// used by ShowProgress and panic if called.
type lines struct {
	pluginkit.UI
	got []string
}

func (l *lines) Message(msg string) { l.got = append(l.got, msg) }

type item struct {
	msg jsonstream.Message
	err error
}

func TestShowProgress(t *testing.T) {
	streamErr := errors.New("stream broke")
	tests := []struct {
		name    string
		stream  []item
		want    []string
		wantErr string
	}{
		{
			name: "status lines, with the layer id when there is one",
			stream: []item{
				{msg: jsonstream.Message{Status: "Pulling from library/alpine", ID: "latest"}},
				{msg: jsonstream.Message{Status: "Downloading", ID: "abc", Progress: &jsonstream.Progress{Current: 1, Total: 2}}},
				{msg: jsonstream.Message{Status: "Digest: sha256:00"}},
				{msg: jsonstream.Message{}},
			},
			want: []string{"latest: Pulling from library/alpine", "Digest: sha256:00"},
		},
		{
			name: "an error message in the stream ends it",
			stream: []item{
				{msg: jsonstream.Message{Status: "Preparing", ID: "abc"}},
				{msg: jsonstream.Message{Error: &jsonstream.Error{Message: "denied: requested access to the resource is denied"}}},
				{msg: jsonstream.Message{Status: "never shown"}},
			},
			want:    []string{"abc: Preparing"},
			wantErr: "denied: requested access to the resource is denied",
		},
		{
			name:    "an error reading the stream",
			stream:  []item{{err: streamErr}},
			wantErr: streamErr.Error(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ui := &lines{}
			err := dockerapi.ShowProgress(ui, func(yield func(jsonstream.Message, error) bool) {
				for _, it := range tt.stream {
					if !yield(it.msg, it.err) {
						return
					}
				}
			})
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Errorf("error = %q, want %q", gotErr, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, ui.got); diff != "" {
				t.Errorf("lines shown (-want +got):\n%s", diff)
			}
		})
	}
}
