package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wardhealth/ward/internal/batch"
)

// A create on PostgreSQL is one statement (createOne), yet most of its
// cost is fixed: the statement's protocol and executor start-up, and the
// commit's WAL flush, which each create paid alone (bench/RESULTS.md,
// issue 28). createBatcher writes the creates that arrive while others
// are being written as one statement of fixed text (the rows as column
// arrays), in one commit, with internal/batch (as lab results do). A caller
// is answered only after the commit that holds its row (synchronous_commit
// is untouched), and a create stays all or nothing: should a batch's
// statement fail, each of its creates is written again on its own, so one
// bad create (an id taken) fails only itself.

// maxCreateWriters is how many batches may be in PostgreSQL at once: one
// runs while the one before waits for its commit's flush.
const maxCreateWriters = 2

// maxCreateBatch bounds the creates written by one statement.
const maxCreateBatch = 64

// queuedCreate is one CreateResource waiting for its turn.
type queuedCreate struct {
	ctx   context.Context
	s     *Store // the caller's; a batch is written by its leader's
	r     Resource
	index []IndexRow
	audit *PendingAudit // the request's audit event, nil if written already
}

// newCreateBatcher is a store's batcher of creates.
func newCreateBatcher() *batch.Batcher[*queuedCreate] {
	return &batch.Batcher[*queuedCreate]{Writers: maxCreateWriters, Max: maxCreateBatch,
		Flush: func(cs []*queuedCreate) []error { return cs[0].s.flushCreates(cs) }}
}

// flushCreates writes a batch in one statement or, should PostgreSQL
// refuse it, each create in one of its own. errs[i] is batch[i]'s outcome.
func (s *Store) flushCreates(batch []*queuedCreate) []error {
	errs := make([]error, len(batch))
	if len(batch) == 1 {
		errs[0] = s.createOne(batch[0])
		return errs
	}
	err := s.createBatch(batch)
	if err == nil {
		return errs
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		// Not a refusal (the connection broke, say): whether it committed
		// is unknown, and running the creates again could answer a stored
		// one with a conflict. Each fails as a create alone would.
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	// PostgreSQL refused the statement, so nothing of it was written. At
	// once: the commits still overlap.
	var wg sync.WaitGroup
	for i, c := range batch {
		wg.Go(func() { errs[i] = s.createOne(c) })
	}
	wg.Wait()
	return errs
}

// pgBatchCreateSQL inserts version 1 of a batch of resources with their
// outbox rows, audit rows and index rows: $1-$8 the resources' columns
// (resourceCols, method), $9-$17 the audit rows' (fewer rows: a create
// whose request was audited already has none), then the index arrays,
// each table's led by its rows' places in $1-$3 (1-based).
var pgBatchCreateSQL = `WITH r AS (INSERT INTO fhir_resources (` + resourceCols + `, method)` +
	` SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::bool[], $7::text[], $8::text[])),` +
	` o AS (INSERT INTO outbox (project_id, resource_type, id, version_id, interaction, created_at)` +
	` SELECT u.p, u.t, u.i, u.v, 'create', u.at FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[]) AS u(p, t, i, v, at))` +
	pgBatchIndexCTEs(18) +
	` INSERT INTO audit_events (project_id, at, request_id, principal_kind, principal_id, action, resource, outcome, detail)` +
	` SELECT * FROM unnest($9::text[], $10::int8[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[])`

// createBatch writes batch's creates in one autocommit statement.
func (s *Store) createBatch(batch []*queuedCreate) error {
	n := len(batch)
	project, typ, id, method, content := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	version, updated := make([]int64, n), make([]int64, n)
	deleted := make([]bool, n)
	// Non-nil: pgx sends a nil slice as NULL.
	aProject, aRequest, aKind, aPrincipal := []string{}, []string{}, []string{}, []string{}
	aAction, aResource, aOutcome, aDetail := []string{}, []string{}, []string{}, []string{}
	aAt := []int64{}
	idx := emptyPGIndexArrays()
	for i, c := range batch {
		r := c.r
		project[i], typ[i], id[i], version[i], updated[i], deleted[i], content[i], method[i] = r.ProjectID, r.Type, r.ID, r.VersionID, ms(r.LastUpdated), r.Deleted, string(r.Content), r.Method
		idx.add(c.index, int32(i+1))
		if c.audit != nil {
			e := c.audit.Event
			aProject, aAt, aRequest, aKind = append(aProject, e.ProjectID), append(aAt, ms(e.At)), append(aRequest, e.RequestID), append(aKind, e.PrincipalKind)
			aPrincipal, aAction, aResource = append(aPrincipal, e.PrincipalID), append(aAction, e.Action), append(aResource, e.Resource)
			aOutcome, aDetail = append(aOutcome, e.Outcome), append(aDetail, e.Detail)
		}
	}
	args := append([]any{project, typ, id, version, updated, deleted, content, method,
		aProject, aAt, aRequest, aKind, aPrincipal, aAction, aResource, aOutcome, aDetail}, idx.keyedArgs()...)
	// Not the leader's context: its end must not fail the others.
	ctx := context.WithoutCancel(batch[0].ctx)
	_, err := s.write.ExecContext(ctx, pgBatchCreateSQL, args...)
	if s.retryable(err) {
		_, err = s.write.ExecContext(ctx, pgBatchCreateSQL, args...)
	}
	if err != nil {
		return fmt.Errorf("insert resources: %w", s.mapErr(err))
	}
	for _, c := range batch {
		if c.audit != nil {
			c.audit.written.Store(true)
		}
	}
	return nil
}
