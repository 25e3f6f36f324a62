package server

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
)

// lockedBuffer is a log both the server and the test use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStoreErrorsAre5xx: with the database down (closed), endpoints that
// answer 401 or 404 to an unknown client or link answer 503 instead, with
// the cause in the log: an outage must not look like bad credentials.
func TestStoreErrorsAre5xx(t *testing.T) {
	var logs lockedBuffer
	ts := newTestServerWith(t, nil, func(_ *store.Store, _ *seal.Sealer, d *Deps) {
		d.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	cases := []struct {
		name, path, contentType, body string
		working                       int // the status on a working database
	}{
		{"client credentials", "/oauth/token", "application/x-www-form-urlencoded",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {"no-such-client"}, "client_secret": {"x"}}.Encode(), 401},
		{"developer invitation (JSON)", "/invite/no-such-link", "application/json", `{"password":"a long enough password"}`, 404},
		{"developer invitation (page)", "/invite/no-such-link", "application/x-www-form-urlencoded", "password=a+long+enough+password", 404},
		{"user invitation (page)", "/user-invite/no-such-link", "application/x-www-form-urlencoded", "password=a+long+enough+password", 404},
		{"introspection's caller", "/oauth/introspect", "application/x-www-form-urlencoded",
			url.Values{"token": {"x"}, "client_id": {"no-such-client"}, "client_secret": {"x"}}.Encode(), 401},
		{"revocation's caller", "/oauth/revoke", "application/x-www-form-urlencoded",
			url.Values{"token": {"x"}, "client_id": {"no-such-client"}}.Encode(), 401},
	}
	for _, down := range []bool{false, true} {
		if down {
			ts.st.Close()
		}
		for _, tc := range cases {
			res, err := http.Post(ts.URL+tc.path, tc.contentType, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			want := tc.working
			if down {
				want = 503
			}
			if res.StatusCode != want {
				t.Errorf("%s, database down %v: %d, want %d", tc.name, down, res.StatusCode, want)
			}
		}
	}
	// Admin's real credentials, with the database down: not "invalid".
	res, err := http.PostForm(ts.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {ts.admin.ClientID}, "client_secret": {ts.admin.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 503 {
		t.Errorf("valid credentials, database down: %d, want 503", res.StatusCode)
	}
	if n := strings.Count(logs.String(), "database is closed"); n < 5 {
		t.Errorf("%d causes logged, want one per 500:\n%s", n, logs.String())
	}
}

// TestReadyz: /readyz follows the database, /healthz (liveness) does not;
// with the database down, API requests are 503 with Retry-After too.
func TestReadyz(t *testing.T) {
	var logs lockedBuffer
	var st *store.Store
	ts := newTestServerWith(t, nil, func(s *store.Store, _ *seal.Sealer, d *Deps) {
		d.Log = slog.New(slog.NewTextHandler(&logs, nil))
		d.Ready = s.Ready
		st = s
	})
	cases := []struct {
		name, path string
		up, down   int
	}{
		{"liveness", "/healthz", 200, 200},
		{"readiness", "/readyz", 200, 503},
		{"fhir read", "/fhir/Patient/x", 404, 503},
	}
	token := ts.clientToken(t, ts.admin.ClientID, ts.admin.ClientSecret)
	for _, down := range []bool{false, true} {
		if down {
			st.Close()
		}
		for _, tc := range cases {
			req, err := http.NewRequest("GET", ts.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.path != "/healthz" && tc.path != "/readyz" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			want := tc.up
			if down {
				want = tc.down
			}
			if res.StatusCode != want {
				t.Errorf("%s, database down %v: %d, want %d", tc.name, down, res.StatusCode, want)
			}
			if want == 503 && res.Header.Get("Retry-After") == "" {
				t.Errorf("%s, database down: 503 without Retry-After", tc.name)
			}
		}
	}
	if !strings.Contains(logs.String(), "store closed") {
		t.Errorf("the cause is not in the log:\n%s", logs.String())
	}
}
