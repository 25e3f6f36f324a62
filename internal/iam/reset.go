package iam

import (
	"context"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// PasswordResetTTL is how long a password reset link works.
const PasswordResetTTL = 24 * time.Hour

// PasswordResetPath is where reset links point, under the public URL; the
// token follows it.
const PasswordResetPath = "/oauth/reset/"

// PasswordResetLink is the answer to POST /user/{id}/reset-password-link.
type PasswordResetLink struct {
	Link      string    `json:"link"`
	ExpiresAt time.Time `json:"expiresAt"`
}

var errResetGone = fault.NotFound("this password reset link is unknown, expired, replaced by a newer one or already used")

// publicRoot is Ward's public URL (the invitation base without /invite/).
func (s *Service) publicRoot() string {
	return strings.TrimSuffix(s.invitationBase, "/invite/")
}

// CreatePasswordResetLink makes a one-time link to Ward's page where the
// user sets a new password; only its hash is stored, and it replaces the
// user's earlier link. redirectURL, if given, is where the page offers to
// continue afterwards: it must be an allowed callback or login URL of one
// of the project's applications. Errors: NotFound, Invalid.
func (s *Service) CreatePasswordResetLink(ctx context.Context, projectID, userID, redirectURL string) (PasswordResetLink, error) {
	if _, err := s.store.GetUser(ctx, projectID, userID); err != nil {
		return PasswordResetLink{}, storeErr(err, "user "+userID)
	}
	if redirectURL != "" {
		if err := s.checkResetRedirect(ctx, projectID, redirectURL); err != nil {
			return PasswordResetLink{}, err
		}
	}
	token, err := auth.NewSecret()
	if err != nil {
		return PasswordResetLink{}, err
	}
	now := s.now()
	r := store.PasswordReset{Hash: auth.HashSecret(token), ProjectID: projectID, UserID: userID, RedirectURL: redirectURL,
		CreatedAt: now, ExpiresAt: now.Add(PasswordResetTTL)}
	if err := s.store.PutPasswordReset(ctx, r); err != nil {
		return PasswordResetLink{}, err
	}
	return PasswordResetLink{Link: s.publicRoot() + PasswordResetPath + token, ExpiresAt: r.ExpiresAt.UTC()}, nil
}

// checkResetRedirect refuses a redirect URL no application of the project
// lists: the page must not send people anywhere a caller names.
func (s *Service) checkResetRedirect(ctx context.Context, projectID, redirectURL string) error {
	apps, err := s.store.ListApplications(ctx, projectID)
	if err != nil {
		return err
	}
	for _, a := range apps {
		if a.LoginRedirectURI == redirectURL {
			return nil
		}
		for _, u := range a.AllowedCallbackURLs {
			if u == redirectURL {
				return nil
			}
		}
	}
	return fault.Invalid("redirectUrl must be one of the allowed callback URLs or the login redirect URI of an application of this project")
}

// PasswordReset returns what a reset link is for, without using it.
// Errors: NotFound (unknown, expired, replaced or used).
func (s *Service) PasswordReset(ctx context.Context, token string) (store.PasswordReset, error) {
	r, err := s.store.GetPasswordReset(ctx, auth.HashSecret(token), s.now())
	if err != nil {
		return store.PasswordReset{}, notFoundAs(err, errResetGone)
	}
	return r, nil
}

// ResetPassword uses a reset link once: it sets the password (the rules of
// every new password), ends the user's sign-in sessions and revokes the
// user's refresh tokens. It returns the link and the revoked grants'
// families, whose access tokens the caller revokes. Errors: NotFound (the
// link), Invalid (the password).
func (s *Service) ResetPassword(ctx context.Context, token, password string) (store.PasswordReset, []string, error) {
	hash := auth.HashSecret(token)
	if _, err := s.store.GetPasswordReset(ctx, hash, s.now()); err != nil {
		return store.PasswordReset{}, nil, notFoundAs(err, errResetGone)
	}
	pw, err := s.hashPassword(password)
	if err != nil {
		return store.PasswordReset{}, nil, err
	}
	r, families, err := s.store.RedeemPasswordReset(ctx, hash, pw, s.now())
	if err != nil {
		return store.PasswordReset{}, nil, notFoundAs(err, errResetGone)
	}
	return r, families, nil
}
