package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/wardhealth/ward/internal/store/storetest"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/wardhealth/ward/internal/store"
)

// fill writes a file at path until the disk has no room left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte{0xaa}, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatal(err)
		}
	}
	// The last bytes: a smaller write fits what a chunk did not.
	for _, err := f.Write(chunk[:512]); err == nil; _, err = f.Write(chunk[:512]) {
	}
}

// TestDiskFull: on a full disk, concurrent writes fail with ErrDiskFull
// (no panic, no crash), reads go on, Ready reports the writer unhealthy;
// once space is freed, writes succeed again on the same store and Ready is
// nil; every acknowledged write is there after a reopen, and the database
// is intact.
func TestDiskFull(t *testing.T) {
	ctx := context.Background()
	dir := storetest.SmallDisk(t, 24<<20)
	dsn := filepath.Join(dir, "ward.db")
	s, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	value := bytes.Repeat([]byte("s"), 8<<10)
	if err := s.PutServerSecret(ctx, "before", value); err != nil {
		t.Fatal(err)
	}

	// Writers write while the disk fills, until each has seen it full a
	// few times.
	var mu sync.Mutex
	acked := map[string]bool{"before": true}
	var others []error
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			full := 0
			for i := 0; full < 3 && i < 100000; i++ {
				name := fmt.Sprintf("w%d-%d", w, i)
				err := s.PutServerSecret(ctx, name, value)
				mu.Lock()
				switch {
				case err == nil:
					acked[name] = true
				case errors.Is(err, store.ErrDiskFull):
					full++
				default:
					others = append(others, err)
				}
				mu.Unlock()
			}
		}()
	}
	fill(t, filepath.Join(dir, "filler"))
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("writes on a full disk failed otherwise than ErrDiskFull: %v", others[0])
	}
	if err := s.Ready(ctx); !errors.Is(err, store.ErrDiskFull) {
		t.Fatalf("Ready on a full disk = %v, want ErrDiskFull", err)
	}
	// Reads go on.
	for name := range acked {
		if got, err := s.GetServerSecret(ctx, name); err != nil || !bytes.Equal(got, value) {
			t.Fatalf("read %s on a full disk: %v", name, err)
		}
	}

	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	// No restart: the same store writes again, and says it is ready.
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("Ready after space was freed: %v", err)
	}
	if err := s.PutServerSecret(ctx, "after", value); err != nil {
		t.Fatalf("write after space was freed: %v", err)
	}
	acked["after"] = true

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name := range acked {
		if _, err := s.GetServerSecret(ctx, name); err != nil {
			t.Fatalf("acknowledged write %s lost: %v", name, err)
		}
	}
	check, err := s.QueryString(ctx, `PRAGMA integrity_check`)
	if err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	t.Logf("%d writes acknowledged, all present after a reopen", len(acked))
}
