package blob

import (
	"bytes"
	"context"
	"errors"
	"github.com/wardhealth/ward/internal/store/storetest"
	"io"
	"syscall"
	"testing"
)

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// TestFSDiskFull: a Put that fills the disk fails with ErrDiskFull and
// leaves nothing behind (its space comes back), blobs stored before still
// read, and once space is freed a Put succeeds again.
func TestFSDiskFull(t *testing.T) {
	ctx := context.Background()
	root := storetest.SmallDisk(t, 4<<20)
	b, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	small := bytes.Repeat([]byte("a"), 1<<20)
	if _, err := b.Put(ctx, "p/small", bytes.NewReader(small)); err != nil {
		t.Fatal(err)
	}
	before := freeBytes(t, root)
	_, err = b.Put(ctx, "p/big", io.LimitReader(zeros{}, 8<<20))
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put larger than the disk: %v, want ErrDiskFull wrapping ENOSPC", err)
	}
	if left := tempFiles(t, root); len(left) > 0 {
		t.Fatalf("a failed Put left %v", left)
	}
	if after := freeBytes(t, root); after < before {
		t.Fatalf("free space %d after the failed Put, %d before: its bytes were not given back", after, before)
	}
	if _, err := b.Get(ctx, "p/big", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of the failed Put: %v, want ErrNotFound", err)
	}
	rc, err := b.Get(ctx, "p/small", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, small) {
		t.Fatalf("the blob stored before: %d bytes, %v", len(got), err)
	}
	// Room again: a Put that fits succeeds.
	if _, err := b.Put(ctx, "p/fits", bytes.NewReader(small)); err != nil {
		t.Fatalf("Put after the failed one: %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
