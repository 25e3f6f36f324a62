package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestKeyPEMRoundTrip(t *testing.T) {
	k := newKey(t, t0)
	if k.Alg != AlgRS256 || k.Private.N.BitLen() != 2048 || len(k.ID) < 16 || strings.ContainsAny(k.ID, "+/=") {
		t.Fatalf("generated key: alg %s, %d bits, kid %q", k.Alg, k.Private.N.BitLen(), k.ID)
	}
	b, err := k.MarshalPrivate()
	if err != nil {
		t.Fatal(err)
	}
	retired := t0.Add(time.Hour)
	back, err := ParsePrivateKey(k.ID, k.Alg, b, k.CreatedAt, &retired)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Private.Equal(k.Private) || back.ID != k.ID || !back.CreatedAt.Equal(t0) || !back.RetiredAt.Equal(retired) {
		t.Fatalf("round trip lost data: %+v", back)
	}
}

func TestParsePrivateKeyRejects(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallDER, err := x509.MarshalPKCS8PrivateKey(small)
	if err != nil {
		t.Fatal(err)
	}
	good, err := newKey(t, t0).MarshalPrivate()
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	cases := []struct {
		name, kid, alg string
		pem            []byte
	}{
		{"not PEM", "k", AlgRS256, []byte("hello")},
		{"wrong block type", "k", AlgRS256, pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small))},
		{"corrupt DER", "k", AlgRS256, pemOf("PRIVATE KEY", []byte{1, 2, 3})},
		{"EC key", "k", AlgRS256, pemOf("PRIVATE KEY", ecDER)},
		{"1024-bit key", "k", AlgRS256, pemOf("PRIVATE KEY", smallDER)},
		{"other alg", "k", "HS256", good},
		{"no kid", "", AlgRS256, good},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParsePrivateKey(c.kid, c.alg, c.pem, t0, nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestNewKeyRing(t *testing.T) {
	old, mid, newest := newKey(t, t0.Add(-2*time.Hour)), newKey(t, t0.Add(-time.Hour)), newKey(t, t0)
	retired := t0
	retiredNewest := newest
	retiredNewest.RetiredAt = &retired
	cases := []struct {
		name    string
		keys    []Key
		grace   time.Duration
		signing string // "" = error expected
	}{
		{"newest signs", []Key{old, newest, mid}, time.Hour, newest.ID},
		{"retired key never signs", []Key{old, retiredNewest, mid}, time.Hour, mid.ID},
		{"single", []Key{old}, 0, old.ID},
		{"empty", nil, time.Hour, ""},
		{"only retired", []Key{retiredNewest}, time.Hour, ""},
		{"duplicate kid", []Key{old, old}, time.Hour, ""},
		{"negative grace", []Key{old}, -time.Second, ""},
		{"key without private part", []Key{{ID: "x", Alg: AlgRS256}}, time.Hour, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewKeyRing(c.keys, c.grace)
			if c.signing == "" {
				if err == nil {
					t.Fatalf("built a ring signing with %s", r.SigningKeyID(t0))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.SigningKeyID(t0) != c.signing {
				t.Fatalf("signing key %s, want %s", r.SigningKeyID(t0), c.signing)
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	f := newFixture(t)
	second := newKey(t, t0.Add(-2*time.Hour))
	retired := t0
	second.RetiredAt = &retired
	f.setRing(t, time.Hour, second, f.key)
	tok := f.issue(t, m2m(), time.Hour)

	raw := f.ring.Load().JWKS()
	if strings.Contains(string(raw), `"d"`) || strings.Contains(string(raw), `"p"`) {
		t.Fatalf("JWKS leaks private parts: %s", raw)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 || set.Keys[0]["kid"] != f.key.ID || set.Keys[1]["kid"] != second.ID {
		t.Fatalf("JWKS keys %v, want the signing key first, then the retired one", set.Keys)
	}
	want := map[string]*rsa.PublicKey{f.key.ID: &f.key.Private.PublicKey, second.ID: &second.Private.PublicKey}
	parts := strings.Split(tok, ".")
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if len(k) != 6 || k["kty"] != "RSA" || k["use"] != "sig" || k["alg"] != "RS256" {
			t.Fatalf("JWK fields %v", k)
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k["n"])
		e, err2 := base64.RawURLEncoding.DecodeString(k["e"])
		if err1 != nil || err2 != nil {
			t.Fatalf("JWK encoding: %v %v", err1, err2)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if !pub.Equal(want[k["kid"]]) {
			t.Fatalf("JWK %s does not rebuild its public key", k["kid"])
		}
		// The published signing key verifies the token with plain crypto/rsa.
		err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
		if (err == nil) != (k["kid"] == f.key.ID) {
			t.Fatalf("JWK %s verifying the token: %v", k["kid"], err)
		}
	}
	// The caller gets a copy.
	raw[0] = 'X'
	if f.ring.Load().JWKS()[0] != '{' {
		t.Fatal("JWKS returned the ring's own buffer")
	}
}

func TestRotation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	grace := 2 * time.Hour
	f.setRing(t, grace, f.key)
	oldTok := f.issue(t, m2m(), 24*time.Hour)
	if _, err := f.verifier.Verify(ctx, oldTok); err != nil {
		t.Fatal(err)
	}

	// Rotate as the caller would: a new key, the old one retired now.
	f.clock.advance(time.Minute)
	retired := f.clock.now()
	oldKey := f.key
	oldKey.RetiredAt = &retired
	newKey := newKey(t, retired)
	f.setRing(t, grace, oldKey, newKey)

	newTok := f.issue(t, m2m(), time.Hour)
	if kid := headerKid(t, newTok); kid != newKey.ID {
		t.Fatalf("new token kid %s, want the new key %s", kid, newKey.ID)
	}
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		if _, err := f.verifier.Verify(ctx, tok); err != nil {
			t.Fatalf("%s token during grace: %v", name, err)
		}
	}
	// Past the grace period the old key is gone, even for the cached token.
	f.clock.set(retired.Add(grace + time.Second))
	_, err := f.verifier.Verify(ctx, oldTok)
	wantReason(t, err, "unknown signing key")
}

func headerKid(t *testing.T, tok string) string {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.SplitN(tok, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	var header struct{ Kid, Alg string }
	if err := json.Unmarshal(h, &header); err != nil || header.Alg != "RS256" {
		t.Fatalf("header %s: %v", h, err)
	}
	return header.Kid
}

// A rotated-in key is published at once and signs only from its
// activation; the old key signs until then and verifies for grace after.
// Every ring holding the same keys agrees, whatever order they came in.
func TestRollover(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	grace := 2 * time.Hour
	activates := t0.Add(6 * time.Minute)
	oldKey := f.key
	oldKey.RetiredAt = &activates
	next := newKey(t, t0)
	next.ActivatesAt = activates
	f.setRing(t, grace, oldKey, next)
	other, err := NewKeyRing([]Key{next, oldKey}, grace)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(other.JWKS(), f.ring.Load().JWKS()) {
		t.Fatal("two rings of the same keys publish different JWKS")
	}
	if !strings.Contains(string(f.ring.Load().JWKS()), next.ID) {
		t.Fatal("the next key is not published before it signs")
	}
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{t0, oldKey.ID},
		{activates.Add(-time.Millisecond), oldKey.ID},
		{activates, next.ID},
		{activates.Add(time.Hour), next.ID},
		{t0.Add(-time.Hour), oldKey.ID}, // a clock behind: still the old key
	} {
		f.clock.set(c.at)
		if got := f.ring.Load().SigningKeyID(c.at); got != c.want {
			t.Errorf("at %v: signing with %s, want %s", c.at.Sub(t0), got, c.want)
		}
		if kid := headerKid(t, f.issue(t, m2m(), time.Hour)); kid != c.want {
			t.Errorf("at %v: token kid %s, want %s", c.at.Sub(t0), kid, c.want)
		}
	}
	// A clock ahead of the only key's activation still signs with it.
	only, err := NewKeyRing([]Key{next}, grace)
	if err != nil {
		t.Fatal(err)
	}
	if got := only.SigningKeyID(t0); got != next.ID {
		t.Errorf("before the only key's activation: %s", got)
	}
	f.clock.set(activates.Add(-time.Minute))
	tok := f.issue(t, m2m(), 3*time.Hour)
	f.clock.set(activates.Add(grace - time.Minute))
	if _, err := f.verifier.Verify(ctx, tok); err != nil {
		t.Fatalf("the old key's token within grace of its retirement: %v", err)
	}
	f.clock.set(activates.Add(grace + time.Minute))
	if _, err := f.verifier.Verify(ctx, tok); err == nil {
		t.Fatal("the old key's token verified past grace after its retirement")
	}
}
