package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wardhealth/ward/internal/fhir/search"
)

// The subscription matcher's reads: criteria evaluated on many resources
// of one type at once, against their current versions or, for events the
// matcher reaches late, against the versions the events name.

// Verdict is one resource's current version and, per query asked, whether
// that version matches it.
type Verdict struct {
	VersionID int64
	Deleted   bool
	Match     []bool
}

// MatchCurrent evaluates queries (all of resource type typ) on the current
// versions of ids, in one statement: per existing id, its version and
// which queries that version matches (never a deleted one). Version and
// verdicts come from one snapshot, so they agree even while writers commit
// (PostgreSQL gives each statement its own). A query with no clauses
// matches every undeleted version.
func (tx *Tx) MatchCurrent(ctx context.Context, projectID, typ string, queries []*search.Query, ids []string, now time.Time) (map[string]Verdict, error) {
	out := make(map[string]Verdict, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	p := &planner{now: ms(now), dialect: tx.dialect}
	cols := make([]string, len(queries))
	for i, q := range queries {
		cols[i] = "CASE WHEN " + p.matchExpr("r", projectID, q) + " THEN 1 ELSE 0 END"
	}
	sel := "r.id, r.version_id, r.deleted"
	if len(cols) > 0 {
		sel += ", " + strings.Join(cols, ", ")
	}
	q, args := p.finish(`SELECT ` + sel + ` FROM fhir_resources r WHERE r.project_id = ` + p.arg(projectID) +
		` AND r.resource_type = ` + p.arg(typ) + ` AND r.id IN (` + p.list(ids) + `)`)
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("match current versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var v Verdict
		hits := make([]int, len(queries))
		dest := []any{&id, &v.VersionID, &v.Deleted}
		for i := range hits {
			dest = append(dest, &hits[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("match current versions: %w", err)
		}
		v.Match = make([]bool, len(queries))
		for i, h := range hits {
			v.Match[i] = h == 1
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("match current versions: %w", err)
	}
	return out, nil
}

// matchExpr is q as a test of the one resource aliased r: every clause as
// a correlated test on that resource's index rows (its id is known, so
// probing the (project, type, id) index beats collecting every resource
// the clause matches, as a search does).
func (p *planner) matchExpr(r, projectID string, q *search.Query) string {
	saved, savedInner := p.correlate, p.inner
	defer func() { p.correlate, p.inner = saved, savedInner }()
	parts := []string{"NOT " + r + ".deleted"}
	for _, c := range q.Clauses {
		p.correlate, p.inner = true, nil
		parts = append(parts, p.clause(r, projectID, q.ResourceType, c))
	}
	for _, f := range q.Filters {
		parts = append(parts, p.filterSQL(r, projectID, q.ResourceType, f.Root))
	}
	return "(" + strings.Join(parts, " AND ") + ")"
}

// VersionKey names one version of a resource.
type VersionKey struct {
	ID        string
	VersionID int64
}

// PastVersions reads superseded versions of resources of typ (the current
// version is not among them); keys not found are left out.
func (tx *Tx) PastVersions(ctx context.Context, projectID, typ string, keys []VersionKey) ([]Resource, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var out []Resource
	const per = 400 // pairs per statement, well under SQLite's bound parameters
	for start := 0; start < len(keys); start += per {
		chunk := keys[start:min(start+per, len(keys))]
		args := []any{projectID, typ}
		for _, k := range chunk {
			args = append(args, k.ID, k.VersionID)
		}
		// Typed: PostgreSQL reads an untyped VALUES parameter as text.
		values := strings.TrimSuffix(strings.Repeat("(?, CAST(? AS BIGINT)),", len(chunk)), ",")
		rs, err := tx.resources(ctx, len(chunk), `SELECT `+tx.selectCols(false)+` FROM fhir_history WHERE project_id = ? AND resource_type = ?
			AND (id, version_id) IN (VALUES `+values+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("past versions: %w", err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// PastVersion is a version of a resource to judge as though it were
// current: its row's version and time, and its index rows.
type PastVersion struct {
	ID          string
	VersionID   int64
	LastUpdated time.Time
	Index       []IndexRow
}

// MatchPast is MatchCurrent for past versions of resources of typ (at
// most one per id): inside a savepoint, each stands in for its resource's
// current version (row and index rows), the queries are evaluated as
// MatchCurrent does, and the savepoint is rolled back. So a past version
// is judged by the very SQL that judges a current one; what a query reads
// of other resources (chained parameters, _has) is their current state.
// It returns, per id, which queries its version matches.
//
// On PostgreSQL the stand-ins lock the resources' rows until the rollback:
// with several resources it takes the locks without waiting, and should a
// writer hold one, judges each resource on its own instead (waiting then
// for one lock while holding none, so it cannot deadlock with a writer).
func (tx *Tx) MatchPast(ctx context.Context, projectID, typ string, queries []*search.Query, versions []PastVersion, now time.Time) (map[string][]bool, error) {
	out := make(map[string][]bool, len(versions))
	if len(versions) == 0 {
		return out, nil
	}
	err := tx.standIn(ctx, projectID, typ, versions, len(versions) > 1, func() error {
		ids := make([]string, len(versions))
		for i, v := range versions {
			ids[i] = v.ID
		}
		vs, err := tx.MatchCurrent(ctx, projectID, typ, queries, ids, now)
		for id, v := range vs {
			out[id] = v.Match
		}
		return err
	})
	if errors.Is(err, errLocked) {
		for _, v := range versions {
			one, err := tx.MatchPast(ctx, projectID, typ, queries, []PastVersion{v}, now)
			if err != nil {
				return nil, err
			}
			out[v.ID] = one[v.ID]
		}
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("match past versions: %w", err)
	}
	return out, nil
}

// errLocked: a row MatchPast would stand a version in for is locked by a
// writer.
var errLocked = errors.New("a resource is being written")

// standIn runs fn with versions standing in for their resources' current
// versions, then undoes them. With noWait, a row a writer holds is
// errLocked rather than waited for.
func (tx *Tx) standIn(ctx context.Context, projectID, typ string, versions []PastVersion, noWait bool, fn func() error) (err error) {
	if _, err := tx.exec(ctx, `SAVEPOINT ward_match`); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	defer func() {
		if _, rbErr := tx.exec(ctx, `ROLLBACK TO SAVEPOINT ward_match`); rbErr != nil && err == nil {
			err = fmt.Errorf("rollback to savepoint: %w", rbErr)
		}
		if _, relErr := tx.exec(ctx, `RELEASE SAVEPOINT ward_match`); relErr != nil && err == nil {
			err = fmt.Errorf("release savepoint: %w", relErr)
		}
	}()
	args := []any{projectID, typ}
	for _, v := range versions {
		args = append(args, v.ID)
	}
	in := placeholders(len(versions))
	if tx.dialect == Postgres {
		lock := ` FOR UPDATE`
		if noWait {
			lock += ` NOWAIT`
		}
		rows, err := tx.query(ctx, `SELECT id FROM fhir_resources WHERE project_id = ? AND resource_type = ? AND id IN (`+in+`)`+lock, args...)
		if err == nil {
			rows.Close()
			err = rows.Err()
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
			return errLocked
		}
		if err != nil {
			return fmt.Errorf("lock resources: %w", err)
		}
	}
	for _, v := range versions {
		// The row's version and time (for _lastUpdated); searches read no
		// content, so it stays.
		if _, err := tx.exec(ctx, `UPDATE fhir_resources SET version_id = ?, last_updated = ?, deleted = ? WHERE project_id = ? AND resource_type = ? AND id = ?`,
			v.VersionID, ms(v.LastUpdated), false, projectID, typ, v.ID); err != nil {
			return fmt.Errorf("stand in version: %w", err)
		}
	}
	for _, t := range indexTables {
		if _, err := tx.exec(ctx, `DELETE FROM `+t+` WHERE project_id = ? AND resource_type = ? AND id IN (`+in+`)`, args...); err != nil {
			return fmt.Errorf("stand in index: %w", err)
		}
	}
	for _, v := range versions {
		if err := tx.insertIndex(ctx, projectID, typ, v.ID, v.Index); err != nil {
			return err
		}
	}
	return fn()
}
