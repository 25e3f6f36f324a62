package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Sandbox starts worker processes. Start returns once the process runs and
// Ward holds the listener of its Lambda Runtime API; the process then
// belongs to the caller (Process.Wait, Process.Kill).
//
// Implementations: Bwrap (namespaces, seccomp, cgroups or rlimits: the
// default on Linux), Direct (no isolation: --zambda-sandbox=off), and
// Unavailable (what a server without bubblewrap gets, unless it asked for
// off). A Kubernetes or AWS Lambda executor would sit at this same seam;
// see docs/security.md.
type Sandbox interface {
	Start(ctx context.Context, spec Spec) (*Process, error)
	// Info says what this sandbox enforces, for the start-up log and
	// /healthz.
	Info() Info
}

// Spec is one worker process.
type Spec struct {
	ID    string // unique among live workers: cgroup and log names
	Group string // the tenant (project): its workers share one CPU weight
	// Argv and Dir are as the process sees them: under TaskRoot and
	// RuntimeDir when the sandbox isolates (Info.Isolated), host paths
	// when it does not.
	Argv []string
	Dir  string
	// Env is the process's whole environment except the network
	// variables (AWS_LAMBDA_RUNTIME_API and the proxy), which Start adds.
	Env []string
	// Code is the host directory holding the function's code: TaskRoot,
	// read-only. Files are further read-only mounts (the Node bootstrap
	// under RuntimeDir, a runtime outside /usr).
	Code   string
	Files  []Mount
	Limits Limits
	// Stdout and Stderr receive the process's output (pipe write ends).
	Stdout, Stderr *os.File
}

// Mount is a host path shown read-only at Dst inside the sandbox.
type Mount struct{ Src, Dst string }

// Limits bound one worker. Zero values take the defaults below.
type Limits struct {
	// Memory is the process's private writable memory (heap, stacks,
	// anonymous mappings): RLIMIT_DATA, and with Tmp the cgroup's memory
	// limit.
	Memory int64
	Tmp    int64   // size of its private /tmp (tmpfs: counted as memory too)
	Pids   int     // processes and threads
	CPU    float64 // cores it may use at once (cgroups only)
	Files  int     // open file descriptors
}

const (
	// DefaultTmp is Lambda's default ephemeral storage.
	DefaultTmp   = 512 << 20
	defaultPids  = 256
	defaultCPU   = 1.0
	defaultFiles = 1024
	// Slack is memory beyond Limits.Memory that the runtime itself needs
	// (code, thread stacks), as the worker's rlimit had before sandboxes.
	Slack = 64 << 20
)

func (l Limits) withDefaults() Limits {
	if l.Tmp <= 0 {
		l.Tmp = DefaultTmp
	}
	if l.Pids <= 0 {
		l.Pids = defaultPids
	}
	if l.CPU <= 0 {
		l.CPU = defaultCPU
	}
	if l.Files <= 0 {
		l.Files = defaultFiles
	}
	return l
}

// Paths inside an isolating sandbox, as on AWS Lambda.
const (
	TaskRoot   = "/var/task"
	RuntimeDir = "/var/runtime"
	// RuntimeAPIPort is where the Runtime API listens inside the sandbox
	// (Lambda's own port).
	RuntimeAPIPort = 9001
)

// Info is what a sandbox enforces.
type Info struct {
	Mode     string   // "bwrap", "off" or "unavailable"
	Isolated bool     // namespaces, read-only code, private /tmp, no host network
	Enforced []string // e.g. "memory (cgroup v1)", "pids (rlimit)", "seccomp"
	Missing  []string // limits this host cannot enforce, and why
	Reason   string   // unavailable: why; off: that it was asked for
}

func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Mode)
	if len(i.Enforced) > 0 {
		b.WriteString(": " + strings.Join(i.Enforced, ", "))
	}
	if len(i.Missing) > 0 {
		b.WriteString("; not enforced: " + strings.Join(i.Missing, ", "))
	}
	if i.Reason != "" {
		b.WriteString(" (" + i.Reason + ")")
	}
	return b.String()
}

// ErrUnavailable is what Start returns on a server that cannot sandbox
// functions and was not told to run them without one.
var ErrUnavailable = errors.New("zambda sandbox unavailable")

// Unavailable refuses every start, saying why and how to fix it.
type Unavailable struct{ Reason string }

func (u Unavailable) Start(context.Context, Spec) (*Process, error) {
	return nil, fmt.Errorf("%w: %s; install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and allow user namespaces, or start ward serve with --zambda-sandbox=off to run functions without isolation (not for untrusted code)", ErrUnavailable, u.Reason)
}

func (u Unavailable) Info() Info {
	return Info{Mode: "unavailable", Reason: u.Reason}
}
