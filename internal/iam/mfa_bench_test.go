package iam_test

import (
	"context"
	"testing"

	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/totp"
)

// BenchmarkSignInSecondStep measures what a TOTP code adds to a user's
// sign-in: "password" is LoginUser at the default bcrypt cost (the peer),
// "password+code" adds CheckMFA, "code" is CheckMFA alone (its throttle
// counts and the single-use step are database writes). The clock moves
// one step per code, so each is fresh. Run:
//
//	go test -run '^$' -bench SignInSecondStep -benchtime 20x ./internal/iam/
func BenchmarkSignInSecondStep(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			f := newMFAFixture(b, be)
			ctx := context.Background()
			if err := f.svc.SetPasswordCost(iam.DefaultPasswordCost); err != nil {
				b.Fatal(err)
			}
			e, err := f.svc.StartMFA(ctx, f.project, f.user, "ann@example.org")
			if err != nil {
				b.Fatal(err)
			}
			secret := secretOf(b, e)
			code := func() string {
				f.clock.advance(totp.Period)
				return totp.Code(secret, totp.Step(f.clock.now()))
			}
			if err := f.svc.CheckMFA(ctx, f.project, f.user, code(), "192.0.2.1"); err != nil {
				b.Fatal(err)
			}
			login := func(b *testing.B) {
				if _, err := f.svc.LoginUser(ctx, f.project, "ann@example.org", "first password", "192.0.2.1"); err != nil {
					b.Fatal(err)
				}
			}
			login(b) // rehashes the password at the default cost
			b.Run("password", func(b *testing.B) {
				for range b.N {
					login(b)
				}
			})
			b.Run("password+code", func(b *testing.B) {
				for range b.N {
					login(b)
					if err := f.svc.CheckMFA(ctx, f.project, f.user, code(), "192.0.2.1"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("code", func(b *testing.B) {
				for range b.N {
					c := code()
					if err := f.svc.CheckMFA(ctx, f.project, f.user, c, "192.0.2.1"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
