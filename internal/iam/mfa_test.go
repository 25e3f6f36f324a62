package iam_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/seal/sealtest"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/totp"
	"golang.org/x/crypto/bcrypt"
)

// mfaFixture is a fixture whose Service has a secrets key, with one user
// who has a password.
type mfaFixture struct {
	*fixture
	sealer *seal.Sealer
	user   string
}

func newMFAFixture(t testing.TB, b storetest.Backend) *mfaFixture {
	t.Helper()
	f := newFixture(t, b)
	sealer := sealtest.Setup(t, f.st)
	f.svc = iam.New(f.st, "http://ward.test/invite/", f.clock.now, iam.Deps{Profiles: f.profiles, Sealer: sealer})
	if err := f.svc.SetPasswordCost(bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	app := f.mkApp(t)
	role := f.mkRole(t, "r", `{"rule":[]}`)
	inv, err := f.svc.InviteUser(context.Background(), f.project, iam.UserInvite{ApplicationID: app, Email: ptr("ann@example.org"),
		Profile: ptr("Patient/1"), Roles: &[]string{role}})
	if err != nil {
		t.Fatal(err)
	}
	token := inv.InvitationURL[strings.LastIndex(inv.InvitationURL, "/")+1:]
	if _, err := f.svc.AcceptUserInvitation(context.Background(), token, "first password"); err != nil {
		t.Fatal(err)
	}
	return &mfaFixture{fixture: f, sealer: sealer, user: inv.ID}
}

// secretOf reads the enrolment's secret back from the key URI.
func secretOf(t testing.TB, e iam.MFAEnrolment) []byte {
	t.Helper()
	i := strings.Index(e.URI, "secret=")
	if i < 0 {
		t.Fatalf("no secret in %s", e.URI)
	}
	s := e.URI[i+len("secret="):]
	if j := strings.IndexByte(s, '&'); j >= 0 {
		s = s[:j]
	}
	b, err := base32NoPad(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMFA(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newMFAFixture(t, b)
			ctx := context.Background()
			e, err := f.svc.StartMFA(ctx, f.project, f.user, "ann@example.org")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(e.URI, "otpauth://totp/p:ann@example.org?") {
				t.Fatalf("URI = %s", e.URI)
			}
			secret := secretOf(t, e)
			if strings.ReplaceAll(e.Key, " ", "") != strings.Split(strings.Split(e.URI, "secret=")[1], "&")[0] {
				t.Fatalf("key %q is not the URI's secret", e.Key)
			}
			// Sealed at rest: the row holds no byte run of the secret.
			m, err := f.st.GetUserMFA(ctx, f.project, f.user)
			if err != nil || bytes.Contains(m.Sealed, secret) || !m.Confirmed.IsZero() {
				t.Fatalf("stored enrolment %+v, %v", m, err)
			}
			if on, _ := f.svc.MFAEnrolled(ctx, f.project, f.user); on {
				t.Fatal("enrolled before a code confirmed it")
			}
			code := func() string { return totp.Code(secret, totp.Step(f.clock.now())) }

			// Confirm with the current code; the same code again is refused.
			if err := f.svc.CheckMFA(ctx, f.project, f.user, code(), "192.0.2.1"); err != nil {
				t.Fatalf("confirm: %v", err)
			}
			if on, _ := f.svc.MFAEnrolled(ctx, f.project, f.user); !on {
				t.Fatal("not enrolled after a good code")
			}
			err = f.svc.CheckMFA(ctx, f.project, f.user, code(), "192.0.2.1")
			wantKind(t, err, fault.ErrUnauthorized, "already used")
			// The previous step's code is in the window, but older than
			// the one used: refused too.
			err = f.svc.CheckMFA(ctx, f.project, f.user, totp.Code(secret, totp.Step(f.clock.now())-1), "192.0.2.1")
			wantKind(t, err, fault.ErrUnauthorized, "wrong")
			// A second enrolment is refused while one is confirmed.
			_, err = f.svc.StartMFA(ctx, f.project, f.user, "ann@example.org")
			wantKind(t, err, fault.ErrConflict, "already")

			// Next step: a fresh code works.
			f.clock.advance(totp.Period)
			if err := f.svc.CheckMFA(ctx, f.project, f.user, code(), "192.0.2.1"); err != nil {
				t.Fatalf("next code: %v", err)
			}

			// Wrong codes from one address: throttled after a few, while
			// another address may still try (and succeed).
			f.clock.advance(totp.Period)
			var throttled error
			for i := 0; i < 10 && throttled == nil; i++ {
				if err := f.svc.CheckMFA(ctx, f.project, f.user, "000000", "192.0.2.66"); errors.Is(err, fault.ErrTooMany) {
					throttled = err
				} else if !errors.Is(err, fault.ErrUnauthorized) {
					t.Fatalf("wrong code %d: %v", i, err)
				}
			}
			if throttled == nil {
				t.Fatal("wrong codes never throttled")
			}
			err = f.svc.CheckMFA(ctx, f.project, f.user, code(), "192.0.2.66")
			wantKind(t, err, fault.ErrTooMany, "too many")
			if err := f.svc.CheckMFA(ctx, f.project, f.user, code(), "192.0.2.1"); err != nil {
				t.Fatalf("other address: %v", err)
			}

			// Rotating the master key re-seals the secret: codes still work.
			next, err := seal.New(seal.NewKey())
			if err != nil {
				t.Fatal(err)
			}
			done, err := seal.Rotate(ctx, f.st, f.sealer, next)
			if err != nil || done[store.SealedMFASecret] != 1 {
				t.Fatalf("rotate: %v %v", done, err)
			}
			rotated := iam.New(f.st, "http://ward.test/invite/", f.clock.now, iam.Deps{Sealer: next})
			f.clock.advance(totp.Period)
			if err := rotated.CheckMFA(ctx, f.project, f.user, code(), "192.0.2.1"); err != nil {
				t.Fatalf("after rotation: %v", err)
			}

			// Another project's id is not found; reset removes the enrolment.
			other, err := f.svc.CreateProject(ctx, "other")
			if err != nil {
				t.Fatal(err)
			}
			wantKind(t, f.svc.ResetMFA(ctx, other.ProjectID, f.user), fault.ErrNotFound, "not found")
			if on, _ := f.svc.MFAEnrolled(ctx, f.project, f.user); !on {
				t.Fatal("another project's reset removed the enrolment")
			}
			if err := f.svc.ResetMFA(ctx, f.project, f.user); err != nil {
				t.Fatal(err)
			}
			if on, _ := f.svc.MFAEnrolled(ctx, f.project, f.user); on {
				t.Fatal("still enrolled after reset")
			}
			f.clock.advance(totp.Period)
			wantKind(t, f.svc.CheckMFA(ctx, f.project, f.user, code(), "192.0.2.1"), fault.ErrUnauthorized, "wrong")
			if err := f.svc.ResetMFA(ctx, f.project, f.user); err != nil {
				t.Fatalf("reset twice: %v", err)
			}
		})
	}
}

func TestMFANeedsSecretsKey(t *testing.T) {
	f := sqliteFixture(t)
	_, err := f.svc.StartMFA(context.Background(), f.project, "u", "a@example.org")
	wantKind(t, err, fault.ErrNotSupported, "secrets key")
}

func TestPasswordResetLink(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newMFAFixture(t, b)
			ctx := context.Background()
			tokenOf := func(l iam.PasswordResetLink) string {
				t.Helper()
				tok, ok := strings.CutPrefix(l.Link, "http://ward.test/oauth/reset/")
				if !ok || len(tok) < 40 {
					t.Fatalf("link %q", l.Link)
				}
				return tok
			}
			first, err := f.svc.CreatePasswordResetLink(ctx, f.project, f.user, "")
			if err != nil {
				t.Fatal(err)
			}
			second, err := f.svc.CreatePasswordResetLink(ctx, f.project, f.user, "")
			if err != nil {
				t.Fatal(err)
			}
			// A later link replaces the earlier one.
			_, _, err = f.svc.ResetPassword(ctx, tokenOf(first), "a new password")
			wantKind(t, err, fault.ErrNotFound, "unknown")

			// A session and a refresh token of the user end with the reset.
			now := f.clock.now()
			if err := f.st.PutOAuthSession(ctx, "sess", store.OAuthSession{ProjectID: f.project, UserID: f.user, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := f.st.PutRefreshToken(ctx, store.RefreshToken{Hash: "rt", ProjectID: f.project, Family: "fam", ClientID: "c", UserID: f.user,
				Grant: []byte("{}"), ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			// The password rules hold, and a refused password leaves the link usable.
			_, _, err = f.svc.ResetPassword(ctx, tokenOf(second), "short")
			wantKind(t, err, fault.ErrInvalid, "password")
			r, families, err := f.svc.ResetPassword(ctx, tokenOf(second), "a new password")
			if err != nil || r.UserID != f.user || len(families) != 1 || families[0] != "fam" {
				t.Fatalf("reset: %+v %v %v", r, families, err)
			}
			if _, err := f.st.GetOAuthSession(ctx, "sess", now); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("session survived the reset: %v", err)
			}
			if _, err := f.st.UseRefreshToken(ctx, "rt", now); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("refresh token survived the reset: %v", err)
			}
			if _, err := f.svc.LoginUser(ctx, f.project, "ann@example.org", "first password", ""); !errors.Is(err, fault.ErrUnauthorized) {
				t.Fatalf("old password still works: %v", err)
			}
			if _, err := f.svc.LoginUser(ctx, f.project, "ann@example.org", "a new password", ""); err != nil {
				t.Fatalf("new password: %v", err)
			}
			// Single use.
			_, _, err = f.svc.ResetPassword(ctx, tokenOf(second), "a third password")
			wantKind(t, err, fault.ErrNotFound, "already used")

			// Expiry.
			third, err := f.svc.CreatePasswordResetLink(ctx, f.project, f.user, "")
			if err != nil {
				t.Fatal(err)
			}
			f.clock.advance(iam.PasswordResetTTL + time.Second)
			_, err = f.svc.PasswordReset(ctx, tokenOf(third))
			wantKind(t, err, fault.ErrNotFound, "expired")
			_, _, err = f.svc.ResetPassword(ctx, tokenOf(third), "a third password")
			wantKind(t, err, fault.ErrNotFound, "expired")

			// Another project's user is not found; a redirect must be an
			// application's.
			other, err := f.svc.CreateProject(ctx, "other")
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.svc.CreatePasswordResetLink(ctx, other.ProjectID, f.user, "")
			wantKind(t, err, fault.ErrNotFound, "not found")
			_, err = f.svc.CreatePasswordResetLink(ctx, f.project, f.user, "https://evil.example/")
			wantKind(t, err, fault.ErrInvalid, "redirectUrl")
		})
	}
}

func base32NoPad(s string) ([]byte, error) {
	return base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
}
