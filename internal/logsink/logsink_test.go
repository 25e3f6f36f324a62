package logsink

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the flusher and the test.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) state() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

func TestBatchedLinesWaitDirectLinesDoNot(t *testing.T) {
	out := &lockedBuffer{}
	s := New(out)
	defer s.Close()
	for i := 0; i < 10; i++ {
		s.Batched().Write([]byte("access\n"))
	}
	s.Direct().Write([]byte("error\n"))
	got, writes := out.state()
	// The direct line is out at once, after the access lines before it,
	// in one write.
	if want := strings.Repeat("access\n", 10) + "error\n"; got != want || writes != 1 {
		t.Fatalf("after a direct line: %q in %d writes, want %q in 1", got, writes, want)
	}
}

func TestBatchedLinesAreWrittenWithinTheInterval(t *testing.T) {
	out := &lockedBuffer{}
	s := New(out)
	defer s.Close()
	s.Batched().Write([]byte("access\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := out.state(); got == "access\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a batched line was not written within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFullBatchAndCloseFlush(t *testing.T) {
	out := &lockedBuffer{}
	s := New(out)
	line := []byte(strings.Repeat("x", 1023) + "\n")
	for i := 0; i < flushSize/len(line); i++ {
		s.Batched().Write(line)
	}
	if got, _ := out.state(); len(got) != flushSize {
		t.Fatalf("a full batch: %d bytes written, want %d", len(got), flushSize)
	}
	s.Batched().Write([]byte("last\n"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := out.state(); !strings.HasSuffix(got, "last\n") {
		t.Fatal("Close did not write the last line")
	}
}
