package console

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/seal/sealtest"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// storedConsole is a console whose sessions live in st (one replica).
func storedConsole(st *store.Store, sealer *seal.Sealer, clk *clock) *Console {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"not here","code":404}`, http.StatusNotFound)
	})
	projects := func(_ context.Context, dev string) ([]iam.ProjectStub, error) {
		return []iam.ProjectStub{{ID: "p1", Name: "One"}, {ID: "p2", Name: "Two"}}, nil
	}
	return New(Config{PublicURL: "http://ward.test"}, Deps{API: api, Projects: projects, Now: clk.now, Sessions: st, Sealer: sealer})
}

// switchTo posts the project switcher with a session cookie and CSRF
// token: 303 when the session is accepted.
func switchTo(c *Console, tok, csrf, project string) int {
	r := httptest.NewRequest("POST", "http://ward.test/console/project/switch",
		strings.NewReader(url.Values{"csrf": {csrf}, "project": {project}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: tok})
	w := httptest.NewRecorder()
	c.Handler().ServeHTTP(w, r)
	return w.Code
}

// Sessions in the database: a restart keeps them, a second replica on the
// same database accepts them, the access token is sealed at rest, and
// expiry, sign-out, a tampered cookie, a row copied under another hash
// and another master key all end them.
func TestStoredSessions(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.DSN(t)
			open := func() *store.Store {
				st, err := store.Open(ctx, dsn, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
			st1 := open()
			sealer := sealtest.Setup(t, st1)
			clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			c1 := storedConsole(st1, sealer, clk)
			tok, err := c1.sessions.start(ctx, "dev-a", "access-token-a", "p1", "One", clk.t.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			sess, err := c1.sessions.get(ctx, tok)
			if err != nil || sess.AccessToken != "access-token-a" || sess.DeveloperID != "dev-a" {
				t.Fatalf("session = %+v, %v", sess, err)
			}
			row, err := st1.GetConsoleSession(ctx, sess.key, clk.t)
			if err != nil || bytes.Contains(row.AccessToken, []byte("access-token-a")) || strings.Contains(row.Hash, tok) {
				t.Fatalf("stored row holds the token in clear (or %v)", err)
			}

			// A restart: the store closed and opened again, a new console.
			st1.Close()
			st2 := open()
			c2 := storedConsole(st2, sealer, clk)
			if code := switchTo(c2, tok, sess.CSRF, "p2"); code != http.StatusSeeOther {
				t.Fatalf("after a restart: status %d, want the session accepted", code)
			}
			// Another replica on the same database sees the switch.
			c3 := storedConsole(open(), sealer, clk)
			if got, err := c3.sessions.get(ctx, tok); err != nil || got.Project != "p2" {
				t.Fatalf("other replica: %+v, %v", got, err)
			}

			for _, tc := range []struct {
				name string
				tok  string
			}{
				{"tampered cookie", tamper(tok)},
				{"the stored hash as a cookie", sess.key},
				{"empty cookie", ""},
				{"oversized cookie", strings.Repeat("a", 4000)},
			} {
				if code := switchTo(c3, tc.tok, sess.CSRF, "p1"); code != http.StatusForbidden {
					t.Errorf("%s: status %d, want 403", tc.name, code)
				}
			}

			// A sealed token copied to another session's row does not open
			// there (its label names the row): that session is ended.
			tokX, _ := randomToken()
			moved := row
			moved.Hash = hashToken(tokX)
			if err := st2.PutConsoleSession(ctx, moved); err != nil {
				t.Fatal(err)
			}
			if _, err := c2.sessions.get(ctx, tokX); err != errNoSession {
				t.Errorf("copied row: %v, want no session", err)
			}
			if _, err := st2.GetConsoleSession(ctx, moved.Hash, clk.t); err == nil {
				t.Error("the copied row was kept")
			}
			// Another master key (rotated since): signed out, not an error.
			other, _ := seal.New(seal.NewKey())
			if _, err := storedConsole(st2, other, clk).sessions.get(ctx, tok); err != errNoSession {
				t.Errorf("another key: %v, want no session", err)
			}
			tok2, err := c2.sessions.start(ctx, "dev-a", "access-token-b", "p1", "One", clk.t.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			sess2, _ := c2.sessions.get(ctx, tok2)

			// Sign-out on one replica ends the session on the other.
			r := httptest.NewRequest("POST", "http://ward.test/console/signout", strings.NewReader(url.Values{"csrf": {sess2.CSRF}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(&http.Cookie{Name: sessionCookie, Value: tok2})
			w := httptest.NewRecorder()
			c2.Handler().ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("sign-out: %d", w.Code)
			}
			if code := switchTo(c3, tok2, sess2.CSRF, "p2"); code != http.StatusForbidden {
				t.Errorf("signed-out session on the other replica: status %d, want 403", code)
			}

			// Expiry: an hour later no replica accepts the first session.
			clk.t = clk.t.Add(time.Hour)
			if code := switchTo(c3, tok, sess.CSRF, "p1"); code != http.StatusForbidden {
				t.Errorf("expired session: status %d, want 403", code)
			}
		})
	}
}

// tamper changes a token's last character.
func tamper(tok string) string {
	last := byte('A')
	if tok[len(tok)-1] == 'A' {
		last = 'B'
	}
	return tok[:len(tok)-1] + string(last)
}
