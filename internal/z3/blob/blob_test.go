package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// pattern is an n-byte stream not held in memory.
type pattern struct{ off, n int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		x := p.off + int64(i)
		b[i] = byte(x*31 + x>>9)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func sum(r io.Reader) (string, int64) {
	h := sha256.New()
	n, _ := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n
}

// backends are the implementations under test: local files, and S3
// against gofakes3, a real S3 protocol server run in-process over
// loopback HTTP (minio-go speaks to it exactly as to AWS).
func backends(t *testing.T) map[string]Backend {
	t.Helper()
	fs, err := NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mem := s3mem.New()
	if err := mem.CreateBucket("ward"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(mem).Server())
	t.Cleanup(srv.Close)
	s3, err := NewS3(context.Background(), S3Config{Endpoint: srv.URL, Region: "us-east-1", Bucket: "ward", Prefix: "z3",
		AccessKeyID: "test", SecretAccessKey: "test", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Backend{"fs": fs, "s3": s3}
}

func TestBackends(t *testing.T) {
	ctx := context.Background()
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			for _, size := range []int64{0, 1, 5 << 20, 40 << 20} {
				key := "p1/obj-" + string(rune('a'+size%26))
				if size == 40<<20 {
					key = "p1/big"
				}
				want, _ := sum(&pattern{n: size})
				info, err := b.Put(ctx, key, &pattern{n: size})
				if err != nil || info.Size != size || info.SHA256 != want {
					t.Fatalf("put %d bytes: %+v %v", size, info, err)
				}
				rc, err := b.Get(ctx, key, 0, -1)
				if err != nil {
					t.Fatal(err)
				}
				got, n := sum(rc)
				rc.Close()
				if got != want || n != size {
					t.Fatalf("get %d bytes: %d, sha %s", size, n, got)
				}
			}
			// Ranges of the 5 MiB object.
			all := make([]byte, 5<<20)
			io.ReadFull(&pattern{n: 5 << 20}, all)
			key := "p1/obj-" + string(rune('a'+(5<<20)%26))
			for _, r := range []struct{ off, n int64 }{{0, 1}, {1000, 4096}, {5<<20 - 1, 1}, {3 << 20, -1}} {
				rc, err := b.Get(ctx, key, r.off, r.n)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(rc)
				rc.Close()
				end := int64(len(all))
				if r.n >= 0 {
					end = r.off + r.n
				}
				if !bytes.Equal(got, all[r.off:end]) {
					t.Fatalf("range %+v: %d bytes, differ", r, len(got))
				}
			}
			if _, err := b.Get(ctx, "p1/missing", 0, -1); !errors.Is(err, ErrNotFound) {
				t.Fatalf("missing key: %v", err)
			}
			if err := b.Delete(ctx, "p1/big"); err != nil {
				t.Fatal(err)
			}
			if err := b.Delete(ctx, "p1/big"); err != nil {
				t.Fatalf("second delete: %v", err)
			}
			var keys []string
			b.List(ctx, "p1/", func(k string, _ int64) error { keys = append(keys, k); return nil })
			if len(keys) != 3 {
				t.Fatalf("list: %v", keys)
			}
			// A cancelled upload leaves nothing.
			cctx, cancel := context.WithCancel(ctx)
			pr, pw := io.Pipe()
			go func() { pw.Write(make([]byte, 1<<20)); cancel(); pw.Write(make([]byte, 1<<20)); pw.Close() }()
			if _, err := b.Put(cctx, "p1/cancelled", pr); err == nil {
				t.Fatal("cancelled put succeeded")
			}
			if _, err := b.Get(ctx, "p1/cancelled", 0, -1); !errors.Is(err, ErrNotFound) {
				t.Fatalf("cancelled put left an object: %v", err)
			}
			for _, bad := range []string{"", "../x", "a//b", "/abs", "a/.tmp-x", strings.Repeat("k", 600)} {
				if _, err := b.Put(ctx, bad, strings.NewReader("x")); err == nil {
					t.Errorf("key %q accepted", bad)
				}
			}
		})
	}
}

// TestFSCrashMidPut kills a process in the middle of a Put: the key does
// not exist afterwards, the other keys are untouched, and SweepTemp
// removes the partial file.
func TestFSCrashMidPut(t *testing.T) {
	if dir := os.Getenv("BLOB_CRASH_DIR"); dir != "" {
		fs, _ := NewFS(dir)
		r, w := io.Pipe()
		go func() {
			for {
				w.Write(make([]byte, 64<<10)) // forever: the parent kills us
			}
		}()
		fs.Put(context.Background(), "p/new", r)
		return
	}
	dir := t.TempDir()
	fs, _ := NewFS(dir)
	if _, err := fs.Put(context.Background(), "p/old", strings.NewReader("kept")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFSCrashMidPut$")
	cmd.Env = append(os.Environ(), "BLOB_CRASH_DIR="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		matches, _ := filepath.Glob(filepath.Join(dir, "p", tmpPrefix+"*"))
		if len(matches) > 0 {
			if fi, err := os.Stat(matches[0]); err == nil && fi.Size() > 1<<20 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never wrote a partial blob")
		}
		time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := fs.Get(context.Background(), "p/new", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a killed Put left an object: %v", err)
	}
	var keys []string
	fs.List(context.Background(), "", func(k string, _ int64) error { keys = append(keys, k); return nil })
	if len(keys) != 1 || keys[0] != "p/old" {
		t.Fatalf("list after crash: %v", keys)
	}
	rc, _ := fs.Get(context.Background(), "p/old", 0, -1)
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "kept" {
		t.Fatalf("old object: %q", b)
	}
	if n, err := fs.SweepTemp(0); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
}

func BenchmarkFS(b *testing.B) {
	fs, _ := NewFS(b.TempDir())
	ctx := context.Background()
	b.Run("put-100MiB", func(b *testing.B) {
		b.SetBytes(100 << 20)
		for i := 0; i < b.N; i++ {
			if _, err := fs.Put(ctx, "b/big", &pattern{n: 100 << 20}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get-100MiB", func(b *testing.B) {
		b.SetBytes(100 << 20)
		for i := 0; i < b.N; i++ {
			rc, _ := fs.Get(ctx, "b/big", 0, -1)
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	})
}
