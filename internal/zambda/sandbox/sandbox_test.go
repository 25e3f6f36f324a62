package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	Init()
	if spec := os.Getenv("WARD_SANDBOX_PROBE"); spec != "" {
		os.Exit(probeMain(spec))
	}
	os.Exit(m.Run())
}

// probeMain runs inside a sandbox: each ';'-separated probe is tried and
// reported as one JSON line {"probe", "ok", "out"}.
func probeMain(spec string) int {
	enc := json.NewEncoder(os.Stdout)
	for _, p := range strings.Split(spec, ";") {
		out, err := runProbe(p)
		r := map[string]any{"probe": p, "ok": err == nil, "out": out}
		if err != nil {
			r["out"] = err.Error()
		}
		_ = enc.Encode(r)
	}
	if os.Getenv("WARD_SANDBOX_PROBE_HOLD") != "" {
		// Stay up, for tests that look at the sandbox from outside.
		_, _ = io.Copy(io.Discard, os.Stdin)
		time.Sleep(time.Hour)
	}
	return 0
}

func runProbe(p string) (string, error) {
	verb, arg, _ := strings.Cut(p, ":")
	switch verb {
	case "id":
		return fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()), nil
	case "read":
		b, err := os.ReadFile(arg)
		return string(b), err
	case "write":
		return "", os.WriteFile(arg, []byte("x"), 0o644)
	case "list":
		es, err := os.ReadDir(arg)
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return strings.Join(names, ","), err
	case "dial":
		c, err := net.DialTimeout("tcp", arg, 2*time.Second)
		if err == nil {
			c.Close()
		}
		return "", err
	case "get":
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(arg)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return string(b), fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		return string(b), nil
	case "env":
		return os.Getenv(arg), nil
	case "ptrace":
		return "", unix.PtraceAttach(1)
	case "mount":
		return "", unix.Mount("none", "/tmp", "tmpfs", 0, "")
	case "keyctl":
		_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
		return "", err
	case "bpf":
		_, _, e := unix.Syscall(unix.SYS_BPF, 0, 0, 0)
		return "", errnoErr(e)
	case "perf":
		_, _, e := unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, 0, 0, ^uintptr(0), ^uintptr(0), 0, 0)
		return "", errnoErr(e)
	case "kexec":
		_, _, e := unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0, 0, 0)
		return "", errnoErr(e)
	case "module":
		_, _, e := unix.Syscall(unix.SYS_FINIT_MODULE, 0, 0, 0)
		return "", errnoErr(e)
	case "unshare":
		return "", unix.Unshare(unix.CLONE_NEWUSER)
	case "caps":
		b, err := os.ReadFile("/proc/self/status")
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "CapEff") || strings.HasPrefix(l, "NoNewPrivs") || strings.HasPrefix(l, "Seccomp:") {
				keep = append(keep, strings.Join(strings.Fields(l), " "))
			}
		}
		return strings.Join(keep, ";"), err
	case "hostuid":
		b, err := os.ReadFile("/proc/self/uid_map")
		return strings.Join(strings.Fields(string(b)), " "), err
	}
	return "", fmt.Errorf("unknown probe %q", verb)
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

type probeResult struct {
	Probe string `json:"probe"`
	OK    bool   `json:"ok"`
	Out   string `json:"out"`
}

// newBwrap makes a sandbox for tests, or skips outside CI where
// bubblewrap is missing.
func newBwrap(t *testing.T, cfg Config) *Bwrap {
	t.Helper()
	if cfg.WorkDir == "" {
		cfg.WorkDir = t.TempDir()
	}
	b, err := NewBwrap(context.Background(), cfg)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("bubblewrap sandbox: %v", err)
		}
		t.Skipf("no bubblewrap sandbox here (not CI, so skipping): %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// runProbes runs the test binary in sb with the probes and returns their
// results by probe.
func runProbes(t *testing.T, sb Sandbox, code string, probes ...string) map[string]probeResult {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, _ := os.Pipe()
	defer outR.Close()
	p, err := sb.Start(context.Background(), Spec{ID: "probe-" + t.Name(), Group: "test", Argv: []string{RuntimeDir + "/probe"}, Dir: TaskRoot,
		Code: code, Files: []Mount{{Src: exe, Dst: RuntimeDir + "/probe"}},
		Env: []string{"PATH=/usr/bin:/bin", "WARD_SANDBOX_PROBE=" + strings.Join(probes, ";")}, Stdout: outW, Stderr: outW,
		Limits: Limits{Memory: 256 << 20}})
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]probeResult{}
	sc := bufio.NewScanner(outR)
	var other []string
	for sc.Scan() {
		var r probeResult
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Probe != "" {
			got[r.Probe] = r
		} else {
			other = append(other, sc.Text())
		}
	}
	st := p.Wait()
	if !st.Success() || len(got) != len(probes) {
		t.Fatalf("probe run: %v, %d of %d results; other output: %s", st, len(got), len(probes), strings.Join(other, "\n"))
	}
	return got
}

func codeDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.js"), []byte("// code"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBwrapConfines attacks the sandbox from inside, as a hostile
// function would.
func TestBwrapConfines(t *testing.T) {
	secretDir := t.TempDir() // Ward's data, mode 0700
	secret := filepath.Join(secretDir, "secrets.key")
	if err := os.WriteFile(secret, []byte("master key"), 0o600); err != nil {
		t.Fatal(err)
	}
	hostLn, err := net.Listen("tcp", "127.0.0.1:0") // stands for PostgreSQL, pprof, another worker
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	go func() {
		for {
			c, err := hostLn.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	b := newBwrap(t, Config{})
	code := codeDir(t)
	res := runProbes(t, b, code,
		"id", "read:"+secret, "list:"+secretDir, "list:/", "read:/etc/shadow", "list:/proc", "read:/proc/1/environ",
		"write:/var/task/index.js", "write:/usr/x", "write:/x", "write:/var/x", "write:/etc/passwd", "write:/tmp/ok", "read:/var/task/index.js",
		"dial:"+hostLn.Addr().String(), "dial:169.254.169.254:80", "dial:10.0.0.1:5432",
		"ptrace", "mount", "keyctl", "bpf", "perf", "kexec", "module", "unshare", "caps", "env:AWS_LAMBDA_RUNTIME_API", "read:/proc/self/limits")
	mustFail := []string{"read:" + secret, "list:" + secretDir, "read:/etc/shadow", "write:/var/task/index.js", "write:/usr/x", "write:/x", "write:/var/x", "write:/x", "write:/var/x",
		"write:/etc/passwd", "dial:" + hostLn.Addr().String(), "dial:169.254.169.254:80", "dial:10.0.0.1:5432",
		"ptrace", "mount", "keyctl", "bpf", "perf", "kexec", "module", "unshare"}
	for _, p := range mustFail {
		if res[p].OK {
			t.Errorf("%s succeeded inside the sandbox (%q)", p, res[p].Out)
		}
	}
	for _, p := range []string{"id", "write:/tmp/ok", "read:/var/task/index.js", "list:/proc", "caps"} {
		if !res[p].OK {
			t.Errorf("%s failed inside the sandbox: %s", p, res[p].Out)
		}
	}
	if got := res["id"].Out; got != "993:990" {
		t.Errorf("uid:gid inside = %s, want 993:990", got)
	}
	// Only the sandbox's own processes: bubblewrap's pid 1 and the probe.
	var pids []string
	for _, n := range strings.Split(res["list:/proc"].Out, ",") {
		if n != "" && n[0] >= '0' && n[0] <= '9' {
			pids = append(pids, n)
		}
	}
	if len(pids) > 2 {
		t.Errorf("the sandbox sees processes %v, want only its own two", pids)
	}
	if c := res["caps"].Out; !strings.Contains(c, "CapEff: 0000000000000000") || !strings.Contains(c, "NoNewPrivs: 1") || !strings.Contains(c, "Seccomp: 2") {
		t.Errorf("caps/no_new_privs/seccomp inside: %s", c)
	}
	for _, p := range []string{"ptrace", "mount", "keyctl", "bpf", "perf", "kexec", "module", "unshare"} {
		if !strings.Contains(res[p].Out, "operation not permitted") {
			t.Errorf("%s: %q, want EPERM from the seccomp filter", p, res[p].Out)
		}
	}
	if got := res["env:AWS_LAMBDA_RUNTIME_API"].Out; got != "127.0.0.1:9001" {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %q", got)
	}
	// runProbes asks for 256 MiB: RLIMIT_DATA is that plus the slack.
	lim := res["read:/proc/self/limits"].Out
	if !strings.Contains(lim, fmt.Sprintf("Max data size             %d", 256<<20+Slack)) || !strings.Contains(lim, "Max open files            1024") {
		t.Errorf("limits inside:\n%s", lim)
	}
	if strings.Contains(res["list:/"].Out, "work") || strings.Contains(res["list:/"].Out, "root") || strings.Contains(res["list:/"].Out, "home") {
		t.Errorf("the sandbox's / shows host directories: %s", res["list:/"].Out)
	}
}

// TestBwrapRuntimeAPIAndEgress: the Runtime API listener Ward gets back
// is the one the function reaches at 127.0.0.1:9001, and outbound HTTP
// goes through the proxy, dialled by Network.Dial (the egress policy).
func TestBwrapRuntimeAPIAndEgress(t *testing.T) {
	target := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "outside:"+r.URL.Path)
	})}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go target.Serve(tln)
	defer target.Close()
	allowed := tln.Addr().String()
	var dialled []string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialled = append(dialled, addr)
		if addr != allowed && addr != "allowed.example:80" {
			return nil, errors.New("refused by the test's policy")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, allowed)
	}
	b := newBwrap(t, Config{Network: Network{Dial: dial, Forward: []Forward{{Port: 8080, Addr: allowed}}, Hosts: []string{"ward.example"}}})
	exe, _ := os.Executable()
	outR, outW, _ := os.Pipe()
	defer outR.Close()
	probes := "get:http://127.0.0.1:9001/api;get:http://allowed.example/via-proxy;get:http://denied.example/x;get:http://ward.example:8080/forward;get:http://127.0.0.1:8080/forward2"
	p, err := b.Start(context.Background(), Spec{ID: "api", Group: "test", Argv: []string{RuntimeDir + "/probe"}, Dir: TaskRoot,
		Code: codeDir(t), Files: []Mount{{Src: exe, Dst: RuntimeDir + "/probe"}},
		Env: []string{"WARD_SANDBOX_PROBE=" + probes}, Stdout: outW, Stderr: outW})
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	api := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "runtime-api:"+r.URL.Path) })}
	go api.Serve(p.RuntimeAPI())
	defer api.Close()
	got := map[string]probeResult{}
	sc := bufio.NewScanner(outR)
	for sc.Scan() {
		var r probeResult
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			got[r.Probe] = r
		} else {
			t.Log(sc.Text())
		}
	}
	p.Wait()
	want := map[string]string{
		"get:http://127.0.0.1:9001/api":        "runtime-api:/api",
		"get:http://allowed.example/via-proxy": "outside:/via-proxy",
		"get:http://ward.example:8080/forward": "outside:/forward",
		"get:http://127.0.0.1:8080/forward2":   "outside:/forward2",
	}
	for probe, out := range want {
		if r := got[probe]; !r.OK || r.Out != out {
			t.Errorf("%s = %+v, want %q", probe, r, out)
		}
	}
	if r := got["get:http://denied.example/x"]; r.OK || !strings.Contains(r.Out, "refused by the test's policy") {
		t.Errorf("denied destination: %+v", r)
	}
}

// TestBwrapHostUID: run by root, each sandbox is a host uid of its own,
// neither root nor another sandbox's; Kill ends it all.
func TestBwrapHostUID(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root: a host uid per worker needs Ward to run as root")
		}
		t.Skip("a host uid per worker needs Ward to run as root (not CI, so skipping)")
	}
	b := newBwrap(t, Config{})
	exe, _ := os.Executable()
	start := func(id string) (*Process, *os.File) {
		r, w, _ := os.Pipe()
		p, err := b.Start(context.Background(), Spec{ID: id, Group: "t", Argv: []string{RuntimeDir + "/probe"}, Dir: TaskRoot, Code: codeDir(t),
			Files: []Mount{{Src: exe, Dst: RuntimeDir + "/probe"}}, Env: []string{"WARD_SANDBOX_PROBE=id", "WARD_SANDBOX_PROBE_HOLD=1"}, Stdout: w, Stderr: w})
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bufio.NewReader(r).ReadString('\n'); err != nil { // the probe runs
			t.Fatal(err)
		}
		return p, r
	}
	hostUID := func(pid int) string {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(st), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
				return f[1]
			}
		}
		return ""
	}
	p1, r1 := start("one")
	defer r1.Close()
	p2, r2 := start("two")
	defer r2.Close()
	u1, u2 := hostUID(p1.main()), hostUID(p2.main())
	if u1 == "0" || u2 == "0" || u1 == u2 || u1 == "" {
		t.Errorf("host uids of two sandboxes' runtimes: %q and %q, want two distinct non-root uids", u1, u2)
	}
	main1 := p1.main()
	p1.Kill()
	p1.Wait()
	if err := syscall.Kill(main1, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the runtime of a killed sandbox is still there (%v)", err)
	}
	p2.Kill()
	p2.Wait()
}
