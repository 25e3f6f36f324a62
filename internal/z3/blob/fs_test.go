package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var fsHarness = harness{name: "fs", open: func(t *testing.T) (Backend, func() []string) {
	root := t.TempDir()
	b, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	return b, func() []string { return tempFiles(t, root) }
}}

// tempFiles lists the temporary files under root.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), tmpPrefix) {
			found = append(found, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// crashEnv makes the test binary the child of TestFSCrashMidPut.
const crashEnv = "WARD_BLOB_CRASH_ROOT"

// crashChild puts its stdin into p/new. The parent never closes stdin, so
// the Put cannot finish: the child only stops by being killed.
func crashChild(root string) {
	b, err := NewFS(root)
	if err == nil {
		_, err = b.Put(context.Background(), "p/new", os.Stdin)
	}
	os.Stderr.WriteString("crash child: Put returned: " + errString(err) + "\n")
	os.Exit(3)
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestFSCrashMidPut kills (SIGKILL) a process in the middle of a Put: the
// key does not exist afterwards, List does not show the partial file, the
// blob written before is untouched, and SweepTemp removes the debris.
func TestFSCrashMidPut(t *testing.T) {
	if root := os.Getenv(crashEnv); root != "" {
		crashChild(root)
		return
	}
	ctx := context.Background()
	root := t.TempDir()
	b, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	old := put(t, b, "p/old", 3<<20)

	cmd := exec.Command(os.Args[0], "-test.run=^TestFSCrashMidPut$")
	cmd.Env = append(os.Environ(), crashEnv+"="+root)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	// 8 MiB, and the pipe stays open: the copy ends when the child dies.
	go func() { _, _ = io.Copy(stdin, stream(8<<20)) }()

	// Poll until the child's temporary file exists and has grown past
	// 4 MiB: the Put is then mid-way.
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if tmp := tempFiles(t, root); len(tmp) == 1 {
			if fi, err := os.Stat(tmp[0]); err == nil && fi.Size() >= 4<<20 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child never wrote 4 MiB; stderr:\n%s", stderr.String())
		}
		select {
		case <-tick.C:
		case <-exited:
			t.Fatalf("the child exited before being killed: %v; stderr:\n%s", waitErr, stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || st.Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed: %v; stderr:\n%s", waitErr, stderr.String())
	}

	if _, err := b.Get(ctx, "p/new", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a killed Put left its key: %v", err)
	}
	if l := keys(t, b, ""); !sameKeys(l, map[string]int64{"p/old": 3 << 20}) {
		t.Fatalf("list after the crash: %v", l)
	}
	rc, err := b.Get(ctx, "p/old", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if got, n := sum(t, rc); got != old.SHA256 || n != old.Size {
		t.Fatalf("the old blob changed: %d bytes, sha %s", n, got)
	}
	rc.Close()
	if n, err := b.SweepTemp(0); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if l := tempFiles(t, root); len(l) != 0 {
		t.Fatalf("after the sweep: %v", l)
	}
}

// TestFSSweepTemp removes stale temporary files only, and List never
// shows any.
func TestFSSweepTemp(t *testing.T) {
	root := t.TempDir()
	b, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	put(t, b, "p/kept", 10)
	stale := filepath.Join(root, "p", tmpPrefix+"stale")
	fresh := filepath.Join(root, "q", tmpPrefix+"fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hourAgo := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	if l := keys(t, b, ""); !sameKeys(l, map[string]int64{"p/kept": 10}) {
		t.Fatalf("list shows temporary files: %v", l)
	}
	if n, err := b.SweepTemp(time.Hour); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stale file: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("fresh file: %v", err)
	}
}
