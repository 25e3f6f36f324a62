package iam

import (
	"context"
	"errors"
	"fmt"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/totp"
)

// TOTP multi-factor sign-in for users (RFC 6238): a user enrols from
// Ward's pages (the secret shown once, confirmed by a first code), then
// signs in with a code after the password; an administrator's resetMfa
// removes the enrolment (recovery). Secrets are sealed with the master
// key; codes are throttled as passwords are and work once.

// MFAEnrolment is a new TOTP secret, shown once: Key to type, URI for a
// QR code or a link an authenticator app opens.
type MFAEnrolment struct {
	Key string `json:"key"`
	URI string `json:"uri"`
}

var errWrongCode = fault.Unauthorized("wrong or already used code")

func (s *Service) mfaSealer() (*seal.Sealer, error) {
	if s.sealer == nil {
		return nil, fault.NotSupported("multi-factor sign-in needs the server's secrets key, which this server was not given")
	}
	return s.sealer, nil
}

// MFAAvailable reports whether users can enrol (the server has a secrets key).
func (s *Service) MFAAvailable() bool { return s.sealer != nil }

// MFAEnrolled reports whether the user has a confirmed TOTP enrolment.
func (s *Service) MFAEnrolled(ctx context.Context, projectID, userID string) (bool, error) {
	m, err := s.store.GetUserMFA(ctx, projectID, userID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !m.Confirmed.IsZero(), nil
}

// StartMFA makes a new TOTP secret for the user, unconfirmed until
// CheckMFA accepts a code of it (replacing an unconfirmed one). account
// names the entry in the app (the email). Errors: NotFound (no such
// user), Conflict (already enrolled: an administrator resets it first),
// NotSupported (no secrets key).
func (s *Service) StartMFA(ctx context.Context, projectID, userID, account string) (MFAEnrolment, error) {
	sealer, err := s.mfaSealer()
	if err != nil {
		return MFAEnrolment{}, err
	}
	if _, err := s.store.GetUser(ctx, projectID, userID); err != nil {
		return MFAEnrolment{}, storeErr(err, "user "+userID)
	}
	secret, err := totp.NewSecret()
	if err != nil {
		return MFAEnrolment{}, err
	}
	err = s.store.WithTx(ctx, func(tx *store.Tx) error {
		if err := seal.Fence(ctx, tx, sealer); err != nil {
			return err
		}
		return tx.StartUserMFA(ctx, store.UserMFA{ProjectID: projectID, UserID: userID,
			Sealed: sealer.Seal(seal.MFASecret(projectID, userID), secret), CreatedAt: s.now()})
	})
	if errors.Is(err, store.ErrConflict) {
		return MFAEnrolment{}, fault.Conflict("two-step sign-in is already set up for this account")
	}
	if err != nil {
		return MFAEnrolment{}, err
	}
	return MFAEnrolment{Key: totp.Key(secret), URI: totp.URI(secret, s.mfaIssuer(ctx, projectID), account)}, nil
}

// PendingMFA shows again the secret of the user's unconfirmed enrolment
// (a page asking for its first code, after a wrong one). Errors: NotFound
// (none, or already confirmed: a confirmed secret is never shown again).
func (s *Service) PendingMFA(ctx context.Context, projectID, userID, account string) (MFAEnrolment, error) {
	sealer, err := s.mfaSealer()
	if err != nil {
		return MFAEnrolment{}, err
	}
	gone := fault.NotFound("no two-step sign-in is being set up for this account")
	m, err := s.store.GetUserMFA(ctx, projectID, userID)
	if err != nil {
		return MFAEnrolment{}, notFoundAs(err, gone)
	}
	if !m.Confirmed.IsZero() {
		return MFAEnrolment{}, gone
	}
	secret, err := sealer.Open(seal.MFASecret(projectID, userID), m.Sealed)
	if err != nil {
		return MFAEnrolment{}, fmt.Errorf("mfa secret: %w", err)
	}
	return MFAEnrolment{Key: totp.Key(secret), URI: totp.URI(secret, s.mfaIssuer(ctx, projectID), account)}, nil
}

// mfaIssuer names the project in authenticator apps.
func (s *Service) mfaIssuer(ctx context.Context, projectID string) string {
	if p, err := s.store.GetProject(ctx, projectID); err == nil && p.Name != "" {
		return p.Name
	}
	return "Ward"
}

// CheckMFA checks a code of the user's TOTP secret and, the first time,
// confirms the enrolment. A code works once (on any replica); failures
// count in the sign-in throttle, per user and per client address ip.
// Errors: Unauthorized (wrong or reused code, or no enrolment), TooMany.
func (s *Service) CheckMFA(ctx context.Context, projectID, userID, code, ip string) error {
	keys := newLoginKeys("mfa/"+projectID+"/"+userID, ip)
	if err := s.loginAttempt(ctx, keys); err != nil {
		return err
	}
	ok, err := s.checkCode(ctx, projectID, userID, code)
	if err != nil {
		s.loginForgive(ctx, keys)
		return err
	}
	if !ok {
		return errWrongCode
	}
	s.loginSucceeded(ctx, keys)
	return nil
}

// checkCode is CheckMFA without the throttle: false for a wrong code, a
// code already used, or no enrolment.
func (s *Service) checkCode(ctx context.Context, projectID, userID, code string) (bool, error) {
	sealer, err := s.mfaSealer()
	if err != nil {
		return false, err
	}
	m, err := s.store.GetUserMFA(ctx, projectID, userID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	secret, err := sealer.Open(seal.MFASecret(projectID, userID), m.Sealed)
	if err != nil {
		return false, fmt.Errorf("mfa secret: %w", err)
	}
	step, ok := totp.Match(secret, code, s.now())
	if !ok {
		return false, nil
	}
	err = s.store.UseMFAStep(ctx, projectID, userID, step, s.now())
	if errors.Is(err, store.ErrReused) || errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// ResetMFA removes a user's TOTP enrolment (an administrator's recovery):
// the user signs in with the password alone, and may enrol again.
// Resetting a user without one is not an error. Errors: NotFound.
func (s *Service) ResetMFA(ctx context.Context, projectID, userID string) error {
	if _, err := s.store.GetUser(ctx, projectID, userID); err != nil {
		return storeErr(err, "user "+userID)
	}
	if _, err := s.store.DeleteUserMFA(ctx, projectID, userID); err != nil {
		return err
	}
	return nil
}
