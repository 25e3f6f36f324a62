package clientauth

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestVerify(t *testing.T) {
	k := keys()
	clk := newClock()
	srv := newJWKSServer(t, standardJWKS())
	jwksURL := srv.URL + "/jwks.json"
	lookup := clients(
		Client{ID: "client-inline", JWKS: standardJWKS()},
		Client{ID: "client-url", JWKSURL: jwksURL},
		Client{ID: "client-dup", JWKS: jwksOf(rsaJWK("dup", &k.rsa.PublicKey), rsaJWK("dup", &k.rsa2.PublicKey))},
		Client{ID: "client-nokeys"},
	)
	pubPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()

	type tc struct {
		name   string
		client string              // default client-inline
		method jwt.SigningMethod   // default RS384
		key    any                 // default the registered key for method
		header map[string]any      // overrides; nil deletes; default kid fits method
		claims func(jwt.MapClaims) // edits valid claims
		raw    string              // sent as is instead
		want   string              // "" accepts; else a substring of the reason
	}
	now := clk.Now()
	tests := []tc{
		{name: "RS384 inline"},
		{name: "ES384 inline", method: jwt.SigningMethodES384},
		{name: "RS256", method: jwt.SigningMethodRS256},
		{name: "RS512", method: jwt.SigningMethodRS512},
		{name: "ES256", method: jwt.SigningMethodES256},
		{name: "ES512", method: jwt.SigningMethodES512},
		{name: "RS384 from URL", client: "client-url"},
		{name: "ES384 from URL", client: "client-url", method: jwt.SigningMethodES384},
		{name: "jku equal to registered URL", client: "client-url", header: map[string]any{"jku": jwksURL}},
		{name: "typ jwt in lower case", header: map[string]any{"typ": "jwt"}},
		{name: "no typ", header: map[string]any{"typ": nil}},
		{name: "aud array", claims: func(c jwt.MapClaims) { c["aud"] = []string{"https://other.example", testTokenURL} }},
		{name: "expired within skew", claims: func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() }},
		{name: "iat slightly ahead", claims: func(c jwt.MapClaims) { c["iat"] = now.Add(10 * time.Second).Unix() }},
		{name: "exp exactly 5 min", claims: func(c jwt.MapClaims) { c["exp"] = now.Add(5 * time.Minute).Unix() }},
		{name: "jti 256 chars", claims: func(c jwt.MapClaims) { c["jti"] = strings.Repeat("j", 256) }},
		{name: "no iat", claims: func(c jwt.MapClaims) { delete(c, "iat") }},

		{name: "wrong aud", claims: func(c jwt.MapClaims) { c["aud"] = "https://evil.example/token" },
			want: "aud must be the token endpoint " + testTokenURL},
		{name: "aud array without token URL", claims: func(c jwt.MapClaims) { c["aud"] = []string{"https://evil.example/token"} },
			want: "aud must be the token endpoint"},
		{name: "no aud", claims: func(c jwt.MapClaims) { delete(c, "aud") }, want: "aud must be the token endpoint"},
		{name: "expired", claims: func(c jwt.MapClaims) { c["exp"] = now.Add(-31 * time.Second).Unix() },
			want: "client assertion expired"},
		{name: "exp too far ahead", claims: func(c jwt.MapClaims) { c["exp"] = now.Add(6 * time.Minute).Unix() },
			want: "exp must be at most 5 minutes in the future"},
		{name: "no exp", claims: func(c jwt.MapClaims) { delete(c, "exp") }, want: "no exp"},
		{name: "exp a string", claims: func(c jwt.MapClaims) { c["exp"] = "soon" }, want: "exp must be a NumericDate"},
		{name: "nbf in the future", claims: func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() },
			want: "not valid yet"},
		{name: "iat in the future", claims: func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() },
			want: "iat is in the future"},
		{name: "no jti", claims: func(c jwt.MapClaims) { delete(c, "jti") }, want: "no jti"},
		{name: "empty jti", claims: func(c jwt.MapClaims) { c["jti"] = "" }, want: "no jti"},
		{name: "jti too long", claims: func(c jwt.MapClaims) { c["jti"] = strings.Repeat("j", 257) },
			want: "jti is longer than 256"},
		{name: "iss != sub", claims: func(c jwt.MapClaims) { c["sub"] = "someone-else" }, want: "sub must equal iss"},
		{name: "no iss", claims: func(c jwt.MapClaims) { delete(c, "iss") }, want: "no iss"},
		{name: "unknown client", claims: func(c jwt.MapClaims) { c["iss"], c["sub"] = "nobody", "nobody" },
			want: `unknown client "nobody"`},
		{name: "client without keys", client: "client-nokeys", want: "no registered keys"},
		{name: "unknown kid", header: map[string]any{"kid": "nope"},
			want: `no key in the client's JWKS matches kid "nope" for RS384`},
		{name: "unknown kid from URL", client: "client-url", header: map[string]any{"kid": "nope"},
			want: `no key in the client's JWKS matches kid "nope" for RS384`},
		{name: "kid of an RSA key for ES384", method: jwt.SigningMethodES384, header: map[string]any{"kid": "rsa-1"},
			want: `no key in the client's JWKS matches kid "rsa-1" for ES384`},
		{name: "kid of a P-384 key for ES256", method: jwt.SigningMethodES256, header: map[string]any{"kid": "ec384-1"},
			want: `no key in the client's JWKS matches kid "ec384-1" for ES256`},
		{name: "two keys with the same kid", client: "client-dup", header: map[string]any{"kid": "dup"},
			want: `two RSA keys have kid "dup"`},
		{name: "no kid", header: map[string]any{"kid": nil}, want: "no kid"},
		{name: "typ not JWT", header: map[string]any{"typ": "at+jwt"}, want: `typ must be "JWT"`},
		{name: "crit", header: map[string]any{"crit": []string{"exp"}}, want: "crit"},
		{name: "jku mismatch", client: "client-url", header: map[string]any{"jku": "https://evil.example/jwks.json"},
			want: `jku "https://evil.example/jwks.json" is not the client's registered JWKS URL`},
		{name: "jku with an inline JWKS", header: map[string]any{"jku": jwksURL}, want: "is not the client's registered JWKS URL"},
		{name: "signed by another RSA key", key: k.other, want: "signature is invalid"},
		{name: "signed by another EC key", method: jwt.SigningMethodES384, key: k.otherP384, want: "signature is invalid"},
		{name: "signed by another key, URL", client: "client-url", key: k.other, want: "signature is invalid"},
		{name: "alg none", method: jwt.SigningMethodNone, key: jwt.UnsafeAllowNoneSignatureType,
			want: `alg "none" is not supported`},
		{name: "HS256 keyed with the public key PEM", method: jwt.SigningMethodHS256, key: pubPEM,
			want: `alg "HS256" is not supported`},
		{name: "HS256 keyed with the JWKS", method: jwt.SigningMethodHS256, key: standardJWKS(),
			want: `alg "HS256" is not supported`},
		{name: "PS384", method: jwt.SigningMethodPS384, want: `alg "PS384" is not supported`},
		{name: "alg unknown to the library",
			raw: b64u([]byte(`{"alg":"XX999","kid":"rsa-1"}`)) + "." + b64u([]byte(`{}`)) + ".c2ln", want: `alg "XX999" is not supported`},
		{name: "no alg", raw: b64u([]byte(`{"kid":"rsa-1"}`)) + "." + b64u([]byte(`{}`)) + ".c2ln", want: "no alg"},
		{name: "not a JWT", raw: "not-a-jwt", want: "not a well-formed JWT"},
		{name: "four segments", raw: "a.b.c.d", want: "not a well-formed JWT"},
		{name: "empty", raw: "", want: "empty"},
		{name: "too large", raw: strings.Repeat("a", 17<<10), want: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, clk, lookup, 0)
			client := tt.client
			if client == "" {
				client = "client-inline"
			}
			assertion := tt.raw
			if tt.raw == "" && tt.want != "empty" {
				method := tt.method
				if method == nil {
					method = jwt.SigningMethodRS384
				}
				key, kid := tt.key, ""
				switch method.Alg() {
				case "ES256":
					key, kid = or(key, any(k.p256)), "ec256-1"
				case "ES384":
					key, kid = or(key, any(k.p384)), "ec384-1"
				case "ES512":
					key, kid = or(key, any(k.p521)), "ec521-1"
				default:
					key, kid = or(key, any(k.rsa)), "rsa-1"
				}
				header := map[string]any{"kid": kid}
				for h, x := range tt.header {
					header[h] = x
				}
				claims := claimsFor(client, now)
				if tt.claims != nil {
					tt.claims(claims)
				}
				assertion = sign(t, method, key, header, claims)
			}
			start := time.Now()
			got, err := v.Verify(t.Context(), assertion, testTokenURL)
			if time.Since(start) > 2*time.Second {
				t.Errorf("Verify took %v", time.Since(start))
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got != client {
					t.Fatalf("client id = %q, want %q", got, client)
				}
				return
			}
			checkRejected(t, got, err, tt.want)
		})
	}
}

func or(a, b any) any {
	if a != nil {
		return a
	}
	return b
}

// checkRejected asserts err is a client rejection whose reason has want.
func checkRejected(t *testing.T, got string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify accepted (client %q), want rejection %q", got, want)
	}
	if !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("error %v does not wrap ErrInvalidClient", err)
	}
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Reason != err.Error() {
		t.Fatalf("error %v is not an *Error carrying its reason", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("reason %q, want it to contain %q", err.Error(), want)
	}
	if got != "" {
		t.Fatalf("client id %q returned with an error", got)
	}
}

func TestVerifyReplay(t *testing.T) {
	k := keys()
	clk := newClock()
	lookup := clients(
		Client{ID: "a", JWKS: standardJWKS()},
		Client{ID: "b", JWKS: standardJWKS()},
	)
	v := newVerifier(t, clk, lookup, 0)
	ctx := t.Context()
	hdr := map[string]any{"kid": "rsa-1"}

	claims := claimsFor("a", clk.Now())
	assertion := sign(t, jwt.SigningMethodRS384, k.rsa, hdr, claims)
	if _, err := v.Verify(ctx, assertion, testTokenURL); err != nil {
		t.Fatalf("first use: %v", err)
	}
	_, err := v.Verify(ctx, assertion, testTokenURL)
	checkRejected(t, "", err, "jti already used")

	// A fresh assertion reusing the jti is a replay too.
	clk.Advance(time.Minute)
	again := claimsFor("a", clk.Now())
	again["jti"] = claims["jti"]
	_, err = v.Verify(ctx, sign(t, jwt.SigningMethodRS384, k.rsa, hdr, again), testTokenURL)
	checkRejected(t, "", err, "jti already used")

	// jtis are per client.
	other := claimsFor("b", clk.Now())
	other["jti"] = claims["jti"]
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS384, k.rsa, hdr, other), testTokenURL); err != nil {
		t.Fatalf("same jti, other client: %v", err)
	}

	// A forged assertion must not burn the victim's next jti: replay is
	// checked only after the signature.
	next := claimsFor("a", clk.Now())
	_, err = v.Verify(ctx, sign(t, jwt.SigningMethodRS384, k.other, hdr, next), testTokenURL)
	checkRejected(t, "", err, "signature is invalid")
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS384, k.rsa, hdr, next), testTokenURL); err != nil {
		t.Fatalf("genuine assertion after a forged one with its jti: %v", err)
	}

	// Once the first assertion can no longer be accepted, its jti is free.
	clk.Advance(MaxLifetime + Leeway)
	late := claimsFor("a", clk.Now())
	late["jti"] = claims["jti"]
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS384, k.rsa, hdr, late), testTokenURL); err != nil {
		t.Fatalf("jti reused after the first assertion's lifetime: %v", err)
	}
}

// Failures of the caller's stores are server faults, not invalid_client.
func TestVerifyServerFaults(t *testing.T) {
	k := keys()
	clk := newClock()
	dbDown := errors.New("database down")
	assertion := sign(t, jwt.SigningMethodRS384, k.rsa, map[string]any{"kid": "rsa-1"}, claimsFor("a", clk.Now()))

	v := newVerifier(t, clk, func(context.Context, string) (Client, error) { return Client{}, dbDown }, 0)
	if _, err := v.Verify(t.Context(), assertion, testTokenURL); !errors.Is(err, dbDown) || errors.Is(err, ErrInvalidClient) {
		t.Errorf("lookup failure: got %v", err)
	}

	v, err := New(Config{
		Lookup: clients(Client{ID: "a", JWKS: standardJWKS()}),
		Replay: failingReplay{dbDown},
		Now:    clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), assertion, testTokenURL); !errors.Is(err, dbDown) || errors.Is(err, ErrInvalidClient) {
		t.Errorf("replay store failure: got %v", err)
	}

	// A lookup that ignores case must not let "A" in as "a".
	v = newVerifier(t, clk, func(context.Context, string) (Client, error) {
		return Client{ID: "a", JWKS: standardJWKS()}, nil
	}, 0)
	claims := claimsFor("A", clk.Now())
	_, err = v.Verify(t.Context(), sign(t, jwt.SigningMethodRS384, k.rsa, map[string]any{"kid": "rsa-1"}, claims), testTokenURL)
	checkRejected(t, "", err, `unknown client "A"`)

	if _, err := New(Config{Lookup: clients()}); err == nil {
		t.Error("New without a ReplayGuard succeeded")
	}
}

type failingReplay struct{ err error }

func (f failingReplay) Use(context.Context, string, string, time.Time) (bool, error) {
	return false, f.err
}

func TestMemoryReplay(t *testing.T) {
	clk := newClock()
	m := NewMemoryReplay(clk.Now)
	ctx := t.Context()
	exp := clk.Now().Add(time.Minute)
	steps := []struct {
		advance  time.Duration
		iss, jti string
		want     bool
	}{
		{0, "a", "1", true},
		{0, "a", "1", false},
		{0, "b", "1", true},
		{0, "a", "2", true},
		{59 * time.Second, "a", "1", false},
		{time.Second, "a", "1", true}, // expired: remembered no longer
		{2 * time.Minute, "b", "9", true},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		e := exp
		if i >= 5 {
			e = clk.Now().Add(time.Minute)
		}
		got, err := m.Use(ctx, s.iss, s.jti, e)
		if err != nil || got != s.want {
			t.Fatalf("step %d: Use(%s, %s) = %v, %v; want %v", i, s.iss, s.jti, got, err, s.want)
		}
	}
	m.mu.Lock()
	n := len(m.seen)
	m.mu.Unlock()
	if n > 2 {
		t.Errorf("%d jtis remembered after the sweep, want at most 2", n)
	}
}
