package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed migrations
var migrationFiles embed.FS

// migrate applies the embedded migrations of the store's dialect that have not
// run yet, each in its own transaction.
func (s *Store) migrate(ctx context.Context) error { return s.migrateUpTo(ctx, "") }

// migrateUpTo is migrate stopping after version last ("" for all): tests
// build a database as an older release left it.
func (s *Store) migrateUpTo(ctx context.Context, last string) error {
	if s.dialect == Postgres {
		// Several replicas may start at once: serialise their migrations.
		// The lock belongs to one session, so hold it on a dedicated connection.
		conn, err := s.write.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7262001)`); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7262001)`)
	}
	if _, err := s.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	dir := "migrations/" + string(s.dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return fmt.Errorf("read migrations: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(name, ".sql")
		if last != "" && version > last {
			break
		}
		var n int
		if err := s.write.QueryRowContext(ctx, s.bind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
			return fmt.Errorf("check migration %s: %w", version, err)
		}
		if n > 0 {
			continue
		}
		body, err := fs.ReadFile(migrationFiles, dir+"/"+name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", name, err)
		}
		err = s.WithTx(ctx, func(tx *Tx) error {
			for _, stmt := range splitStatements(string(body)) {
				if _, err := tx.q.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %s: %w", version, err)
				}
			}
			_, err := tx.q.ExecContext(ctx, s.bind(`INSERT INTO schema_migrations (version) VALUES (?)`), version)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// splitStatements splits a migration on ';' at line ends. Migrations keep one
// statement per ';'-terminated block and no semicolons inside strings.
func splitStatements(body string) []string {
	var out []string
	for _, part := range strings.Split(body, ";\n") {
		lines := []string{}
		for _, l := range strings.Split(part, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
				lines = append(lines, l)
			}
		}
		if stmt := strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";"); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}

// latestMigration is the last migration this build has for d.
func latestMigration(d Dialect) (string, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations/"+string(d))
	if err != nil {
		return "", fmt.Errorf("read migrations: %w", err)
	}
	latest := ""
	for _, e := range entries {
		latest = max(latest, strings.TrimSuffix(e.Name(), ".sql"))
	}
	return latest, nil
}
