package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
)

// testConsoleSessions: a session is found by its hash until it expires or
// is deleted, switches project, and a new sign-in sweeps expired rows.
func testConsoleSessions(t *testing.T, s *store.Store) {
	ctx := context.Background()
	sess := store.ConsoleSession{Hash: "h1", DeveloperID: "d1", ProjectID: "p1", ProjectName: "One",
		AccessToken: []byte{0, 1, 2, 0xff}, CSRF: "c1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.PutConsoleSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConsoleSession(ctx, sess); err == nil {
		t.Fatal("a second session under the same hash was stored")
	}
	got, err := s.GetConsoleSession(ctx, "h1", t0.Add(time.Minute))
	if err != nil || got.DeveloperID != "d1" || got.ProjectID != "p1" || got.ProjectName != "One" || got.CSRF != "c1" ||
		!bytes.Equal(got.AccessToken, sess.AccessToken) || !got.ExpiresAt.Equal(sess.ExpiresAt) || !got.CreatedAt.Equal(t0) {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if _, err := s.GetConsoleSession(ctx, "h1", t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired session: %v, want ErrNotFound", err)
	}
	if _, err := s.GetConsoleSession(ctx, "h2", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown session: %v, want ErrNotFound", err)
	}
	if err := s.SetConsoleSessionProject(ctx, "h1", "p2", "Two"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetConsoleSession(ctx, "h1", t0); got.ProjectID != "p2" || got.ProjectName != "Two" {
		t.Fatalf("after switch = %+v", got)
	}
	if err := s.SetConsoleSessionProject(ctx, "h2", "p2", "Two"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("switch an unknown session: %v", err)
	}
	// A later sign-in sweeps the expired session away.
	later := sess
	later.Hash, later.CreatedAt, later.ExpiresAt = "h3", t0.Add(2*time.Hour), t0.Add(3*time.Hour)
	if err := s.PutConsoleSession(ctx, later); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetConsoleSession(ctx, "h1", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired session kept after a sign-in: %v", err)
	}
	if err := s.DeleteConsoleSession(ctx, "h3"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetConsoleSession(ctx, "h3", t0.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("signed-out session: %v", err)
	}
	if err := s.DeleteConsoleSession(ctx, "h3"); err != nil {
		t.Fatalf("delete twice: %v", err)
	}
	mins, backlog, err := s.DeliveryActivity(ctx, "p1", t0)
	if err != nil || len(mins) != 0 || backlog != 0 {
		t.Fatalf("delivery activity of a project without subscriptions = %v, %d, %v", mins, backlog, err)
	}
}
