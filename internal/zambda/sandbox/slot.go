package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// A slot is what a root-run worker starts from, made ahead of time: a
// network namespace with Ward's listeners on its loopback, a cgroup, and
// a first process already inside both: Ward's own executable, waiting
// (as a stub, see runStub) to be told what to run. Moving a process into
// a cgroup v1 costs 5-20 ms of waiting for the kernel (a grace period of
// RCU), and making the namespace about 1 ms; a cold start that takes a
// ready slot pays neither, only setting limits and starting bubblewrap.
// Slots are made in the background, a few at a time (slotsReady), and on
// demand when none is ready.
type slot struct {
	b    *Bwrap
	cmd  *exec.Cmd // the stub; after exec, the worker's first process
	sock *os.File  // Ward's end of the stub's socket
	lns  []net.Listener
	cg   *cgroup
}

// slotsReady is how many slots wait ready: a burst of cold starts beyond it
// makes its own.
const slotsReady = 2

// stubArg0 marks a process started as a slot's stub.
const stubArg0 = "ward-sandbox-stub"

// makeSlot makes a slot: the stub is started on the stager's thread (so
// it is in the slot's network namespace and sees the staged binds) and
// then moved into its cgroup, the slow part.
func (b *Bwrap) makeSlot() (*slot, error) {
	sl := &slot{b: b}
	if b.cgs != nil {
		cg, err := b.cgs.create("s" + strconv.FormatInt(b.slotSeq.Add(1), 10) + "-" + randomName())
		if err != nil {
			return nil, err
		}
		sl.cg = cg
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		sl.discard()
		return nil, fmt.Errorf("sandbox slot socket: %w", err)
	}
	sl.sock = os.NewFile(uintptr(pair[0]), "slot")
	child := os.NewFile(uintptr(pair[1]), "slot-stub")
	defer child.Close()
	b.stage.do(func() {
		if sl.lns, err = netnsListeners(b.ports); err != nil {
			return
		}
		sl.cmd = &exec.Cmd{Path: b.cfg.Init, Args: []string{stubArg0}, Env: []string{"WARD_SANDBOX_STUB=1"}, Dir: "/",
			ExtraFiles: []*os.File{child},
			// Its own process group, so kills reach what it starts; it
			// dies with the stager's thread (that is, with Ward).
			SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}}
		if err = sl.cmd.Start(); err != nil {
			sl.cmd = nil
		}
	})
	if err != nil {
		sl.discard()
		return nil, fmt.Errorf("sandbox slot: %w", err)
	}
	if sl.cg != nil {
		if err := sl.cg.add(sl.cmd.Process.Pid); err != nil {
			sl.discard()
			return nil, err
		}
	}
	return sl, nil
}

// takeSlot returns a ready slot, or makes one, and has the pool refilled.
func (b *Bwrap) takeSlot() (*slot, error) {
	defer b.refill()
	select {
	case sl := <-b.slots:
		return sl, nil
	default:
	}
	return b.makeSlot()
}

// refill makes slots in the background until slotsReady wait (one filler
// at a time).
func (b *Bwrap) refill() {
	if !b.filling.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer b.filling.Store(false)
		for len(b.slots) < cap(b.slots) {
			b.closeMu.RLock()
			if b.closed {
				b.closeMu.RUnlock()
				return
			}
			sl, err := b.makeSlot()
			if err != nil {
				b.closeMu.RUnlock()
				b.log.Warn("zambda sandbox: making a spare slot", "err", err)
				return
			}
			select {
			case b.slots <- sl:
			default:
				sl.discard()
			}
			b.closeMu.RUnlock()
		}
	}()
}

// discard ends an unused slot (or what is left of a failed start).
func (sl *slot) discard() {
	if sl.sock != nil {
		_ = sl.sock.Close() // the stub exits on EOF
	}
	if sl.cmd != nil {
		_ = syscall.Kill(-sl.cmd.Process.Pid, syscall.SIGKILL)
		_ = sl.cmd.Process.Kill()
		_ = sl.cmd.Wait()
	}
	for _, l := range sl.lns {
		_ = l.Close()
	}
	if sl.cg != nil {
		sl.cg.remove()
	}
}

// stubExec is what a stub is told to run.
type stubExec struct {
	Path    string   `json:"path"`
	Argv    []string `json:"argv"`
	Env     []string `json:"env"`
	Dir     string   `json:"dir"`
	Targets []int    `json:"targets"` // where each passed descriptor goes
}

// exec tells the slot's stub to run x with files at the descriptors
// targets; the slot's process then is that program (same pid).
func (sl *slot) exec(x stubExec, files []*os.File, targets []int) error {
	x.Targets = targets
	msg, err := json.Marshal(x)
	if err != nil {
		return err
	}
	if len(msg) > maxStubMessage {
		return fmt.Errorf("the worker's environment and arguments are too large (%d bytes)", len(msg))
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	if err := unix.Sendmsg(int(sl.sock.Fd()), msg, unix.UnixRights(fds...), nil, 0); err != nil {
		return fmt.Errorf("hand the worker to its slot: %w", err)
	}
	_ = sl.sock.Close()
	sl.sock = nil
	return nil
}

// maxStubMessage bounds what a stub reads: the function's environment is
// the large part.
const maxStubMessage = 192 << 10

// runStub is a slot's first process: it waits on descriptor 3 for what to
// run, puts the descriptors it was sent in place, and executes it. Ward
// closing the socket instead (the slot was discarded) ends it.
func runStub() {
	buf := make([]byte, maxStubMessage+1)
	oob := make([]byte, unix.CmsgSpace(16*4))
	n, oobn, _, _, err := unix.Recvmsg(3, buf, oob, 0)
	if err != nil || n == 0 {
		os.Exit(0)
	}
	var x stubExec
	if err := json.Unmarshal(buf[:n], &x); err != nil || len(x.Argv) == 0 {
		stubFail(errors.New("bad request from ward"))
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if len(fds) != len(x.Targets) {
		stubFail(fmt.Errorf("got %d descriptors for %d places", len(fds), len(x.Targets)))
	}
	// Move every received descriptor out of the way first, so that
	// putting one in place never closes another still to be placed.
	high := make([]int, len(fds))
	for i, fd := range fds {
		h, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 100)
		if err != nil {
			stubFail(err)
		}
		high[i] = h
		_ = unix.Close(fd)
	}
	_ = unix.Close(3)
	for i, h := range high {
		if err := unix.Dup3(h, x.Targets[i], 0); err != nil { // the copy is not close-on-exec
			stubFail(err)
		}
	}
	if err := unix.Chdir(x.Dir); err != nil {
		stubFail(err)
	}
	stubFail(syscall.Exec(x.Path, x.Argv, x.Env))
}

func stubFail(err error) {
	fmt.Fprintf(os.Stderr, "ward sandbox stub: %v\n", err)
	os.Exit(125)
}
