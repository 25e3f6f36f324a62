// Package auth turns credentials into principals: it signs and verifies
// Ward's access tokens (RS256 JWTs), keeps the signing keys in an immutable
// KeyRing published as a JWKS, hashes client secrets and shapes RFC 7662
// introspection answers. It does no storage and no HTTP: the caller loads
// keys and revocations and passes them in.
//
// Tokens carry identity, not permissions. What a principal may do is
// decided per request from its current policy, so a role edit applies to
// tokens already issued.
package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind is the kind of entity a token speaks for.
type Kind string

// The principal kinds.
const (
	KindDeveloper Kind = "developer"
	KindUser      Kind = "user"
	KindM2M       Kind = "m2m"
	// KindRole is a caller known only by the role it acts as: a bearer
	// token Ward did not issue, accepted by a project's authorizer
	// function. Ward never signs tokens of this kind.
	KindRole Kind = "role"
)

// valid reports whether k is one of the known kinds; anything else in a
// token is rejected rather than treated as a weaker kind.
func (k Kind) valid() bool {
	return k == KindDeveloper || k == KindUser || k == KindM2M
}

// Principal is who a request acts as.
type Principal struct {
	// ProjectID is empty for developers: a developer may belong to several
	// projects and names one per request in a header.
	ProjectID string
	Kind      Kind
	// ID is the developer, user or M2M client entity id (the token's sub).
	ID       string
	ClientID string
	// Scopes are the SMART scopes granted to the token, nil if none.
	Scopes []string
	// TokenID is the token's jti, the handle for revocation.
	TokenID   string
	ExpiresAt time.Time
	// IssuedAt and Audience are filled by Issue and Verify; introspection
	// reports them.
	IssuedAt time.Time
	Audience string
	// Patient is the SMART launch context: the id of the Patient that
	// patient/ scopes confine the token to.
	Patient string
	// FHIRUser is the profile resource of a user ("Patient/123"), for
	// openid fhirUser and user/ scopes.
	FHIRUser string
}

// Scoped reports whether SMART scopes narrow what this principal may do
// through the FHIR API. Tokens issued without scopes (Oystehr-style M2M and
// developer tokens) are governed by their access policy alone.
func (p Principal) Scoped() bool { return len(p.Scopes) > 0 }

// Sentinel errors. Every rejection of a token wraps ErrInvalidToken with a
// reason that is safe to show to the client: it never quotes the token.
var (
	ErrInvalidToken = errors.New("invalid token")
	// ErrUnknownKey means the token names a key id this ring does not hold.
	// It wraps ErrInvalidToken; callers may reload the keys once (another
	// process may have rotated them) and verify again.
	ErrUnknownKey = fmt.Errorf("%w: unknown signing key", ErrInvalidToken)
)

// invalid is ErrInvalidToken with a client-safe reason.
func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidToken, reason) }

// Introspection is the RFC 7662 response body for a token: {"active":false}
// for any token that did not verify (the reason is not disclosed), else the
// token's claims plus Ward's project and kind. SMART requires scope,
// client_id and exp when active, so those are always present.
func Introspection(p Principal, issuer string, active bool) map[string]any {
	if !active {
		return map[string]any{"active": false}
	}
	m := map[string]any{
		"active":     true,
		"token_type": "Bearer",
		"scope":      strings.Join(p.Scopes, " "),
		"client_id":  p.ClientID,
		"exp":        p.ExpiresAt.Unix(),
		"sub":        p.ID,
		"iss":        issuer,
		"jti":        p.TokenID,
		"kind":       string(p.Kind),
	}
	if !p.IssuedAt.IsZero() {
		m["iat"] = p.IssuedAt.Unix()
	}
	if p.Audience != "" {
		m["aud"] = p.Audience
	}
	if p.ProjectID != "" {
		m["project"] = p.ProjectID
	}
	if p.Patient != "" {
		m["patient"] = p.Patient
	}
	if p.FHIRUser != "" {
		m["fhirUser"] = p.FHIRUser
	}
	return m
}
