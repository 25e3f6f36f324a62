package blob

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// Compare the 100 MiB figures with cp of the same kind of file on the same
// disk: Put (which fsyncs) with `cp src dst && sync dst`, Get with `cat`.
func BenchmarkFS(b *testing.B) {
	fsb, err := NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	benchBackend(b, fsb)
}

// BenchmarkS3 measures mostly gofakes3 (in process, objects in memory):
// it shows the client adds no bottleneck, not what a real server does.
func BenchmarkS3(b *testing.B) {
	srv := httptest.NewServer(fakeS3())
	defer srv.Close()
	benchBackend(b, openS3(b, srv.URL))
}

func benchBackend(b *testing.B, be Backend) {
	ctx := context.Background()
	// The body comes from a file, as it would for cp.
	src := filepath.Join(b.TempDir(), "src")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, stream(100<<20)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	b.Run("put-100MiB", func(b *testing.B) {
		b.SetBytes(100 << 20)
		for i := 0; b.Loop(); i++ {
			f, err := os.Open(src)
			if err != nil {
				b.Fatal(err)
			}
			key := fmt.Sprintf("b/big%d", i)
			if _, err := be.Put(ctx, key, f); err != nil {
				b.Fatal(err)
			}
			f.Close()
			b.StopTimer()
			if err := be.Delete(ctx, key); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	if _, err := be.Put(ctx, "b/big", stream(100<<20)); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.Run("get-100MiB", func(b *testing.B) {
		b.SetBytes(100 << 20)
		for b.Loop() {
			drain(b, be, "b/big", buf)
		}
	})
	b.Run("put-4KiB", func(b *testing.B) {
		b.SetBytes(4 << 10)
		for i := 0; b.Loop(); i++ {
			if _, err := be.Put(ctx, fmt.Sprintf("s/%d", i), stream(4<<10)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
	b.Run("get-4KiB", func(b *testing.B) {
		b.SetBytes(4 << 10)
		for b.Loop() {
			drain(b, be, "s/0", buf)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}

// drain reads a whole blob in buf-sized reads.
func drain(b *testing.B, be Backend, key string, buf []byte) {
	rc, err := be.Get(context.Background(), key, 0, -1)
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	for {
		_, err := rc.Read(buf)
		if err == io.EOF {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
