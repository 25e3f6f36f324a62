package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestBusyPort: a first start on a port that is taken fails before it
// creates anything: no project, no credentials printed or saved.
func TestBusyPort(t *testing.T) {
	w := startWard(t, storetest.Backends()[0])
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, wardBin, "serve", "--addr", strings.TrimPrefix(w.URL, "http://"), "--data-dir", dir).CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("ward serve on a busy port did not fail (%v):\n%s", err, out)
	}
	if !strings.Contains(string(out), "listen") || !strings.Contains(string(out), "address already in use") {
		t.Errorf("output does not say the port is taken:\n%s", out)
	}
	if strings.Contains(string(out), "clientSecret") || strings.Contains(string(out), "First start") {
		t.Errorf("credentials printed by a server that never served:\n%s", out)
	}
	for _, f := range []string{"admin-credentials.json", "ward.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s was created", f)
		}
	}
}

// TestServeHelp: `ward serve -h` lists the flags with their environment
// variables and exits 0.
func TestServeHelp(t *testing.T) {
	out, err := exec.Command(wardBin, "serve", "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("ward serve -h: %v\n%s", err, out)
	}
	for _, want := range []string{"-shutdown-grace", "WARD_SHUTDOWN_GRACE", "-addr", "WARD_ADDR", "WARD_SECRETS_KEY"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ward serve -h lacks %q:\n%s", want, out)
		}
	}
}
