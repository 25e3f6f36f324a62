package clientauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseJWKS(t *testing.T) {
	k := keys()
	rsaKey := func(edit func(map[string]any)) map[string]any {
		m := rsaJWK("r", &k.rsa.PublicKey)
		if edit != nil {
			edit(m)
		}
		return m
	}
	ecKey := func(edit func(map[string]any)) map[string]any {
		m := ecJWK("e", &k.p384.PublicKey)
		if edit != nil {
			edit(m)
		}
		return m
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	// A P-256 key with a leading zero byte in x, which some encoders drop.
	var shortX map[string]any
	for shortX == nil {
		p, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if raw, _ := p.PublicKey.Bytes(); raw[1] == 0 {
			shortX = ecJWK("short", &p.PublicKey)
			shortX["x"] = b64u(raw[2:33])
		}
	}
	many := make([]map[string]any, 101)
	for i := range many {
		many[i] = rsaJWK(fmt.Sprint(i), &k.rsa.PublicKey)
	}

	tests := []struct {
		name    string
		data    []byte
		wantLen int
		want    string // error substring; "" for success
	}{
		{"standard", standardJWKS(), 4, ""},
		{"private members ignored", jwksOf(rsaKey(func(m map[string]any) { m["d"] = "AQAB"; m["p"] = "AQAB" })), 1, ""},
		{"use sig", jwksOf(rsaKey(func(m map[string]any) { m["use"] = "sig" })), 1, ""},
		{"use enc skipped", jwksOf(rsaKey(func(m map[string]any) { m["use"] = "enc"; m["kid"] = "x" }), ecKey(nil)), 1, ""},
		{"key_ops verify", jwksOf(rsaKey(func(m map[string]any) { m["key_ops"] = []string{"verify"} })), 1, ""},
		{"key_ops encrypt skipped", jwksOf(rsaKey(func(m map[string]any) { m["key_ops"] = []string{"encrypt"} }), ecKey(nil)), 1, ""},
		{"oct and OKP skipped", jwksOf(map[string]any{"kty": "oct", "k": "c2VjcmV0"}, map[string]any{"kty": "OKP", "crv": "Ed25519"}, ecKey(nil)), 1, ""},
		{"same kid, different kty", jwksOf(rsaJWK("k", &k.rsa.PublicKey), ecJWK("k", &k.p384.PublicKey)), 2, ""},
		{"fitting alg", jwksOf(ecKey(func(m map[string]any) { m["alg"] = "ES384" })), 1, ""},
		{"short EC coordinate padded", jwksOf(shortX), 1, ""},

		{"not JSON", []byte("<html>"), 0, "not a JSON object"},
		{"a bare JWK", mustJSON(rsaKey(nil)), 0, `"keys" array`},
		{"keys not an array", []byte(`{"keys":{}}`), 0, `"keys" array`},
		{"KEYS is not keys", []byte(`{"KEYS":[]}`), 0, `"keys" array`},
		{"empty", []byte(`{"keys":[]}`), 0, `no RSA or EC key for use "sig"`},
		{"only encryption keys", jwksOf(rsaKey(func(m map[string]any) { m["use"] = "enc" })), 0, "no RSA or EC key"},
		{"no kty", jwksOf(map[string]any{"kid": "x"}), 0, `key 0 (kid "x"): no kty`},
		{"no kid", jwksOf(rsaKey(func(m map[string]any) { delete(m, "kid") })), 0, "no kid"},
		{"kid not a string", jwksOf(rsaKey(func(m map[string]any) { m["kid"] = 7 })), 0, "kid must be a string"},
		{"weak RSA", jwksOf(rsaJWK("w", &weak.PublicKey)), 0, `key 0 (kid "w"): RSA modulus has 1024 bits`},
		{"RSA e = 1", jwksOf(rsaKey(func(m map[string]any) { m["e"] = "AQ" })), 0, "exponent"},
		{"RSA e even", jwksOf(rsaKey(func(m map[string]any) { m["e"] = "AQAA" })), 0, "exponent"},
		{"RSA n padded base64", jwksOf(rsaKey(func(m map[string]any) { m["n"] = m["n"].(string) + "==" })), 0, "n is not base64url"},
		{"RSA no n", jwksOf(rsaKey(func(m map[string]any) { delete(m, "n") })), 0, "no n"},
		{"EC unknown curve", jwksOf(ecKey(func(m map[string]any) { m["crv"] = "P-192" })), 0, "crv must be"},
		{"EC point off the curve", jwksOf(ecKey(func(m map[string]any) { m["y"] = m["x"] })), 0, "not a point on P-384"},
		{"EC coordinate too long", jwksOf(ecKey(func(m map[string]any) { m["x"] = b64u(make([]byte, 49)) })), 0, "must be 48 bytes"},
		{"alg of another family", jwksOf(rsaKey(func(m map[string]any) { m["alg"] = "ES256" })), 0, `alg "ES256" does not fit a RSA key`},
		{"alg of another curve", jwksOf(ecKey(func(m map[string]any) { m["alg"] = "ES256" })), 0, "use ES384"},
		{"duplicate kid", jwksOf(rsaJWK("d", &k.rsa.PublicKey), rsaJWK("d", &k.rsa2.PublicKey)), 0, `two RSA keys have kid "d"`},
		{"too many keys", jwksOf(many...), 0, "more than 100 keys"},
		{"too large", []byte(`{"keys":[],"x":"` + strings.Repeat("x", MaxJWKSSize) + `"}`), 0, "larger than 256 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := ParseJWKS(tt.data)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ParseJWKS: %v", err)
				}
				if set.Len() != tt.wantLen {
					t.Fatalf("Len = %d, want %d", set.Len(), tt.wantLen)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseJWKS accepted, want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalidJWKS) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want ErrInvalidJWKS containing %q", err, tt.want)
			}
		})
	}
}

// A key that names its alg serves that alg only.
func TestKeySetFindHonoursJWKAlg(t *testing.T) {
	k := keys()
	m := rsaJWK("r", &k.rsa.PublicKey)
	m["alg"] = "RS256"
	set, err := ParseJWKS(jwksOf(m))
	if err != nil {
		t.Fatal(err)
	}
	spec256, _ := lookupAlg("RS256")
	if _, err := set.find("r", "RS256", spec256); err != nil {
		t.Errorf("RS256: %v", err)
	}
	spec384, _ := lookupAlg("RS384")
	if _, err := set.find("r", "RS384", spec384); err == nil || !strings.Contains(err.Error(), `matches kid "r" for RS384`) {
		t.Errorf("RS384: %v", err)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
