package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Config sets up the bubblewrap sandbox.
type Config struct {
	// WorkDir is a Ward-private directory for the sandbox's own files
	// (its /etc, the seccomp filter).
	WorkDir string
	Bwrap   string // bubblewrap's path; default "bwrap" on PATH
	// Init is an executable whose main calls Init (default: this
	// process's own executable).
	Init    string
	Network Network
	Logger  *slog.Logger
	// CgroupRoot is where cgroup file systems are mounted (default
	// /sys/fs/cgroup). NoCgroups leaves cgroups alone: rlimits only.
	CgroupRoot string
	NoCgroups  bool
}

// The user a function runs as inside its sandbox: Lambda's.
const (
	sandboxUID  = 993
	sandboxGID  = 990
	sandboxUser = "sbx_user1051"
)

// Bwrap runs each worker in its own sandbox made by bubblewrap (user, pid,
// mount, ipc, uts, cgroup and network namespaces; no capabilities;
// no_new_privs; a seccomp filter), as a host uid of its own when Ward runs
// as root, with the function's code read-only at /var/task, the system's
// /usr read-only, a generated /etc, a private size-limited /tmp, and
// memory, process, CPU and file limits (cgroups where writable, else
// rlimits).
type Bwrap struct {
	cfg       Config
	log       *slog.Logger
	bwrap     string
	setpriv   string  // root: switches to the worker's uid after Ward set its limits
	root      bool    // Ward is root: each worker gets a host uid of its own
	static    []Mount // the init executable and the generated /etc files (staged when root)
	stage     *stager // root: binds in a private mount namespace (see stager)
	seccomp   string  // the filter's file
	sysArgs   []string
	cgs       *cgroups
	enforced  []string
	missing   []string
	ports     []int    // runtime API, proxy, forwards (as in cfg.Network.Forward)
	netEnv    []string // AWS_LAMBDA_RUNTIME_API and the proxy variables
	transport http.RoundTripper
	noPtrace  atomic.Bool

	// Slots (root only): ready-made starts, see slot.
	slots   chan *slot
	filling atomic.Bool
	slotSeq atomic.Int64
	closeMu sync.RWMutex
	closed  bool

	uidMu   sync.Mutex
	uidBase int
	uids    map[int]bool
}

// NewBwrap checks that bubblewrap works here (it starts one sandbox) and
// prepares the sandbox's files. An error says why it cannot be used.
func NewBwrap(ctx context.Context, cfg Config) (*Bwrap, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/sys/fs/cgroup"
	}
	b := &Bwrap{cfg: cfg, log: cfg.Logger, root: os.Geteuid() == 0, uids: map[int]bool{},
		// A random block of 10,000 host uids, one of 200,000: two Ward
		// servers on one host (tests start dozens) rarely share uids.
		uidBase: 1_000_000 + rand.IntN(200_000)*10_000}
	path := cfg.Bwrap
	if path == "" {
		path = "bwrap"
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return nil, fmt.Errorf("bubblewrap (bwrap) is not installed: %w", err)
	}
	b.bwrap = p
	if b.root {
		// Ward sets a worker's rlimits on the process it spawned, before
		// it runs (see startGated); prlimit on a process of another uid
		// needs CAP_SYS_RESOURCE, which root may lack (containers), so
		// that process is still Ward's uid and switches with setpriv.
		if b.setpriv, err = exec.LookPath("setpriv"); err != nil {
			return nil, fmt.Errorf("setpriv (util-linux) is not installed: %w", err)
		}
	}
	if b.cfg.Init == "" {
		if b.cfg.Init, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("sandbox init: %w", err)
		}
	}
	if err := b.prepare(); err != nil {
		b.Close()
		return nil, err
	}
	// A probe can fail once for a passing reason (many servers starting
	// sandboxes at once has made bubblewrap exit before its info, without
	// a word): a host that cannot run it fails every attempt.
	for attempt := 1; ; attempt++ {
		err := b.probe(ctx)
		if err == nil {
			break
		}
		if attempt == probeAttempts || ctx.Err() != nil {
			b.Close()
			return nil, err
		}
		b.cfg.Logger.Warn("zambda sandbox: test sandbox failed, trying again", "attempt", attempt, "err", err)
		select {
		case <-time.After(time.Duration(attempt) * 250 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	return b, nil
}

// probeMemory is the test sandbox's memory limit: the init program is
// Ward's own binary, whose Go runtime needs more than 128 MiB of data
// segment at start since the LiveKit client joined it (64 MiB + Slack
// failed most starts: "runtime: cannot allocate memory"); a function's
// smallest memorySize (128 MB) plus Slack is enough.
const probeMemory = 128 << 20

// probeAttempts bounds the test sandboxes NewBwrap starts before it calls
// the host unable to run one.
const probeAttempts = 3

func (b *Bwrap) prepare() error {
	dir := filepath.Join(b.cfg.WorkDir, "sandbox")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sandbox dir: %w", err)
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	for _, h := range b.cfg.Network.Hosts {
		if h != "" && h != "localhost" && !strings.ContainsAny(h, " \t\n") {
			hosts += "127.0.0.1\t" + h + "\n"
		}
	}
	files := map[string]string{
		"passwd": "root:x:0:0:root:/root:/sbin/nologin\n" + sandboxUser + ":x:" + strconv.Itoa(sandboxUID) + ":" + strconv.Itoa(sandboxGID) + "::/tmp:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
		"group":  "root:x:0:\n" + sandboxUser + ":x:" + strconv.Itoa(sandboxGID) + ":\nnogroup:x:65534:\n",
		"hosts":  hosts,
		// No DNS inside: names resolve from /etc/hosts, and the proxy
		// resolves the rest outside.
		"nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
		"resolv.conf":   "# no resolver in a zambda sandbox: use HTTP_PROXY / HTTPS_PROXY\noptions attempts:1 timeout:1\n",
	}
	for name, content := range files {
		path := filepath.Join(dir, "etc-"+name)
		if err := writeFileAtomic(path, []byte(content), 0o644); err != nil {
			return err
		}
		b.static = append(b.static, Mount{path, "/etc/" + name})
	}
	if _, err := os.Stat(b.cfg.Init); err != nil {
		return fmt.Errorf("sandbox init: %w", err)
	}
	b.static = append(b.static, Mount{b.cfg.Init, initPath})
	if b.root {
		st, err := newStager()
		if err != nil {
			return err
		}
		b.stage = st
		b.slots = make(chan *slot, slotsReady)
		var srcs []string
		for _, m := range b.static {
			srcs = append(srcs, m.Src)
		}
		var staged []string
		st.do(func() { staged, _, err = st.bindAll(srcs) })
		if err != nil {
			return err
		}
		for i := range b.static {
			b.static[i].Src = staged[i]
		}
	}
	prog, err := seccompProgram()
	if err != nil {
		return err
	}
	b.seccomp = filepath.Join(dir, "seccomp.bpf")
	if err := writeFileAtomic(b.seccomp, prog, 0o600); err != nil {
		return err
	}
	b.sysArgs = systemMounts()

	b.ports = []int{RuntimeAPIPort}
	taken := map[int]bool{RuntimeAPIPort: true}
	for _, f := range b.cfg.Network.Forward {
		if f.Port <= 0 || f.Port > 65535 || taken[f.Port] {
			return fmt.Errorf("sandbox forward port %d is invalid or taken", f.Port)
		}
		taken[f.Port] = true
	}
	proxy := RuntimeAPIPort + 1
	for taken[proxy] {
		proxy++
	}
	b.ports = append(b.ports, proxy)
	for _, f := range b.cfg.Network.Forward {
		b.ports = append(b.ports, f.Port)
	}
	// Loopback and the forwards' names (Ward's public host, mapped to
	// 127.0.0.1 in /etc/hosts) are reached directly, the rest through the
	// proxy.
	proxyURL := "http://127.0.0.1:" + strconv.Itoa(proxy)
	direct := strings.Join(append([]string{"localhost", "127.0.0.1"}, b.cfg.Network.Hosts...), ",")
	b.netEnv = []string{"AWS_LAMBDA_RUNTIME_API=127.0.0.1:" + strconv.Itoa(RuntimeAPIPort),
		"HTTP_PROXY=" + proxyURL, "HTTPS_PROXY=" + proxyURL, "http_proxy=" + proxyURL, "https_proxy=" + proxyURL,
		"NO_PROXY=" + direct, "no_proxy=" + direct}
	if d := b.cfg.Network.Dial; d != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil // never a proxy of the host's: Dial is the policy
		t.DialContext = d
		b.transport = t
	}

	b.enforced = []string{"namespaces (user, pid, mount, ipc, uts, cgroup, net)", "read-only code", "private /tmp (tmpfs, size-limited)", "no capabilities", "no_new_privs", "seccomp", "egress through Ward's proxy"}
	if b.root {
		b.enforced = append(b.enforced, "a host uid per worker")
	} else {
		b.missing = append(b.missing, "a host uid per worker (Ward is not root: workers share Ward's uid outside their namespaces)")
	}
	if !b.cfg.NoCgroups {
		cgs, got, why := openCgroups(b.cfg.CgroupRoot)
		b.cgs = cgs
		b.enforced = append(b.enforced, got...)
		if why != "" {
			b.missing = append(b.missing, "cgroups: "+why)
		}
	}
	has := func(c string) bool { return b.cgs != nil && (b.cgs.v2 || b.cgs.roots[c] != "") }
	if !has("memory") {
		b.enforced = append(b.enforced, "memory (rlimit: private memory only)")
	}
	if !has("pids") {
		if b.root {
			b.enforced = append(b.enforced, "processes (rlimit, per worker uid)")
		} else {
			b.missing = append(b.missing, "process count (no pids cgroup, and the rlimit would count Ward's own threads)")
		}
	}
	if !has("cpu") {
		b.missing = append(b.missing, "cpu share (no cpu cgroup: workers run at a lower priority instead)")
	}
	b.enforced = append(b.enforced, "open files (rlimit)")
	return nil
}

// systemMounts shows the host's system directories read-only: /usr and its
// merged-/usr links, the dynamic linker's cache and the TLS roots.
func systemMounts() []string {
	args := []string{"--ro-bind", "/usr", "/usr"}
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"} {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			if target, err := os.Readlink(d); err == nil {
				args = append(args, "--symlink", target, d)
			}
		case fi.IsDir():
			args = append(args, "--ro-bind", d, d)
		}
	}
	for _, f := range []string{"/etc/ld.so.cache", "/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/localtime", "/etc/alternatives"} {
		args = append(args, "--ro-bind-try", f, f)
	}
	return args
}

// probe starts one sandbox running /bin/true, through the init program,
// so that a host where bubblewrap cannot work is found at start.
func (b *Bwrap) probe(ctx context.Context) error {
	empty := filepath.Join(b.cfg.WorkDir, "sandbox", "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(empty, 0o755); err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	p, err := b.Start(ctx, Spec{ID: "probe", Group: "probe", Argv: []string{"/usr/bin/true"}, Dir: TaskRoot, Code: empty,
		Env: []string{"PATH=/usr/bin:/bin"}, Stdout: w, Stderr: w, Limits: Limits{Memory: probeMemory}})
	w.Close()
	if err != nil {
		out, _ := io.ReadAll(io.LimitReader(r, 4096))
		return fmt.Errorf("%w%s", err, outputSuffix(out))
	}
	st := p.Wait()
	out, _ := io.ReadAll(io.LimitReader(r, 4096))
	if !st.Success() {
		return fmt.Errorf("a test sandbox ended with %v%s", st, outputSuffix(out))
	}
	return nil
}

func outputSuffix(out []byte) string {
	if s := strings.TrimSpace(string(out)); s != "" {
		return ": " + s
	}
	return ""
}

// Info says what is enforced on this host.
func (b *Bwrap) Info() Info {
	return Info{Mode: "bwrap", Isolated: true, Enforced: b.enforced, Missing: b.missing}
}

// Close releases the sandbox's files and cgroups; call it after every
// worker has exited.
func (b *Bwrap) Close() error {
	b.closeMu.Lock()
	b.closed = true
	b.closeMu.Unlock()
	for b.slots != nil {
		select {
		case sl := <-b.slots:
			sl.discard()
			continue
		default:
		}
		break
	}
	if b.stage != nil {
		b.stage.close()
		b.stage = nil
	}
	if b.cgs != nil {
		b.cgs.close()
	}
	return nil
}

// allocUID picks a host uid no live worker of this Ward has.
func (b *Bwrap) allocUID() int {
	b.uidMu.Lock()
	defer b.uidMu.Unlock()
	for i := 0; ; i++ {
		u := b.uidBase + i
		if !b.uids[u] {
			b.uids[u] = true
			return u
		}
	}
}

func (b *Bwrap) freeUID(u int) {
	b.uidMu.Lock()
	delete(b.uids, u)
	b.uidMu.Unlock()
}

// Start runs spec in a new sandbox and returns once Ward holds the
// listeners inside it.
func (b *Bwrap) Start(ctx context.Context, spec Spec) (*Process, error) {
	if b.stage != nil {
		return b.startRoot(ctx, spec)
	}
	return b.startUnprivileged(ctx, spec)
}

// options are bubblewrap's options for spec: binds from srcs (the host
// paths of spec.Code and spec.Files, as bubblewrap will see them), the
// seccomp filter and info pipe at the given descriptors.
func (b *Bwrap) options(spec Spec, lim Limits, srcs []string, ownNetns bool, secFD, infoFD int) []string {
	opts := []string{
		"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--disable-userns", "--die-with-parent", "--new-session",
		"--uid", strconv.Itoa(sandboxUID), "--gid", strconv.Itoa(sandboxGID), "--hostname", "sandbox",
		"--cap-drop", "ALL",
	}
	if !ownNetns {
		opts = append(opts, "--unshare-net")
	}
	opts = append(opts, b.sysArgs...)
	opts = append(opts, "--proc", "/proc", "--dev", "/dev",
		"--perms", "01777", "--size", strconv.FormatInt(lim.Tmp, 10), "--tmpfs", "/tmp",
		"--perms", "0755", "--dir", "/var", "--perms", "0755", "--dir", RuntimeDir, "--perms", "0755", "--dir", "/opt")
	dsts := append([]string{TaskRoot}, make([]string, len(spec.Files))...)
	for i, m := range spec.Files {
		dsts[i+1] = m.Dst
	}
	for i, src := range srcs {
		opts = append(opts, "--ro-bind", src, dsts[i])
	}
	for _, m := range b.static {
		opts = append(opts, "--ro-bind", m.Src, m.Dst)
	}
	// The root itself read-only (its mounts keep their own modes: /tmp
	// stays writable), so nothing but /tmp can be written.
	return append(opts, "--remount-ro", "/", "--chdir", spec.Dir, "--seccomp", strconv.Itoa(secFD), "--info-fd", strconv.Itoa(infoFD))
}

// sources are the host paths spec binds: its code, then its files.
func sources(spec Spec) []string {
	srcs := []string{spec.Code}
	for _, m := range spec.Files {
		srcs = append(srcs, m.Src)
	}
	return srcs
}

// argsPipe writes bubblewrap's options into a pipe for --args, so that
// the sandbox's /proc/1/cmdline does not show the host's paths; it
// returns the read end.
func argsPipe(id string, opts []string) (*os.File, error) {
	var buf bytes.Buffer
	for _, a := range opts {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("zambda %s: a sandbox option holds NUL", id)
		}
		buf.WriteString(a)
		buf.WriteByte(0)
	}
	if buf.Len() > 60<<10 {
		return nil, fmt.Errorf("zambda %s: sandbox options too long", id)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	_, err = w.Write(buf.Bytes()) // fits the pipe's buffer: no reader needed yet
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// env is spec's environment with the sandbox's network variables, which
// win: a function's own would point where it cannot reach.
func (b *Bwrap) env(spec Spec) []string {
	env := make([]string, 0, len(spec.Env)+len(b.netEnv))
	for _, kv := range spec.Env {
		k, _, _ := strings.Cut(kv, "=")
		if !netVar(k) {
			env = append(env, kv)
		}
	}
	return append(env, b.netEnv...)
}

// serve starts serving a worker's proxy and forwards, and makes its
// Process.
func (b *Bwrap) process(spec Spec, cmd *exec.Cmd, lns []net.Listener, cg *cgroup, initPid int, release func()) *Process {
	ns := newNetServer(b.log, b.cfg.Network.Dial, spec.ID, b.transport)
	ns.serveProxy(lns[1])
	for i, f := range b.cfg.Network.Forward {
		ns.serveForward(lns[2+i], f.Addr)
	}
	return &Process{cmd: cmd, api: lns[0], serving: []io.Closer{ns}, cg: cg, initPid: initPid, exitSignals: true,
		waited: make(chan struct{}), release: release}
}

// startRoot starts a worker from a slot (see slot): its network namespace,
// cgroup and first process exist already, so what is left is limits,
// binds, and bubblewrap.
func (b *Bwrap) startRoot(ctx context.Context, spec Spec) (*Process, error) {
	lim := spec.Limits.withDefaults()
	sl, err := b.takeSlot()
	if err != nil {
		return nil, err
	}
	uid := b.allocUID()
	var cleanup []func()
	fail := func(err error) (*Process, error) {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
		sl.discard()
		b.freeUID(uid)
		return nil, err
	}
	if sl.cg != nil {
		if err := sl.cg.setLimits(lim); err != nil {
			return fail(err)
		}
		sl.cg.setGroup(spec.Group)
	}
	pid := sl.cmd.Process.Pid
	// The slot's process is Ward's (root), so prlimit needs no capability.
	setRlimits(pid, lim, b.cgs == nil || b.cgs.roots["pids"] == "" && !b.cgs.v2)
	if b.cgs == nil || (!b.cgs.v2 && b.cgs.roots["cpu"] == "") {
		_ = unix.Setpriority(unix.PRIO_PROCESS, pid, 10)
	}
	var staged []string
	var undo func()
	b.stage.do(func() { staged, undo, err = b.stage.bindAll(sources(spec)) })
	if err != nil {
		return fail(err)
	}
	// Kept while the worker lives: nothing tells when bubblewrap has made
	// its own binds from them (its info comes before).
	unstage := func() { b.stage.do(undo) }
	cleanup = append(cleanup, unstage)

	// The slot's process gets these at fixed descriptors, then runs
	// setpriv (the worker's uid) and bubblewrap.
	const secFD, infoFD, argsFD = 3, 4, 5
	sec, err := os.Open(b.seccomp)
	if err != nil {
		return fail(fmt.Errorf("sandbox seccomp filter: %w", err))
	}
	defer sec.Close()
	infoR, infoW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	defer infoR.Close()
	defer infoW.Close()
	argsR, err := argsPipe(spec.ID, b.options(spec, lim, staged, true, secFD, infoFD))
	if err != nil {
		return fail(err)
	}
	defer argsR.Close()
	// setpriv keeps the parent-death signal across the uid change (the
	// kernel clears it there).
	argv := append([]string{"setpriv", "--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(uid), "--clear-groups",
		"--pdeathsig=SIGKILL", "--", b.bwrap, "--args", strconv.Itoa(argsFD), "--"}, spec.Argv...)
	err = sl.exec(stubExec{Path: b.setpriv, Argv: argv, Env: b.env(spec), Dir: "/"},
		[]*os.File{spec.Stdout, spec.Stderr, sec, infoW, argsR}, []int{1, 2, secFD, infoFD, argsFD})
	if err != nil {
		return fail(fmt.Errorf("start bubblewrap: %w", err))
	}
	infoW.Close()
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	initPid, err := readInfo(infoR, deadline)
	if err != nil {
		return fail(fmt.Errorf("zambda sandbox did not start: %w", err))
	}
	return b.process(spec, sl.cmd, sl.lns, sl.cg, initPid, func() {
		unstage()
		b.freeUID(uid)
	}), nil
}

// startUnprivileged starts a worker where Ward is not root: bubblewrap
// (Ward's own uid) makes the network namespace, and the sandbox's init
// program binds the listeners in it and hands them over.
func (b *Bwrap) startUnprivileged(ctx context.Context, spec Spec) (*Process, error) {
	lim := spec.Limits.withDefaults()
	var cleanup []func()
	fail := func(err error) (*Process, error) {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
		return nil, err
	}
	var cg *cgroup
	if b.cgs != nil {
		var err error
		if cg, err = b.cgs.create(spec.ID + "-" + randomName()); err != nil {
			return fail(err)
		}
		cleanup = append(cleanup, cg.remove)
		if err := cg.setLimits(lim); err != nil {
			return fail(err)
		}
		cg.setGroup(spec.Group)
	}
	// Descriptors for bubblewrap, in ExtraFiles order (fd 3 up), closed
	// here once it has started.
	var extra []*os.File
	add := func(f *os.File) int {
		extra = append(extra, f)
		return 2 + len(extra)
	}
	closeExtra := func() {
		for _, f := range extra {
			_ = f.Close()
		}
		extra = nil
	}
	cleanup = append(cleanup, closeExtra)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("sandbox socketpair: %w", err))
	}
	parentSock := os.NewFile(uintptr(pair[0]), "sandbox-parent")
	defer parentSock.Close()
	sockFD := add(os.NewFile(uintptr(pair[1]), "sandbox-child"))
	sec, err := os.Open(b.seccomp)
	if err != nil {
		return fail(fmt.Errorf("sandbox seccomp filter: %w", err))
	}
	secFD := add(sec)
	infoR, infoW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	defer infoR.Close()
	infoFD := add(infoW)
	argsR, err := argsPipe(spec.ID, b.options(spec, lim, sources(spec), false, secFD, infoFD))
	if err != nil {
		return fail(err)
	}
	argsFD := add(argsR)
	ports := make([]string, len(b.ports))
	for i, p := range b.ports {
		ports[i] = strconv.Itoa(p)
	}
	argv := append([]string{"bwrap", "--args", strconv.Itoa(argsFD), "--", initPath, strconv.Itoa(sockFD), strings.Join(ports, ","), "--"}, spec.Argv...)
	env := b.env(spec)
	newCmd := func(trace bool) *exec.Cmd {
		return &exec.Cmd{Path: b.bwrap, Args: argv, Env: env, Dir: "/", Stdout: spec.Stdout, Stderr: spec.Stderr, ExtraFiles: extra,
			SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Ptrace: trace}}
	}
	limit := func(pid int) error {
		if cg != nil {
			if err := cg.add(pid); err != nil {
				return err
			}
		}
		setRlimits(pid, lim, false)
		if b.cgs == nil || (!b.cgs.v2 && b.cgs.roots["cpu"] == "") {
			_ = unix.Setpriority(unix.PRIO_PROCESS, pid, 10)
		}
		return nil
	}
	cmd, err := startGated(b.log, &b.noPtrace, newCmd, limit)
	closeExtra()
	if err != nil {
		return fail(fmt.Errorf("start bubblewrap: %w", err))
	}
	cleanup = append(cleanup, func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	initPid, err := readInfo(infoR, deadline)
	if err != nil {
		return fail(fmt.Errorf("zambda sandbox did not start: %w", err))
	}
	lns, err := receiveListeners(parentSock, len(b.ports), deadline)
	if err != nil {
		return fail(fmt.Errorf("zambda sandbox did not start: %w", err))
	}
	return b.process(spec, cmd, lns, cg, initPid, nil), nil
}

// readInfo reads bubblewrap's --info-fd JSON: the host pid of the
// sandbox's pid 1.
func readInfo(r *os.File, deadline time.Time) (int, error) {
	_ = r.SetReadDeadline(deadline)
	var info struct {
		ChildPid int `json:"child-pid"`
	}
	if err := json.NewDecoder(r).Decode(&info); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, errors.New("bubblewrap exited before making the sandbox (see the function's logs)")
		}
		return 0, fmt.Errorf("bubblewrap's info: %w", err)
	}
	if info.ChildPid <= 0 {
		return 0, errors.New("bubblewrap's info holds no child-pid")
	}
	return info.ChildPid, nil
}

// receiveListeners takes the listeners the sandbox's init program bound.
func receiveListeners(sock *os.File, n int, deadline time.Time) ([]net.Listener, error) {
	c, err := net.FileConn(sock)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, errors.New("sandbox socket is not a unix socket")
	}
	_ = uc.SetReadDeadline(deadline)
	buf := make([]byte, 512)
	oob := make([]byte, unix.CmsgSpace(4*n))
	nb, noob, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil && nb == 0 {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("its init program exited before binding its listeners (see the function's logs)")
		}
		return nil, fmt.Errorf("waiting for its listeners: %w", err)
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:noob]); err == nil {
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	closeFDs := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	if msg := string(buf[:nb]); msg != "ok" {
		closeFDs()
		if nb == 0 {
			return nil, errors.New("its init program exited before binding its listeners (see the function's logs)")
		}
		return nil, fmt.Errorf("its init program: %s", strings.TrimPrefix(msg, "error: "))
	}
	if len(fds) != n {
		closeFDs()
		return nil, fmt.Errorf("its init program sent %d listeners, not %d", len(fds), n)
	}
	lns := make([]net.Listener, 0, n)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "sandbox-listener")
		ln, err := net.FileListener(f)
		f.Close() // FileListener dups it
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			for _, rest := range fds[i+1:] {
				unix.Close(rest)
			}
			return nil, fmt.Errorf("sandbox listener: %w", err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("sandbox file: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("sandbox file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("sandbox file: %w", err)
	}
	return nil
}

var _ Sandbox = (*Bwrap)(nil)

// netnsListeners moves the calling thread (the stager's, locked) into a
// new network namespace with its loopback up, and listens there: the
// sandbox started next from this thread shares that namespace, and Ward
// holds its listeners without the init program's round trip.
func netnsListeners(ports []int) ([]net.Listener, error) {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("sandbox network namespace: %w", err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sandbox loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return nil, err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return nil, fmt.Errorf("sandbox loopback up: %w", err)
	}
	lns := make([]net.Listener, 0, len(ports))
	for _, p := range ports {
		ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("sandbox listener: %w", err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// netVar reports whether an environment variable is one the sandbox sets.
func netVar(k string) bool {
	switch strings.ToUpper(k) {
	case "AWS_LAMBDA_RUNTIME_API", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY":
		return true
	}
	return false
}
