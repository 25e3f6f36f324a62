// Package batch lets concurrent callers share writes: a caller that finds
// fewer than Writers batches being written leads one, made of its own item
// and those queued meanwhile; the others wait for their outcome or to be
// handed the lead. There is no goroutine of its own, so an idle Batcher
// costs nothing, and no caller waits behind a timer: a batch is whatever
// arrived while the previous ones were written.
//
// Used where each write pays a fixed cost (a commit, a statement): lab
// results, PostgreSQL creates, subscription attempt outcomes.
package batch

import "sync"

// Batcher shares writes of T between concurrent callers of Do. Set its
// fields before the first Do; a Batcher must not be copied after.
type Batcher[T any] struct {
	// Writers is how many batches may be written at once (at least 1).
	Writers int
	// Max is the most items in one batch (0: no limit).
	Max int
	// Flush writes items and returns each one's outcome, in order
	// (len(items) errors). items[0] is the leader's.
	Flush func(items []T) []error

	mu      sync.Mutex
	queue   []*waiter[T]
	writers int
}

type waiter[T any] struct {
	item T
	done chan turn // buffered: one send, the outcome or the lead
}

type turn struct {
	err  error
	lead bool
}

// Do writes item, in one batch with other callers' items when some are
// waiting, and returns its outcome once its batch is written.
func (b *Batcher[T]) Do(item T) error {
	me := &waiter[T]{item: item, done: make(chan turn, 1)}
	b.mu.Lock()
	if b.writers >= max(b.Writers, 1) {
		b.queue = append(b.queue, me)
		b.mu.Unlock()
		t := <-me.done
		if !t.lead {
			return t.err
		}
		// Handed the lead, and taken off the queue by the one who handed
		// it: me is answered by no one else.
		b.mu.Lock()
	} else {
		b.writers++
	}
	n := len(b.queue)
	if b.Max > 0 {
		n = min(n, b.Max-1)
	}
	batch := append([]*waiter[T]{me}, b.queue[:n]...)
	b.queue = b.queue[n:]
	b.mu.Unlock()
	items := make([]T, len(batch))
	for i, w := range batch {
		items[i] = w.item
	}
	errs := b.Flush(items)
	for i, w := range batch[1:] {
		w.done <- turn{err: errs[i+1]}
	}
	// me is answered: pass the lead to the first queued meanwhile rather
	// than keep this caller from its answer.
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.writers--
		b.mu.Unlock()
		return errs[0]
	}
	next := b.queue[0]
	b.queue = b.queue[1:]
	b.mu.Unlock()
	next.done <- turn{lead: true}
	return errs[0]
}
