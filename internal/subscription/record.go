package subscription

import (
	"context"
	"fmt"
	"sync"

	"github.com/wardhealth/ward/internal/store"
)

// recorder writes finished attempts in shared transactions: a worker
// queues its outcome and waits for the commit; one waiter at a time (the
// leader) writes everything queued so far in one transaction, answers the
// others and hands the lead to the first outcome queued meanwhile. So
// deliveries finishing together share a commit (one each capped
// PostgreSQL's fan-out), and no worker writes more than one batch.
type recorder struct {
	st    *store.Store
	mu    sync.Mutex
	queue []*finishing
	busy  bool // a leader is writing
}

type finishing struct {
	f    store.Finish
	done chan recorded // one message: the outcome, or the lead
}

type recorded struct {
	err  error
	lead bool
}

// record stores f and returns once it is committed (or failed).
func (r *recorder) record(ctx context.Context, f store.Finish) error {
	me := &finishing{f: f, done: make(chan recorded, 1)}
	r.mu.Lock()
	r.queue = append(r.queue, me)
	if r.busy {
		r.mu.Unlock()
		if out := <-me.done; !out.lead {
			return out.err
		}
		r.mu.Lock()
	}
	r.busy = true
	batch := r.queue // me among them
	r.queue = nil
	r.mu.Unlock()

	fs := make([]store.Finish, len(batch))
	for i, b := range batch {
		fs[i] = b.f
	}
	stale, err := r.st.FinishAttempts(ctx, fs)
	refused := map[int64]bool{}
	for _, id := range stale {
		refused[id] = true
	}
	// outcome is one finisher's answer: a refused result is ErrLeaseLost.
	outcome := func(b *finishing) error {
		if err == nil && refused[b.f.Delivery.ID] {
			return fmt.Errorf("delivery %d: %w", b.f.Delivery.ID, store.ErrLeaseLost)
		}
		return err
	}
	for _, b := range batch {
		if b != me {
			b.done <- recorded{err: outcome(b)}
		}
	}
	r.mu.Lock()
	if len(r.queue) == 0 {
		r.busy = false
		r.mu.Unlock()
		return outcome(me)
	}
	next := r.queue[0]
	r.mu.Unlock()
	next.done <- recorded{lead: true}
	return outcome(me)
}
