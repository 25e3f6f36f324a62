package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestPostgresConnectionsKilled: PostgreSQL closes the pool's idle
// connections (pg_terminate_backend: a restart, a failover, an idle
// timeout) between requests; the next reads and writes still succeed, as
// the first statement on a dead connection is retried on a new one when
// nothing was sent.
func TestPostgresConnectionsKilled(t *testing.T) {
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	app := "ward_kill_" + hex.EncodeToString(b[:])
	dsn := storetest.PostgresDSN(t) + "&application_name=" + app
	var logs bytes.Buffer
	s, err := store.OpenWith(ctx, dsn, slog.New(slog.NewTextHandler(&logs, nil)), store.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	admin, err := sql.Open("pgx", storetest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	kill := func() {
		t.Helper()
		// Only this test's connections, never another test's.
		var n int
		if err := admin.QueryRow(`SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("no connection to kill")
		}
		// Termination is asynchronous: wait until they are gone.
		deadline := time.Now().Add(10 * time.Second)
		for {
			var left int
			if err := admin.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&left); err != nil {
				t.Fatal(err)
			}
			if left == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d connections left after pg_terminate_backend", left)
			}
			time.Sleep(time.Millisecond) // polling interval
		}
	}
	if err := s.CreateProject(ctx, store.Project{ID: "p", Name: "p", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	// warm uses the pool's connection twice: pgx pings a connection on its
	// first reuse (or after a second idle), which would find it dead
	// before any statement does; a busy server's connections are warm.
	warm := func() {
		t.Helper()
		for range 2 {
			if _, err := s.GetProject(ctx, "p"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, tc := range []struct {
		name string
		op   func(id string) error
	}{
		{"lone write", func(id string) error {
			return s.CreateProject(ctx, store.Project{ID: id, Name: id, CreatedAt: t0})
		}},
		{"lone read", func(string) error { _, err := s.GetProject(ctx, "p"); return err }},
		{"list", func(string) error { _, err := s.ListProjects(ctx); return err }},
		{"transaction", func(string) error {
			return s.WithTx(ctx, func(tx *store.Tx) error {
				p, err := tx.GetProject(ctx, "p")
				if err != nil {
					return err
				}
				p.Description = "d"
				return tx.UpdateProject(ctx, p)
			})
		}},
	} {
		warm()
		before := strings.Count(logs.String(), "retrying")
		kill()
		if err := tc.op(fmt.Sprintf("p%d", i)); err != nil {
			t.Fatalf("%s after the connections were killed: %v", tc.name, err)
		}
		if strings.Count(logs.String(), "retrying") == before {
			t.Errorf("%s: no retry: the connection was not found dead", tc.name)
		}
	}
}
