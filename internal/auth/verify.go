package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Leeway is the clock skew tolerated on exp, nbf and iat. Replicas and
// clients drift by seconds, not minutes; 30 s absorbs that without
// meaningfully extending a token's life.
const Leeway = 30 * time.Second

// maxTokenLen bounds the work done on outside input before any check. Ward's
// tokens are under 1 KiB; 8 KiB leaves room for many scopes.
const maxTokenLen = 8 << 10

// DefaultCacheSize is how many verified tokens a Verifier remembers. An
// entry is a few hundred bytes, so the cache stays in the tens of MB.
const DefaultCacheSize = 100_000

// RevocationChecker reports whether a token id has been revoked. An error
// fails the verification (closed), it is never read as "not revoked".
type RevocationChecker interface {
	IsRevoked(ctx context.Context, jti string) (bool, error)
}

// Verifier checks Ward's access tokens. It is safe for concurrent use.
//
// Verified tokens are cached by SHA-256 of the token until they expire, so
// a client reusing its token costs a hash and a map lookup instead of an
// RSA verification. A cache hit still checks expiry, that the signing key
// is still in the ring, and revocation. There is no Forget: revocation is
// consulted on every hit, so a cached entry never outlives its revocation.
type Verifier struct {
	ring      func() *KeyRing
	issuer    string
	audiences []string
	revoked   RevocationChecker
	now       func() time.Time
	parser    *jwt.Parser
	cache     *tokenCache // nil: no caching (benchmarks of the slow path)

	// sigChecks counts RSA verifications, so tests can tell a cache hit.
	sigChecks atomic.Int64
}

// NewVerifier returns a Verifier accepting tokens signed by a key of ring()
// (read on every call, so rotation needs no restart), issued by issuer for
// one of audiences. It panics if issuer or audiences are empty or ring or
// revoked is nil: a verifier that would accept too much must not start.
func NewVerifier(ring func() *KeyRing, issuer string, audiences []string, revoked RevocationChecker, now func() time.Time) *Verifier {
	if ring == nil || revoked == nil || now == nil || issuer == "" || len(audiences) == 0 || slices.Contains(audiences, "") {
		panic("auth: NewVerifier needs a ring, an issuer, audiences, a revocation checker and a clock")
	}
	return &Verifier{
		ring: ring, issuer: issuer, audiences: slices.Clone(audiences), revoked: revoked, now: now,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{AlgRS256}),
			jwt.WithStrictDecoding(), // one encoding per signature: no malleable variants
			jwt.WithLeeway(Leeway),
			jwt.WithTimeFunc(now),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audiences...),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
		),
		cache: newTokenCache(DefaultCacheSize),
	}
}

// Verify checks token and returns its principal. Every rejection wraps
// ErrInvalidToken (ErrUnknownKey for an unknown kid) with a client-safe
// reason; other errors (a failing revocation store) are server faults.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	if len(token) > maxTokenLen {
		return Principal{}, invalid("token too large")
	}
	ring := v.ring()
	if ring == nil {
		return Principal{}, errors.New("auth: no key ring loaded")
	}
	now := v.now()
	key := sha256.Sum256([]byte(token))
	p, hit := v.cached(&key, ring, now)
	if !hit {
		// A cache hit is this very string, checked when it was verified:
		// the charset walk (a few µs on a 1 KB token) runs on misses only.
		if err := checkCharset(token); err != nil {
			return Principal{}, err
		}
		var kid string
		var err error
		if p, kid, err = v.parse(token, ring, now); err != nil {
			return Principal{}, err
		}
		if v.cache != nil {
			v.cache.put(&key, cacheEntry{p: p, kid: kid}, now)
		}
	}
	revoked, err := v.revoked.IsRevoked(ctx, p.TokenID)
	if err != nil {
		return Principal{}, fmt.Errorf("auth: check revocation: %w", err)
	}
	if revoked {
		return Principal{}, invalid("token revoked")
	}
	p.Scopes = slices.Clone(p.Scopes) // the cache keeps its own copy
	return p, nil
}

// cached returns the principal of a token verified before, if its entry is
// still good: not expired and its key still trusted by the current ring.
func (v *Verifier) cached(key *[32]byte, ring *KeyRing, now time.Time) (Principal, bool) {
	if v.cache == nil {
		return Principal{}, false
	}
	e, ok := v.cache.get(key)
	if !ok {
		return Principal{}, false
	}
	if !now.Before(e.p.ExpiresAt.Add(Leeway)) {
		v.cache.remove(key)
		return Principal{}, false // the slow path says why
	}
	if _, ok := ring.verificationKey(e.kid, now); !ok {
		v.cache.remove(key)
		return Principal{}, false
	}
	return e.p, true
}

// checkCharset admits only the base64url alphabet and dots. The base64
// decoder skips CR and LF, which would let variants of one valid token
// verify; rejecting them up front keeps one token, one string.
func checkCharset(token string) error {
	if token == "" {
		return invalid("empty token")
	}
	if len(token) > maxTokenLen {
		return invalid("token too large")
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return invalid("malformed token")
		}
	}
	return nil
}
