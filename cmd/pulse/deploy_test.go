package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"
	"go.yaml.in/yaml/v3"

	"github.com/pulsehq/pulse/node"
)

// composeFile is the part of docker-compose.yml the checks read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Build       any               `yaml:"build"`
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Ports   []string `yaml:"ports"`
	Volumes []string `yaml:"volumes"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return f
}

// interpolate replaces compose's ${VAR}, ${VAR:-default} and ${VAR:?msg}
// with "set-by-operator", as an operator's shell would with values.
var interpRE = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}`)

func interpolate(s string) string { return interpRE.ReplaceAllString(s, "set-by-operator") }

// flagNames lists the names of a command's flags.
func flagNames(c *cli.Command) map[string]bool {
	out := map[string]bool{}
	for _, f := range c.Flags {
		for _, n := range f.Names() {
			out[n] = true
		}
	}
	return out
}

func subcommand(name string) *cli.Command {
	for _, c := range newApp().Commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// parseServe runs `pulse serve` flag parsing and validation on args and
// env (PULSE_* variables), without serving, and returns the config.
func parseServe(t *testing.T, args []string, env map[string]string) (node.Config, error) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "PULSE_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for k, v := range env {
		t.Setenv(k, interpolate(v))
	}
	var cfg node.Config
	cmd := serveCommand()
	cmd.Action = func(_ context.Context, c *cli.Command) error {
		var err error
		if cfg, err = serveConfigFrom(c); err != nil {
			return err
		}
		_, err = newLogger(cfg.LogFormat, cfg.LogLevel)
		return err
	}
	cmd.Writer, cmd.ErrWriter = nopWriter{}, nopWriter{}
	err := cmd.Run(context.Background(), args)
	return cfg, err
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestCompose checks docker-compose.yml against the binary and the
// Dockerfile (no Docker here to run `docker compose config`): each role is
// its own service and every role runs once; every pulse flag and PULSE_*
// variable exists and parses as `pulse serve` parses it; the AWS endpoints,
// stream, bucket and Redis point at services that provide them; every
// service has a healthcheck, and those that others wait for healthy do.
func TestCompose(t *testing.T) {
	f := loadCompose(t)
	serveFlags := flagNames(serveCommand())
	roles := map[string]string{}
	for name, svc := range f.Services {
		if len(svc.Command) == 0 || svc.Command[0] != "serve" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if svc.Build == nil && svc.Image == "" {
				t.Errorf("no build or image")
			}
			for _, a := range svc.Command[1:] {
				if n, ok := strings.CutPrefix(a, "--"); ok {
					n, _, _ = strings.Cut(n, "=")
					if !serveFlags[n] {
						t.Errorf("command flag --%s is not a flag of pulse serve", n)
					}
				}
			}
			for k := range svc.Environment {
				if n, ok := strings.CutPrefix(k, "PULSE_"); ok {
					flag := strings.ToLower(strings.ReplaceAll(n, "_", "-"))
					if !serveFlags[flag] {
						t.Errorf("environment %s is no flag of pulse serve (--%s)", k, flag)
					}
				}
			}
			cfg, err := parseServe(t, svc.Command, svc.Environment)
			if err != nil {
				t.Fatalf("pulse %s: %v", strings.Join(svc.Command, " "), err)
			}
			if len(cfg.Roles) != 1 {
				t.Errorf("runs roles %v, want one role per service", cfg.RoleNames())
			}
			for r := range cfg.Roles {
				if other, dup := roles[r]; dup {
					t.Errorf("role %s also runs in service %s", r, other)
				}
				roles[r] = name
			}
			stream, ok := strings.CutPrefix(cfg.Stream, "kinesis://")
			if !ok {
				t.Errorf("--stream %s: separate processes need kinesis:// (the local stream is one process's)", cfg.Stream)
			}
			ru, err := url.Parse(cfg.Redis)
			if err != nil || ru.Scheme != "redis" || !hasService(f, ru.Hostname()) {
				t.Errorf("--redis %s: not redis:// to a service of the file", cfg.Redis)
			} else if rs := f.Services[ru.Hostname()]; !slices.Contains(rs.Command, "--appendonly") {
				t.Errorf("redis service %s runs without --appendonly yes: a restart would lose applied batches", ru.Hostname())
			}
			env := svc.Environment
			kin := endpointService(t, f, env, "AWS_ENDPOINT_URL_KINESIS")
			if ks, ok := f.Services[kin.service]; ok {
				if ks.Environment["KINESIS_MOCK_PLAIN_PORT"] != kin.port {
					t.Errorf("AWS_ENDPOINT_URL_KINESIS port %s, the emulator serves plain HTTP on %q", kin.port, ks.Environment["KINESIS_MOCK_PLAIN_PORT"])
				}
				if !slices.ContainsFunc(strings.Split(ks.Environment["INITIALIZE_STREAMS"], ","), func(s string) bool { return strings.Split(s, ":")[0] == stream }) {
					t.Errorf("stream %q is not in the emulator's INITIALIZE_STREAMS %q", stream, ks.Environment["INITIALIZE_STREAMS"])
				}
			}
			if cfg.Roles["archive"] {
				s3 := endpointService(t, f, env, "AWS_ENDPOINT_URL_S3")
				bucket, _, _ := strings.Cut(strings.TrimPrefix(cfg.Archive, "s3://"), "/")
				cmd := strings.Join(f.Services[s3.service].Command, " ")
				if !strings.HasPrefix(cfg.Archive, "s3://") || !strings.Contains(cmd, "-initialbucket "+bucket) {
					t.Errorf("--archive %s: the S3 service %s does not create bucket %q", cfg.Archive, s3.service, bucket)
				}
				if !strings.Contains(cmd, "-host :"+s3.port) {
					t.Errorf("AWS_ENDPOINT_URL_S3 port %s, the S3 service does not listen there: %s", s3.port, cmd)
				}
			}
			for _, k := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
				if env[k] == "" {
					t.Errorf("%s unset: the SDK's default chain would look for real credentials", k)
				}
			}
			for _, p := range svc.Ports {
				if !strings.HasSuffix(p, ":"+dockerfilePort(t)) {
					t.Errorf("port %s does not publish the container's listener :%s", p, dockerfilePort(t))
				}
			}
			checkPulseHealthcheck(t, svc)
		})
	}
	for _, r := range node.AllRoles() {
		if roles[r] == "" {
			t.Errorf("no service runs role %s", r)
		}
	}

	kin := f.Services["kinesis"]
	for _, k := range []string{"KINESIS_MOCK_CERT_PATH", "KINESIS_MOCK_PLAIN_PORT", "KINESIS_MOCK_TLS_PORT", "CREATE_STREAM_DURATION",
		"REGISTER_STREAM_CONSUMER_DURATION", "UPDATE_SHARD_COUNT_DURATION", "INITIALIZE_STREAMS"} {
		if kin.Environment[k] == "" {
			t.Errorf("kinesis service: %s unset (kinesis-local needs it; see /work/shared/EMULATORS.md)", k)
		}
	}
	for name, svc := range f.Services {
		if svc.Healthcheck == nil || len(svc.Healthcheck.Test) < 2 {
			t.Errorf("service %s has no healthcheck", name)
		}
		for dep, c := range svc.DependsOn {
			d, ok := f.Services[dep]
			switch {
			case !ok:
				t.Errorf("service %s depends on %s, which is not a service", name, dep)
			case c.Condition == "service_healthy" && d.Healthcheck == nil:
				t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		for _, v := range svc.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, ".") {
				if _, ok := f.Volumes[src]; !ok {
					t.Errorf("service %s mounts volume %s, not declared under volumes", name, src)
				}
			}
		}
	}
}

func hasService(f composeFile, name string) bool { _, ok := f.Services[name]; return ok }

type endpoint struct{ service, port string }

// endpointService resolves env[key] (an http URL) to a service of the file.
func endpointService(t *testing.T, f composeFile, env map[string]string, key string) endpoint {
	t.Helper()
	u, err := url.Parse(env[key])
	if err != nil || u.Scheme != "http" || !hasService(f, u.Hostname()) || u.Port() == "" {
		t.Errorf("%s=%q: want http://SERVICE:PORT of a service of the file", key, env[key])
		return endpoint{}
	}
	return endpoint{u.Hostname(), u.Port()}
}

// checkPulseHealthcheck: the probe runs the image's binary with a
// subcommand and flags that exist, against the container's listener.
func checkPulseHealthcheck(t *testing.T, svc composeService) {
	t.Helper()
	if svc.Healthcheck == nil {
		t.Error("no healthcheck")
		return
	}
	test := svc.Healthcheck.Test
	if len(test) < 3 || test[0] != "CMD" {
		t.Errorf("healthcheck %q: want [CMD, binary, health, ...] (the image has no shell)", test)
		return
	}
	checkProbe(t, "compose healthcheck", test[1:])
}

// checkProbe checks a `pulse health` command line of the image.
func checkProbe(t *testing.T, what string, argv []string) {
	t.Helper()
	d := readDockerfile(t)
	if argv[0] != d.binary {
		t.Errorf("%s runs %s, the image's binary is %s", what, argv[0], d.binary)
	}
	health := subcommand(argv[1])
	if argv[1] != "health" || health == nil {
		t.Errorf("%s: %q is not the health subcommand", what, argv[1])
		return
	}
	names := flagNames(health)
	for i := 2; i < len(argv); i++ {
		n, ok := strings.CutPrefix(argv[i], "--")
		if !ok {
			continue
		}
		if !names[n] {
			t.Errorf("%s: --%s is not a flag of pulse health", what, n)
		}
		if n == "url" && i+1 < len(argv) {
			u, err := url.Parse(argv[i+1])
			if err != nil || u.Port() != d.port || (u.Path != "/healthz" && u.Path != "/readyz") {
				t.Errorf("%s probes %s: want /healthz or /readyz on the container's port %s", what, argv[i+1], d.port)
			}
		}
	}
}

// dockerfile is what the checks read of the Dockerfile's final stage.
type dockerfile struct {
	user, base       string
	binary           string   // where the pulse binary is copied
	copies           []string // destinations of COPY in the final stage
	entrypoint, cmd  []string
	healthcheck      []string // exec form after CMD
	port             string   // EXPOSE
	env              map[string]string
	buildsStatically bool
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	var lines []string
	cur := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") || l == "" && cur == "" {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur += s + " "
			continue
		}
		lines = append(lines, cur+l)
		cur = ""
	}
	var d dockerfile
	exec := func(s string) []string {
		var v []string
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Errorf("Dockerfile: %q is not exec form (JSON array): %v", s, err)
		}
		return v
	}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			d = dockerfile{base: rest, env: map[string]string{}, buildsStatically: d.buildsStatically}
		case "RUN":
			if strings.Contains(rest, "CGO_ENABLED=0") && strings.Contains(rest, "./cmd/pulse") {
				d.buildsStatically = true
			}
		case "USER":
			d.user = rest
		case "COPY":
			f := strings.Fields(rest)
			d.copies = append(d.copies, f[len(f)-1])
			if strings.HasSuffix(f[len(f)-1], "/pulse") {
				d.binary = f[len(f)-1]
			}
		case "ENTRYPOINT":
			d.entrypoint = exec(rest)
		case "CMD":
			d.cmd = exec(rest)
		case "HEALTHCHECK":
			_, c, ok := strings.Cut(rest, "CMD ")
			if !ok {
				t.Errorf("Dockerfile HEALTHCHECK without CMD: %s", rest)
			}
			d.healthcheck = exec(strings.TrimSpace(c))
		case "EXPOSE":
			d.port = strings.Fields(rest)[0]
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				d.env[k] = v
			}
		}
	}
	return d
}

func dockerfilePort(t *testing.T) string { return readDockerfile(t).port }

// TestDockerfile keeps the image correct: a static build, a non-root user in
// the final stage, the binary as entrypoint serving on the exposed port, a
// HEALTHCHECK that runs the binary's own probe (the image has no shell or
// curl), and only PULSE_* variables that are flags.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	if !d.buildsStatically {
		t.Error("no CGO_ENABLED=0 build of ./cmd/pulse: the distroless/static image has no libc")
	}
	if u, _, _ := strings.Cut(d.user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("final stage runs as %q: want a non-root USER", d.user)
	}
	if d.binary == "" {
		t.Fatal("final stage copies no pulse binary")
	}
	if len(d.entrypoint) == 0 || d.entrypoint[0] != d.binary {
		t.Errorf("ENTRYPOINT %q: want the binary %s", d.entrypoint, d.binary)
	}
	if !slices.Equal(d.cmd, []string{"serve"}) {
		t.Errorf("CMD %q: want [serve]", d.cmd)
	}
	if len(d.healthcheck) < 2 {
		t.Fatal("no HEALTHCHECK in the final stage")
	}
	checkProbe(t, "Dockerfile HEALTHCHECK", d.healthcheck)
	if addr := d.env["PULSE_ADDR"]; addr != ":"+d.port {
		t.Errorf("ENV PULSE_ADDR=%s, EXPOSE %s", addr, d.port)
	}
	if d.env["PULSE_DATA"] == "" || !slices.Contains(d.copies, d.env["PULSE_DATA"]) {
		t.Errorf("PULSE_DATA=%q is not a directory the final stage creates for the non-root user (copies %v)", d.env["PULSE_DATA"], d.copies)
	}
	serveFlags := flagNames(serveCommand())
	for k := range d.env {
		if n, ok := strings.CutPrefix(k, "PULSE_"); ok && !serveFlags[strings.ToLower(strings.ReplaceAll(n, "_", "-"))] {
			t.Errorf("ENV %s is no flag of pulse serve", k)
		}
	}
	t.Logf("image: %s as %s, %s on :%s", d.base, d.user, d.binary, d.port)
}

// TestInterpolate pins the compose variable forms the checks expand.
func TestInterpolate(t *testing.T) {
	for in, want := range map[string]string{
		"${A}":            "set-by-operator",
		"x${A:-b}y":       "xset-by-operatory",
		"${A:?set A}":     "set-by-operator",
		"kinesis://pulse": "kinesis://pulse",
	} {
		if got := interpolate(in); got != want {
			t.Errorf("interpolate(%q) = %q, want %q", in, got, want)
		}
	}
}
