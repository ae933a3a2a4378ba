package builders

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"text/template"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/strslice"
)

// DefaultRunCommand is run_command's default, Packer's: a detached
// container whose /bin/sh reads a terminal that stays open.
var DefaultRunCommand = []string{"-d", "-i", "-t", "--entrypoint=/bin/sh", "--", "{{.Image}}"}

// runSpec is what run_command's docker run arguments ask for.
type runSpec struct {
	Config     container.Config
	HostConfig container.HostConfig
	Name       string
	Platform   string
}

// runFlag is a docker run flag the builder understands; apply records it.
// value is "" for a flag without a value.
type runFlag struct {
	names    []string // "-e", "--env"
	hasValue bool
	apply    func(s *runSpec, value string) error
}

// runFlags are the docker run flags run_command may use. Other flags are
// an error: the builder creates the container through the Engine API and
// cannot pass arguments it does not know to the docker CLI.
var runFlags = []runFlag{
	{[]string{"-d", "--detach"}, false, func(*runSpec, string) error { return nil }},
	{[]string{"-i", "--interactive"}, false, func(s *runSpec, _ string) error {
		s.Config.OpenStdin, s.Config.StdinOnce = true, false
		return nil
	}},
	{[]string{"-t", "--tty"}, false, func(s *runSpec, _ string) error { s.Config.Tty = true; return nil }},
	{[]string{"--privileged"}, false, func(s *runSpec, _ string) error { s.HostConfig.Privileged = true; return nil }},
	{[]string{"--init"}, false, func(s *runSpec, _ string) error { t := true; s.HostConfig.Init = &t; return nil }},
	{[]string{"--read-only"}, false, func(s *runSpec, _ string) error { s.HostConfig.ReadonlyRootfs = true; return nil }},
	{[]string{"--entrypoint"}, true, func(s *runSpec, v string) error {
		if v == "" {
			s.Config.Entrypoint = strslice.StrSlice{""}
		} else {
			s.Config.Entrypoint = strslice.StrSlice{v}
		}
		return nil
	}},
	{[]string{"-e", "--env"}, true, func(s *runSpec, v string) error { s.Config.Env = append(s.Config.Env, v); return nil }},
	{[]string{"-u", "--user"}, true, func(s *runSpec, v string) error { s.Config.User = v; return nil }},
	{[]string{"-w", "--workdir"}, true, func(s *runSpec, v string) error { s.Config.WorkingDir = v; return nil }},
	{[]string{"-h", "--hostname"}, true, func(s *runSpec, v string) error { s.Config.Hostname = v; return nil }},
	{[]string{"-l", "--label"}, true, func(s *runSpec, v string) error {
		k, val, _ := strings.Cut(v, "=")
		if s.Config.Labels == nil {
			s.Config.Labels = map[string]string{}
		}
		s.Config.Labels[k] = val
		return nil
	}},
	{[]string{"-v", "--volume"}, true, func(s *runSpec, v string) error {
		if !strings.Contains(v, ":") {
			s.Config.Volumes = addVolume(s.Config.Volumes, v)
			return nil
		}
		s.HostConfig.Binds = append(s.HostConfig.Binds, v)
		return nil
	}},
	{[]string{"--tmpfs"}, true, func(s *runSpec, v string) error { return addTmpfs(&s.HostConfig, v) }},
	{[]string{"--device"}, true, func(s *runSpec, v string) error { return addDevice(&s.HostConfig, v) }},
	{[]string{"--cap-add"}, true, func(s *runSpec, v string) error { s.HostConfig.CapAdd = append(s.HostConfig.CapAdd, v); return nil }},
	{[]string{"--cap-drop"}, true, func(s *runSpec, v string) error { s.HostConfig.CapDrop = append(s.HostConfig.CapDrop, v); return nil }},
	{[]string{"--security-opt"}, true, func(s *runSpec, v string) error {
		s.HostConfig.SecurityOpt = append(s.HostConfig.SecurityOpt, v)
		return nil
	}},
	{[]string{"--add-host"}, true, func(s *runSpec, v string) error {
		s.HostConfig.ExtraHosts = append(s.HostConfig.ExtraHosts, v)
		return nil
	}},
	{[]string{"--dns"}, true, func(s *runSpec, v string) error {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return err
		}
		s.HostConfig.DNS = append(s.HostConfig.DNS, a)
		return nil
	}},
	{[]string{"--network", "--net"}, true, func(s *runSpec, v string) error { s.HostConfig.NetworkMode = container.NetworkMode(v); return nil }},
	{[]string{"--name"}, true, func(s *runSpec, v string) error { s.Name = v; return nil }},
	{[]string{"--platform"}, true, func(s *runSpec, v string) error { s.Platform = v; return nil }},
	{[]string{"--runtime"}, true, func(s *runSpec, v string) error { s.HostConfig.Runtime = v; return nil }},
	{[]string{"--shm-size"}, true, func(s *runSpec, v string) error {
		n, err := units.RAMInBytes(v)
		if err != nil {
			return err
		}
		s.HostConfig.ShmSize = n
		return nil
	}},
	{[]string{"-m", "--memory"}, true, func(s *runSpec, v string) error {
		n, err := units.RAMInBytes(v)
		if err != nil {
			return err
		}
		s.HostConfig.Memory = n
		return nil
	}},
}

// lookupRunFlag finds a flag by one of its names.
func lookupRunFlag(name string) (runFlag, bool) {
	for _, f := range runFlags {
		for _, n := range f.names {
			if n == name {
				return f, true
			}
		}
	}
	return runFlag{}, false
}

// runFlagNames lists the long names of the supported flags.
func runFlagNames() string {
	var names []string
	for _, f := range runFlags {
		names = append(names, f.names[len(f.names)-1])
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// parseRunCommand interprets args, the arguments of "docker run" with
// {{.Image}} standing for image, as container create options: flags (short
// ones may be combined, "-dit"; values as "--flag=v", "--flag v" or "-ev"),
// then, after an optional "--", the image and the command. An unsupported
// flag is an error naming it.
func parseRunCommand(args []string, image string) (*runSpec, error) {
	s := &runSpec{}
	rendered := make([]string, len(args))
	for i, a := range args {
		r, err := renderImage(a, image)
		if err != nil {
			return nil, fmt.Errorf("argument %d %q: %w", i, a, err)
		}
		rendered[i] = r
	}
	i := 0
	for ; i < len(rendered); i++ {
		a := rendered[i]
		if a == "--" {
			i++
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		// value returns the flag's value: after "=", the rest of a short
		// group, or the next argument.
		value := func(name, inline string, hasInline bool) (string, error) {
			if hasInline {
				return inline, nil
			}
			if i+1 >= len(rendered) {
				return "", fmt.Errorf("flag %s needs a value", name)
			}
			i++
			return rendered[i], nil
		}
		if strings.HasPrefix(a, "--") {
			name, inline, hasInline := strings.Cut(a, "=")
			f, ok := lookupRunFlag(name)
			if !ok {
				return nil, fmt.Errorf("docker run flag %s is not supported by the docker builder (supported: %s)", name, runFlagNames())
			}
			v := ""
			if f.hasValue {
				var err error
				if v, err = value(name, inline, hasInline); err != nil {
					return nil, err
				}
			} else if hasInline {
				if inline != "true" {
					return nil, fmt.Errorf("flag %s takes no value other than true", name)
				}
			}
			if err := f.apply(s, v); err != nil {
				return nil, fmt.Errorf("flag %s: %w", name, err)
			}
			continue
		}
		// Short flags, possibly grouped: -dit, -eFOO=1, -e=FOO.
		group := a[1:]
		for j := 0; j < len(group); j++ {
			name := "-" + group[j:j+1]
			f, ok := lookupRunFlag(name)
			if !ok {
				return nil, fmt.Errorf("docker run flag %s is not supported by the docker builder (supported: %s)", name, runFlagNames())
			}
			if !f.hasValue {
				if err := f.apply(s, ""); err != nil {
					return nil, fmt.Errorf("flag %s: %w", name, err)
				}
				continue
			}
			rest := strings.TrimPrefix(group[j+1:], "=")
			v, err := value(name, rest, rest != "")
			if err != nil {
				return nil, err
			}
			if err := f.apply(s, v); err != nil {
				return nil, fmt.Errorf("flag %s: %w", name, err)
			}
			break
		}
	}
	if i >= len(rendered) {
		return nil, fmt.Errorf("no image: the arguments must end with the image ({{.Image}}) and, optionally, a command")
	}
	s.Config.Image = rendered[i]
	if cmd := rendered[i+1:]; len(cmd) > 0 {
		s.Config.Cmd = strslice.StrSlice(cmd)
	}
	return s, nil
}

// renderImage executes a run_command argument as a template with .Image.
func renderImage(arg, image string) (string, error) {
	if !strings.Contains(arg, "{{") {
		return arg, nil
	}
	t, err := template.New("run_command").Option("missingkey=error").Parse(arg)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, struct{ Image string }{image}); err != nil {
		return "", err
	}
	return b.String(), nil
}

func addVolume(m map[string]struct{}, path string) map[string]struct{} {
	if m == nil {
		m = map[string]struct{}{}
	}
	m[path] = struct{}{}
	return m
}

// addTmpfs adds "path[:options]", as docker run --tmpfs.
func addTmpfs(hc *container.HostConfig, v string) error {
	p, opts, _ := strings.Cut(v, ":")
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("tmpfs %q: the path must be absolute", v)
	}
	if hc.Tmpfs == nil {
		hc.Tmpfs = map[string]string{}
	}
	hc.Tmpfs[p] = opts
	return nil
}

// addDevice adds "host[:container[:permissions]]", as docker run --device.
func addDevice(hc *container.HostConfig, v string) error {
	parts := strings.Split(v, ":")
	d := container.DeviceMapping{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
	case 2:
		if isDevicePerms(parts[1]) {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 3:
		if !isDevicePerms(parts[2]) {
			return fmt.Errorf("device %q: permissions %q must be made of r, w and m", v, parts[2])
		}
		d.PathInContainer, d.CgroupPermissions = parts[1], parts[2]
	default:
		return fmt.Errorf("device %q: want host[:container[:permissions]]", v)
	}
	if !strings.HasPrefix(d.PathOnHost, "/") || !strings.HasPrefix(d.PathInContainer, "/") {
		return fmt.Errorf("device %q: paths must be absolute", v)
	}
	hc.Devices = append(hc.Devices, d)
	return nil
}

func isDevicePerms(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if c != 'r' && c != 'w' && c != 'm' {
			return false
		}
	}
	return true
}
