package bulk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/store"
)

// errLost means the job's lease is gone (cancelled, finished elsewhere, or
// claimed by another replica after this one stalled): stop, write nothing.
var errLost = errors.New("export job lease lost")

// Run claims and runs jobs, one at a time, until ctx ends; a job cut by
// the end is released at once for any replica to continue. It also
// deletes finished jobs older than Config.Keep, with their files.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	var swept time.Time
	for {
		if s.now().Sub(swept) > time.Minute {
			swept = s.now()
			if _, err := s.Expire(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "export: delete expired jobs", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
		for ctx.Err() == nil {
			ran, err := s.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "export runner", "err", err)
			}
			if !ran || err != nil {
				break
			}
		}
		t.Reset(s.cfg.Poll)
	}
}

// Expire deletes finished jobs older than Config.Keep and their files,
// and returns how many.
func (s *Service) Expire(ctx context.Context) (int, error) {
	n := 0
	for {
		jobs, err := s.st.ExpiredExportJobs(ctx, s.now().Add(-s.cfg.Keep), 100)
		if err != nil || len(jobs) == 0 {
			return n, err
		}
		for _, j := range jobs {
			if _, err := s.st.DeleteExportJob(ctx, j.ProjectID, j.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return n, err
			}
			if err := s.files.DeleteExports(ctx, j.ProjectID, j.ID+"/"); err != nil {
				return n, err
			}
			n++
		}
	}
}

// RunOnce claims one job and runs it to its end (done, failed, lost or
// ctx's end); ran reports whether there was one.
func (s *Service) RunOnce(ctx context.Context) (ran bool, err error) {
	owner := uuid.NewString()
	sj, err := s.st.ClaimExportJob(ctx, owner, s.now(), s.cfg.Lease)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	j, err := decode(sj)
	if err != nil {
		return true, s.fail(ctx, sj, owner, fmt.Errorf("stored job: %w", err))
	}
	err = s.runJob(ctx, j, owner)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errLost):
		return true, nil
	case ctx.Err() != nil:
		// Stopping: another replica (or this one restarted) continues
		// from the last checkpoint.
		if rerr := s.st.ReleaseExportJob(context.WithoutCancel(ctx), j.ProjectID, j.ID, owner); rerr != nil {
			s.log.WarnContext(ctx, "export: release a job", "job", j.ID, "err", rerr)
		}
		return true, nil
	case errors.Is(err, fault.ErrForbidden), errors.Is(err, fault.ErrUnauthorized), errors.Is(err, fault.ErrInvalid), errors.Is(err, fault.ErrNotFound):
		return true, s.fail(ctx, sj, owner, err)
	default:
		// The database's or the storage's failure: the lease runs out
		// and the job is tried again from its checkpoint.
		return true, err
	}
}

// fail ends a job with a client-safe message and deletes what it wrote:
// a principal whose access was taken away keeps no partial output.
func (s *Service) fail(ctx context.Context, j store.ExportJob, owner string, cause error) error {
	status, msg := fault.Public(cause)
	if errors.Is(cause, fault.ErrUnauthorized) {
		// The principal is gone: the job may not read as them any more.
		status = http.StatusForbidden
	}
	if status < 400 {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		s.log.ErrorContext(ctx, "export job failed", "job", j.ID, "err", cause)
	}
	if err := s.st.FinishExportJob(ctx, j.ProjectID, j.ID, owner, s.now(), store.ExportFailed, status, msg); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil
		}
		return err
	}
	return s.files.DeleteExports(ctx, j.ProjectID, j.ID+"/")
}

// runJob writes the job's remaining types from its cursor.
func (s *Service) runJob(ctx context.Context, j job, owner string) error {
	p := j.who.auth(j.ProjectID)
	cur := j.cur
	written := j.Written
	checkpoint := func(c cursor, f *store.ExportFile) error {
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		err = s.st.CheckpointExportJob(ctx, j.ProjectID, j.ID, owner, s.now(), s.cfg.Lease, store.Checkpoint{Cursor: b, Written: written, File: f})
		if errors.Is(err, store.ErrConflict) {
			return errLost
		}
		return err
	}
	for cur.Type < len(j.params.Types) {
		sc := s.scope(j.params, j.params.Types[cur.Type])
		for {
			// The path is this claim's own: a replica that lost the lease
			// while writing never replaces a recorded file.
			path := fmt.Sprintf("%s/%d-%s.ndjson", j.ID, cur.Files, owner[:8])
			n, last, done, err := s.writeFile(ctx, p, j.ProjectID, path, sc, cur.After, func() error { return checkpoint(cur, nil) })
			if err != nil {
				return err
			}
			if n > 0 {
				f := &store.ExportFile{Seq: cur.Files, Type: sc.Type, Path: path, Count: n}
				next := cursor{Type: cur.Type, After: last, Files: cur.Files + 1}
				written += int64(n)
				if err := checkpoint(next, f); err != nil {
					written -= int64(n)
					if derr := s.files.DeleteExports(context.WithoutCancel(ctx), j.ProjectID, f.Path); derr != nil {
						s.log.WarnContext(ctx, "export: delete an unrecorded file", "job", j.ID, "err", derr)
					}
					return err
				}
				cur = next
			}
			if done {
				break
			}
		}
		cur = cursor{Type: cur.Type + 1, Files: cur.Files}
		if err := checkpoint(cur, nil); err != nil {
			return err
		}
	}
	err := s.st.FinishExportJob(ctx, j.ProjectID, j.ID, owner, s.now(), store.ExportDone, 0, "")
	if errors.Is(err, store.ErrConflict) {
		return errLost
	}
	return err
}

// scope is what the job reads of typ.
func (s *Service) scope(params Params, typ string) fhir.ExportScope {
	sc := fhir.ExportScope{Type: typ, Since: params.Since}
	for _, q := range params.Filters[typ] {
		v, err := url.ParseQuery(q)
		if err != nil {
			v = url.Values{"_id": {"-"}} // checked at kick-off; never widen
		}
		sc.Filters = append(sc.Filters, v)
	}
	switch params.Level {
	case LevelPatient:
		if params.Patients == nil {
			sc.AllPatients = true
		} else {
			sc.Patients = append([]string{}, params.Patients...) // a POST's patient parameter
		}
	case LevelGroup:
		sc.Patients = append([]string{}, params.Patients...) // never nil: an empty group holds nothing
	}
	return sc
}

// writeFile writes one file's worth of sc after the id after to path,
// streaming (the next batch is read while the last is written): n lines,
// the last id read, and done when the type has nothing more. Nothing is
// stored when there is no line. renew is called when the lease needs
// renewing before the file is recorded.
func (s *Service) writeFile(ctx context.Context, p auth.Principal, projectID, path string, sc fhir.ExportScope, after string, renew func() error) (n int, last string, done bool, err error) {
	limit := min(s.cfg.Batch, s.cfg.FileResources)
	var page fhir.ExportPage
	for {
		// Batches may keep nothing (Patient level): read on to the first
		// line before opening a file.
		if page, err = s.fhir.ExportBatch(ctx, p, sc, after, limit); err != nil {
			return 0, "", false, err
		}
		if page.Last != "" {
			after = page.Last
		}
		if len(page.Resources) > 0 {
			break
		}
		if !page.Full {
			return 0, after, true, nil
		}
	}
	pr, pw := io.Pipe()
	stored := make(chan error, 1)
	go func() {
		err := s.files.PutExport(ctx, projectID, path, pr)
		pr.CloseWithError(err) // a failed put stops the writer too
		stored <- err
	}()
	bw := bufio.NewWriterSize(pw, 256<<10)
	n, last, done, err = s.stream(ctx, p, sc, page, bw, renew)
	if err == nil {
		err = bw.Flush()
	}
	pw.CloseWithError(err) // nil: the file ends here; else it is not stored
	if perr := <-stored; err == nil {
		err = perr
	}
	if err != nil {
		return 0, "", false, err
	}
	return n, last, done, nil
}

// stream writes page and the pages after it, up to the file's limits.
func (s *Service) stream(ctx context.Context, p auth.Principal, sc fhir.ExportScope, page fhir.ExportPage, w *bufio.Writer, renew func() error) (n int, last string, done bool, err error) {
	renewed, size := s.now(), 0
	for {
		for _, r := range page.Resources {
			k, err := writeLine(w, r.Content)
			if err != nil {
				return 0, "", false, fmt.Errorf("%s/%s: %w", r.Type, r.ID, err)
			}
			size += k
		}
		n += len(page.Resources)
		if page.Last != "" {
			last = page.Last // an empty last page leaves the cursor where it was
		}
		if !page.Full {
			return n, last, true, nil
		}
		if n >= s.cfg.FileResources || size >= s.cfg.FileBytes {
			return n, last, false, nil
		}
		if s.now().Sub(renewed) > s.cfg.Lease/3 {
			if err := renew(); err != nil {
				return 0, "", false, err
			}
			renewed = s.now()
		}
		if page, err = s.fhir.ExportBatch(ctx, p, sc, last, min(s.cfg.Batch, s.cfg.FileResources-n)); err != nil {
			return 0, "", false, err
		}
	}
}

// writeLine writes a resource as one NDJSON line and returns its size
// (stored JSON is compact; a newline inside would split the line, so one
// that has any is compacted).
func writeLine(w *bufio.Writer, content []byte) (int, error) {
	if bytes.IndexByte(content, '\n') >= 0 {
		var b bytes.Buffer
		if err := json.Compact(&b, content); err != nil {
			return 0, err
		}
		content = b.Bytes()
	}
	if _, err := w.Write(content); err != nil {
		return 0, err
	}
	return len(content) + 1, w.WriteByte('\n')
}
