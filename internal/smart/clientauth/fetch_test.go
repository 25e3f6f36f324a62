package clientauth

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// urlFixture is a client whose JWKS is served by srv.
type urlFixture struct {
	clk *clock
	srv *jwksServer
	v   *Verifier
}

func newURLFixture(t *testing.T, body []byte, cacheControl string, timeout time.Duration) *urlFixture {
	f := &urlFixture{clk: newClock(), srv: newJWKSServer(t, body)}
	f.srv.set(body, cacheControl)
	f.v = newVerifier(t, f.clk, clients(Client{ID: "c", JWKSURL: f.srv.URL + "/jwks"}), timeout)
	return f
}

// verify signs a fresh assertion with kid and verifies it.
func (f *urlFixture) verify(t *testing.T, kid string, key any) error {
	t.Helper()
	method := jwt.SigningMethod(jwt.SigningMethodRS384)
	if _, ec := key.(*ecdsa.PrivateKey); ec {
		method = jwt.SigningMethodES384
	}
	a := sign(t, method, key, map[string]any{"kid": kid}, claimsFor("c", f.clk.Now()))
	_, err := f.v.Verify(t.Context(), a, testTokenURL)
	return err
}

func (f *urlFixture) wantHits(t *testing.T, want int64) {
	t.Helper()
	if got := f.srv.hits.Load(); got != want {
		t.Fatalf("JWKS server hit %d times, want %d", got, want)
	}
}

func TestJWKSCaching(t *testing.T) {
	k := keys()
	tests := []struct {
		name         string
		cacheControl string
		advance      time.Duration // between the two verifications
		wantHits     int64
	}{
		{"no header: cached", "", time.Minute, 1},
		{"no header: default 5 min", "", 5*time.Minute + time.Second, 2},
		{"max-age", "public, max-age=60", 59 * time.Second, 1},
		{"max-age passed", "public, max-age=60", 61 * time.Second, 2},
		{"max-age capped at 1 h", "max-age=86400", time.Hour + time.Second, 2},
		{"max-age below the cap", "max-age=86400", 59 * time.Minute, 1},
		{"no-store", "no-store", 0, 2},
		{"no-cache", "no-cache", 0, 2},
		{"max-age=0", "max-age=0", 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newURLFixture(t, standardJWKS(), tt.cacheControl, 0)
			if err := f.verify(t, "rsa-1", k.rsa); err != nil {
				t.Fatal(err)
			}
			f.wantHits(t, 1)
			f.clk.Advance(tt.advance)
			if err := f.verify(t, "ec384-1", k.p384); err != nil {
				t.Fatal(err)
			}
			f.wantHits(t, tt.wantHits)
		})
	}
}

func TestJWKSRotation(t *testing.T) {
	k := keys()
	f := newURLFixture(t, jwksOf(rsaJWK("old", &k.rsa.PublicKey)), "", 0)
	if err := f.verify(t, "old", k.rsa); err != nil {
		t.Fatal(err)
	}
	f.wantHits(t, 1)

	// The client rotates; the cached set (fresh for 5 min) lacks the new kid.
	f.srv.set(jwksOf(rsaJWK("new", &k.rsa2.PublicKey)), "")
	f.clk.Advance(time.Minute)
	if err := f.verify(t, "new", k.rsa2); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	f.wantHits(t, 2)
	if err := f.verify(t, "new", k.rsa2); err != nil {
		t.Fatal(err)
	}
	f.wantHits(t, 2) // the refetched set is cached
	err := f.verify(t, "old", k.rsa)
	checkRejected(t, "", err, `no key in the client's JWKS matches kid "old"`)
}

func TestJWKSKidSpray(t *testing.T) {
	k := keys()
	f := newURLFixture(t, standardJWKS(), "", 0)
	if err := f.verify(t, "rsa-1", k.rsa); err != nil {
		t.Fatal(err)
	}
	f.wantHits(t, 1)

	// Within 10 s of the fetch, unknown kids do not refetch.
	f.clk.Advance(5 * time.Second)
	for i := range 20 {
		checkRejected(t, "", f.verify(t, fmt.Sprintf("spray-%d", i), k.rsa), "no key in the client's JWKS matches kid")
	}
	f.wantHits(t, 1)

	// Later, one refetch per 10 s, however many kids, also concurrently.
	for round := int64(1); round <= 3; round++ {
		f.clk.Advance(10 * time.Second)
		var wg sync.WaitGroup
		for i := range 20 {
			kid := fmt.Sprintf("spray-%d-%d", round, i)
			a := sign(t, jwt.SigningMethodRS384, k.rsa, map[string]any{"kid": kid}, claimsFor("c", f.clk.Now()))
			wg.Go(func() {
				if _, err := f.v.Verify(context.Background(), a, testTokenURL); !errors.Is(err, ErrInvalidClient) {
					t.Errorf("kid %s: %v", kid, err)
				}
			})
		}
		wg.Wait()
		f.wantHits(t, 1+round)
	}
	// Known kids still verify from the cache.
	if err := f.verify(t, "ec384-1", k.p384); err != nil {
		t.Fatal(err)
	}
	f.wantHits(t, 4)
}

func TestJWKSConcurrentFetchesCoalesce(t *testing.T) {
	k := keys()
	f := newURLFixture(t, standardJWKS(), "", 0)
	f.srv.mu.Lock()
	f.srv.delay = 300 * time.Millisecond // long enough for all to join
	f.srv.mu.Unlock()
	var wg sync.WaitGroup
	for range 20 {
		a := sign(t, jwt.SigningMethodRS384, k.rsa, map[string]any{"kid": "rsa-1"}, claimsFor("c", f.clk.Now()))
		wg.Go(func() {
			if _, err := f.v.Verify(context.Background(), a, testTokenURL); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	f.wantHits(t, 1)
}

func TestJWKSSlowServer(t *testing.T) {
	k := keys()
	const timeout = 200 * time.Millisecond
	f := newURLFixture(t, standardJWKS(), "", timeout)
	f.srv.mu.Lock()
	f.srv.block = true
	f.srv.mu.Unlock()
	start := time.Now()
	err := f.verify(t, "rsa-1", k.rsa)
	elapsed := time.Since(start)
	checkRejected(t, "", err, "no answer within 200ms")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cause of %v is not a deadline", err)
	}
	if elapsed < timeout || elapsed > timeout+time.Second {
		t.Errorf("gave up after %v, want about %v", elapsed, timeout)
	}
}

func TestJWKSBadResponses(t *testing.T) {
	k := keys()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"404", func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }, "HTTP status 404"},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("<html>")) }, "invalid JWKS"},
		{"too large", func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", MaxJWKSSize) + `"}`))
		}, "larger than 256 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newURLFixture(t, nil, "", 0)
			f.srv.mu.Lock()
			f.srv.handler = tt.handler
			f.srv.mu.Unlock()
			checkRejected(t, "", f.verify(t, "rsa-1", k.rsa), tt.want)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		f := newURLFixture(t, nil, "", 0)
		f.srv.Close()
		checkRejected(t, "", f.verify(t, "rsa-1", k.rsa), "request failed")
	})
}

func TestCacheTTL(t *testing.T) {
	tests := []struct {
		header []string
		want   time.Duration
	}{
		{nil, 5 * time.Minute},
		{[]string{"public"}, 5 * time.Minute},
		{[]string{"max-age=120"}, 2 * time.Minute},
		{[]string{`max-age="120"`}, 2 * time.Minute},
		{[]string{"Max-Age=120, must-revalidate"}, 2 * time.Minute},
		{[]string{"max-age=7200"}, time.Hour},
		{[]string{"max-age=99999999999999999999999"}, time.Hour},
		{[]string{"max-age=0"}, 0},
		{[]string{"max-age=-1"}, 0},
		{[]string{"max-age=soon"}, 0},
		{[]string{"no-store"}, 0},
		{[]string{"max-age=600, no-cache"}, 0},
		{[]string{"public", "no-store"}, 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, v := range tt.header {
			h.Add("Cache-Control", v)
		}
		if got := cacheTTL(h); got != tt.want {
			t.Errorf("cacheTTL(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

// A failing JWKS URL is retried at most once per 10 s, not per assertion.
func TestJWKSFailureNotHammered(t *testing.T) {
	k := keys()
	f := newURLFixture(t, nil, "", 0)
	f.srv.mu.Lock()
	f.srv.handler = func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }
	f.srv.mu.Unlock()
	for range 5 {
		checkRejected(t, "", f.verify(t, "rsa-1", k.rsa), "HTTP status 503")
	}
	f.wantHits(t, 1)

	f.clk.Advance(10 * time.Second)
	f.srv.mu.Lock()
	f.srv.handler = nil
	f.srv.mu.Unlock()
	f.srv.set(standardJWKS(), "")
	if err := f.verify(t, "rsa-1", k.rsa); err != nil {
		t.Fatalf("after the server recovered: %v", err)
	}
	f.wantHits(t, 2)
}

// A caller giving up is not the client's fault: the error is the
// context's, not invalid_client, and comes at once.
func TestJWKSCallerCancels(t *testing.T) {
	k := keys()
	f := newURLFixture(t, standardJWKS(), "", time.Second)
	f.srv.mu.Lock()
	f.srv.block = true
	f.srv.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	a := sign(t, jwt.SigningMethodRS384, k.rsa, map[string]any{"kid": "rsa-1"}, claimsFor("c", f.clk.Now()))
	start := time.Now()
	_, err := f.v.Verify(ctx, a, testTokenURL)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrInvalidClient) {
		t.Fatalf("got %v, want the context's error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("returned after %v", d)
	}
}
