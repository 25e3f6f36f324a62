package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"
)

// AlgRS256 is the only signing algorithm Ward issues and accepts. Pinning
// one algorithm closes the classic JWT holes (alg "none", HS256 keyed
// with the public key) by construction.
const AlgRS256 = "RS256"

// minKeyBits rejects keys too small to trust, e.g. a hand-edited row.
const minKeyBits = 2048

// Key is one signing key. Keys are never deleted by rotation: a retired key
// keeps verifying the tokens it signed until they have expired.
type Key struct {
	ID        string // kid
	Alg       string // AlgRS256
	Private   *rsa.PrivateKey
	CreatedAt time.Time
	// ActivatesAt is when the key starts signing (zero: CreatedAt). A
	// rotated-in key is published for a JWKS cache lifetime first, so
	// outside verifiers know it before they see a token it signed.
	ActivatesAt time.Time
	// RetiredAt is when the key stops signing (it may lie ahead: the next
	// key's activation); nil while no successor is planned.
	RetiredAt *time.Time
}

// activation is when k starts signing.
func (k Key) activation() time.Time {
	if k.ActivatesAt.IsZero() {
		return k.CreatedAt
	}
	return k.ActivatesAt
}

// signsAt reports whether k is the kind of key that signs at t: active and
// not yet retired.
func (k Key) signsAt(t time.Time) bool {
	return !t.Before(k.activation()) && (k.RetiredAt == nil || t.Before(*k.RetiredAt))
}

// GenerateKey makes a fresh RSA 2048 key with a random kid.
func GenerateKey(now time.Time) (Key, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Key{}, fmt.Errorf("auth: generate key: %w", err)
	}
	kid, err := randomID(16)
	if err != nil {
		return Key{}, err
	}
	return Key{ID: kid, Alg: AlgRS256, Private: priv, CreatedAt: now}, nil
}

// MarshalPrivate encodes the private key as PKCS#8 PEM for storage. The
// store is expected to encrypt it at rest.
func (k Key) MarshalPrivate() ([]byte, error) {
	if k.Private == nil {
		return nil, errors.New("auth: key has no private part")
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("auth: marshal key %s: %w", k.ID, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey rebuilds a Key from what MarshalPrivate produced.
func ParsePrivateKey(kid, alg string, pemBytes []byte, createdAt time.Time, retiredAt *time.Time) (Key, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PRIVATE KEY" {
		return Key{}, fmt.Errorf("auth: key %s: not a PKCS#8 PEM block", kid)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return Key{}, fmt.Errorf("auth: key %s: %w", kid, err)
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return Key{}, fmt.Errorf("auth: key %s: %T is not an RSA key", kid, parsed)
	}
	k := Key{ID: kid, Alg: alg, Private: priv, CreatedAt: createdAt, RetiredAt: retiredAt}
	if err := k.check(); err != nil {
		return Key{}, err
	}
	return k, nil
}

func (k Key) check() error {
	switch {
	case k.ID == "":
		return errors.New("auth: key without id")
	case k.Alg != AlgRS256:
		return fmt.Errorf("auth: key %s: algorithm %q, want %s", k.ID, k.Alg, AlgRS256)
	case k.Private == nil:
		return fmt.Errorf("auth: key %s has no private part", k.ID)
	case k.Private.N.BitLen() < minKeyBits:
		return fmt.Errorf("auth: key %s: %d bits, want at least %d", k.ID, k.Private.N.BitLen(), minKeyBits)
	}
	if err := k.Private.Validate(); err != nil {
		return fmt.Errorf("auth: key %s: %w", k.ID, err)
	}
	return nil
}

// KeyRing is an immutable set of keys: all verify while they are inside
// their grace period, and which one signs follows from the time alone, so
// every replica holding the same keys signs with the same one and
// publishes the same JWKS. Rotate by building a new ring and swapping it
// in wherever the Issuer and Verifier read it from.
type KeyRing struct {
	ordered []Key // newest activation first: the JWKS order
	keys    map[string]Key
	grace   time.Duration
	jwks    []byte
}

// NewKeyRing builds a ring. At a given time the signing key is the key
// activated last among those active and not retired (see Signing). A
// retired key keeps verifying until grace after its retirement; grace must
// outlast the longest token lifetime. At least one key must not be retired.
func NewKeyRing(keys []Key, grace time.Duration) (*KeyRing, error) {
	if grace < 0 {
		return nil, errors.New("auth: negative grace period")
	}
	r := &KeyRing{keys: make(map[string]Key, len(keys)), grace: grace}
	live := false
	for _, k := range keys {
		if err := k.check(); err != nil {
			return nil, err
		}
		if _, dup := r.keys[k.ID]; dup {
			return nil, fmt.Errorf("auth: duplicate key id %s", k.ID)
		}
		r.keys[k.ID] = k
		r.ordered = append(r.ordered, k)
		live = live || k.RetiredAt == nil
	}
	if !live {
		return nil, errors.New("auth: key ring has no active signing key")
	}
	// Deterministic order, whatever order the keys came in.
	sort.Slice(r.ordered, func(i, j int) bool {
		a, b := r.ordered[i], r.ordered[j]
		if !a.activation().Equal(b.activation()) {
			return a.activation().After(b.activation())
		}
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return a.ID < b.ID
	})
	jwks, err := r.buildJWKS()
	if err != nil {
		return nil, err
	}
	r.jwks = jwks
	return r, nil
}

// Signing is the key that signs at now: the one activated last among the
// active keys not yet retired. Should none be (this clock runs behind the
// one that made the first key), the earliest to activate of those not
// retired, so a server never stops signing.
func (r *KeyRing) Signing(now time.Time) Key {
	var next *Key
	for i := range r.ordered {
		k := r.ordered[i]
		if k.signsAt(now) {
			return k
		}
		if k.RetiredAt == nil || now.Before(*k.RetiredAt) {
			next = &r.ordered[i]
		}
	}
	if next != nil {
		return *next
	}
	for _, k := range r.ordered {
		if k.RetiredAt == nil {
			return k
		}
	}
	return r.ordered[0] // unreachable: NewKeyRing wants a key not retired
}

// SigningKeyID is the kid tokens issued at now carry.
func (r *KeyRing) SigningKeyID(now time.Time) string { return r.Signing(now).ID }

// JWKS is the RFC 7517 key set of every key in the ring, public parts
// only, newest activation first (a key about to sign is published ahead of
// use). The slice is a copy.
func (r *KeyRing) JWKS() []byte { return bytes.Clone(r.jwks) }

// verificationKey returns the public key for kid if it may verify at now.
func (r *KeyRing) verificationKey(kid string, now time.Time) (*rsa.PublicKey, bool) {
	k, ok := r.keys[kid]
	if !ok || (k.RetiredAt != nil && now.After(k.RetiredAt.Add(r.grace))) {
		return nil, false
	}
	return &k.Private.PublicKey, true
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func (r *KeyRing) buildJWKS() ([]byte, error) {
	ordered := r.ordered
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(ordered))}
	for _, k := range ordered {
		pub := k.Private.PublicKey
		set.Keys = append(set.Keys, jwk{
			Kty: "RSA", Kid: k.ID, Use: "sig", Alg: k.Alg,
			N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	out, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("auth: encode JWKS: %w", err)
	}
	return out, nil
}

// randomID is n random bytes, base64url without padding.
func randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
