package clientauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
)

const (
	// MaxJWKSSize bounds an inline or fetched JWKS.
	MaxJWKSSize = 256 << 10
	// maxKeys bounds the keys of one set; clients publish a handful.
	maxKeys = 100
	// RSA keys below 2048 bits are breakable; above 8192 they only make
	// each verification (paid by us, triggerable by anyone) expensive.
	minRSABits = 2048
	maxRSABits = 8192
)

// ErrInvalidJWKS is wrapped by every ParseJWKS error.
var ErrInvalidJWKS = errors.New("invalid JWKS")

// KeySet is a parsed JWKS: the RSA and EC signature keys of a client.
type KeySet struct {
	keys []jwk
}

type jwk struct {
	kid, kty, crv, alg string
	key                any // *rsa.PublicKey or *ecdsa.PublicKey
}

// Len is the number of usable signature keys.
func (s *KeySet) Len() int { return len(s.keys) }

// ParseJWKS parses and validates a JWKS ({"keys": [...]}). Keys for another
// use than "sig", or of a kty SMART does not use (oct, OKP), are skipped;
// private members are ignored. Every RSA or EC signature key must have a
// kid and valid key material, no two may share kid and type, and at least
// one must remain. The caller can show the error to whoever registered the
// set: its message says what is wrong.
func ParseJWKS(data []byte) (*KeySet, error) {
	if len(data) > MaxJWKSSize {
		return nil, fmt.Errorf("%w: larger than %d KiB", ErrInvalidJWKS, MaxJWKSSize>>10)
	}
	// Maps, not structs: encoding/json would match "KEYS" or "KID" to the
	// fields case-insensitively.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidJWKS)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(top["keys"], &raw); err != nil || raw == nil {
		return nil, fmt.Errorf(`%w: must be an object with a "keys" array of JWKs`, ErrInvalidJWKS)
	}
	if len(raw) > maxKeys {
		return nil, fmt.Errorf("%w: more than %d keys", ErrInvalidJWKS, maxKeys)
	}
	set := &KeySet{}
	for i, m := range raw {
		k, use, err := parseJWK(m)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d%s: %w", ErrInvalidJWKS, i, kidNote(m), err)
		}
		if !use {
			continue
		}
		if slices.ContainsFunc(set.keys, func(o jwk) bool { return o.kid == k.kid && o.kty == k.kty && o.crv == k.crv }) {
			return nil, fmt.Errorf("%w: two %s keys have kid %q", ErrInvalidJWKS, k.kty, k.kid)
		}
		set.keys = append(set.keys, k)
	}
	if len(set.keys) == 0 {
		return nil, fmt.Errorf(`%w: no RSA or EC key for use "sig"`, ErrInvalidJWKS)
	}
	return set, nil
}

func kidNote(m map[string]json.RawMessage) string {
	kid, _, err := member(m, "kid")
	if err != nil || kid == "" || len(kid) > maxKIDLength {
		return ""
	}
	return fmt.Sprintf(" (kid %q)", kid)
}

// parseJWK returns the key and whether it is a signature key we use.
func parseJWK(m map[string]json.RawMessage) (jwk, bool, error) {
	var k jwk
	kty, ok, err := member(m, "kty")
	if err != nil {
		return k, false, err
	}
	if !ok {
		return k, false, errors.New("no kty")
	}
	if kty != "RSA" && kty != "EC" {
		return k, false, nil
	}
	if use, ok, err := member(m, "use"); err != nil {
		return k, false, err
	} else if ok && use != "sig" {
		return k, false, nil
	}
	if ops, ok := m["key_ops"]; ok {
		var list []string
		if err := json.Unmarshal(ops, &list); err != nil {
			return k, false, errors.New("key_ops must be an array of strings")
		}
		if !slices.Contains(list, "verify") {
			return k, false, nil
		}
	}
	k.kty = kty
	if k.kid, _, err = member(m, "kid"); err != nil {
		return k, false, err
	}
	if k.kid == "" {
		return k, false, errors.New("no kid; the client assertion names its key by kid")
	}
	if len(k.kid) > maxKIDLength {
		return k, false, fmt.Errorf("kid longer than %d characters", maxKIDLength)
	}
	if k.alg, _, err = member(m, "alg"); err != nil {
		return k, false, err
	}
	if kty == "RSA" {
		k.key, err = parseRSA(m)
	} else {
		k.crv, k.key, err = parseEC(m)
	}
	if err != nil {
		return k, false, err
	}
	if k.alg != "" {
		spec, ok := lookupAlg(k.alg)
		if !ok || spec.kty != k.kty || spec.crv != k.crv {
			return k, false, fmt.Errorf("alg %q does not fit a %s key%s; use %s", k.alg, k.kty, crvNote(k.crv), fittingAlgs(k.kty, k.crv))
		}
	}
	return k, true, nil
}

func crvNote(crv string) string {
	if crv == "" {
		return ""
	}
	return " on " + crv
}

func fittingAlgs(kty, crv string) string {
	switch {
	case kty == "RSA":
		return "RS256, RS384 or RS512"
	case crv == "P-256":
		return "ES256"
	case crv == "P-384":
		return "ES384"
	default:
		return "ES512"
	}
}

// member reads an optional string member.
func member(m map[string]json.RawMessage, name string) (string, bool, error) {
	raw, ok := m[name]
	if !ok {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, fmt.Errorf("%s must be a string", name)
	}
	return s, true, nil
}

// b64 reads a required base64url member (RFC 7518 6: no padding).
func b64(m map[string]json.RawMessage, name string) ([]byte, error) {
	s, ok, err := member(m, name)
	if err != nil {
		return nil, err
	}
	if !ok || s == "" {
		return nil, fmt.Errorf("no %s", name)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s is not base64url without padding", name)
	}
	return b, nil
}

func parseRSA(m map[string]json.RawMessage) (*rsa.PublicKey, error) {
	nb, err := b64(m, "n")
	if err != nil {
		return nil, err
	}
	eb, err := b64(m, "e")
	if err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(nb)
	if bits := n.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("RSA modulus has %d bits; want %d to %d", bits, minRSABits, maxRSABits)
	}
	e := new(big.Int).SetBytes(eb)
	// crypto/rsa takes e as an int; a small odd exponent is all that is
	// ever used (65537).
	if e.BitLen() > 31 || e.Int64() < 3 || e.Bit(0) == 0 {
		return nil, errors.New("RSA exponent e must be odd and between 3 and 2^31-1")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

func parseEC(m map[string]json.RawMessage) (string, *ecdsa.PublicKey, error) {
	crv, _, err := member(m, "crv")
	if err != nil {
		return "", nil, err
	}
	var curve elliptic.Curve
	switch crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return "", nil, fmt.Errorf("crv must be P-256, P-384 or P-521, not %q", truncate(crv))
	}
	size := (curve.Params().BitSize + 7) / 8
	x, err := b64(m, "x")
	if err != nil {
		return "", nil, err
	}
	y, err := b64(m, "y")
	if err != nil {
		return "", nil, err
	}
	if len(x) > size || len(y) > size {
		return "", nil, fmt.Errorf("x and y must be %d bytes for %s", size, crv)
	}
	// RFC 7518 wants full-length coordinates, but some encoders drop leading
	// zeros; padding them back is harmless.
	point := make([]byte, 1+2*size)
	point[0] = 4 // uncompressed
	copy(point[1+size-len(x):], x)
	copy(point[1+2*size-len(y):], y)
	key, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return "", nil, fmt.Errorf("x, y is not a point on %s", crv)
	}
	return crv, key, nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// find returns the one key with kid that fits alg. None or several is a
// rejection: guessing among several would let a stale or planted key in.
func (s *KeySet) find(kid, algName string, alg algSpec) (any, error) {
	var found any
	n := 0
	for _, k := range s.keys {
		if k.kid != kid || k.kty != alg.kty || k.crv != alg.crv || k.alg != "" && k.alg != algName {
			continue
		}
		found = k.key
		n++
	}
	switch n {
	case 0:
		return nil, reject("no key in the client's JWKS matches kid %q for %s", kid, algName)
	case 1:
		return found, nil
	default:
		return nil, reject("several keys in the client's JWKS match kid %q for %s", kid, algName)
	}
}
