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
	refused, err := r.st.FinishAttempts(ctx, fs)
	// outcome is the answer to batch[i]: a refused result is ErrLeaseLost.
	outcome := func(i int) error {
		if err == nil && refused[i] {
			return fmt.Errorf("delivery %d: %w", batch[i].f.Delivery.ID, store.ErrLeaseLost)
		}
		return err
	}
	mine := 0
	for i, b := range batch {
		if b == me {
			mine = i
		} else {
			b.done <- recorded{err: outcome(i)}
		}
	}
	r.mu.Lock()
	if len(r.queue) == 0 {
		r.busy = false
		r.mu.Unlock()
		return outcome(mine)
	}
	next := r.queue[0]
	r.mu.Unlock()
	next.done <- recorded{lead: true}
	return outcome(mine)
}
