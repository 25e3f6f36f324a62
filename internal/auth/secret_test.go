package auth

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, err := NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil || len(b) != 32 || len(s) != 43 {
			t.Fatalf("secret %q: %d bytes, %v", s, len(b), err)
		}
		if seen[s] {
			t.Fatal("repeated secret")
		}
		seen[s] = true
	}
}

func TestSecretHash(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 appendix B.1: the stored form is plain,
	// lowercase hex, so other tools can check it.
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if h := HashSecret("abc"); h != abc {
		t.Fatalf("HashSecret(abc) = %s", h)
	}
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	hash := HashSecret(secret)
	cases := []struct {
		name, secret, hash string
		want               bool
	}{
		{"right secret", secret, hash, true},
		{"other secret", secret[:42] + "x", hash, false},
		{"empty secret", "", hash, false},
		{"the hash as secret", hash, hash, false},
		{"uppercase hash", secret, strings.ToUpper(hash), false},
		{"empty hash", secret, "", false},
		{"truncated hash", secret, hash[:63], false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := SecretMatches(c.secret, c.hash); got != c.want {
				t.Fatalf("SecretMatches = %v, want %v", got, c.want)
			}
		})
	}
}
