package sandbox

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
)

// Process is a started worker: the process Ward spawned (the runtime
// itself, or bubblewrap around it) and what serves its network.
type Process struct {
	cmd     *exec.Cmd
	api     net.Listener
	serving []io.Closer // the egress proxy and the forwards, closed after exit
	cg      *cgroup     // nil without cgroups
	release func()      // gives back the uid and other per-worker state
	// initPid is the host pid of the sandbox's pid 1 (bubblewrap's
	// reaper), whose child is the runtime; 0 when not sandboxed.
	initPid int
	// exitSignals: an exit status above 128 means the runtime died of
	// signal status-128 (bubblewrap passes signals on that way).
	exitSignals bool

	mu      sync.Mutex
	mainPid int      // the runtime's host pid, found once (see main)
	status  *os.File // /proc/<main>/status, for MaxRSSKB
	buf     []byte

	killOnce sync.Once
	waited   chan struct{}
}

// Pid is the host pid of the process Ward spawned.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// RuntimeAPI is the listener Ward serves the Lambda Runtime API on; the
// function reaches it at AWS_LAMBDA_RUNTIME_API.
func (p *Process) RuntimeAPI() net.Listener { return p.api }

// Wait reaps the process, then ends whatever of the sandbox is left and
// releases it. Call it once.
func (p *Process) Wait() *os.ProcessState {
	_ = p.cmd.Wait()
	p.Kill()
	for _, c := range p.serving {
		_ = c.Close()
	}
	_ = p.api.Close()
	if p.cg != nil {
		p.cg.remove()
	}
	p.mu.Lock()
	if p.status != nil {
		_ = p.status.Close()
		p.status = nil
	}
	p.mu.Unlock()
	if p.release != nil {
		p.release()
	}
	close(p.waited)
	return p.cmd.ProcessState
}

// Kill ends every process of the worker. It is safe to call any time,
// more than once, and after the process is gone.
func (p *Process) Kill() {
	p.killOnce.Do(func() {
		pid := p.cmd.Process.Pid
		if p.initPid > 0 {
			// The sandbox's pid 1: with it every process of its pid
			// namespace dies, whatever session or group they made.
			_ = syscall.Kill(p.initPid, syscall.SIGKILL)
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL) // its process group
		_ = syscall.Kill(pid, syscall.SIGKILL)
	})
	if p.cg != nil {
		p.cg.killAll()
	}
}

// Sweep ends every process of the sandbox except the runtime (and
// bubblewrap's own), so that nothing a function started outlives its
// invocation. Without isolation it does nothing: such processes are in
// the worker's process group and die with it.
func (p *Process) Sweep() {
	if p.initPid == 0 {
		return
	}
	main := p.main()
	keep := map[int]bool{p.cmd.Process.Pid: true, p.initPid: true, main: true}
	if p.cg != nil {
		for _, pid := range p.cg.pids() {
			if !keep[pid] {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return
	}
	// No cgroup: what the runtime started, and what was orphaned to the
	// sandbox's pid 1.
	for _, root := range []int{main, p.initPid} {
		if root <= 0 {
			continue
		}
		for _, pid := range descendants(root) {
			if !keep[pid] {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// Main is the runtime's host pid (0 while unknown).
func (p *Process) Main() int { return p.main() }

// main is the runtime's host pid: the process itself when not sandboxed,
// else the child of the sandbox's pid 1.
func (p *Process) main() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mainPid == 0 {
		if p.initPid == 0 {
			p.mainPid = p.cmd.Process.Pid
		} else if kids := children(p.initPid); len(kids) > 0 {
			p.mainPid = kids[0]
		}
	}
	return p.mainPid
}

// MaxRSSKB is the runtime's peak resident memory in KiB: its VmHWM while
// it lives (a /proc status file kept open: reopening costs more than the
// read), the kernel's rusage once the process is gone. 0 if unknown.
func (p *Process) MaxRSSKB() int64 {
	select {
	case <-p.waited:
		if st := p.cmd.ProcessState; st != nil {
			if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
				return ru.Maxrss
			}
		}
		return 0
	default:
	}
	main := p.main()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == nil && main > 0 {
		f, err := os.Open("/proc/" + strconv.Itoa(main) + "/status")
		if err != nil {
			return 0
		}
		p.status, p.buf = f, make([]byte, 4096)
	}
	if p.status == nil {
		return 0
	}
	n, _ := p.status.ReadAt(p.buf, 0)
	_, rest, ok := bytes.Cut(p.buf[:n], []byte("VmHWM:"))
	if !ok {
		return 0
	}
	rest, _, _ = bytes.Cut(rest, []byte("kB"))
	kb, _ := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
	return kb
}

// OOMKilled reports whether the kernel killed a process of the worker for
// exceeding its memory limit (known only with a memory cgroup).
func (p *Process) OOMKilled() bool {
	return p.cg != nil && p.cg.oomKills() > 0
}

// Signal is the signal that ended the runtime, if one did: from the wait
// status, or from bubblewrap's exit status 128+n.
func (p *Process) Signal(st *os.ProcessState) (syscall.Signal, bool) {
	if st == nil {
		return 0, false
	}
	ws, ok := st.Sys().(syscall.WaitStatus)
	if !ok {
		return 0, false
	}
	if ws.Signaled() {
		return ws.Signal(), true
	}
	if p.exitSignals && ws.Exited() && ws.ExitStatus() > 128 && ws.ExitStatus() < 128+65 {
		return syscall.Signal(ws.ExitStatus() - 128), true
	}
	return 0, false
}

// children lists pid's child processes (every thread's).
func children(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			if n, err := strconv.Atoi(string(f)); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// descendants lists every process below pid, nearest first.
func descendants(pid int) []int {
	var out []int
	queue := children(pid)
	seen := map[int]bool{}
	for len(queue) > 0 && len(out) < 1<<16 {
		c := queue[0]
		queue = queue[1:]
		if seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, c)
		queue = append(queue, children(c)...)
	}
	return out
}
