// Package seal encrypts the values that could forge anything (token
// signing keys, the Z3 URL key, zambda secrets) with the master key
// (WARD_SECRETS_KEY or <data-dir>/secrets.key), so a copy of the database
// alone yields none of them; and keeps the database and the configured key
// in step: a check value that a wrong key does not open, the sealing of
// what older releases stored in plaintext, and key rotation (database.go).
//
// A sealed value is AES-256-GCM: version (1 byte) || key id (4 bytes) ||
// nonce (12 bytes) || ciphertext and tag. The key id tells a value sealed
// with another key from a corrupt one; the additional data is the value's
// Label (its purpose and row), so a ciphertext copied to another row does
// not open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeySize is the master key's length in bytes.
const KeySize = 32

const (
	version1  = 1
	idSize    = 4
	nonceSize = 12
	header    = 1 + idSize + nonceSize
)

var (
	// ErrWrongKey: the value was sealed with another master key.
	ErrWrongKey = errors.New("wrong secrets key")
	// ErrCorrupt: the value is not a sealed value of this row (altered,
	// truncated, or copied from elsewhere).
	ErrCorrupt = errors.New("sealed value is altered or belongs to another row")
)

// Label is what a sealed value is and which row holds it: the additional
// data of its encryption.
type Label struct {
	ad     string
	legacy string // additional data of the format before key ids (zambda secrets only)
	what   string // for messages
}

// SigningKey labels the private key of token signing key kid.
func SigningKey(kid string) Label {
	return Label{ad: "signing-key\x00" + kid, what: "signing key " + kid}
}

// ServerSecret labels the server-wide secret called name (e.g. the Z3 URL key).
func ServerSecret(name string) Label {
	return Label{ad: "server-secret\x00" + name, what: "server secret " + name}
}

// Secret labels a project's zambda secret.
func Secret(projectID, name string) Label {
	return Label{ad: "secret\x00" + projectID + "\x00" + name, legacy: projectID + "\x00" + name,
		what: fmt.Sprintf("secret %q of project %s", name, projectID)}
}

// MFASecret labels a user's TOTP secret.
func MFASecret(projectID, userID string) Label {
	return Label{ad: "mfa-secret\x00" + projectID + "\x00" + userID, what: fmt.Sprintf("MFA secret of user %s of project %s", userID, projectID)}
}

// ConsoleSession labels the developer's access token kept by the console
// session whose cookie token hashes to hash.
func ConsoleSession(hash string) Label {
	return Label{ad: "console-session\x00" + hash, what: "a console session's access token"}
}

// String names the value for messages (never its content).
func (l Label) String() string { return l.what }

// Sealer seals and opens values with one master key. It is safe for
// concurrent use.
type Sealer struct {
	aead cipher.AEAD
	id   [idSize]byte
}

// New takes the 32-byte master key.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("the secrets key must be %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	s := &Sealer{aead: aead}
	// A one-way function of the key: it names the key without revealing it.
	m := hmac.New(sha256.New, key)
	m.Write([]byte("ward secrets key id"))
	copy(s.id[:], m.Sum(nil))
	return s, nil
}

// NewKey returns a fresh random master key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k) // crypto/rand does not fail on supported platforms
	return k
}

// KeyID names the key (8 hex digits) for operators and messages.
func (s *Sealer) KeyID() string { return hex.EncodeToString(s.id[:]) }

// Seal encrypts plain for the row l names.
func (s *Sealer) Seal(l Label, plain []byte) []byte {
	out := make([]byte, header, header+len(plain)+s.aead.Overhead())
	out[0] = version1
	copy(out[1:], s.id[:])
	nonce := out[1+idSize : header]
	_, _ = rand.Read(nonce)
	return s.aead.Seal(out, nonce, plain, []byte(l.ad))
}

// Open decrypts what Seal made for the same label. Errors: ErrWrongKey
// (another master key sealed it), ErrCorrupt.
func (s *Sealer) Open(l Label, sealed []byte) ([]byte, error) {
	if len(sealed) >= header+s.aead.Overhead() && sealed[0] == version1 {
		if [idSize]byte(sealed[1:1+idSize]) != s.id {
			if plain, ok := s.openLegacy(l, sealed); ok {
				return plain, nil
			}
			return nil, fmt.Errorf("%s is sealed with secrets key %x, not the configured %s: %w", l, sealed[1:1+idSize], s.KeyID(), ErrWrongKey)
		}
		if plain, err := s.aead.Open(nil, sealed[1+idSize:header], sealed[header:], []byte(l.ad)); err == nil {
			return plain, nil
		}
	}
	if plain, ok := s.openLegacy(l, sealed); ok {
		return plain, nil
	}
	if l.legacy != "" && (len(sealed) == 0 || sealed[0] != version1) {
		// The old format names no key: another key and an altered value
		// look the same.
		return nil, fmt.Errorf("%s does not open with the configured secrets key %s (sealed with another key, or altered): %w", l, s.KeyID(), ErrWrongKey)
	}
	return nil, fmt.Errorf("%s: %w", l, ErrCorrupt)
}

// openLegacy opens a zambda secret sealed before key ids: nonce ||
// ciphertext, the project and name as additional data.
func (s *Sealer) openLegacy(l Label, sealed []byte) ([]byte, bool) {
	if l.legacy == "" || len(sealed) < nonceSize+s.aead.Overhead() {
		return nil, false
	}
	plain, err := s.aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], []byte(l.legacy))
	return plain, err == nil
}

// IsCurrent reports whether sealed is in the current format under this
// key (so a rotation or upgrade need not seal it again).
func (s *Sealer) IsCurrent(sealed []byte) bool {
	return len(sealed) >= header && sealed[0] == version1 && [idSize]byte(sealed[1:1+idSize]) == s.id
}
