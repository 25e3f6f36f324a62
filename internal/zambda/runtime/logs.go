package runtime

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var streamNames = [2]string{"stdout", "stderr"}

// oomMarkers are what runtimes print when an allocation fails for good,
// lower-cased: V8's heap limit and its native allocations under
// RLIMIT_DATA ("JavaScript heap out of memory", "Fatal process out of
// memory", "Fatal process OOM"), the Go runtime (a dozen throws: "runtime:
// out of memory", "pageAlloc: out of memory", "out of memory allocating
// heap arena metadata", "runtime: cannot allocate memory"), C (strerror of
// ENOMEM), C++ and Python. Broad on purpose: the flag only decides how a
// worker that died without answering is described.
var oomMarkers = []string{
	"out of memory",
	"fatal process oom",
	"cannot allocate memory",
	"std::bad_alloc",
	"memoryerror",
}

// capture turns a worker's stdout and stderr pipes into log lines for the
// invocation in flight.
//
// Attribution without sleeping: a worker writes its lines, then posts its
// answer (or asks for the next event). On Linux a write to a pipe is in the
// pipe when it returns (Node writes to pipes synchronously), so when the
// answer arrives its lines are either already turned into LogLines or still
// in the pipe. Both the reader goroutines and take read the (non-blocking)
// pipe only while holding mu, so no byte is ever "read but not yet added":
// take reads what is left until EAGAIN and has everything.
type capture struct {
	mu      sync.Mutex
	files   [2]*os.File
	conns   [2]syscall.RawConn
	closed  bool
	buf     []byte
	partial [2][]byte
	lines   []LogLine
	size    int  // bytes kept for this invocation
	cut     bool // the "[truncated]" line was added
	oom     bool // a stderr line of this invocation said the process ran out of memory
	fault   bool // a stderr line of this invocation reported a fatal memory fault
}

// newCapture takes the read ends of the worker's stdout and stderr, which
// must come from os.Pipe (non-blocking, pollable).
func newCapture(stdout, stderr *os.File) (*capture, error) {
	c := &capture{files: [2]*os.File{stdout, stderr}, buf: make([]byte, 32<<10)}
	for i, f := range c.files {
		rc, err := f.SyscallConn()
		if err != nil {
			return nil, err
		}
		c.conns[i] = rc
	}
	for i := range c.conns {
		go c.loop(i)
	}
	return c, nil
}

// loop reads one pipe as data arrives, until EOF or close.
func (c *capture) loop(i int) {
	_ = c.conns[i].Read(func(fd uintptr) bool {
		for {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				return true
			}
			more, eof := c.readOnce(i, int(fd))
			c.mu.Unlock()
			if eof {
				return true
			}
			if !more {
				return false // EAGAIN: wait until readable
			}
		}
	})
}

// readOnce does one read; mu is held. more: data was read (try again);
// eof: the pipe is finished.
func (c *capture) readOnce(i, fd int) (more, eof bool) {
	n, err := unix.Read(fd, c.buf)
	switch {
	case n > 0:
		c.feed(i, c.buf[:n])
		return true, false
	case errors.Is(err, unix.EAGAIN):
		return false, false
	case errors.Is(err, unix.EINTR):
		return true, false
	default: // 0 bytes (EOF) or a real error
		c.flush(i)
		return false, true
	}
}

// drainLocked reads what is waiting in both pipes; mu is held. Bounded so a
// worker that keeps writing cannot hold the caller here: what was in the
// pipe when the worker answered is at most the pipe's capacity.
func (c *capture) drainLocked() {
	if c.closed {
		return
	}
	for i, rc := range c.conns {
		_ = rc.Control(func(fd uintptr) {
			for range 64 { // 64 × 32 KiB = 2 MiB, far over a pipe's 64 KiB
				if more, _ := c.readOnce(i, int(fd)); !more {
					return
				}
			}
		})
	}
}

// feed splits data into lines; mu is held.
func (c *capture) feed(i int, data []byte) {
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			c.partial[i] = append(c.partial[i], data...)
			for len(c.partial[i]) >= maxLineBytes {
				c.add(i, c.partial[i][:maxLineBytes])
				c.partial[i] = c.partial[i][maxLineBytes:]
			}
			if len(c.partial[i]) == 0 {
				c.partial[i] = nil
			}
			return
		}
		line := data[:nl]
		if len(c.partial[i]) > 0 {
			line = append(c.partial[i], line...)
			c.partial[i] = c.partial[i][:0]
		}
		c.add(i, line)
		data = data[nl+1:]
	}
}

// flush ends a partial line; mu is held.
func (c *capture) flush(i int) {
	if len(c.partial[i]) > 0 {
		c.add(i, c.partial[i])
		c.partial[i] = c.partial[i][:0]
	}
}

// add keeps one line within the invocation's budget; mu is held.
func (c *capture) add(i int, line []byte) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if i == 1 && !c.oom {
		lower := bytes.ToLower(line)
		for _, m := range oomMarkers {
			if bytes.Contains(lower, []byte(m)) {
				c.oom = true
				break
			}
		}
		// Go's collector faults (SIGSEGV at address 0 in runtime/mgc*.go)
		// when an allocation of its own fails at RLIMIT_DATA, without
		// saying "out of memory"; it faults nowhere else in practice.
		if bytes.HasPrefix(line, []byte("SIGSEGV: ")) || bytes.HasPrefix(line, []byte("SIGBUS: ")) || bytes.HasPrefix(line, []byte("unexpected fault address")) {
			c.fault = true
		} else if c.fault && bytes.Contains(line, []byte("runtime/mgc")) {
			c.oom = true
		}
	}
	if c.size >= maxLogBytes {
		if !c.cut {
			c.cut = true
			c.lines = append(c.lines, LogLine{Time: time.Now(), Stream: streamNames[i],
				Text: "[truncated: this invocation wrote more than 256 KiB of logs; the rest is dropped]"})
		}
		return
	}
	c.size += len(line) + 1
	c.lines = append(c.lines, LogLine{Time: time.Now(), Stream: streamNames[i], Text: strings.ToValidUTF8(string(line), "\uFFFD")})
}

// take returns the lines since the last take (partial lines included) and
// whether one of them said "out of memory", and starts a new invocation's
// budget.
func (c *capture) take() ([]LogLine, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drainLocked()
	c.flush(0)
	c.flush(1)
	lines, oom := c.lines, c.oom
	c.lines, c.size, c.cut, c.oom, c.fault = nil, 0, false, false, false
	return lines, oom
}

// close reads what is left and closes the pipes. Closing waits for the
// reader goroutines to let go of the files, so it must not hold mu.
func (c *capture) close() {
	c.mu.Lock()
	c.drainLocked()
	c.closed = true
	c.mu.Unlock()
	for _, f := range c.files {
		_ = f.Close()
	}
}
