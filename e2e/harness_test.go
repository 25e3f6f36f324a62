// Package e2e starts real `ward serve` processes (SQLite, and PostgreSQL)
// and drives them over loopback HTTP with real clients: Go's net/http here,
// and the published @oystehr/sdk through node's test runner.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

var wardBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ward-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wardBin = filepath.Join(dir, "ward")
	build := exec.Command("go", "build", "-o", wardBin, "../cmd/ward")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ward:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// creds is admin-credentials.json.
type creds struct {
	ProjectID     string `json:"projectId"`
	ClientID      string `json:"clientId"`
	ClientSecret  string `json:"clientSecret"`
	TokenURL      string `json:"tokenUrl"`
	ProjectAPIURL string `json:"projectApiUrl"`
	FHIRAPIURL    string `json:"fhirApiUrl"`
}

// ward is one running server.
type ward struct {
	URL     string
	DataDir string
	DB      string // --database value ("" for SQLite)
	Admin   creds
	cmd     *exec.Cmd
	log     *syncBuffer
	flags   []string            // extra `ward serve` flags
	env     []string            // extra environment (KEY=value) of `ward serve` and `ward admin`
	bin     string              // the ward binary; "" is the one built from this tree
	as      *syscall.Credential // run ward serve as this user; nil: as the test
}

// binary is the ward binary w runs.
func (w *ward) binary() string {
	if w.bin != "" {
		return w.bin
	}
	return wardBin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startWard runs `ward serve` on a fresh database of the backend and waits
// for /healthz.
func startWard(t *testing.T, backend storetest.Backend) *ward {
	t.Helper()
	return startWardWith(t, backend)
}

// startWardWith is startWard with extra `ward serve` flags.
func startWardWith(t *testing.T, backend storetest.Backend, flags ...string) *ward {
	t.Helper()
	return startWardEnv(t, backend, nil, flags...)
}

// startWardEnv is startWardWith with extra environment variables.
func startWardEnv(t *testing.T, backend storetest.Backend, env []string, flags ...string) *ward {
	t.Helper()
	return startWardBin(t, backend, "", env, flags...)
}

// startWardBin is startWardEnv with another ward binary ("": this tree's).
func startWardBin(t *testing.T, backend storetest.Backend, bin string, env []string, flags ...string) *ward {
	t.Helper()
	w := &ward{DataDir: t.TempDir(), log: &syncBuffer{}, flags: flags, env: env, bin: bin}
	if backend.Name == "postgres" {
		w.DB = backend.DSN(t)
	}
	w.URL = "http://" + freeAddr(t)
	w.launch(t)
	b, err := os.ReadFile(filepath.Join(w.DataDir, "admin-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &w.Admin); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(w.DataDir, "admin-credentials.json"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-credentials.json mode = %v, want 0600", fi.Mode().Perm())
	}
	if !strings.Contains(w.log.String(), w.Admin.ClientSecret) {
		t.Error("first start did not print the admin credentials")
	}
	return w
}

// launch starts `ward serve` on w's address, data directory and database,
// and waits for /healthz. A test may kill9 and launch again: the restart
// sees the same data.
func (w *ward) launch(t *testing.T) {
	t.Helper()
	w.start(t)
	w.waitHealthy(t)
}

// start starts `ward serve` without waiting for it (servers starting at
// once: start each, then waitHealthy each).
func (w *ward) start(t *testing.T) {
	t.Helper()
	addr := strings.TrimPrefix(w.URL, "http://")
	args := []string{"serve", "--addr", addr, "--data-dir", w.DataDir}
	if w.DB != "" {
		args = append(args, "--database", w.DB)
	}
	args = append(args, w.flags...)
	cmd := exec.Command(w.binary(), args...)
	if w.as != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: w.as}
	}
	cmd.Env = append(os.Environ(), w.env...)
	cmd.Stdout, cmd.Stderr = w.log, w.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.cmd = cmd
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("ward output:\n%s", w.log.String())
		}
	})
}

// waitHealthy waits for a started server's /healthz.
func (w *ward) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(w.URL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ward did not become healthy: %v\n%s", err, w.log.String())
		}
		time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

// kill9 kills the server the way a power cut would: no shutdown code runs.
func (w *ward) kill9(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = w.cmd.Wait()
}

// serveFails runs `ward serve` on w's data directory and database (on
// another address) with w's flags and environment, expects it to exit with
// an error, and returns its output.
func (w *ward) serveFails(t *testing.T) string {
	t.Helper()
	args := []string{"serve", "--addr", freeAddr(t), "--data-dir", w.DataDir, "--public-url", w.URL}
	if w.DB != "" {
		args = append(args, "--database", w.DB)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.binary(), append(args, w.flags...)...)
	cmd.Env = append(os.Environ(), w.env...)
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("ward serve did not refuse to start (%v):\n%s", err, out)
	}
	return string(out)
}

// admin runs `ward admin ...` against the same database.
func (w *ward) admin(t *testing.T, args ...string) []byte {
	t.Helper()
	full := append(args, "--data-dir", w.DataDir, "--public-url", w.URL)
	if w.DB != "" {
		full = append(full, "--database", w.DB)
	}
	cmd := exec.Command(w.binary(), append([]string{"admin"}, full...)...)
	cmd.Env = append(os.Environ(), w.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ward admin %v: %v\n%s", args, err, out)
	}
	return out
}

// createProject adds a project with `ward admin create-project`.
func (w *ward) createProject(t *testing.T, name string) creds {
	t.Helper()
	var c creds
	if err := json.Unmarshal(w.admin(t, "create-project", "--name", name), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// token gets an access token with client credentials.
func (w *ward) token(t *testing.T, c creds) string {
	t.Helper()
	body := fmt.Sprintf(`{"grant_type":"client_credentials","client_id":%q,"client_secret":%q}`, c.ClientID, c.ClientSecret)
	res, err := http.Post(w.URL+"/oauth/token", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 {
		t.Fatalf("token: %d %v", res.StatusCode, err)
	}
	return out.AccessToken
}

// requireNode fails in CI and skips elsewhere when Node.js is missing.
func requireNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is required in CI")
		}
		t.Skip("node not installed (not CI, so skipping)")
	}
}

// nodeTest runs node's test runner on a file with the e2e packages (the
// SDK, the browser harness's) installed.
func nodeTest(t *testing.T, file string, env map[string]string) {
	t.Helper()
	requireNode(t)
	if !npmInstalled() {
		npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		if out, err := npm.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", file)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	t.Logf("node --test %s:\n%s", file, out)
	if err != nil {
		t.Fatalf("node tests failed: %v", err)
	}
}

// syncBuffer collects a server's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// outsideIP is an address of this machine that is not loopback: a test
// server that a zambda must reach listens there, as a service outside
// Ward would (inside a sandbox, 127.0.0.1 is the sandbox itself). Ward is
// started with --egress-allow <ip>/32 for it.
func outsideIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this machine has no non-loopback IPv4 address for an outside test server")
	}
	t.Skip("no non-loopback IPv4 address here for an outside test server (not CI, so skipping)")
	return ""
}

// newOutsideServer serves h on outsideIP.
func newOutsideServer(t *testing.T, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	ip := outsideIP(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = ln
	s.Start()
	t.Cleanup(s.Close)
	return s, ip
}

// inviteUser invites email into the application with profile and role and
// accepts the invitation with password, as the invitee's browser would.
func (w *ward) inviteUser(t *testing.T, admin, appID, roleID, email, profile, password string) {
	t.Helper()
	var inv struct {
		InvitationURL string `json:"invitationUrl"`
	}
	body := fmt.Sprintf(`{"applicationId":%q,"email":%q,"profile":%q,"roles":[%q]}`, appID, email, profile, roleID)
	if st := w.api(t, admin, "POST", "/user/invite", body, &inv); st >= 300 {
		t.Fatalf("invite %s: %d", email, st)
	}
	res, err := http.Post(inv.InvitationURL, "application/json", strings.NewReader(fmt.Sprintf(`{"password":%q}`, password)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("accept invitation for %s: %d", email, res.StatusCode)
	}
}
