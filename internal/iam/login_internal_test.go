package iam

import (
	"context"
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

// The throttle policy as a table: counts before the attempt, and whether
// it is refused.
func TestLoginVerdict(t *testing.T) {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	start := now.Add(-5 * time.Minute) // windows end in 10 minutes
	w := func(n int) store.FailureWindow { return store.FailureWindow{Start: start, Count: n} }
	addr := func(n int) *store.FailureWindow { a := w(n); return &a }
	cases := []struct {
		name       string
		acct, pair int
		addr       *store.FailureWindow
		refused    bool
	}{
		{"clean", 0, 0, addr(0), false},
		{"pair below its limit", 4, 4, addr(4), false},
		{"pair at its limit", 5, 5, addr(5), true},
		{"account failed elsewhere, this address clean", 5, 0, addr(0), false},
		{"address sprayed many accounts", 0, 0, addr(20), true},
		{"address below its limit on other accounts", 0, 0, addr(19), false},
		{"account under wide attack, address clean", 200, 0, addr(0), false},
		{"account under wide attack, address failed elsewhere", 50, 0, addr(1), true},
		{"account under wide attack, address failed on it", 50, 1, addr(1), true},
		{"account below its ceiling, address failed elsewhere", 49, 0, addr(19), false},
		{"unknown address, pair at its limit", 5, 5, nil, true},
		{"unknown address, account under wide attack, pair clean", 50, 0, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wait := loginVerdict(now, w(c.acct), w(c.pair), c.addr)
			if c.refused != (wait > 0) {
				t.Fatalf("wait = %s, refused want %v", wait, c.refused)
			}
			if c.refused && wait != 10*time.Minute {
				t.Fatalf("wait = %s, want the window's end", wait)
			}
		})
	}
}

// Addresses are counted as the client holds them: IPv4 as is, IPv6 by /64.
func TestAddrKey(t *testing.T) {
	cases := map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"::ffff:192.0.2.1":     "192.0.2.1",
		"2001:db8:1:2::5":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"fe80::1%eth0":         "fe80::/64",
		" 192.0.2.1 ":          "192.0.2.1",
		"not an address":       "not an address",
		"":                     "",
	}
	for in, want := range cases {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
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
