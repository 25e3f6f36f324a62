// Package clientauth authenticates SMART Backend Services clients by their
// signed client assertion (private_key_jwt, RFC 7523; SMART App Launch 2.x
// client-confidential-asymmetric).
//
// The token endpoint receives grant_type=client_credentials, scope,
// client_assertion_type=AssertionType and client_assertion=<JWT>, and hands
// the JWT to Verifier.Verify. Verify checks the header, the claims, the
// signature against the client's registered JWKS (inline or fetched from its
// URL) and, last, that the jti was not used before.
package clientauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AssertionType is the only client_assertion_type SMART accepts.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

const (
	// Leeway is the clock skew tolerated when an assertion expired or when
	// its nbf/iat lie in the future: clients drift by seconds.
	Leeway = 30 * time.Second
	// MaxLifetime is how far in the future exp may be (SMART: five minutes),
	// so a leaked assertion is worth little.
	MaxLifetime = 5 * time.Minute
	// MaxJTILength bounds what the replay store must keep per assertion.
	MaxJTILength = 256
	// DefaultFetchTimeout bounds one JWKS fetch.
	DefaultFetchTimeout = 5 * time.Second

	// maxAssertionLen bounds the work done on input before any check; a
	// JWT signed with an 8192-bit RSA key is under 2 KiB.
	maxAssertionLen = 16 << 10
	// maxKIDLength keeps a kid echoed in error messages and logs readable.
	maxKIDLength = 256
)

// ErrInvalidClient is wrapped by every rejection of the client (OAuth
// invalid_client). Errors that do not wrap it are server faults (a failing
// client store or replay store, a cancelled request): answer 500, not 401.
var ErrInvalidClient = errors.New("invalid_client")

// ErrUnknownClient is what a Lookup wraps when no client has the id.
var ErrUnknownClient = errors.New("unknown client")

// Error is a rejection of the client. Its message is a reason safe to show
// the client (error_description); it wraps ErrInvalidClient and, for the
// logs, the underlying cause if there is one.
type Error struct {
	Reason string
	cause  error
}

func (e *Error) Error() string { return e.Reason }

// Unwrap lets errors.Is find ErrInvalidClient and the cause.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrInvalidClient}
	}
	return []error{ErrInvalidClient, e.cause}
}

func reject(format string, args ...any) *Error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// Client is what the caller knows about the client named by an assertion's
// iss. If JWKSURL is set the keys are fetched from it (so the client can
// rotate them); otherwise JWKS, the inline set, is used.
type Client struct {
	ID      string
	JWKSURL string
	JWKS    []byte
}

// Lookup finds a registered client; it returns an error wrapping
// ErrUnknownClient if there is none. Any other error is a server fault.
type Lookup func(ctx context.Context, clientID string) (Client, error)

// ReplayGuard remembers the jtis of accepted assertions. The caller
// implements it on its database so that replicas share it; MemoryReplay
// serves tests and single-process deployments.
type ReplayGuard interface {
	// Use records jti for iss until exp; it reports false if it was already
	// recorded.
	Use(ctx context.Context, iss, jti string, exp time.Time) (bool, error)
}

// Config configures a Verifier. Lookup and Replay are required.
type Config struct {
	Lookup Lookup
	Replay ReplayGuard
	// HTTPClient fetches JWKS URLs; nil means a new http.Client. Its own
	// Timeout, if any, applies in addition to FetchTimeout. Ward passes
	// its egress policy's client, so a jwksUrl cannot reach its network.
	HTTPClient *http.Client
	// FetchTimeout bounds one JWKS fetch; zero means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger gets rejections (debug) and JWKS fetch failures (warn); nil
	// discards.
	Logger *slog.Logger
}

// Verifier verifies client assertions. It is safe for concurrent use.
type Verifier struct {
	lookup Lookup
	replay ReplayGuard
	now    func() time.Time
	log    *slog.Logger
	parser *jwt.Parser
	jwks   *jwksCache
}

// New returns a Verifier for cfg.
func New(cfg Config) (*Verifier, error) {
	if cfg.Lookup == nil || cfg.Replay == nil {
		return nil, errors.New("clientauth: Config needs a Lookup and a ReplayGuard")
	}
	if cfg.FetchTimeout < 0 {
		return nil, errors.New("clientauth: negative FetchTimeout")
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Verifier{
		lookup: cfg.Lookup,
		replay: cfg.Replay,
		now:    cfg.Now,
		log:    cfg.Logger,
		// Strict decoding: one encoding per signature, no malleable variants.
		parser: jwt.NewParser(jwt.WithStrictDecoding()),
		jwks:   newJWKSCache(cfg.HTTPClient, cfg.FetchTimeout, cfg.Now, cfg.Logger),
	}, nil
}

// Verify checks a client assertion presented at tokenURL, the token
// endpoint's URL as published in .well-known/smart-configuration, and
// returns the authenticated client id. A rejection is an *Error wrapping
// ErrInvalidClient; other errors are server faults.
func (v *Verifier) Verify(ctx context.Context, assertion, tokenURL string) (string, error) {
	if tokenURL == "" {
		return "", errors.New("clientauth: Verify needs the token endpoint URL")
	}
	clientID, err := v.verify(ctx, assertion, tokenURL)
	if err != nil {
		if e, ok := errors.AsType[*Error](err); ok {
			v.log.DebugContext(ctx, "client assertion rejected", "iss", clientID, "reason", e.Reason, "cause", e.cause)
		}
		return "", err
	}
	return clientID, nil
}

// verify returns the (unverified) iss along with a rejection, for the log.
func (v *Verifier) verify(ctx context.Context, assertion, tokenURL string) (string, error) {
	if err := checkCharset(assertion); err != nil {
		return "", err
	}
	claims := jwt.MapClaims{}
	tok, _, err := v.parser.ParseUnverified(assertion, claims)
	if err != nil {
		// The library fails on an alg it does not know before we can look;
		// name the alg problem rather than calling the JWT malformed.
		if tok != nil && tok.Header != nil {
			if _, err := checkAlg(tok.Header); err != nil {
				return "", err
			}
		}
		return "", &Error{Reason: "client assertion is not a well-formed JWT", cause: err}
	}
	h, err := checkHeader(tok.Header)
	if err != nil {
		return "", err
	}
	c, err := checkClaims(claims, tokenURL, v.now())
	if err != nil {
		return c.iss, err
	}

	client, err := v.lookup(ctx, c.iss)
	if errors.Is(err, ErrUnknownClient) || err == nil && client.ID != c.iss {
		// An exact match only: a case-insensitive store must not let "Foo"
		// authenticate as "foo".
		return c.iss, &Error{Reason: fmt.Sprintf("unknown client %q", c.iss), cause: err}
	}
	if err != nil {
		return c.iss, fmt.Errorf("clientauth: look up client: %w", err)
	}
	if h.jku != nil && (client.JWKSURL == "" || *h.jku != client.JWKSURL) {
		return c.iss, reject("jku %q is not the client's registered JWKS URL", *h.jku)
	}
	key, err := v.key(ctx, client, h)
	if err != nil {
		return c.iss, err
	}
	signed := assertion[:strings.LastIndexByte(assertion, '.')]
	if err := h.alg.method.Verify(signed, tok.Signature, key); err != nil {
		return c.iss, &Error{Reason: "client assertion signature is invalid", cause: err}
	}

	// Replay last: only an assertion the client really signed may consume
	// its jti, or anyone could burn a victim's jti with a forged one. The
	// assertion is accepted until exp+Leeway, so it is remembered as long.
	fresh, err := v.replay.Use(ctx, c.iss, c.jti, c.exp.Add(Leeway))
	if err != nil {
		return c.iss, fmt.Errorf("clientauth: record jti: %w", err)
	}
	if !fresh {
		return c.iss, reject("jti already used")
	}
	return c.iss, nil
}

// key finds the one key of the client's JWKS that can check this assertion.
func (v *Verifier) key(ctx context.Context, client Client, h header) (any, error) {
	if client.JWKSURL == "" {
		if len(client.JWKS) == 0 {
			return nil, reject("client has no registered keys")
		}
		set, err := ParseJWKS(client.JWKS)
		if err != nil {
			return nil, &Error{Reason: err.Error(), cause: err}
		}
		return set.find(h.kid, h.algName, h.alg)
	}
	set, fetched, err := v.jwks.get(ctx, client.JWKSURL)
	if err != nil {
		return nil, err
	}
	key, err := set.find(h.kid, h.algName, h.alg)
	if err == nil || fetched {
		return key, err
	}
	// Not in the cached set: the client may have rotated its keys. refresh
	// declines when the URL was fetched in the last 10 s.
	newer, err2 := v.jwks.refresh(ctx, client.JWKSURL)
	if err2 != nil {
		return nil, err2
	}
	if newer == nil {
		return nil, err
	}
	return newer.find(h.kid, h.algName, h.alg)
}

// checkCharset admits only the base64url alphabet and dots: the base64
// decoder skips CR and LF, which would let variants of one assertion (and
// one jti) verify.
func checkCharset(s string) error {
	if s == "" {
		return reject("client_assertion is empty")
	}
	if len(s) > maxAssertionLen {
		return reject("client assertion is larger than %d bytes", maxAssertionLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return reject("client assertion is not a well-formed JWT")
		}
	}
	return nil
}

// algSpec ties a JWS alg to the key it needs, so a key can only be used
// with the algorithm family it was made for.
type algSpec struct {
	method jwt.SigningMethod
	kty    string
	crv    string // EC only
}

// lookupAlg knows exactly the algorithms SMART allows. Everything else
// (none, HS*, PS*, EdDSA) is refused: HS* with a public key as the secret
// is the classic confusion attack.
func lookupAlg(alg string) (algSpec, bool) {
	switch alg {
	case "RS256":
		return algSpec{jwt.SigningMethodRS256, "RSA", ""}, true
	case "RS384":
		return algSpec{jwt.SigningMethodRS384, "RSA", ""}, true
	case "RS512":
		return algSpec{jwt.SigningMethodRS512, "RSA", ""}, true
	case "ES256":
		return algSpec{jwt.SigningMethodES256, "EC", "P-256"}, true
	case "ES384":
		return algSpec{jwt.SigningMethodES384, "EC", "P-384"}, true
	case "ES512":
		return algSpec{jwt.SigningMethodES512, "EC", "P-521"}, true
	}
	return algSpec{}, false
}

func unsupportedAlg(alg string) *Error {
	if len(alg) > 32 {
		alg = alg[:32] + "..."
	}
	return reject("client assertion alg %q is not supported; use RS384 or ES384", alg)
}

func checkAlg(hdr map[string]any) (algSpec, error) {
	name, _ := hdr["alg"].(string)
	if name == "" {
		return algSpec{}, reject("client assertion header has no alg")
	}
	alg, ok := lookupAlg(name)
	if !ok {
		return algSpec{}, unsupportedAlg(name)
	}
	return alg, nil
}

type header struct {
	algName string
	alg     algSpec
	kid     string
	jku     *string // nil: absent
}

func checkHeader(hdr map[string]any) (header, error) {
	var h header
	alg, err := checkAlg(hdr)
	if err != nil {
		return h, err
	}
	h.algName, h.alg = hdr["alg"].(string), alg
	if _, ok := hdr["crit"]; ok {
		// RFC 7515 4.1.11: we understand no extensions, so must refuse.
		return h, reject("client assertion header has crit, which is not supported")
	}
	if typ, ok := hdr["typ"]; ok {
		if s, _ := typ.(string); !strings.EqualFold(s, "JWT") {
			return h, reject(`client assertion typ must be "JWT"`)
		}
	}
	kid, _ := hdr["kid"].(string)
	if kid == "" {
		return h, reject("client assertion header has no kid")
	}
	if len(kid) > maxKIDLength {
		return h, reject("client assertion kid is longer than %d characters", maxKIDLength)
	}
	h.kid = kid
	if jku, ok := hdr["jku"]; ok {
		s, ok := jku.(string)
		if !ok {
			return h, reject("client assertion jku must be a string")
		}
		h.jku = &s
	}
	return h, nil
}

type claims struct {
	iss string
	jti string
	exp time.Time
}

func checkClaims(m jwt.MapClaims, tokenURL string, now time.Time) (claims, error) {
	var c claims
	iss, ok := m["iss"].(string)
	if !ok || iss == "" {
		return c, reject("client assertion has no iss (the client id)")
	}
	c.iss = iss
	if sub, _ := m["sub"].(string); sub != iss {
		return c, reject("sub must equal iss (the client id)")
	}
	aud, err := m.GetAudience()
	if err != nil || !slices.Contains(aud, tokenURL) {
		return c, reject("aud must be the token endpoint %s", tokenURL)
	}

	exp, ok, err := numericDate(m, "exp")
	if err != nil {
		return c, err
	}
	if !ok {
		return c, reject("client assertion has no exp")
	}
	if !now.Before(exp.Add(Leeway)) {
		return c, reject("client assertion expired")
	}
	if exp.After(now.Add(MaxLifetime)) {
		return c, reject("exp must be at most 5 minutes in the future")
	}
	c.exp = exp
	if nbf, ok, err := numericDate(m, "nbf"); err != nil {
		return c, err
	} else if ok && nbf.After(now.Add(Leeway)) {
		return c, reject("client assertion is not valid yet (nbf is in the future)")
	}
	if iat, ok, err := numericDate(m, "iat"); err != nil {
		return c, err
	} else if ok && iat.After(now.Add(Leeway)) {
		return c, reject("client assertion iat is in the future")
	}

	jti, _ := m["jti"].(string)
	if jti == "" {
		return c, reject("client assertion has no jti")
	}
	if len(jti) > MaxJTILength {
		return c, reject("jti is longer than %d characters", MaxJTILength)
	}
	c.jti = jti
	return c, nil
}

// numericDate reads a NumericDate claim. Whole seconds suffice; the range
// check keeps absurd values from overflowing the conversion.
func numericDate(m jwt.MapClaims, name string) (time.Time, bool, error) {
	v, ok := m[name]
	if !ok {
		return time.Time{}, false, nil
	}
	f, ok := v.(float64)
	if !ok || f < 0 || f > 1<<40 {
		return time.Time{}, false, reject("%s must be a NumericDate (seconds since the epoch)", name)
	}
	return time.Unix(int64(f), 0), true, nil
}
