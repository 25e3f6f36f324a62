package subscription

import (
	"context"
	"fmt"

	"github.com/wardhealth/ward/internal/batch"
	"github.com/wardhealth/ward/internal/store"
)

// recorder writes finished attempts in shared transactions: a worker
// queues its outcome and waits for the commit; one worker at a time (the
// leader) writes everything queued so far in one transaction
// (internal/batch). So deliveries finishing together share a commit (one
// each capped PostgreSQL's fan-out), and no worker writes more than one
// batch.
type recorder struct {
	st *store.Store
	b  batch.Batcher[finishing]
}

type finishing struct {
	ctx context.Context
	f   store.Finish
}

func newRecorder(st *store.Store) *recorder {
	r := &recorder{st: st}
	r.b = batch.Batcher[finishing]{Writers: 1, Flush: r.flush}
	return r
}

// record stores f and returns once it is committed (or failed).
func (r *recorder) record(ctx context.Context, f store.Finish) error {
	return r.b.Do(finishing{ctx: ctx, f: f})
}

// flush writes the batch's outcomes in one transaction, in the leader's
// context; a refused result is ErrLeaseLost.
func (r *recorder) flush(items []finishing) []error {
	fs := make([]store.Finish, len(items))
	for i, it := range items {
		fs[i] = it.f
	}
	refused, err := r.st.FinishAttempts(items[0].ctx, fs)
	errs := make([]error, len(items))
	for i := range items {
		switch {
		case err != nil:
			errs[i] = err
		case refused[i]:
			errs[i] = fmt.Errorf("delivery %d: %w", fs[i].Delivery.ID, store.ErrLeaseLost)
		}
	}
	return errs
}
