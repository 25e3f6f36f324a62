// Package logsink batches the access log's writes.
//
// One line per request, written straight to stderr, cost a write system
// call per request: 3% of a search's CPU. Access lines are instead
// gathered and written together (when 32 KiB have gathered, every 100 ms,
// and before any other line), while every other log line is written at
// once, so warnings and errors are never held back and order is kept.
package logsink

import (
	"io"
	"sync"
	"time"
)

// flushSize and flushEvery bound how much and how long access lines wait.
const (
	flushSize  = 32 << 10
	flushEvery = 100 * time.Millisecond
)

// Sink is a writer shared by a batched and a direct stream.
type Sink struct {
	mu   sync.Mutex
	w    io.Writer
	buf  []byte
	err  error // the last write error, reported to the next writer
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New starts a sink writing to w. Close flushes and stops it.
func New(w io.Writer) *Sink {
	s := &Sink{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	go s.flusher()
	return s
}

func (s *Sink) flusher() {
	defer close(s.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			s.flushLocked()
			s.mu.Unlock()
		}
	}
}

// flushLocked writes what has gathered. Caller holds mu.
func (s *Sink) flushLocked() {
	if len(s.buf) == 0 {
		return
	}
	if _, err := s.w.Write(s.buf); err != nil {
		s.err = err
	}
	s.buf = s.buf[:0]
}

// Batched is the stream for high-volume lines (the access log).
func (s *Sink) Batched() io.Writer { return batched{s} }

// Direct is the stream for everything else: written at once, after any
// batched lines before it.
func (s *Sink) Direct() io.Writer { return direct{s} }

type batched struct{ s *Sink }

func (b batched) Write(p []byte) (int, error) { return b.s.write(p, false) }

type direct struct{ s *Sink }

func (d direct) Write(p []byte) (int, error) { return d.s.write(p, true) }

// write adds p after what has gathered and writes it all out when flush
// is set or a batch is full.
func (s *Sink) write(p []byte, flush bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	if flush || len(s.buf) >= flushSize {
		s.flushLocked()
	}
	return len(p), s.takeErr()
}

func (s *Sink) takeErr() error {
	err := s.err
	s.err = nil
	return err
}

// Close writes what is left and stops the flusher.
func (s *Sink) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
	return s.takeErr()
}
