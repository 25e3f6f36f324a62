// Package storetest opens fresh stores for tests: SQLite in a temp dir and,
// when reachable, PostgreSQL in a schema of its own.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
)

// PostgresURL is the server used by tests: $WARD_TEST_POSTGRES, else the
// machine's local PostgreSQL.
func PostgresURL() string {
	if u := os.Getenv("WARD_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Backend names a database a test runs against.
type Backend struct {
	Name string
	// DSN returns a fresh database for one test (a file path or a
	// postgres:// URL with its own schema), or skips the test.
	DSN func(t testing.TB) string
}

// Backends is every database the suites run on.
func Backends() []Backend {
	return []Backend{{Name: "sqlite", DSN: SQLiteDSN}, {Name: "postgres", DSN: PostgresDSN}}
}

// SQLiteDSN returns a database file in the test's temp dir.
func SQLiteDSN(t testing.TB) string {
	return filepath.Join(t.TempDir(), "ward.db")
}

// PostgresDSN creates a schema for this test and returns a URL that uses it.
// Outside CI a missing server skips the test; in CI (CI=true) it fails.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := PostgresURL()
	admin, err := sql.Open("pgx", base)
	if err == nil {
		err = whileFull(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return admin.PingContext(ctx)
		})
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required in CI but unreachable at %s: %v", base, err)
		}
		t.Skipf("PostgreSQL unreachable at %s (not CI, so skipping): %v", base, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open returns a migrated store on a fresh database, closed at test end.
func Open(t testing.TB, b Backend) *store.Store {
	t.Helper()
	dsn := b.DSN(t)
	var s *store.Store
	err := whileFull(func() (err error) {
		s, err = store.Open(context.Background(), dsn, nil)
		return err
	})
	if err != nil {
		t.Fatalf("open %s store: %v", b.Name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// whileFull runs open again, for up to a minute, while PostgreSQL refuses
// connections because all its slots are taken (SQLSTATE 53300): test
// packages run in parallel, each with pools of its own, and a moment
// later some have closed theirs.
func whileFull(open func() error) error {
	deadline := time.Now().Add(time.Minute)
	wait := 50 * time.Millisecond
	for {
		err := open()
		if err == nil || !strings.Contains(err.Error(), "SQLSTATE 53300") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait) // a backoff, not a synchronisation: nothing here can be waited on
		wait = min(2*wait, time.Second)
	}
}
