package auth

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestIssueVerifyRoundTrip(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name string
		p    Principal
	}{
		{"m2m with scopes", m2m()},
		{"user without scopes", Principal{ProjectID: "proj-2", Kind: KindUser, ID: "user-1", ClientID: "app-1"}},
		{"developer without project", Principal{Kind: KindDeveloper, ID: "dev-1"}},
		{"several scopes", Principal{ProjectID: "p", Kind: KindUser, ID: "u", Scopes: []string{"patient/Observation.rs", "launch/patient", "openid"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, issued, err := f.issuer.Issue(context.Background(), c.p, 15*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if issued.TokenID == "" || !issued.ExpiresAt.Equal(t0.Add(15*time.Minute)) || !issued.IssuedAt.Equal(t0) || issued.Audience != testAudience {
				t.Fatalf("issued claims %+v", issued)
			}
			got, err := f.verifier.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, issued) {
				t.Fatalf("verified %+v\nissued   %+v", got, issued)
			}
			want := c.p
			want.TokenID, want.ExpiresAt, want.IssuedAt, want.Audience = issued.TokenID, issued.ExpiresAt, issued.IssuedAt, issued.Audience
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("verified %+v, want %+v", got, want)
			}
		})
	}
}

func TestIssueUniqueJTI(t *testing.T) {
	f := newFixture(t)
	seen := map[string]bool{}
	for range 50 {
		_, p, err := f.issuer.Issue(context.Background(), m2m(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if seen[p.TokenID] || len(p.TokenID) != 22 {
			t.Fatalf("jti %q repeated or not 128 bits", p.TokenID)
		}
		seen[p.TokenID] = true
	}
}

func TestIssueRejectsBadPrincipal(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name string
		p    Principal
		ttl  time.Duration
	}{
		{"unknown kind", Principal{ProjectID: "p", Kind: "zambda", ID: "x"}, time.Hour},
		{"no id", Principal{ProjectID: "p", Kind: KindM2M}, time.Hour},
		{"developer with project", Principal{ProjectID: "p", Kind: KindDeveloper, ID: "d"}, time.Hour},
		{"m2m without project", Principal{Kind: KindM2M, ID: "m"}, time.Hour},
		{"scope with space", Principal{ProjectID: "p", Kind: KindUser, ID: "u", Scopes: []string{"a b"}}, time.Hour},
		{"empty scope", Principal{ProjectID: "p", Kind: KindUser, ID: "u", Scopes: []string{""}}, time.Hour},
		{"zero ttl", m2m(), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if tok, _, err := f.issuer.Issue(context.Background(), c.p, c.ttl); err == nil {
				t.Fatalf("issued %q", tok)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	f := newFixture(t)
	kid := f.key.ID
	other := newKey(t, t0)
	valid := f.issue(t, m2m(), time.Hour)
	parts := strings.Split(valid, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !strings.Contains(string(payload), `"m2m-1"`) {
		t.Fatalf("payload %s: %v", payload, err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&f.key.Private.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	own := f.key.Private
	hdr := map[string]any{"kid": kid}
	with := func(k string, v any) jwt.MapClaims {
		c := validClaims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	// The signature's last character carries 4 unused bits; setting one
	// gives a non-canonical encoding of the same signature bytes.
	sig := parts[2]
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])
	nonCanonical := parts[0] + "." + parts[1] + "." + sig[:len(sig)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	cases := []struct {
		name, token, reason string
	}{
		{"other key, same kid", sign(t, jwt.SigningMethodRS256, other.Private, hdr, validClaims()), "invalid signature"},
		{"other key, unknown kid", sign(t, jwt.SigningMethodRS256, other.Private, map[string]any{"kid": other.ID}, validClaims()), "unknown signing key"},
		{"no kid", sign(t, jwt.SigningMethodRS256, own, nil, validClaims()), "missing key id"},
		{"kid not a string", sign(t, jwt.SigningMethodRS256, own, map[string]any{"kid": 7}, validClaims()), "missing key id"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, hdr, validClaims()), "unsupported signing algorithm"},
		{"HS256 keyed with public PEM", sign(t, jwt.SigningMethodHS256, pubPEM, hdr, validClaims()), "unsupported signing algorithm"},
		{"HS256 keyed with public DER", sign(t, jwt.SigningMethodHS256, pubDER, hdr, validClaims()), "unsupported signing algorithm"},
		{"PS256 with the right key", sign(t, jwt.SigningMethodPS256, own, hdr, validClaims()), "unsupported signing algorithm"},
		{"RS384 with the right key", sign(t, jwt.SigningMethodRS384, own, hdr, validClaims()), "unsupported signing algorithm"},
		{"unknown alg", b64([]byte(`{"alg":"XX256","kid":"`+kid+`"}`)) + "." + parts[1] + "." + parts[2], "unsupported signing algorithm"},
		{"crit header", sign(t, jwt.SigningMethodRS256, own, map[string]any{"kid": kid, "crit": []string{"exp"}}, validClaims()), "unsupported signing algorithm"},
		{"expired", sign(t, jwt.SigningMethodRS256, own, hdr, with("exp", t0.Add(-time.Minute).Unix())), "token expired"},
		{"nbf in the future", sign(t, jwt.SigningMethodRS256, own, hdr, with("nbf", t0.Add(time.Minute).Unix())), "token not valid yet"},
		{"iat in the future", sign(t, jwt.SigningMethodRS256, own, hdr, with("iat", t0.Add(time.Minute).Unix())), "token issued in the future"},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, own, hdr, with("aud", "https://elsewhere.example")), "wrong audience"},
		{"no audience", sign(t, jwt.SigningMethodRS256, own, hdr, with("aud", nil)), "missing required claim"},
		{"wrong issuer", sign(t, jwt.SigningMethodRS256, own, hdr, with("iss", "https://evil.example")), "wrong issuer"},
		{"no exp", sign(t, jwt.SigningMethodRS256, own, hdr, with("exp", nil)), "missing required claim"},
		{"no iat", sign(t, jwt.SigningMethodRS256, own, hdr, with("iat", nil)), "missing required claim"},
		{"no jti", sign(t, jwt.SigningMethodRS256, own, hdr, with("jti", nil)), "missing required claim"},
		{"no sub", sign(t, jwt.SigningMethodRS256, own, hdr, with("sub", nil)), "missing required claim"},
		{"exp a string", sign(t, jwt.SigningMethodRS256, own, hdr, with("exp", "tomorrow")), "malformed token"},
		{"kind a number", sign(t, jwt.SigningMethodRS256, own, hdr, with(claimKind, 1)), "malformed token"},
		{"unknown kind", sign(t, jwt.SigningMethodRS256, own, hdr, with(claimKind, "admin")), "unknown principal kind"},
		{"no kind", sign(t, jwt.SigningMethodRS256, own, hdr, with(claimKind, nil)), "unknown principal kind"},
		{"m2m without project", sign(t, jwt.SigningMethodRS256, own, hdr, with(claimProject, nil)), "missing project"},
		{"developer with project", sign(t, jwt.SigningMethodRS256, own, hdr, with(claimKind, "developer")), "developer token with a project"},
		{"payload swapped", parts[0] + "." + b64([]byte(`{"sub":"y"}`)) + "." + parts[2], "invalid signature"},
		{"payload sub changed", parts[0] + "." + b64([]byte(strings.Replace(string(payload), `"m2m-1"`, `"m2m-2"`, 1))) + "." + parts[2], "invalid signature"},
		{"header kid changed", b64([]byte(`{"alg":"RS256","kid":"nope","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], "unknown signing key"},
		{"signature one char changed", parts[0] + "." + parts[1] + "." + flip(parts[2], 20), "invalid signature"},
		{"signature dropped", parts[0] + "." + parts[1] + ".", "invalid signature"},
		{"signature non-canonical base64", nonCanonical, "malformed token"},
		{"newline in signature", parts[0] + "." + parts[1] + "." + sig[:10] + "\n" + sig[10:], "malformed token"},
		{"padded signature", valid + "==", "malformed token"},
		{"trailing space", valid + " ", "malformed token"},
		{"empty", "", "empty token"},
		{"garbage", "not-a-token", "malformed token"},
		{"dots only", "..", "malformed token"},
		{"three dots", "a.b.c.d", "malformed token"},
		{"two parts", parts[0] + "." + parts[1], "malformed token"},
		{"four parts", valid + ".x", "malformed token"},
		{"short segments", "a.b.c", "malformed token"},
		{"too large", parts[0] + "." + strings.Repeat("A", maxTokenLen) + "." + parts[2], "token too large"},
	}
	if nonCanonical == valid {
		t.Fatal("test setup: non-canonical variant equals the token")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.verifier.Verify(context.Background(), c.token)
			wantReason(t, err, c.reason)
			if strings.Contains(err.Error(), parts[1]) || (len(c.token) > 20 && strings.Contains(err.Error(), c.token)) {
				t.Fatalf("error quotes the token: %v", err)
			}
		})
	}
	// The hand-made claims are right: unbroken, they verify.
	if _, err := f.verifier.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, own, hdr, validClaims())); err != nil {
		t.Fatalf("control token: %v", err)
	}
	if _, err := f.verifier.Verify(context.Background(), valid); err != nil {
		t.Fatalf("valid token after the attacks: %v", err)
	}
}

func TestVerifyUnknownKeyIsDistinguishable(t *testing.T) {
	f := newFixture(t)
	other := newKey(t, t0)
	tok := sign(t, jwt.SigningMethodRS256, other.Private, map[string]any{"kid": other.ID}, validClaims())
	_, err := f.verifier.Verify(context.Background(), tok)
	if !errors.Is(err, ErrUnknownKey) || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrUnknownKey wrapping ErrInvalidToken", err)
	}
	// After a reload that brings the key, the same token verifies.
	f.setRing(t, time.Hour, f.key, other)
	if _, err := f.verifier.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyLeeway(t *testing.T) {
	cases := []struct {
		name   string
		shift  time.Duration // verifier clock relative to t0
		reason string        // "" = accepted
	}{
		{"well inside", 30 * time.Minute, ""},
		{"expired within leeway", time.Hour + Leeway - time.Second, ""},
		{"expired past leeway", time.Hour + Leeway, "token expired"},
		{"nbf within leeway", -Leeway + time.Second, ""},
		{"nbf past leeway", -Leeway - time.Second, "token not valid yet"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			tok := f.issue(t, m2m(), time.Hour)
			f.clock.set(t0.Add(c.shift))
			_, err := f.verifier.Verify(context.Background(), tok)
			if c.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantReason(t, err, c.reason)
		})
	}
}

func TestVerifyRevocation(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, m2m(), time.Hour)
	keep := f.issue(t, m2m(), time.Hour)
	p, err := f.verifier.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	f.revoked.revoke(p.TokenID)
	_, err = f.verifier.Verify(context.Background(), tok)
	wantReason(t, err, "token revoked")
	if _, err := f.verifier.Verify(context.Background(), keep); err != nil {
		t.Fatalf("another token of the same principal: %v", err)
	}

	// A failing revocation store fails closed, as a server error.
	storeDown := errors.New("store down")
	f.revoked.err = storeDown
	_, err = f.verifier.Verify(context.Background(), keep)
	if !errors.Is(err, storeDown) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err = %v, want the store error and not ErrInvalidToken", err)
	}
}

func TestNewVerifierRefusesOpenConfig(t *testing.T) {
	ring := func() *KeyRing { return nil }
	cases := map[string]func(){
		"no audiences":     func() { NewVerifier(ring, testIssuer, nil, &revocations{}, time.Now) },
		"empty audience":   func() { NewVerifier(ring, testIssuer, []string{""}, &revocations{}, time.Now) },
		"no issuer":        func() { NewVerifier(ring, "", []string{testAudience}, &revocations{}, time.Now) },
		"no revocations":   func() { NewVerifier(ring, testIssuer, []string{testAudience}, nil, time.Now) },
		"no ring function": func() { NewVerifier(nil, testIssuer, []string{testAudience}, &revocations{}, time.Now) },
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			build()
		})
	}
}
