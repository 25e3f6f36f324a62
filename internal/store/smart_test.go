package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
)

// testOAuthGrants: a code works once and not after it expires; refresh
// tokens rotate, a second use revokes the family and names its access
// tokens; revocation by hash finds the family within the project only.
func testOAuthGrants(t *testing.T, s *store.Store) {
	ctx := context.Background()
	now := time.Now()
	if err := s.PutOAuthCode(ctx, "c1", "p1", []byte(`{"a":1}`), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOAuthCode(ctx, "c2", "p1", []byte(`{}`), now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if p, g, err := s.TakeOAuthCode(ctx, "c1", now); err != nil || p != "p1" || string(g) != `{"a":1}` {
		t.Fatalf("take: %q %s %v", p, g, err)
	}
	for _, h := range []string{"c1", "c2", "nope"} {
		if _, _, err := s.TakeOAuthCode(ctx, h, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("take %s again/expired/unknown: %v", h, err)
		}
	}

	put := func(hash, family, jti string) {
		if err := s.PutRefreshToken(ctx, store.RefreshToken{Hash: hash, ProjectID: "p1", Family: family, ClientID: "app",
			Grant: []byte(`{}`), ExpiresAt: now.Add(time.Hour), AccessJTI: jti, AccessExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	put("r1", "f1", "j1")
	if tok, err := s.UseRefreshToken(ctx, "r1", now); err != nil || tok.Family != "f1" {
		t.Fatalf("first use: %+v %v", tok, err)
	}
	put("r2", "f1", "j2")
	if _, err := s.UseRefreshToken(ctx, "r1", now); !errors.Is(err, store.ErrReused) {
		t.Fatalf("second use: %v, want ErrReused", err)
	}
	if _, err := s.UseRefreshToken(ctx, "r2", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rotated token after reuse: %v, want revoked", err)
	}
	toks, err := s.FamilyAccessTokens(ctx, "f1", now)
	if err != nil || len(toks) != 2 {
		t.Fatalf("family access tokens: %v %v", toks, err)
	}

	put("r3", "f3", "j3")
	if fam, err := s.RevokeRefreshToken(ctx, "other-project", "", "r3", now); err != nil || fam != "" {
		t.Fatalf("revoke from another project: %q %v", fam, err)
	}
	if fam, err := s.RevokeRefreshToken(ctx, "p1", "other-app", "r3", now); err != nil || fam != "" {
		t.Fatalf("revoke by another application: %q %v", fam, err)
	}
	if _, err := s.UseRefreshToken(ctx, "r3", now.Add(-time.Second)); err != nil {
		t.Fatalf("another application's revoke touched the token: %v", err)
	}
	put("r4", "f3", "j4")
	if fam, err := s.RevokeRefreshToken(ctx, "p1", "app", "r4", now); err != nil || fam != "f3" {
		t.Fatalf("revoke: %q %v", fam, err)
	}
	if _, err := s.UseRefreshToken(ctx, "r4", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoked token: %v", err)
	}
}

// testSignIn: a session is found until it expires or is deleted; a consent
// is remembered per user and client until withdrawn, and withdrawing it
// revokes that user's refresh tokens of the client only.
func testSignIn(t *testing.T, s *store.Store) {
	ctx := context.Background()
	now := time.Now()
	if err := s.PutOAuthSession(ctx, "s1", store.OAuthSession{ProjectID: "p1", UserID: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if sess, err := s.GetOAuthSession(ctx, "s1", now); err != nil || sess.UserID != "u1" || sess.ProjectID != "p1" {
		t.Fatalf("get session: %+v %v", sess, err)
	}
	if _, err := s.GetOAuthSession(ctx, "s1", now.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired session: %v", err)
	}
	if err := s.DeleteOAuthSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOAuthSession(ctx, "s1", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted session: %v", err)
	}

	for _, c := range []store.Consent{{ClientID: "app", Scopes: []string{"a", "b"}, GrantedAt: now}, {ClientID: "app", Scopes: []string{"a", "c"}, GrantedAt: now},
		{ClientID: "other", Scopes: []string{"x"}, GrantedAt: now.Add(-time.Hour)}} {
		if err := s.PutConsent(ctx, "p1", "u1", c); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := s.GetConsent(ctx, "p1", "u1", "app"); err != nil || strings.Join(c.Scopes, " ") != "a c" {
		t.Fatalf("get consent (replaced): %+v %v", c, err)
	}
	if _, err := s.GetConsent(ctx, "p1", "u2", "app"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another user's consent: %v", err)
	}
	if list, err := s.ListConsents(ctx, "p1", "u1"); err != nil || len(list) != 2 || list[0].ClientID != "app" {
		t.Fatalf("list consents: %+v %v", list, err)
	}

	put := func(hash, family, client, user string) {
		if err := s.PutRefreshToken(ctx, store.RefreshToken{Hash: hash, ProjectID: "p1", Family: family, ClientID: client, UserID: user,
			Grant: []byte(`{}`), ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	put("w1", "wf1", "app", "u1")
	put("w2", "wf2", "app", "u2")
	put("w3", "wf3", "other", "u1")
	fams, err := s.WithdrawConsent(ctx, "p1", "u1", "app", now)
	if err != nil || len(fams) != 1 || fams[0] != "wf1" {
		t.Fatalf("withdraw: %v %v", fams, err)
	}
	if _, err := s.GetConsent(ctx, "p1", "u1", "app"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("withdrawn consent: %v", err)
	}
	if _, err := s.UseRefreshToken(ctx, "w1", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("withdrawn app's token: %v, want revoked", err)
	}
	for _, h := range []string{"w2", "w3"} {
		if _, err := s.UseRefreshToken(ctx, h, now); err != nil {
			t.Errorf("token %s of another user or app: %v", h, err)
		}
	}
	if list, err := s.ListConsents(ctx, "p1", "u1"); err != nil || len(list) != 1 || list[0].ClientID != "other" {
		t.Fatalf("list after withdraw: %+v %v", list, err)
	}
}
