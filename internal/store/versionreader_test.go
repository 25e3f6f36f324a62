package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestVersionReader: the reader on its own connection sees every
// committed change, and when PostgreSQL closes that connection the read
// is still answered (through the pool) and the next one connects again.
func TestVersionReader(t *testing.T) {
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	app := "ward_vr_" + hex.EncodeToString(b[:])
	s, err := store.OpenWith(ctx, storetest.PostgresDSN(t)+"&application_name="+app, nil, store.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	admin, err := sql.Open("pgx", storetest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	r := s.VersionReader()
	defer r.Close()

	want := func(step string) {
		t.Helper()
		pool, err := s.ChangeVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Read(ctx)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got != pool {
			t.Fatalf("%s: reader says version %d, the pool %d", step, got, pool)
		}
	}
	want("first read")
	for i := range 3 {
		if _, err := s.RecordChange(ctx, store.Change{Kind: store.ChangeProject, ProjectID: "p"}); err != nil {
			t.Fatal(err)
		}
		want("after a change " + string(rune('1'+i)))
	}
	// Only this store's connections, never another test's.
	if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left int
		if err := admin.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("connections not gone after 10 s")
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded by the deadline
	}
	if _, err := s.RecordChange(ctx, store.Change{Kind: store.ChangeProject, ProjectID: "p"}); err != nil {
		t.Fatal(err)
	}
	want("after its connection was killed")
	want("reconnected")
	r.Close()
	want("after Close (through the pool)")
}
