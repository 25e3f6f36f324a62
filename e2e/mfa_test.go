package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestPasswordResetAndMFABrowser runs browser/mfa.test.mjs: the SDK's
// user.resetPasswordLink and user.resetMfa against a real server, and
// chromium following the link, enrolling in TOTP and signing in with a
// code, then without one after the reset (axe-core on each new page).
func TestPasswordResetAndMFABrowser(t *testing.T) {
	requireChromium(t)
	w := startWard(t, storetest.Backends()[0])
	other := w.createProject(t, "Other")
	shots := os.Getenv("WARD_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	}
	nodeTest(t, "browser/mfa.test.mjs", map[string]string{
		"WARD_URL":               w.URL,
		"WARD_ADMIN_CREDENTIALS": filepath.Join(w.DataDir, "admin-credentials.json"),
		"WARD_B_CLIENT_ID":       other.ClientID,
		"WARD_B_CLIENT_SECRET":   other.ClientSecret,
		"WARD_SCREENSHOTS":       shots,
	})
	// The link's token is a credential: the access log names the page only.
	logs := w.log.String()
	if !strings.Contains(logs, `"path":"/oauth/reset/REDACTED"`) || regexp.MustCompile(`/oauth/reset/[A-Za-z0-9_-]{20,}`).MatchString(logs) {
		t.Errorf("the server log shows a reset token, or no reset page request:\n%s", logs)
	}
}
