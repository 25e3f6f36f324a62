package auth

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	errNoKid = errors.New("no kid")
	errAlg   = errors.New("alg")
)

// parse is the uncached path: signature, then registered claims (by the
// jwt parser), then Ward's claims. It returns the principal and the kid
// that signed it.
func (v *Verifier) parse(token string, ring *KeyRing, now time.Time) (Principal, string, error) {
	var c tokenClaims
	var kid string
	t, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		// WithValidMethods already pinned the algorithm; checking again here
		// keeps the key type and the algorithm tied in one place.
		if t.Method != jwt.SigningMethodRS256 {
			return nil, errAlg
		}
		if _, critical := t.Header["crit"]; critical {
			return nil, errAlg // RFC 7515 4.1.11: we understand no extensions
		}
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, errNoKid
		}
		pub, ok := ring.verificationKey(kid, now)
		if !ok {
			return nil, ErrUnknownKey
		}
		v.sigChecks.Add(1)
		return pub, nil
	})
	if err != nil {
		return Principal{}, "", reason(t, err)
	}
	p, err := v.principal(&c)
	if err != nil {
		return Principal{}, "", err
	}
	return p, kid, nil
}

// reason maps the jwt library's errors to one client-safe reason. Order
// matters: several may hold at once, and the first is the most useful.
func reason(t *jwt.Token, err error) error {
	switch {
	case errors.Is(err, ErrUnknownKey):
		return ErrUnknownKey
	case errors.Is(err, errNoKid):
		return invalid("missing key id")
	case errors.Is(err, errAlg),
		t != nil && t.Method != nil && t.Method.Alg() != AlgRS256,
		errors.Is(err, jwt.ErrTokenUnverifiable): // an alg the library does not know
		return invalid("unsupported signing algorithm")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return invalid("malformed token")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalid("invalid signature")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return invalid("wrong issuer")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return invalid("wrong audience")
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalid("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return invalid("token not valid yet")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalid("token issued in the future")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return invalid("missing required claim")
	default:
		return invalid("invalid claims")
	}
}

// principal checks Ward's claims, which the jwt library knows nothing
// about, and builds the principal.
func (v *Verifier) principal(c *tokenClaims) (Principal, error) {
	switch {
	case c.Subject == "", c.ID == "", c.IssuedAt == nil:
		return Principal{}, invalid("missing required claim")
	case !c.Kind.valid():
		return Principal{}, invalid("unknown principal kind")
	case c.Kind == KindDeveloper && c.Project != "":
		return Principal{}, invalid("developer token with a project")
	case c.Kind != KindDeveloper && c.Project == "":
		return Principal{}, invalid("missing project")
	}
	p := Principal{
		ProjectID: c.Project,
		Kind:      c.Kind,
		ID:        c.Subject,
		ClientID:  c.ClientID,
		TokenID:   c.ID,
		ExpiresAt: c.ExpiresAt.Time,
		IssuedAt:  c.IssuedAt.Time,
		Patient:   c.Patient,
		FHIRUser:  c.FHIRUser,
	}
	if s := strings.Fields(c.Scope); len(s) > 0 {
		p.Scopes = s
	}
	for _, a := range c.Audience {
		if slices.Contains(v.audiences, a) {
			p.Audience = a
			break
		}
	}
	return p, nil
}
