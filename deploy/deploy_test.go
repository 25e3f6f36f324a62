// Package deploy holds the deployment files (Dockerfile, Docker Compose,
// Kubernetes manifests); its tests check them offline: strict parsing of
// the fields they use, and the references between them and `ward serve`.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// tb is what the checks need of a *testing.T, so that TestTyposCaught can
// run them on broken copies and see them fail.
type tb interface {
	Helper()
	Error(args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Fatal(args ...any)
	Logf(format string, args ...any)
	Log(args ...any)
}

// decodeStrict decodes every YAML document of r into a new T each,
// refusing fields T does not name.
func decodeStrict[T any](r io.Reader) ([]T, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var out []T
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

var (
	buildOnce sync.Once
	wardBin   string
	buildErr  error
)

// serveHelp is `ward serve -h` of this tree's binary.
func serveHelp(t tb) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ward-deploy")
		if err != nil {
			buildErr = err
			return
		}
		wardBin = filepath.Join(dir, "ward")
		out, err := exec.Command("go", "build", "-o", wardBin, "../cmd/ward").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build ward: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	out, _ := exec.Command(wardBin, "serve", "-h").CombinedOutput() // -h exits 2
	if !bytes.Contains(out, []byte("usage: ward serve")) {
		t.Fatalf("ward serve -h:\n%s", out)
	}
	return string(out)
}

var (
	flagEnvRE = regexp.MustCompile(`\((WARD_[A-Z0-9_]+)[)=]`)
	envOnlyRE = regexp.MustCompile(`(?m)^  (WARD_[A-Z0-9_]+)$`)
)

// serveEnv is every environment variable `ward serve -h` names.
func serveEnv(t tb) map[string]bool {
	t.Helper()
	help := serveHelp(t)
	env := map[string]bool{}
	for _, m := range flagEnvRE.FindAllStringSubmatch(help, -1) {
		env[m[1]] = true
	}
	for _, m := range envOnlyRE.FindAllStringSubmatch(help, -1) {
		env[m[1]] = true
	}
	// The help's shape is what this test relies on: if it changes, say so.
	for _, must := range []string{"WARD_ADDR", "WARD_DATABASE", "WARD_SHUTDOWN_GRACE", "WARD_SECRETS_KEY", "WARD_Z3_S3_SECRET_KEY"} {
		if !env[must] {
			t.Fatalf("`ward serve -h` does not name %s: has its format changed?\n%s", must, help)
		}
	}
	return env
}

// checkEnv fails for every WARD_* name that `ward serve` does not read.
func checkEnv(t tb, where string, names []string, known map[string]bool) {
	t.Helper()
	for _, n := range names {
		if strings.HasPrefix(n, "WARD_") && !known[n] {
			t.Errorf("%s sets %s, which `ward serve` does not read (ward serve -h)", where, n)
		}
	}
}

// portOf is the port of a WARD_ADDR value.
func portOf(t tb, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		t.Fatalf("WARD_ADDR %q: %v", addr, err)
	}
	return port
}

// grace parses a duration setting.
func grace(t tb, what, v string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s %q: %v", what, v, err)
	}
	return d
}

// TestProbePaths: the paths the files probe answer 200 on a real server.
func TestProbePaths(t *testing.T) {
	serveHelp(t) // builds the binary
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, wardBin, "serve", "--addr", addr, "--data-dir", t.TempDir(), "--zambda-sandbox", "off")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	for _, path := range []string{"/healthz", "/readyz"} {
		deadline := time.Now().Add(60 * time.Second)
		for {
			res, err := http.Get("http://" + addr + path)
			if err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s never answered 200 (%v)", path, err)
			}
			time.Sleep(50 * time.Millisecond) // polling interval, bounded by the deadline
		}
	}
}

// composeFile is the part of the Compose specification compose.yaml uses.
type composeFile struct {
	Name     string                    `yaml:"name"`
	XWard    composeService            `yaml:"x-ward"`
	Services map[string]composeService `yaml:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
	Volumes map[string]struct{} `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Entrypoint      []string          `yaml:"entrypoint"`
	Command         []string          `yaml:"command"`
	Restart         string            `yaml:"restart"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	Environment     map[string]string `yaml:"environment"`
	SecurityOpt     []string          `yaml:"security_opt"`
	Ports           []string          `yaml:"ports"`
	Volumes         []string          `yaml:"volumes"`
	Healthcheck     *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Networks composeNetworks `yaml:"networks"`
}

// composeNetworks is a service's networks, a list or a map.
type composeNetworks map[string]struct {
	IPv4Address string `yaml:"ipv4_address"`
}

func (n *composeNetworks) UnmarshalYAML(v *yaml.Node) error {
	if v.Kind == yaml.SequenceNode {
		var names []string
		if err := v.Decode(&names); err != nil {
			return err
		}
		*n = composeNetworks{}
		for _, name := range names {
			(*n)[name] = struct {
				IPv4Address string `yaml:"ipv4_address"`
			}{}
		}
		return nil
	}
	var m map[string]struct {
		IPv4Address string `yaml:"ipv4_address"`
	}
	// Decode of a node does not inherit KnownFields: check by hand.
	for i := 0; i+1 < len(v.Content); i += 2 {
		for j := 0; j+1 < len(v.Content[i+1].Content); j += 2 {
			if k := v.Content[i+1].Content[j].Value; k != "ipv4_address" {
				return fmt.Errorf("line %d: network setting %q not known here", v.Content[i+1].Content[j].Line, k)
			}
		}
	}
	if err := v.Decode(&m); err != nil {
		return err
	}
	*n = m
	return nil
}

// A ${VAR...} interpolation; the value checks use its default or a
// placeholder.
var interpolRE = regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}`)

func expand(s string) string {
	return interpolRE.ReplaceAllStringFunc(s, func(m string) string {
		if i := strings.Index(m, ":-"); i > 0 {
			return m[i+2 : len(m)-1]
		}
		return "x"
	})
}

func readCompose(t tb, path string) composeFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs, err := decodeStrict[composeFile](f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents, want 1", path, len(docs))
	}
	return docs[0]
}

// TestCompose: compose.yaml runs three replicas of the image built by
// deploy/Dockerfile on the PostgreSQL, MinIO and load balancer it
// defines, with settings `ward serve` reads and that agree with each
// other.
func TestCompose(t *testing.T) {
	checkCompose(t, "compose/compose.yaml")
}

func checkCompose(t tb, path string) {
	t.Helper()
	known := serveEnv(t)
	c := readCompose(t, path)
	dir := filepath.Dir(path)
	var replicas []string
	for name, s := range c.Services {
		if slices.Equal(s.Command, []string{"serve"}) {
			replicas = append(replicas, name)
		}
		var env []string
		for k := range s.Environment {
			env = append(env, k)
		}
		checkEnv(t, "service "+name, env, known)
		for dep, d := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("service %s depends on %s, which is not a service", name, dep)
			}
			if !slices.Contains([]string{"service_started", "service_healthy", "service_completed_successfully"}, d.Condition) {
				t.Errorf("service %s: depends_on %s condition %q", name, dep, d.Condition)
			}
			if d.Condition == "service_healthy" && c.Services[dep].Healthcheck == nil {
				t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		for net := range s.Networks {
			if _, ok := c.Networks[net]; !ok {
				t.Errorf("service %s is on network %s, which is not defined", name, net)
			}
		}
		for _, v := range s.Volumes {
			src := strings.SplitN(v, ":", 2)[0]
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s mounts volume %s, which is not defined", name, src)
			}
		}
		if s.Image == "" {
			t.Errorf("service %s has no image", name)
		}
	}
	slices.Sort(replicas)
	if len(replicas) != 3 {
		t.Fatalf("services running `ward serve`: %v, want 3", replicas)
	}
	if b := c.XWard.Build; b == nil {
		t.Error("the replicas are not built from the Dockerfile")
	} else if _, err := os.Stat(filepath.Join(dir, b.Context, b.Dockerfile)); err != nil {
		t.Errorf("build: %v", err)
	}

	lbIP := ""
	for _, s := range c.Services {
		for _, n := range s.Networks {
			if n.IPv4Address != "" && strings.Contains(s.Image, "caddy") {
				lbIP = n.IPv4Address
				checkCaddy(t, filepath.Join(dir, "Caddyfile"), c, replicas)
			}
		}
	}
	if lbIP == "" {
		t.Fatal("no load balancer (caddy) with a fixed address")
	}
	for _, name := range replicas {
		s := c.Services[name]
		env := s.Environment
		port := portOf(t, env["WARD_ADDR"])
		// The replicas are on the network the load balancer's address is in.
		inSubnet := false
		for net := range s.Networks {
			for _, cfg := range c.Networks[net].IPAM.Config {
				if p, err := netip.ParsePrefix(cfg.Subnet); err == nil && p.Contains(netip.MustParseAddr(lbIP)) {
					inSubnet = true
				}
			}
		}
		if !inSubnet {
			t.Errorf("%s: no network holds the load balancer's %s", name, lbIP)
		}
		if !proxyTrusted(env["WARD_TRUSTED_PROXIES"], lbIP) {
			t.Errorf("%s: WARD_TRUSTED_PROXIES %q does not hold the load balancer's %s", name, env["WARD_TRUSTED_PROXIES"], lbIP)
		}
		if g, stop := grace(t, "WARD_SHUTDOWN_GRACE", env["WARD_SHUTDOWN_GRACE"]), grace(t, name+" stop_grace_period", s.StopGracePeriod); stop <= g {
			t.Errorf("%s: stop_grace_period %s does not exceed WARD_SHUTDOWN_GRACE %s: Docker would SIGKILL a stopping replica", name, stop, g)
		}
		if hc := s.Healthcheck; hc == nil || !strings.Contains(strings.Join(hc.Test, " "), "127.0.0.1:"+port+"/readyz") {
			t.Errorf("%s: the healthcheck does not probe /readyz on port %s", name, port)
		}
		if env["WARD_SECRETS_KEY"] == "" {
			t.Errorf("%s: no WARD_SECRETS_KEY (replicas must share one)", name)
		}
		if env["WARD_SECRETS_KEY"] != c.Services[replicas[0]].Environment["WARD_SECRETS_KEY"] {
			t.Errorf("%s: another WARD_SECRETS_KEY than %s", name, replicas[0])
		}
		// The database and the S3 endpoint are services of this file.
		db, err := url.Parse(expand(env["WARD_DATABASE"]))
		if err != nil || db.Scheme != "postgres" {
			t.Fatalf("%s: WARD_DATABASE %q: %v", name, env["WARD_DATABASE"], err)
		}
		pg, ok := c.Services[db.Hostname()]
		if !ok || !strings.HasPrefix(pg.Image, "postgres:") || db.Port() != "5432" {
			t.Errorf("%s: WARD_DATABASE names %s, not this file's PostgreSQL on 5432", name, db.Host)
		} else if want := strings.TrimPrefix(db.Path, "/"); pg.Environment["POSTGRES_DB"] != want || pg.Environment["POSTGRES_USER"] != db.User.Username() {
			t.Errorf("%s: WARD_DATABASE user/database %s/%s, PostgreSQL makes %s/%s", name, db.User.Username(), want, pg.Environment["POSTGRES_USER"], pg.Environment["POSTGRES_DB"])
		} else if pw, _ := db.User.Password(); pw != expand(pg.Environment["POSTGRES_PASSWORD"]) {
			t.Errorf("%s: WARD_DATABASE's password is not POSTGRES_PASSWORD", name)
		}
		checkS3(t, name, env, c)
	}
	checkConnections(t, c, replicas)
}

// checkConnections: the replicas' PostgreSQL pools (each plus one
// listening connection) fit under the server's max_connections, with
// room for psql and backups.
func checkConnections(t tb, c composeFile, replicas []string) {
	t.Helper()
	maxConns := 100 // PostgreSQL's default
	sum := 0
	for _, name := range replicas {
		env := c.Services[name].Environment
		db, err := url.Parse(expand(env["WARD_DATABASE"]))
		if err != nil {
			continue // reported by checkCompose
		}
		for i, a := range c.Services[db.Hostname()].Command {
			if v, ok := strings.CutPrefix(a, "max_connections="); ok && i > 0 && c.Services[db.Hostname()].Command[i-1] == "-c" {
				if _, err := fmt.Sscan(v, &maxConns); err != nil {
					t.Errorf("PostgreSQL max_connections %q: %v", v, err)
				}
			}
		}
		n := 0
		if _, err := fmt.Sscan(env["WARD_DATABASE_MAX_CONNS"], &n); err != nil || n <= 0 {
			t.Errorf("%s: WARD_DATABASE_MAX_CONNS %q: set it, sized so the replicas fit the server", name, env["WARD_DATABASE_MAX_CONNS"])
		}
		sum += n + 1
	}
	if sum > maxConns-10 {
		t.Errorf("the replicas open up to %d PostgreSQL connections, max_connections is %d: leave room for psql and backups", sum, maxConns)
	}
}

// proxyTrusted reports whether a WARD_TRUSTED_PROXIES value holds ip.
func proxyTrusted(list, ip string) bool {
	a := netip.MustParseAddr(ip)
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(e); err == nil && p.Contains(a) {
			return true
		}
		if b, err := netip.ParseAddr(e); err == nil && b == a {
			return true
		}
	}
	return false
}

// checkS3: WARD_Z3_BACKEND points at this file's MinIO, with its keys,
// and the bucket is one the init service makes.
func checkS3(t tb, name string, env map[string]string, c composeFile) {
	t.Helper()
	u, err := url.Parse(env["WARD_Z3_BACKEND"])
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		t.Fatalf("%s: WARD_Z3_BACKEND %q: want s3://bucket/prefix?endpoint=... (%v)", name, env["WARD_Z3_BACKEND"], err)
	}
	q := u.Query()
	for k := range q {
		if !slices.Contains([]string{"endpoint", "region", "path-style"}, k) {
			t.Errorf("%s: WARD_Z3_BACKEND parameter %q is not one Ward reads", name, k)
		}
	}
	ep, err := url.Parse(q.Get("endpoint"))
	if err != nil {
		t.Fatalf("%s: endpoint: %v", name, err)
	}
	minio, ok := c.Services[ep.Hostname()]
	if !ok || !strings.Contains(strings.Join(minio.Command, " "), "--address :"+ep.Port()) {
		t.Errorf("%s: the S3 endpoint %s is not a service of this file listening on %s", name, ep.Host, ep.Port())
	}
	if env["WARD_Z3_S3_ACCESS_KEY"] != minio.Environment["MINIO_ROOT_USER"] || env["WARD_Z3_S3_SECRET_KEY"] != minio.Environment["MINIO_ROOT_PASSWORD"] {
		t.Errorf("%s: the S3 keys are not the store's", name)
	}
	made := false
	for _, s := range c.Services {
		cmd := strings.Join(s.Command, " ")
		if strings.Contains(cmd, "mc mb") && strings.Contains(cmd, "/"+u.Host) && strings.Contains(cmd, "http://"+ep.Host) {
			made = true
		}
	}
	if !made {
		t.Errorf("%s: no service makes the bucket %s at %s", name, u.Host, ep.Host)
	}
}

// checkCaddy: the Caddyfile balances exactly the replicas, on their port,
// and health-checks /readyz.
func checkCaddy(t tb, path string, c composeFile, replicas []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var upstreams []string
	health := ""
	sc := bufio.NewScanner(f)
	depth := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		switch fields[0] {
		case "reverse_proxy":
			upstreams = append(upstreams, fields[1:len(fields)-1]...)
		case "health_uri":
			health = fields[1]
		}
		depth += strings.Count(line, "{") - strings.Count(line, "}")
	}
	if depth != 0 {
		t.Errorf("%s: unbalanced braces", path)
	}
	var want []string
	for _, r := range replicas {
		want = append(want, r+":"+portOf(t, c.Services[r].Environment["WARD_ADDR"]))
	}
	slices.Sort(upstreams)
	if !slices.Equal(upstreams, want) {
		t.Errorf("%s: upstreams %v, want the replicas %v", path, upstreams, want)
	}
	if health != "/readyz" {
		t.Errorf("%s: health_uri %q, want /readyz", path, health)
	}
}

// k8sObject is the part of a Kubernetes object every check reads first.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type httpProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	TimeoutSeconds   int `yaml:"timeoutSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type deployment struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		Replicas int           `yaml:"replicas"`
		Selector labelSelector `yaml:"selector"`
		Strategy struct {
			Type          string `yaml:"type"`
			RollingUpdate struct {
				MaxUnavailable int `yaml:"maxUnavailable"`
				MaxSurge       int `yaml:"maxSurge"`
			} `yaml:"rollingUpdate"`
		} `yaml:"strategy"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
					RunAsGroup   int  `yaml:"runAsGroup"`
					FSGroup      int  `yaml:"fsGroup"`
				} `yaml:"securityContext"`
				Affinity struct {
					PodAntiAffinity struct {
						Preferred []struct {
							Weight          int `yaml:"weight"`
							PodAffinityTerm struct {
								TopologyKey   string        `yaml:"topologyKey"`
								LabelSelector labelSelector `yaml:"labelSelector"`
							} `yaml:"podAffinityTerm"`
						} `yaml:"preferredDuringSchedulingIgnoredDuringExecution"`
					} `yaml:"podAntiAffinity"`
				} `yaml:"affinity"`
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name     string    `yaml:"name"`
					EmptyDir *struct{} `yaml:"emptyDir"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	ReadinessProbe *httpProbe `yaml:"readinessProbe"`
	LivenessProbe  *httpProbe `yaml:"livenessProbe"`
	StartupProbe   *httpProbe `yaml:"startupProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Exec struct {
				Command []string `yaml:"command"`
			} `yaml:"exec"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type service struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type pdb struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		MinAvailable int           `yaml:"minAvailable"`
		Selector     labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type configMap struct {
	k8sObject `yaml:",inline"`
	Data      map[string]string `yaml:"data"`
}

type secret struct {
	k8sObject  `yaml:",inline"`
	Type       string            `yaml:"type"`
	StringData map[string]string `yaml:"stringData"`
}

type ingress struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		IngressClassName string `yaml:"ingressClassName"`
		TLS              []struct {
			Hosts      []string `yaml:"hosts"`
			SecretName string   `yaml:"secretName"`
		} `yaml:"tls"`
		Rules []struct {
			Host string `yaml:"host"`
			HTTP struct {
				Paths []struct {
					Path     string `yaml:"path"`
					PathType string `yaml:"pathType"`
					Backend  struct {
						Service struct {
							Name string `yaml:"name"`
							Port struct {
								Name string `yaml:"name"`
							} `yaml:"port"`
						} `yaml:"service"`
					} `yaml:"backend"`
				} `yaml:"paths"`
			} `yaml:"http"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

type kustomization struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Resources  []string `yaml:"resources"`
}

// manifests is every object of the files in a directory, by kind.
type manifests struct {
	deployments []deployment
	services    []service
	pdbs        []pdb
	configMaps  []configMap
	secrets     []secret
	ingresses   []ingress
	names       []string // kind/name of every object, as kubectl prints them
}

// apiVersions is the API version of each kind the manifests may hold.
var apiVersions = map[string]string{
	"Deployment": "apps/v1", "Service": "v1", "PodDisruptionBudget": "policy/v1",
	"ConfigMap": "v1", "Secret": "v1", "Ingress": "networking.k8s.io/v1",
}

func readManifests(t tb, dir string) manifests {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := decodeStrict[kustomization](bytes.NewReader(raw))
	if err != nil || len(ks) != 1 || ks[0].Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(ks[0].Resources, b) {
			t.Errorf("%s is not in kustomization.yaml's resources: kubectl apply -k would leave it out", b)
		}
	}
	var m manifests
	for _, name := range ks[0].Resources {
		path := filepath.Join(dir, name)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		heads, err := decodeStrict[map[string]any](bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for i, h := range heads {
			kind, _ := h["kind"].(string)
			if want, ok := apiVersions[kind]; !ok || h["apiVersion"] != want {
				t.Errorf("%s document %d: kind %q apiVersion %v: want one of %v", path, i+1, kind, h["apiVersion"], apiVersions)
				continue
			}
			doc, _ := yaml.Marshal(h)
			var err error
			var name string
			switch kind {
			case "Deployment":
				m.deployments, name, err = decodeOne(doc, m.deployments)
			case "Service":
				m.services, name, err = decodeOne(doc, m.services)
			case "PodDisruptionBudget":
				m.pdbs, name, err = decodeOne(doc, m.pdbs)
			case "ConfigMap":
				m.configMaps, name, err = decodeOne(doc, m.configMaps)
			case "Secret":
				m.secrets, name, err = decodeOne(doc, m.secrets)
			case "Ingress":
				m.ingresses, name, err = decodeOne(doc, m.ingresses)
			}
			if err != nil {
				t.Errorf("%s (%s): %v", path, kind, err)
			}
			m.names = append(m.names, strings.ToLower(kind)+"/"+name)
		}
	}
	return m
}

// named is any object with metadata.
type named interface{ objName() string }

func (o k8sObject) objName() string { return o.Metadata.Name }

// decodeOne strictly decodes one object and appends it.
func decodeOne[T named](doc []byte, to []T) ([]T, string, error) {
	vs, err := decodeStrict[T](bytes.NewReader(doc))
	if err != nil {
		return to, "", err
	}
	if len(vs) != 1 || vs[0].objName() == "" {
		return to, "", fmt.Errorf("want one named object")
	}
	return append(to, vs[0]), vs[0].objName(), nil
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestKubernetes: the manifests hold a 3-replica Deployment probing
// /readyz and /healthz, a Service and PodDisruptionBudget selecting its
// pods, an Ingress to the Service, settings `ward serve` reads from a
// ConfigMap and Secret that exist, and a termination grace that covers
// the preStop sleep and WARD_SHUTDOWN_GRACE.
func TestKubernetes(t *testing.T) {
	checkKubernetes(t, "k8s")
}

func checkKubernetes(t tb, dir string) {
	t.Helper()
	known := serveEnv(t)
	m := readManifests(t, dir)
	if len(m.deployments) != 1 {
		t.Fatalf("%d Deployments, want 1", len(m.deployments))
	}
	d := m.deployments[0]
	pod := d.Spec.Template
	if d.Spec.Replicas != 3 {
		t.Errorf("replicas %d, want 3", d.Spec.Replicas)
	}
	if !subset(d.Spec.Selector.MatchLabels, pod.Metadata.Labels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, pod.Metadata.Labels)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("container args %v, want [serve]", c.Args)
	}

	// The environment: every name a flag's twin; the referenced ConfigMap
	// and Secret exist; the values they need agree.
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			i := slices.IndexFunc(m.configMaps, func(cm configMap) bool { return cm.Metadata.Name == ef.ConfigMapRef.Name })
			if i < 0 {
				t.Errorf("envFrom ConfigMap %s is not in the manifests", ef.ConfigMapRef.Name)
				continue
			}
			for k, v := range m.configMaps[i].Data {
				env[k] = v
			}
			checkEnv(t, "ConfigMap "+ef.ConfigMapRef.Name, keys(m.configMaps[i].Data), known)
		case ef.SecretRef != nil:
			i := slices.IndexFunc(m.secrets, func(s secret) bool { return s.Metadata.Name == ef.SecretRef.Name })
			if i < 0 {
				t.Errorf("envFrom Secret %s is not in the manifests", ef.SecretRef.Name)
				continue
			}
			for k, v := range m.secrets[i].StringData {
				env[k] = v
			}
			checkEnv(t, "Secret "+ef.SecretRef.Name, keys(m.secrets[i].StringData), known)
		default:
			t.Error("an envFrom entry names neither a ConfigMap nor a Secret")
		}
	}
	checkEnv(t, "the container's env", keys(env), known)
	for _, secretOnly := range []string{"WARD_SECRETS_KEY", "WARD_DATABASE", "WARD_Z3_S3_SECRET_KEY"} {
		if _, ok := env[secretOnly]; !ok {
			t.Errorf("%s is not set", secretOnly)
		}
		for _, cm := range m.configMaps {
			if _, ok := cm.Data[secretOnly]; ok {
				t.Errorf("%s is in ConfigMap %s: it belongs in a Secret", secretOnly, cm.Metadata.Name)
			}
		}
	}
	for _, e := range c.Env {
		if slices.Contains([]string{"WARD_SECRETS_KEY", "WARD_DATABASE", "WARD_Z3_S3_SECRET_KEY"}, e.Name) {
			t.Errorf("%s is written into the Deployment: it belongs in a Secret", e.Name)
		}
	}

	// Ports: the container listens where WARD_ADDR says, and the probes,
	// Service and Ingress reach it by name.
	port := portOf(t, env["WARD_ADDR"])
	portNames := map[string]bool{}
	for _, p := range c.Ports {
		if fmt.Sprint(p.ContainerPort) != port {
			t.Errorf("container port %s %d, but WARD_ADDR listens on %s", p.Name, p.ContainerPort, port)
		}
		portNames[p.Name] = true
	}
	for name, p := range map[string]*httpProbe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe, "startupProbe": c.StartupProbe} {
		want := map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"}[name]
		switch {
		case p == nil:
			t.Errorf("no %s", name)
		case p.HTTPGet.Path != want:
			t.Errorf("%s probes %q, want %s", name, p.HTTPGet.Path, want)
		case !portNames[p.HTTPGet.Port] && p.HTTPGet.Port != port:
			t.Errorf("%s probes port %q, which the container does not declare", name, p.HTTPGet.Port)
		}
	}
	var svcNames []string
	for _, s := range m.services {
		svcNames = append(svcNames, s.Metadata.Name)
		if !subset(s.Spec.Selector, pod.Metadata.Labels) {
			t.Errorf("Service %s selects %v, not the Deployment's pods %v", s.Metadata.Name, s.Spec.Selector, pod.Metadata.Labels)
		}
		for _, p := range s.Spec.Ports {
			if !portNames[p.TargetPort] && p.TargetPort != port {
				t.Errorf("Service %s targets port %q, which the container does not declare", s.Metadata.Name, p.TargetPort)
			}
		}
	}
	if len(m.services) == 0 {
		t.Error("no Service")
	}
	for _, in := range m.ingresses {
		for _, r := range in.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				i := slices.IndexFunc(m.services, func(s service) bool { return s.Metadata.Name == b.Name })
				if i < 0 {
					t.Errorf("Ingress %s sends to Service %s, which is not in the manifests", in.Metadata.Name, b.Name)
					continue
				}
				if !slices.ContainsFunc(m.services[i].Spec.Ports, func(sp struct {
					Name       string `yaml:"name"`
					Port       int    `yaml:"port"`
					TargetPort string `yaml:"targetPort"`
				}) bool {
					return sp.Name == b.Port.Name
				}) {
					t.Errorf("Ingress %s sends to port %q of Service %s, which has no such port", in.Metadata.Name, b.Port.Name, b.Name)
				}
			}
			if pub, err := url.Parse(env["WARD_PUBLIC_URL"]); err != nil || pub.Hostname() != r.Host {
				t.Errorf("Ingress host %s, but WARD_PUBLIC_URL is %s", r.Host, env["WARD_PUBLIC_URL"])
			}
		}
	}

	// Availability: the PDB selects the pods and leaves room to drain.
	if len(m.pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets, want 1", len(m.pdbs))
	}
	if p := m.pdbs[0]; !subset(p.Spec.Selector.MatchLabels, pod.Metadata.Labels) || p.Spec.MinAvailable < 1 || p.Spec.MinAvailable >= d.Spec.Replicas {
		t.Errorf("PodDisruptionBudget %s: minAvailable %d over pods %v: want 1..%d of the Deployment's pods", p.Metadata.Name, p.Spec.MinAvailable, p.Spec.Selector.MatchLabels, d.Spec.Replicas-1)
	}

	// Stopping: the kubelet's SIGKILL comes after the preStop sleep and
	// Ward's own grace.
	var preStop time.Duration
	if ps := c.Lifecycle.PreStop; ps != nil {
		cmd := ps.Exec.Command
		if len(cmd) != 2 || filepath.Base(cmd[0]) != "sleep" {
			t.Fatalf("preStop %v: want [sleep N]", cmd)
		}
		preStop = grace(t, "preStop sleep", cmd[1]+"s")
	}
	shutdown := grace(t, "WARD_SHUTDOWN_GRACE", env["WARD_SHUTDOWN_GRACE"])
	if term := time.Duration(pod.Spec.TerminationGracePeriodSeconds) * time.Second; term <= preStop+shutdown {
		t.Errorf("terminationGracePeriodSeconds %s does not exceed the preStop sleep %s + WARD_SHUTDOWN_GRACE %s", term, preStop, shutdown)
	}

	// Files: the data directory is a volume (the root filesystem is
	// read-only).
	if c.SecurityContext.ReadOnlyRootFilesystem {
		mounted := false
		for _, vm := range c.VolumeMounts {
			if !slices.ContainsFunc(pod.Spec.Volumes, func(v struct {
				Name     string    `yaml:"name"`
				EmptyDir *struct{} `yaml:"emptyDir"`
			}) bool {
				return v.Name == vm.Name
			}) {
				t.Errorf("volumeMount %s names no volume", vm.Name)
			}
			if rel, err := filepath.Rel(vm.MountPath, env["WARD_DATA_DIR"]); err == nil && !strings.HasPrefix(rel, "..") {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("WARD_DATA_DIR %q is on the read-only root filesystem", env["WARD_DATA_DIR"])
		}
	}
	t.Logf("objects: %v", m.names)
	kubectlCheck(t, dir, m.names)
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// kubectlCheck renders the kustomization with kubectl, offline (no
// cluster here, so no server-side or schema validation), and requires the
// same objects the strict parse found.
func kubectlCheck(t tb, dir string, names []string) {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Log("kubectl not installed: skipping its offline render (the strict checks above ran)")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, kubectl, "kustomize", dir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	// kubectl label --local parses every object as the API would name it
	// (kind/name), still without a cluster.
	cmd := exec.CommandContext(ctx, kubectl, "label", "--local", "-f", "-", "checked=true", "-o", "name")
	cmd.Stdin = bytes.NewReader(out)
	listed, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl label --local: %v\n%s", err, listed)
	}
	var got []string
	for _, l := range strings.Fields(string(listed)) {
		kind, name, _ := strings.Cut(l, "/")
		got = append(got, strings.SplitN(kind, ".", 2)[0]+"/"+name)
	}
	want := slices.Clone(names)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("kubectl sees %v, the strict parse %v", got, want)
	}
}
