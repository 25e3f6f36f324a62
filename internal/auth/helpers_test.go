package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://ward.example"
	testAudience = "https://ward.example/api"
)

// t0 is the fixed "now" of most tests: tokens are deterministic in time.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testClock is a settable clock shared by an issuer and a verifier.
type testClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *testClock {
	c := &testClock{}
	c.set(t)
	return c
}
func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// revocations is a RevocationChecker backed by a set, counting calls so
// tests can prove cache hits still consult it.
type revocations struct {
	mu    sync.Mutex
	ids   map[string]bool
	err   error
	calls int
}

func (r *revocations) IsRevoked(_ context.Context, jti string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	return r.ids[jti], r.err
}

func (r *revocations) revoke(jti string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[string]bool{}
	}
	r.ids[jti] = true
}

// fixture is an issuer and a verifier over one swappable ring.
type fixture struct {
	key      Key
	ring     atomic.Pointer[KeyRing]
	clock    *testClock
	revoked  *revocations
	issuer   *Issuer
	verifier *Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{key: newKey(t, t0.Add(-time.Hour)), clock: newClock(t0), revoked: &revocations{}}
	f.setRing(t, time.Hour, f.key)
	f.issuer = NewIssuer(f.ring.Load, testIssuer, testAudience, f.clock.now)
	f.verifier = NewVerifier(f.ring.Load, testIssuer, []string{"https://other.example", testAudience}, f.revoked, f.clock.now)
	return f
}

func (f *fixture) setRing(t testing.TB, grace time.Duration, keys ...Key) {
	t.Helper()
	r, err := NewKeyRing(keys, grace)
	if err != nil {
		t.Fatal(err)
	}
	f.ring.Store(r)
}

func (f *fixture) issue(t testing.TB, p Principal, ttl time.Duration) string {
	t.Helper()
	tok, _, err := f.issuer.Issue(context.Background(), p, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newKey(t testing.TB, created time.Time) Key {
	t.Helper()
	k, err := GenerateKey(created)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// m2m is a typical principal (a function: tests may modify what they get).
func m2m() Principal {
	return Principal{ProjectID: "proj-1", Kind: KindM2M, ID: "m2m-1", ClientID: "client-1", Scopes: []string{"system/*.rs"}}
}

// validClaims are the claims Issue would write at t0, as a map a test can
// break one claim at a time.
func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "sub": "m2m-1", "aud": []string{testAudience},
		"exp": t0.Add(time.Hour).Unix(), "nbf": t0.Unix(), "iat": t0.Unix(), "jti": "jti-1",
		claimProject: "proj-1", claimKind: "m2m", "client_id": "client-1",
	}
}

// sign builds a token by hand: any method, key and header, so tests can
// forge what Issue never would. A nil header value deletes the field.
func sign(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wantReason asserts err is an ErrInvalidToken whose message holds reason.
func wantReason(t testing.TB, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("verified, want rejection %q", reason)
	}
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("error %v does not wrap ErrInvalidToken", err)
	}
	if !strings.HasSuffix(err.Error(), ": "+reason) {
		t.Fatalf("error %q, want reason %q", err, reason)
	}
}
