package clientauth

import (
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds arbitrary assertions: Verify must never panic, never
// accept anything but a genuine assertion, and reject only as
// invalid_client (the stores here cannot fail).
func FuzzVerify(f *testing.F) {
	k := keys()
	clk := newClock()
	now := clk.Now()
	valid := []string{
		sign(f, jwt.SigningMethodRS384, k.rsa, map[string]any{"kid": "rsa-1"}, claimsFor("client-inline", now)),
		sign(f, jwt.SigningMethodES384, k.p384, map[string]any{"kid": "ec384-1"}, claimsFor("client-inline", now)),
		sign(f, jwt.SigningMethodES512, k.p521, map[string]any{"kid": "ec521-1", "typ": nil}, claimsFor("client-inline", now)),
	}
	for _, s := range valid {
		f.Add(s)
		parts := strings.Split(s, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + ".." + parts[2])
	}
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": "rsa-1"}, claimsFor("client-inline", now)))
	f.Add(sign(f, jwt.SigningMethodHS256, standardJWKS(), map[string]any{"kid": "rsa-1"}, claimsFor("client-inline", now)))
	f.Add(b64u([]byte(`{"alg":"RS384","kid":"rsa-1","crit":["x"]}`)) + "." + b64u([]byte(`{"iss":"client-inline","exp":1e308}`)) + ".AA")
	f.Add(b64u([]byte(`{"alg":"ES384","kid":"ec384-1"}`)) + "." + b64u([]byte(`{"iss":"client-inline","sub":"client-inline","aud":[1],"exp":-1}`)) + ".AA")
	f.Add("")
	f.Add("...")
	f.Add("a.b.c\n")

	v := newVerifier(f, clk, clients(Client{ID: "client-inline", JWKS: standardJWKS()}), 0)
	f.Fuzz(func(t *testing.T, assertion string) {
		id, err := v.Verify(t.Context(), assertion, testTokenURL)
		if err == nil {
			if id != "client-inline" {
				t.Fatalf("accepted as %q", id)
			}
			// Only a signature by a registered key gets here; the
			// fuzzer cannot forge one, so this is a seed's first use.
			return
		}
		if !errors.Is(err, ErrInvalidClient) {
			t.Fatalf("error %v is not invalid_client", err)
		}
		if id != "" {
			t.Fatalf("client id %q with error %v", id, err)
		}
	})
}

// FuzzParseJWKS: ParseJWKS must never panic, and must return either a
// non-empty set or an ErrInvalidJWKS.
func FuzzParseJWKS(f *testing.F) {
	k := keys()
	f.Add(standardJWKS())
	f.Add(jwksOf(rsaJWK("r", &k.rsa2.PublicKey), map[string]any{"kty": "oct", "k": "AA"}))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB","alg":"RS256","use":"sig","key_ops":["verify"]}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParseJWKS(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidJWKS) || set != nil {
				t.Fatalf("ParseJWKS: set %v, error %v", set, err)
			}
			return
		}
		if set.Len() == 0 {
			t.Fatal("empty set without an error")
		}
		for _, key := range set.keys {
			if spec, ok := lookupAlg(fittingAlg(key)); !ok || spec.kty != key.kty || spec.crv != key.crv {
				t.Fatalf("key %+v has no fitting alg", key)
			}
		}
	})
}

func fittingAlg(k jwk) string {
	switch k.crv {
	case "P-256":
		return "ES256"
	case "P-384":
		return "ES384"
	case "P-521":
		return "ES512"
	}
	return "RS384"
}
