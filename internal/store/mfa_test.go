package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
)

// testUserMFA: an enrolment starts unconfirmed and may be replaced until a
// code confirms it; a step is used once even by concurrent callers (two
// replicas given the same code); a reset link is used once by concurrent
// callers, replaced by a newer one, and its use ends the user's sessions
// and refresh tokens; deleting the user removes both.
func testUserMFA(t *testing.T, s *store.Store) {
	ctx := context.Background()
	mkProject(t, s, "p1")
	if err := s.CreateUser(ctx, store.User{ProjectID: "p1", ID: "u1", Email: "u1@example.org", AuthMethod: "email", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	m := store.UserMFA{ProjectID: "p1", UserID: "u1", Sealed: []byte("sealed-1"), CreatedAt: t0}
	if err := s.StartUserMFA(ctx, m); err != nil {
		t.Fatal(err)
	}
	m.Sealed = []byte("sealed-2")
	if err := s.StartUserMFA(ctx, m); err != nil {
		t.Fatalf("replace an unconfirmed enrolment: %v", err)
	}
	if got, err := s.GetUserMFA(ctx, "p1", "u1"); err != nil || string(got.Sealed) != "sealed-2" || !got.Confirmed.IsZero() {
		t.Fatalf("enrolment = %+v, %v", got, err)
	}
	if _, err := s.GetUserMFA(ctx, "p2", "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another project's enrolment: %v", err)
	}

	// Eight callers with the same step: exactly one wins.
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = s.UseMFAStep(ctx, "p1", "u1", 100, t0) }()
	}
	wg.Wait()
	won := 0
	for _, err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrReused):
			t.Fatalf("use step: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d callers used step 100", won)
	}
	if err := s.UseMFAStep(ctx, "p1", "u1", 99, t0); !errors.Is(err, store.ErrReused) {
		t.Fatalf("an older step: %v", err)
	}
	if got, _ := s.GetUserMFA(ctx, "p1", "u1"); got.Confirmed.IsZero() || got.LastStep != 100 {
		t.Fatalf("after a code: %+v", got)
	}
	if err := s.StartUserMFA(ctx, m); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replace a confirmed enrolment: %v", err)
	}
	if err := s.UseMFAStep(ctx, "p1", "nobody", 1, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no enrolment: %v", err)
	}
	if ok, err := s.DeleteUserMFA(ctx, "p1", "u1"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if ok, err := s.DeleteUserMFA(ctx, "p1", "u1"); ok || err != nil {
		t.Fatalf("delete twice: %v %v", ok, err)
	}

	// Reset links.
	reset := func(hash string) store.PasswordReset {
		return store.PasswordReset{Hash: hash, ProjectID: "p1", UserID: "u1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	}
	for _, h := range []string{"old", "new"} {
		if err := s.PutPasswordReset(ctx, reset(h)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.GetPasswordReset(ctx, "old", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replaced link: %v", err)
	}
	if _, err := s.GetPasswordReset(ctx, "new", t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired link: %v", err)
	}
	if err := s.PutOAuthSession(ctx, "sess", store.OAuthSession{ProjectID: "p1", UserID: "u1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRefreshToken(ctx, store.RefreshToken{Hash: "rt1", ProjectID: "p1", Family: "f1", ClientID: "c", UserID: "u1",
		Grant: []byte("{}"), ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	used, families := 0, []string(nil)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, fams, err := s.RedeemPasswordReset(ctx, "new", "hash", t0)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				used++
				families = fams
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("redeem: %v", err)
			}
		}()
	}
	wg.Wait()
	if used != 1 || len(families) != 1 || families[0] != "f1" {
		t.Fatalf("link used %d times, families %v", used, families)
	}
	if u, _ := s.GetUser(ctx, "p1", "u1"); u.PasswordHash != "hash" {
		t.Fatalf("password hash %q", u.PasswordHash)
	}
	if _, err := s.GetOAuthSession(ctx, "sess", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session after reset: %v", err)
	}
	if _, err := s.UseRefreshToken(ctx, "rt1", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refresh token after reset: %v", err)
	}

	// Deleting the user removes its enrolment and links.
	if err := s.StartUserMFA(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPasswordReset(ctx, reset("last")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "p1", "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUserMFA(ctx, "p1", "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("enrolment of a deleted user: %v", err)
	}
	if _, err := s.GetPasswordReset(ctx, "last", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("link of a deleted user: %v", err)
	}
}
