package storetest

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// SmallDisk mounts a tmpfs of size bytes on a fresh directory until the
// test ends (cleanups run last first, so servers a test starts on it after
// this call are stopped before the unmount): a disk that fills. Root only:
// in CI (root) it must run; elsewhere a non-root run skips and says so.
func SmallDisk(t testing.TB, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI runs as root, but this test runs as uid %d: it mounts a tmpfs", os.Geteuid())
		}
		t.Skip("mounting a small tmpfs needs root (not CI, so skipping)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
