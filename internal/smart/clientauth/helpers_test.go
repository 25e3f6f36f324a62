package clientauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testTokenURL = "https://ward.example/auth/token"

// testKeys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	rsa, rsa2, other *rsa.PrivateKey
	p256, p384, p521 *ecdsa.PrivateKey
	otherP384        *ecdsa.PrivateKey
}

var keys = sync.OnceValue(func() *testKeys {
	rk := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	ek := func(c elliptic.Curve) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}
	return &testKeys{
		rsa: rk(), rsa2: rk(), other: rk(),
		p256: ek(elliptic.P256()), p384: ek(elliptic.P384()), p521: ek(elliptic.P521()),
		otherP384: ek(elliptic.P384()),
	}
})

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "kid": kid,
		"n": b64u(pub.N.Bytes()),
		"e": b64u(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	raw, err := pub.Bytes() // 0x04 || x || y
	if err != nil {
		panic(err)
	}
	size := (len(raw) - 1) / 2
	return map[string]any{
		"kty": "EC", "kid": kid, "crv": pub.Curve.Params().Name,
		"x": b64u(raw[1 : 1+size]), "y": b64u(raw[1+size:]),
	}
}

func jwksOf(keys ...map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return b
}

// standardJWKS holds one key for each allowed alg.
func standardJWKS() []byte {
	k := keys()
	return jwksOf(
		rsaJWK("rsa-1", &k.rsa.PublicKey),
		ecJWK("ec256-1", &k.p256.PublicKey),
		ecJWK("ec384-1", &k.p384.PublicKey),
		ecJWK("ec521-1", &k.p521.PublicKey),
	)
}

// clock is an injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var jtiCounter atomic.Int64

// claimsFor returns valid claims for clientID at now.
func claimsFor(clientID string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": clientID,
		"sub": clientID,
		"aud": testTokenURL,
		"exp": now.Add(4 * time.Minute).Unix(),
		"iat": now.Unix(),
		"jti": fmt.Sprintf("jti-%d", jtiCounter.Add(1)),
	}
}

// sign signs claims; header entries override the defaults, a nil value
// deletes one.
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
		t.Fatalf("sign: %v", err)
	}
	return s
}

// clients is a Lookup over a fixed map.
func clients(cs ...Client) Lookup {
	m := map[string]Client{}
	for _, c := range cs {
		m[c.ID] = c
	}
	return func(_ context.Context, id string) (Client, error) {
		c, ok := m[id]
		if !ok {
			return Client{}, fmt.Errorf("client %q: %w", id, ErrUnknownClient)
		}
		return c, nil
	}
}

func newVerifier(t testing.TB, clk *clock, lookup Lookup, timeout time.Duration) *Verifier {
	t.Helper()
	v, err := New(Config{
		Lookup:       lookup,
		Replay:       NewMemoryReplay(clk.Now),
		FetchTimeout: timeout,
		Now:          clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// jwksServer serves a JWKS on loopback and counts requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu           sync.Mutex
	body         []byte
	cacheControl string
	block        bool          // hold the request until the client gives up
	delay        time.Duration // before answering
	handler      http.HandlerFunc
}

func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	s := &jwksServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.Header.Get("Accept") != "application/json" {
			http.Error(w, "want Accept: application/json", http.StatusNotAcceptable)
			return
		}
		s.mu.Lock()
		body, cc, block, delay, handler := s.body, s.cacheControl, s.block, s.delay, s.handler
		s.mu.Unlock()
		if handler != nil {
			handler(w, r)
			return
		}
		time.Sleep(delay)
		if block {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body []byte, cacheControl string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.cacheControl = body, cacheControl
}
