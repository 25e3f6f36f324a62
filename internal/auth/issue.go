package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claim names of Ward's own claims. Private claims are namespaced with a
// URL (RFC 7519 section 4.2) so they cannot collide with registered ones.
const (
	claimProject = "https://ward.dev/project"
	claimKind    = "https://ward.dev/kind"
)

// tokenClaims is the JWT payload. Typed fields make the decoder reject a
// claim of the wrong JSON type instead of silently coercing it.
type tokenClaims struct {
	jwt.RegisteredClaims
	Project  string `json:"https://ward.dev/project,omitempty"`
	Kind     Kind   `json:"https://ward.dev/kind"`
	ClientID string `json:"client_id,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Patient  string `json:"patient,omitempty"`
	FHIRUser string `json:"fhirUser,omitempty"`
}

// Issuer signs access tokens with the current signing key of the ring.
type Issuer struct {
	ring     func() *KeyRing
	issuer   string
	audience string
	now      func() time.Time
}

// NewIssuer returns an Issuer. ring is called on every Issue, so a rotated
// ring is used from the next token on.
func NewIssuer(ring func() *KeyRing, issuer string, audience string, now func() time.Time) *Issuer {
	return &Issuer{ring: ring, issuer: issuer, audience: audience, now: now}
}

// Issue signs a token for p that lives ttl. It returns the token and p
// with TokenID, IssuedAt, ExpiresAt and Audience filled in (times at the
// one-second precision of JWT NumericDate, as Verify returns them).
func (i *Issuer) Issue(ctx context.Context, p Principal, ttl time.Duration) (string, Principal, error) {
	if err := checkPrincipal(p); err != nil {
		return "", Principal{}, err
	}
	if ttl < time.Second {
		return "", Principal{}, fmt.Errorf("auth: token lifetime %v is under one second", ttl)
	}
	ring := i.ring()
	if ring == nil {
		return "", Principal{}, errors.New("auth: no key ring loaded")
	}
	jti, err := randomID(16)
	if err != nil {
		return "", Principal{}, err
	}
	now := i.now()
	p.TokenID = jti
	p.IssuedAt = time.Unix(now.Unix(), 0)
	p.ExpiresAt = time.Unix(now.Add(ttl).Unix(), 0)
	p.Audience = i.audience
	c := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.issuer,
			Subject:   p.ID,
			Audience:  jwt.ClaimStrings{i.audience},
			ExpiresAt: jwt.NewNumericDate(p.ExpiresAt),
			NotBefore: jwt.NewNumericDate(p.IssuedAt),
			IssuedAt:  jwt.NewNumericDate(p.IssuedAt),
			ID:        jti,
		},
		Project:  p.ProjectID,
		Kind:     p.Kind,
		ClientID: p.ClientID,
		Scope:    strings.Join(p.Scopes, " "),
		Patient:  p.Patient,
		FHIRUser: p.FHIRUser,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	key := ring.Signing(now)
	t.Header["kid"] = key.ID
	signed, err := t.SignedString(key.Private)
	if err != nil {
		return "", Principal{}, fmt.Errorf("auth: sign token: %w", err)
	}
	return signed, p, nil
}

// checkPrincipal refuses to sign what Verify would refuse to accept, so a
// bug upstream fails at issue time instead of with a confusing 401 later.
func checkPrincipal(p Principal) error {
	switch {
	case !p.Kind.valid():
		return fmt.Errorf("auth: unknown principal kind %q", p.Kind)
	case p.ID == "":
		return errors.New("auth: principal without id")
	case p.Kind == KindDeveloper && p.ProjectID != "":
		return errors.New("auth: developer tokens carry no project (it comes from a header)")
	case p.Kind != KindDeveloper && p.ProjectID == "":
		return fmt.Errorf("auth: %s principal without project", p.Kind)
	}
	for _, s := range p.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return fmt.Errorf("auth: malformed scope %q", s)
		}
	}
	return nil
}
