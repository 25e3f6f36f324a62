package iam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
	"golang.org/x/crypto/bcrypt"
)

// DefaultPasswordCost is the bcrypt cost of new password hashes (about a
// quarter of a second per hash on current hardware).
const DefaultPasswordCost = 12

// maxPasswordBytes is bcrypt's limit: longer input would be cut silently.
const maxPasswordBytes = 72

// Login throttling counts failures in the database, in fixed windows of
// loginWindow, so every replica sees the same counts (see loginVerdict for
// the policy).
const (
	loginWindow = 15 * time.Minute
	// maxPairFailures: failures of one account from one address before
	// that address may no longer try that account.
	maxPairFailures = 5
	// maxAddrFailures: failures from one address, over all accounts,
	// before it may try no account.
	maxAddrFailures = 20
	// maxAccountFailures: failures of one account from all addresses
	// before only addresses that have not failed may still try it.
	maxAccountFailures = 50
)

// accounts is the Service state for users, applications and logins. The
// zero value works: no profile writer, DefaultPasswordCost.
type accounts struct {
	profiles ProfileWriter // set by New, never changed
	mu       sync.Mutex
	cost     int    // bcrypt cost; 0 means DefaultPasswordCost
	dummy    []byte // a hash at cost, compared when an account is unknown
}

// SetPasswordCost sets the bcrypt cost of new password hashes (tests use
// bcrypt.MinCost). Out-of-range costs are refused.
func (s *Service) SetPasswordCost(cost int) error {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return fmt.Errorf("bcrypt cost %d is outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	s.acct.mu.Lock()
	defer s.acct.mu.Unlock()
	s.acct.cost, s.acct.dummy = cost, nil
	return nil
}

func (s *Service) passwordCost() int {
	s.acct.mu.Lock()
	defer s.acct.mu.Unlock()
	if s.acct.cost == 0 {
		return DefaultPasswordCost
	}
	return s.acct.cost
}

// dummyHash is a hash at the current cost that no password matches
// (its password is random and forgotten), so an unknown account costs a
// login as much time as a known one.
func (s *Service) dummyHash() ([]byte, error) {
	s.acct.mu.Lock()
	cost, h := s.acct.cost, s.acct.dummy
	s.acct.mu.Unlock()
	if h != nil {
		return h, nil
	}
	if cost == 0 {
		cost = DefaultPasswordCost
	}
	random, err := auth.NewSecret()
	if err != nil {
		random = "ward dummy password, never set on any account"
	}
	h, err = bcrypt.GenerateFromPassword([]byte(random), cost)
	if err != nil {
		return nil, fmt.Errorf("dummy password hash: %w", err)
	}
	s.acct.mu.Lock()
	if s.acct.cost == 0 && cost == DefaultPasswordCost || s.acct.cost == cost {
		s.acct.dummy = h // unless the cost changed meanwhile
	}
	s.acct.mu.Unlock()
	return h, nil
}

// checkPassword enforces the password rules for a new password.
func checkPassword(password string) error {
	if len(password) < MinPasswordLength || len(password) > maxPasswordBytes {
		return fault.Invalid("the password must be %d to %d characters long", MinPasswordLength, maxPasswordBytes)
	}
	return nil
}

// hashPassword checks and hashes a new password at the current cost.
func (s *Service) hashPassword(password string) (string, error) {
	if err := checkPassword(password); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.passwordCost())
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// passwordMatches compares password with hash, or with the dummy hash when
// hash is "" (unknown account, no password yet), so both take as long.
func (s *Service) passwordMatches(hash, password string) (bool, error) {
	h := []byte(hash)
	if hash == "" {
		var err error
		if h, err = s.dummyHash(); err != nil {
			return false, err
		}
	}
	if len(password) > maxPasswordBytes {
		// Compare anyway (same time), then refuse: bcrypt ignores the rest.
		_ = bcrypt.CompareHashAndPassword(h, []byte(password[:maxPasswordBytes]))
		return false, nil
	}
	return bcrypt.CompareHashAndPassword(h, []byte(password)) == nil && hash != "", nil
}

var errWrongCredentials = fault.Unauthorized("wrong email or password")

// LoginUser checks a user's email and password in a project. ip is the
// client address for throttling ("" skips the per-address limit).
// Errors: Unauthorized("wrong email or password") for any wrong credential
// (unknown email, no password yet, wrong password); TooMany after too many
// failures for the account or the address (see fault.RetryAfter).
func (s *Service) LoginUser(ctx context.Context, projectID, email, password, ip string) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	keys := newLoginKeys("user/"+projectID+"/"+email, ip)
	if err := s.loginAttempt(ctx, keys); err != nil {
		return User{}, err
	}
	u, err := s.store.GetUserByEmail(ctx, projectID, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.loginForgive(ctx, keys)
		return User{}, err
	}
	hash := u.PasswordHash
	if err != nil || u.InvitationHash != "" {
		hash = ""
	}
	if ok, err := s.passwordMatches(hash, password); err != nil || !ok || email == "" {
		if err != nil {
			s.loginForgive(ctx, keys)
			return User{}, err
		}
		return User{}, errWrongCredentials
	}
	s.loginSucceeded(ctx, keys)
	s.upgradeUserHash(ctx, u, password)
	roles, err := roleStubs(ctx, s.store, projectID, holderOf(auth.KindUser, u.ID))
	if err != nil {
		return User{}, err
	}
	return userOut(u, roles), nil
}

// upgradeUserHash rehashes a password stored at another cost than the
// current one, after a successful login (the only time it is known).
func (s *Service) upgradeUserHash(ctx context.Context, u store.User, password string) {
	cost, err := bcrypt.Cost([]byte(u.PasswordHash))
	if err != nil || cost == s.passwordCost() {
		return
	}
	h, err := s.hashPassword(password)
	if err != nil {
		return // e.g. an old password shorter than today's minimum: keep it
	}
	if err := s.store.SetUserPassword(ctx, u.ProjectID, u.ID, h); err != nil {
		s.log.WarnContext(ctx, "rehash user password", "err", err, "user", u.ID)
	}
}

// LoginDeveloper checks a developer account's email and password and
// returns its id; the project comes later, from the request header.
// Errors as LoginUser.
func (s *Service) LoginDeveloper(ctx context.Context, email, password, ip string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	keys := newLoginKeys("developer/"+email, ip)
	if err := s.loginAttempt(ctx, keys); err != nil {
		return "", err
	}
	var hash string
	id, err := s.store.GetDeveloperAccountByEmail(ctx, email)
	if err == nil {
		hash, err = s.store.DeveloperPasswordHash(ctx, id)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.loginForgive(ctx, keys)
		return "", err
	}
	if err != nil {
		hash = ""
	}
	if ok, err := s.passwordMatches(hash, password); err != nil || !ok || email == "" {
		if err != nil {
			s.loginForgive(ctx, keys)
			return "", err
		}
		return "", errWrongCredentials
	}
	s.loginSucceeded(ctx, keys)
	return id, nil
}

// SignUpPatient registers a patient user by themselves: only where the
// project has signupEnabled, with the project's default patient role.
// resource is the Patient to create as the profile (through the
// ProfileWriter). Errors: Forbidden (signup off), Conflict (no default
// patient role; email taken), Invalid, NotSupported (no ProfileWriter).
func (s *Service) SignUpPatient(ctx context.Context, projectID, email, password string, resource json.RawMessage) (User, error) {
	p, err := s.store.GetProject(ctx, projectID)
	if err != nil {
		return User{}, storeErr(err, "project "+projectID)
	}
	if !p.SignupEnabled {
		return User{}, fault.Forbidden("self-registration is not enabled for this project")
	}
	if p.DefaultPatientRoleID == "" {
		return User{}, fault.Conflict("self-registration needs the project's default patient role: set defaultPatientRoleId on the project")
	}
	email, err = normalEmail(email)
	if err != nil {
		return User{}, err
	}
	_, name, err := profileResource(resource, "Patient")
	if err != nil {
		return User{}, err
	}
	pw, err := s.hashPassword(password)
	if err != nil {
		return User{}, err
	}
	u := store.User{ProjectID: projectID, ID: newID(), Email: email, Name: firstNonEmpty(name, email), AuthMethod: AuthMethodEmail,
		PasswordHash: pw, CreatedAt: s.now()}
	return s.insertUser(ctx, newUser{u: u, roles: []string{p.DefaultPatientRoleID}, resource: resource})
}

// humanWait says a wait as a person reads it ("15 minutes", not "897
// seconds"), rounded up so that trying again then succeeds.
func humanWait(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d <= 0:
		return "a moment"
	case d < time.Minute:
		return plural(int((d+time.Second-1)/time.Second), "second")
	case d <= 90*time.Minute:
		return plural(int((d+time.Minute-1)/time.Minute), "minute")
	default:
		return plural(int((d+time.Hour-1)/time.Hour), "hour")
	}
}
