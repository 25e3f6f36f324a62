package store_test

import (
	"context"
	"errors"
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
