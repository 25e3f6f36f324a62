package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/fhir/search"
)

// ExportJob is one FHIR Bulk Data export (package fhir/bulk). Principal,
// Params and Cursor are the package's JSON; the store does not read them.
type ExportJob struct {
	ProjectID, ID   string
	Principal       []byte
	Owner           string // the principal as one key (bulk's), for ListExportJobs
	Request         string
	Params          []byte
	Status          string // ExportRunning, ExportDone or ExportFailed
	TransactionTime time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
	LeaseUntil      time.Time
	LeaseOwner      string // the claim holding the lease, "" for none
	Cursor          []byte
	Written         int64
	ErrorStatus     int
	Error           string
}

// Export job states.
const (
	ExportRunning = "running"
	ExportDone    = "done"
	ExportFailed  = "failed"
)

// ExportFile is one NDJSON file a job wrote, in the order written.
type ExportFile struct {
	Seq   int
	Type  string
	Path  string // the object's path in the project's internal bucket
	Count int
}

const exportJobCols = `project_id, id, principal, request, params, status, transaction_time, created_at, updated_at,
	lease_until, lease_owner, cursor, written, error_status, error`

func scanExportJob(sc interface{ Scan(...any) error }) (ExportJob, error) {
	var j ExportJob
	var principal, params, cursor string
	var tt, created, updated, lease int64
	err := sc.Scan(&j.ProjectID, &j.ID, &principal, &j.Request, &params, &j.Status, &tt, &created, &updated,
		&lease, &j.LeaseOwner, &cursor, &j.Written, &j.ErrorStatus, &j.Error)
	if err != nil {
		return ExportJob{}, err
	}
	j.Principal, j.Params, j.Cursor = []byte(principal), []byte(params), []byte(cursor)
	j.TransactionTime, j.CreatedAt, j.UpdatedAt, j.LeaseUntil = fromMS(tt), fromMS(created), fromMS(updated), fromMS(lease)
	return j, nil
}

// CreateExportJob records a new running job. Errors: ErrConflict (the id
// is taken).
func (s *Store) CreateExportJob(ctx context.Context, j ExportJob) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, `INSERT INTO export_jobs (project_id, id, principal, owner, request, params, status, transaction_time,
			created_at, updated_at, cursor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			j.ProjectID, j.ID, string(j.Principal), j.Owner, j.Request, string(j.Params), ExportRunning, ms(j.TransactionTime),
			ms(j.CreatedAt), ms(j.CreatedAt), string(j.Cursor))
		return err
	})
	if err != nil {
		return fmt.Errorf("create export job: %w", s.mapErr(err))
	}
	return nil
}

// GetExportJob returns the project's job id. Errors: ErrNotFound (also for
// another project's job).
func (s *Store) GetExportJob(ctx context.Context, projectID, id string) (ExportJob, error) {
	j, err := scanExportJob(s.queryRow(ctx, `SELECT `+exportJobCols+` FROM export_jobs WHERE project_id = ? AND id = ?`, projectID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ExportJob{}, ErrNotFound
	}
	if err != nil {
		return ExportJob{}, fmt.Errorf("get export job: %w", s.mapErr(err))
	}
	return j, nil
}

// ExportFiles lists the files job id has written, in order.
func (s *Store) ExportFiles(ctx context.Context, projectID, id string) ([]ExportFile, error) {
	rows, err := s.query(ctx, `SELECT seq, resource_type, object_path, count FROM export_files
		WHERE project_id = ? AND job_id = ? ORDER BY seq`, projectID, id)
	if err != nil {
		return nil, fmt.Errorf("export files: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []ExportFile
	for rows.Next() {
		var f ExportFile
		if err := rows.Scan(&f.Seq, &f.Type, &f.Path, &f.Count); err != nil {
			return nil, fmt.Errorf("export files: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export files: %w", err)
	}
	return out, nil
}

// ClaimExportJob leases the oldest running job whose lease has run out to
// owner (a token unique to this claim) until now+lease. Errors:
// ErrNotFound (nothing to claim).
func (s *Store) ClaimExportJob(ctx context.Context, owner string, now time.Time, lease time.Duration) (ExportJob, error) {
	var j ExportJob
	err := s.WithTx(ctx, func(tx *Tx) error {
		lock := ""
		if s.dialect == Postgres {
			// Replicas claiming at once each skip the row another holds.
			lock = ` FOR UPDATE SKIP LOCKED`
		}
		var err error
		j, err = scanExportJob(tx.queryRow(ctx, `UPDATE export_jobs SET lease_until = ?, lease_owner = ?, updated_at = ?
			WHERE (project_id, id) IN (SELECT project_id, id FROM export_jobs WHERE status = 'running' AND lease_until <= ?
			ORDER BY created_at, id LIMIT 1`+lock+`) RETURNING `+exportJobCols,
			ms(now.Add(lease)), owner, ms(now), ms(now)))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return ExportJob{}, ErrNotFound
	}
	if err != nil {
		return ExportJob{}, fmt.Errorf("claim export job: %w", s.mapErr(err))
	}
	return j, nil
}

// Checkpoint is a job's progress as one commit: the file just written (if
// any), the cursor after it and the count so far.
type Checkpoint struct {
	Cursor  []byte
	Written int64
	File    *ExportFile
}

// CheckpointExportJob records c for the job owner holds and renews its
// lease to now+lease. Errors: ErrConflict (the job is gone, finished, or
// another claim holds it: the caller must stop and write nothing more).
func (s *Store) CheckpointExportJob(ctx context.Context, projectID, id, owner string, now time.Time, lease time.Duration, c Checkpoint) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE export_jobs SET cursor = ?, written = ?, lease_until = ?, updated_at = ?
			WHERE project_id = ? AND id = ? AND lease_owner = ? AND status = 'running'`,
			string(c.Cursor), c.Written, ms(now.Add(lease)), ms(now), projectID, id, owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(ErrConflict, err)
		}
		if c.File == nil {
			return nil
		}
		_, err = tx.exec(ctx, `INSERT INTO export_files (project_id, job_id, seq, resource_type, object_path, count) VALUES (?, ?, ?, ?, ?, ?)`,
			projectID, id, c.File.Seq, c.File.Type, c.File.Path, c.File.Count)
		return err
	})
	if err != nil {
		return fmt.Errorf("checkpoint export job: %w", s.mapErr(err))
	}
	return nil
}

// FinishExportJob ends the job owner holds: ExportDone, or ExportFailed
// with an HTTP status and a client-safe message. Errors: ErrConflict (as
// CheckpointExportJob).
func (s *Store) FinishExportJob(ctx context.Context, projectID, id, owner string, now time.Time, status string, errStatus int, msg string) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE export_jobs SET status = ?, error_status = ?, error = ?, lease_until = 0, lease_owner = '', updated_at = ?
			WHERE project_id = ? AND id = ? AND lease_owner = ? AND status = 'running'`,
			status, errStatus, msg, ms(now), projectID, id, owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(ErrConflict, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("finish export job: %w", s.mapErr(err))
	}
	return nil
}

// ReleaseExportJob gives up owner's lease at once (a graceful stop), so
// any replica may continue the job from its last checkpoint. A lease
// already lost is not an error.
func (s *Store) ReleaseExportJob(ctx context.Context, projectID, id, owner string) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, `UPDATE export_jobs SET lease_until = 0, lease_owner = '' WHERE project_id = ? AND id = ? AND lease_owner = ?`,
			projectID, id, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("release export job: %w", s.mapErr(err))
	}
	return nil
}

// DeleteExportJob removes the job and its file rows and returns the
// files, whose objects the caller deletes. Errors: ErrNotFound.
func (s *Store) DeleteExportJob(ctx context.Context, projectID, id string) ([]ExportFile, error) {
	var files []ExportFile
	err := s.WithTx(ctx, func(tx *Tx) error {
		var err error
		if files, err = tx.ExportFiles(ctx, projectID, id); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM export_files WHERE project_id = ? AND job_id = ?`, projectID, id); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `DELETE FROM export_jobs WHERE project_id = ? AND id = ?`, projectID, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(ErrNotFound, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete export job: %w", s.mapErr(err))
	}
	return files, nil
}

// DumpResources writes every current resource of typ in the project to w
// as NDJSON, in id order, and returns how many: a plain dump, with no
// access filtering, that bulk export's benchmark measures itself against.
func (s *Store) DumpResources(ctx context.Context, projectID, typ string, w io.Writer) (int, error) {
	rows, err := s.query(ctx, `SELECT `+s.contentSQL("content")+` FROM fhir_resources WHERE project_id = ? AND resource_type = ? AND NOT deleted ORDER BY id`,
		projectID, typ)
	if err != nil {
		return 0, fmt.Errorf("dump %s: %w", typ, s.mapErr(err))
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var content []byte
		if err := rows.Scan(contentDest{&content}); err != nil {
			return n, fmt.Errorf("dump %s: %w", typ, err)
		}
		if _, err := w.Write(append(content, '\n')); err != nil {
			return n, fmt.Errorf("dump %s: %w", typ, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("dump %s: %w", typ, err)
	}
	return n, nil
}

// RunningExportJobs counts the project's running jobs.
func (s *Store) RunningExportJobs(ctx context.Context, projectID string) (int, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM export_jobs WHERE project_id = ? AND status = 'running'`, projectID).Scan(&n); err != nil {
		return 0, fmt.Errorf("running export jobs: %w", s.mapErr(err))
	}
	return n, nil
}

// ExpiredExportJobs lists up to limit jobs, of any project, that ended
// (done or failed) before before.
func (s *Store) ExpiredExportJobs(ctx context.Context, before time.Time, limit int) ([]ExportJob, error) {
	rows, err := s.query(ctx, `SELECT `+exportJobCols+` FROM export_jobs WHERE status <> 'running' AND updated_at < ? ORDER BY updated_at LIMIT ?`,
		ms(before), limit)
	if err != nil {
		return nil, fmt.Errorf("expired export jobs: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []ExportJob
	for rows.Next() {
		j, err := scanExportJob(rows)
		if err != nil {
			return nil, fmt.Errorf("expired export jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("expired export jobs: %w", err)
	}
	return out, nil
}

// Referring returns the ids of resources of typ in the id range (after,
// last] that reference some resource of refType through one of params:
// bulk export's test of membership in any patient's compartment, one
// range scan of the reference index a batch (an id list made a seek each).
func (s *Store) Referring(ctx context.Context, projectID, typ, after, last string, params []string, refType string) (map[string]bool, error) {
	out := map[string]bool{}
	p := &planner{dialect: s.dialect}
	var alts []string
	for _, name := range params {
		names, only := search.IndexParams(typ, name)
		if len(names) == 0 || only != "" && only != refType {
			continue
		}
		alts = append(alts, paramIn("x", names, p.arg))
	}
	if len(alts) == 0 || last == "" {
		return out, nil
	}
	q, args := p.finish(`SELECT x.id FROM fhir_idx_reference x WHERE x.project_id = ` + p.arg(projectID) +
		` AND x.resource_type = ` + p.arg(typ) + ` AND x.id > ` + p.arg(after) + ` AND x.id <= ` + p.arg(last) +
		` AND (` + strings.Join(alts, " OR ") + `) AND x.ref_type = ` + p.arg(refType))
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("referring %s: %w", typ, s.mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("referring %s: %w", typ, err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("referring %s: %w", typ, err)
	}
	return out, nil
}

// ListExportJobs returns a page of owner's jobs in the project, newest
// first (by creation, then id): up to limit after skipping offset, and how
// many owner has in all.
func (s *Store) ListExportJobs(ctx context.Context, projectID, owner string, limit, offset int) ([]ExportJob, int, error) {
	var total int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM export_jobs WHERE project_id = ? AND owner = ?`, projectID, owner).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count export jobs: %w", s.mapErr(err))
	}
	jobs, err := s.listExportJobs(ctx, projectID, owner, limit, offset)
	return jobs, total, err
}

func (s *Store) listExportJobs(ctx context.Context, projectID, owner string, limit, offset int) ([]ExportJob, error) {
	rows, err := s.query(ctx, `SELECT `+exportJobCols+` FROM export_jobs WHERE project_id = ? AND owner = ?
		ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, projectID, owner, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("list export jobs: %w", s.mapErr(err))
	}
	defer rows.Close()
	out := []ExportJob{}
	for rows.Next() {
		j, err := scanExportJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list export jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list export jobs: %w", err)
	}
	return out, nil
}
