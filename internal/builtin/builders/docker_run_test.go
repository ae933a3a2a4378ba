package builders

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/strslice"
)

func TestParseRunCommand(t *testing.T) {
	yes := true
	tests := []struct {
		name    string
		args    []string
		want    runSpec
		wantErr string
	}{
		{
			name: "default",
			args: DefaultRunCommand,
			want: runSpec{Config: container.Config{Image: "img:1", OpenStdin: true, Tty: true, Entrypoint: strslice.StrSlice{"/bin/sh"}}},
		},
		{
			name: "grouped short flags, command after the image",
			args: []string{"-dit", "{{.Image}}", "/bin/sh", "-c", "sleep 1"},
			want: runSpec{Config: container.Config{Image: "img:1", OpenStdin: true, Tty: true, Cmd: strslice.StrSlice{"/bin/sh", "-c", "sleep 1"}}},
		},
		{
			name: "values every way",
			args: []string{"-eA=1", "-e", "B=2", "--env=C=3", "-u", "nobody", "--workdir=/w", "-v", "/h:/c:ro", "-v", "/anon",
				"--tmpfs", "/run:size=1m", "--device", "/dev/fuse", "--cap-add", "SYS_ADMIN", "--cap-drop=NET_RAW", "--privileged",
				"--init", "--name", "n", "-l", "k=v", "--network", "none", "--dns", "10.0.0.1", "--shm-size", "1m", "--platform", "linux/amd64", "--", "{{ .Image }}"},
			want: runSpec{
				Config: container.Config{
					Image: "img:1", Env: []string{"A=1", "B=2", "C=3"}, User: "nobody", WorkingDir: "/w",
					Volumes: map[string]struct{}{"/anon": {}}, Labels: map[string]string{"k": "v"},
				},
				HostConfig: container.HostConfig{
					Binds: []string{"/h:/c:ro"}, Tmpfs: map[string]string{"/run": "size=1m"},
					Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"}}},
					CapAdd:    strslice.StrSlice{"SYS_ADMIN"}, CapDrop: strslice.StrSlice{"NET_RAW"}, Privileged: true, Init: &yes,
					NetworkMode: "none", DNS: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, ShmSize: 1 << 20,
				},
				Name: "n", Platform: "linux/amd64",
			},
		},
		{
			name:    "unsupported flag",
			args:    []string{"-d", "-p", "80:80", "{{.Image}}"},
			wantErr: "docker run flag -p is not supported by the docker builder",
		},
		{
			name:    "unsupported long flag",
			args:    []string{"--restart=always", "{{.Image}}"},
			wantErr: "docker run flag --restart is not supported by the docker builder",
		},
		{name: "no image", args: []string{"-d", "-i"}, wantErr: "no image"},
		{name: "missing value", args: []string{"-e"}, wantErr: "flag -e needs a value"},
		{name: "bad template", args: []string{"{{.Nope}}"}, wantErr: "can't evaluate field Nope"},
		{name: "bad device", args: []string{"--device", "/a:/b:x", "{{.Image}}"}, wantErr: `permissions "x" must be made of r, w and m`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRunCommand(tt.args, "img:1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseRunCommand error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, *got, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("parseRunCommand(%q) (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}
