package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// JobDone reports whether the one-time job name (fhir_jobs) has finished;
// a job the database does not list has nothing to do.
func (s *Store) JobDone(ctx context.Context, name string) (bool, error) {
	var done sql.NullInt64
	err := s.queryRow(ctx, `SELECT done_at FROM fhir_jobs WHERE name = ?`, name).Scan(&done)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("job %s: %w", name, s.mapErr(err))
	}
	return done.Valid, nil
}

// IndexBackfill is a one-time job that gives resources written before Ward
// indexed some parameters their rows.
type IndexBackfill struct {
	Job    string   // its fhir_jobs name
	Tables []string // the index tables it fills
	Params []string // the parameters whose rows it writes there
	Types  []string // resource types that may have such rows
	// Rows computes a resource's rows of Params.
	Rows func(typ string, content []byte) ([]IndexRow, error)
	// Batch is how many resources one transaction indexes (default 200).
	Batch int
}

// Backfill runs job b unless it is done: every current resource of b.Types
// in every project gets its rows of b.Params, in batches of write
// transactions (each rereads its resources, so a concurrent update is
// never overwritten with older rows), then the job is marked done. It is
// safe to run again after an interruption and on several servers at once.
func (s *Store) Backfill(ctx context.Context, b IndexBackfill) (indexed int, err error) {
	if done, err := s.JobDone(ctx, b.Job); err != nil || done {
		return 0, err
	}
	if b.Batch <= 0 {
		b.Batch = 200
	}
	projects, err := s.ListProjects(ctx)
	if err != nil {
		return 0, err
	}
	params := make([]any, len(b.Params))
	for i, n := range b.Params {
		params[i] = n
	}
	lock := ""
	if s.dialect == Postgres {
		lock = " FOR UPDATE"
	}
	for _, p := range projects {
		for _, typ := range b.Types {
			after := ""
			for {
				n, last := 0, ""
				err := s.WithTx(ctx, func(tx *Tx) error {
					n, last = 0, ""
					rows, err := tx.query(ctx, `SELECT id, `+s.contentSQL("content")+` FROM fhir_resources WHERE project_id = ? AND resource_type = ? AND id > ? AND NOT deleted ORDER BY id LIMIT ?`+lock,
						p.ID, typ, after, b.Batch)
					if err != nil {
						return err
					}
					type res struct {
						id      string
						content []byte
					}
					var batch []res
					for rows.Next() {
						var r res
						if err := rows.Scan(&r.id, contentDest{&r.content}); err != nil {
							rows.Close()
							return err
						}
						batch = append(batch, r)
					}
					rows.Close()
					if err := rows.Err(); err != nil {
						return err
					}
					for _, r := range batch {
						idx, err := b.Rows(typ, r.content)
						if err != nil {
							return fmt.Errorf("%s/%s: %w", typ, r.id, err)
						}
						for _, t := range b.Tables {
							args := append([]any{p.ID, typ, r.id}, params...)
							if _, err := tx.exec(ctx, `DELETE FROM `+t+` WHERE project_id = ? AND resource_type = ? AND id = ? AND param IN (`+placeholders(len(params))+`)`, args...); err != nil {
								return err
							}
						}
						if err := tx.insertIndex(ctx, p.ID, typ, r.id, idx); err != nil {
							return err
						}
						n, last = n+1, r.id
					}
					return nil
				})
				if err != nil {
					return indexed, fmt.Errorf("backfill %s: %w", b.Job, err)
				}
				indexed += n
				if n < b.Batch {
					break
				}
				after = last
			}
		}
	}
	if _, err := s.exec(ctx, `UPDATE fhir_jobs SET done_at = ? WHERE name = ? AND done_at IS NULL`, ms(s.now()), b.Job); err != nil {
		return indexed, fmt.Errorf("backfill %s: %w", b.Job, s.mapErr(err))
	}
	return indexed, nil
}
