package auth

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds arbitrary strings to Verify. Property: nothing panics,
// every rejection is an ErrInvalidToken, and nothing verifies unless it is
// exactly one of the tokens signed here (no malleable re-encodings, no
// forgeries), verifying to the principal it was issued for.
//
// The key and the hand-signed tokens are fixed (testdata, fixed jti), and
// RS256 signing is deterministic, so every fuzz worker process holds the
// same valid tokens and mutations of the seeds stay meaningful.
func FuzzVerify(f *testing.F) {
	pemBytes, err := os.ReadFile("testdata/fuzz_key.pem")
	if err != nil {
		f.Fatal(err)
	}
	key, err := ParsePrivateKey("fuzz-key", AlgRS256, pemBytes, t0.Add(-time.Hour), nil)
	if err != nil {
		f.Fatal(err)
	}
	ring, err := NewKeyRing([]Key{key}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	clock := func() time.Time { return t0 }
	v := NewVerifier(func() *KeyRing { return ring }, testIssuer, []string{testAudience}, &revocations{}, clock)
	hdr := map[string]any{"kid": key.ID}

	valid := map[string]Principal{}
	add := func(tok string, p Principal) {
		valid[tok] = p
		f.Add(tok)
	}
	dev := validClaims()
	delete(dev, claimProject)
	dev[claimKind], dev["sub"], dev["scope"] = "developer", "dev-1", "openid fhirUser"
	issuedAt, expires := time.Unix(t0.Unix(), 0), time.Unix(t0.Add(time.Hour).Unix(), 0)
	add(sign(f, jwt.SigningMethodRS256, key.Private, hdr, validClaims()), Principal{ProjectID: "proj-1", Kind: KindM2M, ID: "m2m-1",
		ClientID: "client-1", TokenID: "jti-1", ExpiresAt: expires, IssuedAt: issuedAt, Audience: testAudience})
	add(sign(f, jwt.SigningMethodRS256, key.Private, hdr, dev), Principal{Kind: KindDeveloper, ID: "dev-1", ClientID: "client-1",
		Scopes: []string{"openid", "fhirUser"}, TokenID: "jti-1", ExpiresAt: expires, IssuedAt: issuedAt, Audience: testAudience})
	// Near misses to start the fuzzer from.
	for tok := range valid {
		parts := strings.Split(tok, ".")
		f.Add(tok[:len(tok)-1])
		f.Add(tok + "A")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + ".." + parts[2])
		f.Add(parts[1] + "." + parts[0] + "." + parts[2])
		f.Add(strings.Replace(tok, "A", "B", 1))
	}
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, hdr, validClaims()))
	f.Add(sign(f, jwt.SigningMethodHS256, []byte("secret"), hdr, validClaims()))
	for _, s := range []string{"", ".", "..", "...", "a.b.c", "eyJ.eyJ.", "\x00"} {
		f.Add(s)
	}

	issued, p, err := NewIssuer(func() *KeyRing { return ring }, testIssuer, testAudience, clock).Issue(context.Background(), m2m(), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	// Issue's jti is random, so this token differs per process: it is
	// valid here but must not be a seed other workers would reject.
	valid[issued] = p
	if _, err := v.Verify(context.Background(), issued); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, s string) {
		got, err := v.Verify(context.Background(), s)
		want, ok := valid[s]
		switch {
		case err == nil && !ok:
			t.Fatalf("verified a token never issued: %q -> %+v", s, got)
		case err != nil && ok:
			t.Fatalf("rejected an issued token: %v", err)
		case err != nil && !errors.Is(err, ErrInvalidToken):
			t.Fatalf("rejection is not ErrInvalidToken: %v", err)
		case err == nil && !reflect.DeepEqual(got, want):
			t.Fatalf("verified to %+v, issued as %+v", got, want)
		}
	})
}
