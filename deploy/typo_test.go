package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recorder is a tb that remembers failures instead of failing the test;
// Fatal ends the goroutine running the check, as it does on a *testing.T.
type recorder struct {
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Error(args ...any)                 { r.Errorf("%s", fmt.Sprint(args...)) }
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }
func (r *recorder) Fatal(args ...any)                 { r.Errorf("%s", fmt.Sprint(args...)); runtime.Goexit() }
func (r *recorder) Logf(string, ...any)               {}
func (r *recorder) Log(...any)                        {}

// run runs check with r in a goroutine of its own (for Goexit).
func (r *recorder) run(check func(tb)) []string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	return r.errors
}

// copyTree copies the deploy files into a temporary directory laid out
// as the repository is (deploy/Dockerfile, deploy/compose, deploy/k8s).
func copyTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, dir := range []string{"compose", "k8s"} {
		files, err := filepath.Glob(filepath.Join(dir, "*"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, "deploy", dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range append(files, "Dockerfile") {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(root, "deploy", f)
			if f == "Dockerfile" {
				dst = filepath.Join(root, "deploy", "Dockerfile")
			}
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".dockerignore"), ignore, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "deploy")
}

// TestTyposCaught: one typo in the files (a setting's name, a field, a
// reference, a probe path, a grace period, what the image copies or
// installs) fails the checks, and the
// files as they are pass them.
func TestTyposCaught(t *testing.T) {
	serveEnv(t) // builds ward once, outside the recorders
	for _, tc := range []struct {
		name, file, old, new string
	}{
		{"no typo", "", "", ""},
		{"env var name", "compose/compose.yaml", "WARD_SHUTDOWN_GRACE: 20s", "WARD_SHUTDOWN_GRAC: 20s"},
		{"compose field", "compose/compose.yaml", "stop_grace_period: 25s", "stop_grace_perod: 25s"},
		{"stop grace too short", "compose/compose.yaml", "stop_grace_period: 25s", "stop_grace_period: 15s"},
		{"database host", "compose/compose.yaml", "@postgres:5432/", "@postgress:5432/"},
		{"S3 endpoint", "compose/compose.yaml", "endpoint=http://minio:9000", "endpoint=http://minio:9001"},
		{"untrusted load balancer", "compose/compose.yaml", "WARD_TRUSTED_PROXIES: 172.28.0.10/32", "WARD_TRUSTED_PROXIES: 172.28.0.11/32"},
		{"healthcheck path", "compose/compose.yaml", "8080/readyz", "8080/ready"},
		{"depends on", "compose/compose.yaml", "    minio-init:\n      condition", "    minio-int:\n      condition"},
		{"caddy upstream", "compose/Caddyfile", "ward3:8080", "ward4:8080"},
		{"caddy health", "compose/Caddyfile", "health_uri /readyz", "health_uri /health"},
		{"k8s env var", "k8s/configmap.yaml", "WARD_TRUSTED_PROXIES:", "WARD_TRUSTED_PROXY:"},
		{"k8s field", "k8s/deployment.yaml", "readinessProbe:", "readinesProbe:"},
		{"probe path", "k8s/deployment.yaml", "path: /readyz", "path: /ready"},
		{"termination grace", "k8s/deployment.yaml", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 25"},
		{"configmap ref", "k8s/deployment.yaml", "name: ward-config", "name: ward-confg"},
		{"service port", "k8s/service.yaml", "targetPort: http", "targetPort: htp"},
		{"pdb selector", "k8s/pdb.yaml", "      app.kubernetes.io/name: ward", "      app.kubernetes.io/name: wrd"},
		{"ingress backend", "k8s/ingress.yaml", "                name: ward\n", "                name: wad\n"},
		{"apiVersion", "k8s/pdb.yaml", "policy/v1", "policy/v1beta"},
		{"secret in configmap", "k8s/configmap.yaml", "  WARD_ZAMBDA_SANDBOX: auto", "  WARD_ZAMBDA_SANDBOX: auto\n  WARD_SECRETS_KEY: x"},
		{"kustomization", "k8s/kustomization.yaml", "  - pdb.yaml\n", ""},
		{"connections", "compose/compose.yaml", `WARD_DATABASE_MAX_CONNS: "20"`, `WARD_DATABASE_MAX_CONNS: "40"`},
		{"Dockerfile copy", "Dockerfile", "COPY internal ./internal", "COPY internal/server ./internal/server"},
		{"Dockerfile ignore", "../.dockerignore", "\nbench\n", "\nbench\ninternal/seal\n"},
		{"Dockerfile sandbox", "Dockerfile", "bubblewrap util-linux", "util-linux"},
		{"Dockerfile user", "Dockerfile", "USER 10001:10001", "USER 1000:1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyTree(t)
			if tc.file != "" {
				path := filepath.Join(dir, tc.file)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), tc.old) {
					t.Fatalf("%s does not contain %q", tc.file, tc.old)
				}
				if err := os.WriteFile(path, []byte(strings.Replace(string(b), tc.old, tc.new, 1)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var errs []string
			for _, check := range []func(tb){
				func(t tb) { checkDockerfile(t, dir) },
				func(t tb) { checkCompose(t, filepath.Join(dir, "compose", "compose.yaml")) },
				func(t tb) { checkKubernetes(t, filepath.Join(dir, "k8s")) },
			} {
				errs = append(errs, (&recorder{}).run(check)...)
			}
			if tc.file == "" && len(errs) > 0 {
				t.Errorf("the files as they are fail the checks: %v", errs)
			}
			if tc.file != "" && len(errs) == 0 {
				t.Errorf("%s: %q -> %q passes the checks", tc.file, tc.old, tc.new)
			}
			t.Logf("%v", errs)
		})
	}
}
