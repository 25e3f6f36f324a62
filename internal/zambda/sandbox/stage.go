package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// stager solves one problem of running bubblewrap as a worker's own
// unprivileged uid while Ward is root: bubblewrap resolves the host paths
// it binds (the function's code, the Node bootstrap, Ward's executable) as
// that uid, and Ward's directories are rightly closed to other users.
//
// So every start happens on one OS thread that lives in a private mount
// namespace of Ward's own: there, a tmpfs at a directory other users may
// traverse (but not list) gets read-only bind mounts of just what the
// worker needs, under unguessable names, and bubblewrap, forked from that
// thread, inherits that view. The host's mount table never changes, and
// the binds are removed once the sandbox has made its own.
//
// Forking from one long-lived thread also matters for Pdeathsig, which
// fires when the thread that forked the child exits.
type stager struct {
	dir  string // the tmpfs, as seen from the stager's thread
	host string // the empty directory it is mounted on, on the host
	reqs chan func()
	seq  atomic.Int64
}

func newStager() (*stager, error) {
	host, err := os.MkdirTemp("", "ward-stage-")
	if err != nil {
		return nil, fmt.Errorf("sandbox stage: %w", err)
	}
	if err := os.Chmod(host, 0o711); err != nil {
		os.Remove(host)
		return nil, fmt.Errorf("sandbox stage: %w", err)
	}
	s := &stager{dir: host, host: host, reqs: make(chan func())}
	ready := make(chan error, 1)
	go func() {
		// Never unlocked: the thread is in its own mount namespace, and
		// ends with this goroutine (the runtime does not reuse it).
		goruntime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			ready <- fmt.Errorf("sandbox stage: new mount namespace: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			ready <- fmt.Errorf("sandbox stage: private mounts: %w", err)
			return
		}
		if err := unix.Mount("ward-stage", host, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0711,size=1m"); err != nil {
			ready <- fmt.Errorf("sandbox stage: tmpfs: %w", err)
			return
		}
		ready <- nil
		for f := range s.reqs {
			f()
		}
	}()
	if err := <-ready; err != nil {
		os.Remove(host)
		return nil, err
	}
	return s, nil
}

// do runs f on the stager's thread.
func (s *stager) do(f func()) {
	done := make(chan struct{})
	s.reqs <- func() {
		defer close(done)
		f()
	}
	<-done
}

// close ends the thread (and with it the namespace and its binds).
func (s *stager) close() {
	close(s.reqs)
	_ = os.Remove(s.host)
}

// bindAll, on the stager's thread, makes a fresh directory holding a
// read-only bind of each source, and returns the staged paths (in order)
// and a function that removes them (also to run on the thread).
func (s *stager) bindAll(srcs []string) ([]string, func(), error) {
	dir := filepath.Join(s.dir, strconv.FormatInt(s.seq.Add(1), 36)+"-"+randomName())
	if err := unix.Mkdir(dir, 0o711); err != nil {
		return nil, nil, fmt.Errorf("sandbox stage: %w", err)
	}
	var mounted []string
	undo := func() {
		for i := len(mounted) - 1; i >= 0; i-- {
			_ = unix.Unmount(mounted[i], unix.MNT_DETACH)
			_ = os.Remove(mounted[i])
		}
		_ = os.Remove(dir)
	}
	out := make([]string, len(srcs))
	for i, src := range srcs {
		fi, err := os.Stat(src)
		if err != nil {
			undo()
			return nil, nil, err
		}
		dst := filepath.Join(dir, strconv.Itoa(i))
		if fi.IsDir() {
			err = unix.Mkdir(dst, 0o755)
		} else {
			var fd int
			fd, err = unix.Open(dst, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
			if err == nil {
				unix.Close(fd)
			}
		}
		if err != nil {
			undo()
			return nil, nil, fmt.Errorf("sandbox stage: %w", err)
		}
		if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			_ = os.Remove(dst)
			undo()
			return nil, nil, fmt.Errorf("sandbox stage: bind %s: %w", src, err)
		}
		mounted = append(mounted, dst)
		if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			undo()
			return nil, nil, fmt.Errorf("sandbox stage: read-only %s: %w", src, err)
		}
		out[i] = dst
	}
	return out, undo, nil
}

func randomName() string {
	var b [8]byte
	if _, err := readRandom(b[:]); err != nil {
		return "x"
	}
	const hex = "0123456789abcdef"
	out := make([]byte, 16)
	for i, c := range b {
		out[2*i], out[2*i+1] = hex[c>>4], hex[c&15]
	}
	return string(out)
}

var errShortRandom = errors.New("short random read")

func readRandom(b []byte) (int, error) {
	n, err := unix.Getrandom(b, 0)
	if err == nil && n != len(b) {
		err = errShortRandom
	}
	return n, err
}
