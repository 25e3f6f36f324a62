package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// IDToken is an OpenID Connect id_token's content: who logged in, for
// which client. SMART adds fhirUser, the URL of the user's FHIR profile.
type IDToken struct {
	Subject  string
	ClientID string // the token's aud
	FHIRUser string // absolute URL, "" when the user has no profile
	Nonce    string
	AuthTime time.Time
}

type idTokenClaims struct {
	jwt.RegisteredClaims
	FHIRUser string `json:"fhirUser,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
}

// IDToken signs an id_token (RS256, the ring's current key) that lives ttl.
// It is for the client to read, never accepted by Verify: its audience is
// the client, not Ward.
func (i *Issuer) IDToken(ctx context.Context, t IDToken, ttl time.Duration) (string, error) {
	if t.Subject == "" || t.ClientID == "" {
		return "", errors.New("auth: id_token needs a subject and a client")
	}
	ring := i.ring()
	if ring == nil {
		return "", errors.New("auth: no key ring loaded")
	}
	jti, err := randomID(16)
	if err != nil {
		return "", err
	}
	now := time.Unix(i.now().Unix(), 0)
	c := idTokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.issuer,
			Subject:   t.Subject,
			Audience:  jwt.ClaimStrings{t.ClientID},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		FHIRUser: t.FHIRUser,
		Nonce:    t.Nonce,
	}
	if !t.AuthTime.IsZero() {
		c.AuthTime = t.AuthTime.Unix()
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	key := ring.Signing(now)
	tok.Header["kid"] = key.ID
	signed, err := tok.SignedString(key.Private)
	if err != nil {
		return "", fmt.Errorf("auth: sign id_token: %w", err)
	}
	return signed, nil
}
