package lab

import (
	"context"
	"sync"

	"github.com/wardhealth/ward/internal/batch"
	"github.com/wardhealth/ward/internal/store"
)

// SQLite has one writer, and most of its time per message went to
// statements: three resources each written on their own (a read for the
// version, the row, an index statement per table, the outbox row). The
// batcher writes the resources of the messages that arrive together with
// one multi-row statement per table (store.Tx.CreateResources), in one
// transaction, which the store's group commit then shares with other
// writers. A message is still all or nothing: should a batch fail (an id
// taken, say by the same message sent twice at once), each of its
// messages is written again in a transaction of its own.

// maxBatchWriters is how many batches may be in the store at once: two,
// so that one is written while the one before waits for its fsync.
const maxBatchWriters = 2

// maxBatch bounds the messages written in one transaction.
const maxBatch = 64

// resultWrite is one message's resources, prepared (validated, with
// their index rows) outside the writer.
type resultWrite struct {
	ctx   context.Context
	rs    []store.Resource
	index [][]store.IndexRow
	// updates are new versions of resources read before (the orders the
	// message completes), written in the same transaction.
	updates     []store.Resource
	updateIndex [][]store.IndexRow
	// key records the message as stored (nil: nothing to record).
	key *store.LabResultKey
}

// batcher writes results in shared transactions (internal/batch).
type batcher struct {
	st *store.Store
	b  batch.Batcher[*resultWrite]
}

func newBatcher(st *store.Store) *batcher {
	w := &batcher{st: st}
	w.b = batch.Batcher[*resultWrite]{Writers: maxBatchWriters, Max: maxBatch, Flush: w.flush}
	return w
}

// write stores w's resources and key, in one transaction with those of
// other messages when some are waiting, and returns once that transaction
// is durable. Errors: store.ErrConflict when one of w's ids is taken or
// its key recorded.
func (b *batcher) write(w *resultWrite) error { return b.b.Do(w) }

// flush writes a batch in one transaction, or should that fail, each
// message in one of its own. errs[i] is batch[i]'s outcome.
func (b *batcher) flush(batch []*resultWrite) []error {
	errs := make([]error, len(batch))
	if len(batch) > 1 {
		// Not the leader's context: its end must not fail the others.
		ctx := context.WithoutCancel(batch[0].ctx)
		err := b.st.WithReplayableTx(ctx, func(tx *store.Tx) error {
			// CreateResources takes one project's resources at a time.
			var rs []store.Resource
			var index [][]store.IndexRow
			for i, w := range batch {
				rs = append(rs, w.rs...)
				index = append(index, w.index...)
				last := i == len(batch)-1
				if last || batch[i+1].rs[0].ProjectID != w.rs[0].ProjectID {
					if err := tx.CreateResources(ctx, rs, index); err != nil {
						return err
					}
					rs, index = nil, nil
				}
			}
			var keys []store.LabResultKey
			for _, w := range batch {
				if err := w.writeUpdates(ctx, tx); err != nil {
					return err
				}
				if w.key != nil {
					keys = append(keys, *w.key)
				}
			}
			return tx.InsertLabResultKeys(ctx, keys)
		})
		if err == nil {
			return errs
		}
	}
	// At once, so that the store's group commit still shares the fsyncs.
	var wg sync.WaitGroup
	for i, w := range batch {
		wg.Go(func() {
			errs[i] = b.st.WithReplayableTx(w.ctx, func(tx *store.Tx) error {
				if err := tx.CreateResources(w.ctx, w.rs, w.index); err != nil {
					return err
				}
				if err := w.writeUpdates(w.ctx, tx); err != nil {
					return err
				}
				if w.key == nil {
					return nil
				}
				return tx.InsertLabResultKeys(w.ctx, []store.LabResultKey{*w.key})
			})
		})
	}
	wg.Wait()
	return errs
}

// writeUpdates writes w's new versions in tx.
func (w *resultWrite) writeUpdates(ctx context.Context, tx *store.Tx) error {
	for i, u := range w.updates {
		if err := tx.PutResource(ctx, u, w.updateIndex[i]); err != nil {
			return err
		}
	}
	return nil
}
