package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Direct runs workers without isolation, as Ward's own user, on the host's
// network and filesystem (--zambda-sandbox=off): for development, or where
// the host cannot sandbox and every function is trusted. Each worker gets
// its own process group and its memory, file and core-dump rlimits.
type Direct struct {
	log      *slog.Logger
	noPtrace atomic.Bool
	reason   string
}

// NewDirect makes the sandbox that is not one; reason says why it is used.
func NewDirect(log *slog.Logger, reason string) *Direct {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Direct{log: log, reason: reason}
}

func (d *Direct) Info() Info {
	return Info{Mode: "off", Enforced: []string{"memory (rlimit)", "open files (rlimit)", "process group kill"},
		Missing: []string{"namespaces", "read-only code", "private /tmp", "network isolation", "seccomp", "pids", "cpu"}, Reason: d.reason}
}

func (d *Direct) Start(ctx context.Context, spec Spec) (*Process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("zambda runtime api listener: %w", err)
	}
	env := append(spec.Env[:len(spec.Env):len(spec.Env)], "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String())
	lim := spec.Limits.withDefaults()
	newCmd := func(trace bool) *exec.Cmd {
		return &exec.Cmd{Path: spec.Argv[0], Args: spec.Argv, Env: env, Dir: spec.Dir, Stdout: spec.Stdout, Stderr: spec.Stderr,
			// Its own process group, so kills reach its children too.
			SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Ptrace: trace}}
	}
	cmd, err := d.startLimited(newCmd, func(pid int) error { setRlimits(pid, lim, false); return nil })
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Process{cmd: cmd, api: ln, waited: make(chan struct{})}, nil
}

// startLimited starts cmd with its limits in place before the program runs
// its first instruction.
//
// Linux has no way to give a child its own rlimits (or cgroup) at fork
// through os/exec, and setting them after Start races with the child. So
// the child starts traced (PTRACE_TRACEME): the kernel stops it right after
// execve, Ward applies the limits, then detaches and the child runs. Where
// ptrace is not allowed (some seccomp profiles), the limits are applied
// right after Start instead: a short window, and a best effort.
func (d *Direct) startLimited(newCmd func(trace bool) *exec.Cmd, limit func(pid int) error) (*exec.Cmd, error) {
	return startGated(d.log, &d.noPtrace, newCmd, limit)
}

func startGated(log *slog.Logger, noPtrace *atomic.Bool, newCmd func(trace bool) *exec.Cmd, limit func(pid int) error) (*exec.Cmd, error) {
	if !noPtrace.Load() {
		cmd := newCmd(true)
		err := startTraced(cmd, limit)
		if err == nil || !errors.Is(err, syscall.EPERM) {
			return cmd, err
		}
		// Maybe ptrace is not allowed here: try without, and stop trying
		// ptrace if that works.
		cmd = newCmd(false)
		if err := cmd.Start(); err != nil {
			return cmd, err
		}
		noPtrace.Store(true)
		log.Warn("zambda sandbox: ptrace is not allowed here, so limits are set just after each worker starts", "err", err)
		if lerr := limit(cmd.Process.Pid); lerr != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, lerr
		}
		return cmd, nil
	}
	cmd := newCmd(false)
	if err := cmd.Start(); err != nil {
		return cmd, err
	}
	if err := limit(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	return cmd, nil
}

func startTraced(cmd *exec.Cmd, limit func(pid int) error) error {
	// The tracer is the thread that forked the child; ptrace calls must
	// come from it.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				_ = unix.Kill(pid, unix.SIGKILL)
				return fmt.Errorf("wait for the traced worker: %w", err)
			}
			break
		}
	}
	if !ws.Stopped() {
		// Gone before its first instruction, and already reaped by Wait4.
		_ = cmd.Process.Release()
		return fmt.Errorf("the worker ended at exec (wait status %#x)", uint32(ws))
	}
	if err := limit(pid); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		_ = unix.PtraceDetach(pid)
		_ = cmd.Wait()
		return err
	}
	if err := unix.PtraceDetach(pid); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		return fmt.Errorf("detach the worker: %w", err)
	}
	return nil
}

// setRlimits bounds pid and what it starts. RLIMIT_DATA counts private
// writable memory (heap, brk, anonymous mappings, thread stacks), not
// address space that is only reserved, which V8 and the Go runtime reserve
// in large amounts (so RLIMIT_AS would not do). nproc is set only where
// the worker has a uid of its own: the count is per user.
func setRlimits(pid int, l Limits, nproc bool) {
	data := uint64(l.Memory + Slack)
	if l.Memory <= 0 {
		data = unix.RLIM_INFINITY
	}
	_ = unix.Prlimit(pid, unix.RLIMIT_DATA, &unix.Rlimit{Cur: data, Max: data}, nil)
	_ = unix.Prlimit(pid, unix.RLIMIT_CORE, &unix.Rlimit{}, nil)
	files := uint64(l.Files)
	_ = unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: files, Max: files}, nil)
	if nproc {
		n := uint64(l.Pids)
		_ = unix.Prlimit(pid, unix.RLIMIT_NPROC, &unix.Rlimit{Cur: n, Max: n}, nil)
	}
}

// pidString is strconv.Itoa for cgroup.procs writes.
func pidString(pid int) string { return strconv.Itoa(pid) }

var _ Sandbox = (*Direct)(nil)
var _ Sandbox = Unavailable{}
