package iam

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
	"golang.org/x/crypto/bcrypt"
)

// An unknown account is compared against a hash of the current cost, so it
// takes as long as a known one.
func TestDummyHashFollowsCost(t *testing.T) {
	s := &Service{}
	if s.passwordCost() != DefaultPasswordCost {
		t.Fatalf("zero Service cost = %d", s.passwordCost())
	}
	for _, cost := range []int{bcrypt.MinCost, 6, bcrypt.MinCost} {
		if err := s.SetPasswordCost(cost); err != nil {
			t.Fatal(err)
		}
		h, err := s.dummyHash()
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := bcrypt.Cost(h); got != cost {
			t.Fatalf("dummy hash cost = %d, want %d", got, cost)
		}
		if ok, err := s.passwordMatches("", ""); ok || err != nil {
			t.Fatalf("empty hash matched: %v %v", ok, err)
		}
	}
}

// The throttle's maps stay bounded however many keys are tried.
func TestThrottleStaysBounded(t *testing.T) {
	var th throttle
	now := time.Unix(0, 0)
	for i := range maxThrottleKeys + 10 {
		if err := th.attempt(now, fmt.Sprintf("acct-%d", i), fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)); err != nil {
			t.Fatal(err)
		}
	}
	if len(th.accounts) > maxThrottleKeys || len(th.ips) > maxThrottleKeys {
		t.Fatalf("throttle holds %d accounts and %d addresses", len(th.accounts), len(th.ips))
	}
	// When full, expired windows are swept first.
	for i := 0; len(th.accounts) < maxThrottleKeys; i++ {
		th.attempt(now, fmt.Sprintf("more-%d", i), "")
	}
	th.attempt(now.Add(loginWindow), "fresh", "")
	if len(th.accounts) != 1 {
		t.Fatalf("expired entries not swept: %d left", len(th.accounts))
	}
}

// A password stored at an old cost is rehashed at the current one on the
// next successful login.
func TestLoginUpgradesHashCost(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, storetest.Backends()[0])
	s := New(st, "http://x/invite/", time.Now, Deps{})
	creds, err := s.CreateProject(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	old, _ := bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), bcrypt.MinCost)
	u := store.User{ProjectID: creds.ProjectID, ID: "u1", Email: "a@example.org", AuthMethod: AuthMethodEmail, PasswordHash: string(old), CreatedAt: time.Now()}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPasswordCost(bcrypt.MinCost + 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginUser(ctx, creds.ProjectID, "a@example.org", "correct horse battery staple", ""); err != nil {
		t.Fatal(err)
	}
	got, _ := st.GetUser(ctx, creds.ProjectID, "u1")
	if cost, _ := bcrypt.Cost([]byte(got.PasswordHash)); cost != bcrypt.MinCost+1 {
		t.Fatalf("cost after login = %d, want %d", cost, bcrypt.MinCost+1)
	}
	if _, err := s.LoginUser(ctx, creds.ProjectID, "a@example.org", "correct horse battery staple", ""); err != nil {
		t.Fatalf("login with the rehashed password: %v", err)
	}
}
