package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"testing"
)

func mustNew(t *testing.T) *Sealer {
	t.Helper()
	s, err := New(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// legacySeal seals a zambda secret as releases before key ids did.
func legacySeal(t *testing.T, key []byte, projectID, name string, plain []byte) []byte {
	t.Helper()
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, []byte(projectID+"\x00"+name))
}

func TestOpen(t *testing.T) {
	key := NewKey()
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	other := mustNew(t)
	plain := []byte("-----BEGIN PRIVATE KEY-----")
	sealed := s.Seal(SigningKey("k1"), plain)
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	legacy := legacySeal(t, key, "p1", "API_KEY", []byte("v"))
	for _, tc := range []struct {
		name   string
		s      *Sealer
		label  Label
		sealed []byte
		want   []byte
		err    error
	}{
		{"round trip", s, SigningKey("k1"), sealed, plain, nil},
		{"another row", s, SigningKey("k2"), sealed, nil, ErrCorrupt},
		{"another purpose", s, ServerSecret("k1"), sealed, nil, ErrCorrupt},
		{"another key", other, SigningKey("k1"), sealed, nil, ErrWrongKey},
		{"altered", s, SigningKey("k1"), flipped, nil, ErrCorrupt},
		{"truncated", s, SigningKey("k1"), sealed[:20], nil, ErrCorrupt},
		{"empty", s, SigningKey("k1"), nil, nil, ErrCorrupt},
		{"plaintext", s, SigningKey("k1"), plain, nil, ErrCorrupt},
		{"secret", s, Secret("p1", "API_KEY"), s.Seal(Secret("p1", "API_KEY"), []byte("v")), []byte("v"), nil},
		{"secret of another project", s, Secret("p2", "API_KEY"), s.Seal(Secret("p1", "API_KEY"), []byte("v")), nil, ErrCorrupt},
		{"legacy secret", s, Secret("p1", "API_KEY"), legacy, []byte("v"), nil},
		{"legacy secret, another row", s, Secret("p1", "OTHER"), legacy, nil, ErrWrongKey},
		{"legacy secret, another key", other, Secret("p1", "API_KEY"), legacy, nil, ErrWrongKey},
		{"legacy format is for secrets only", s, ServerSecret("p1\x00API_KEY"), legacy, nil, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.s.Open(tc.label, tc.sealed)
			if !errors.Is(err, tc.err) || !bytes.Equal(got, tc.want) {
				t.Fatalf("Open = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
	if !s.IsCurrent(sealed) || other.IsCurrent(sealed) || s.IsCurrent(legacy) {
		t.Error("IsCurrent does not tell this key's current format from the others")
	}
	if s.KeyID() == other.KeyID() || len(s.KeyID()) != 8 {
		t.Errorf("key ids %q and %q", s.KeyID(), other.KeyID())
	}
	if bytes.Equal(s.Seal(SigningKey("k1"), plain), sealed) {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
}

func TestNewRefusesShortKeys(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("a %d-byte key was accepted", n)
		}
	}
}
