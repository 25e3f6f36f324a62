package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// Messages are written in batches: the senders that arrive while a batch
// commits share the next transaction (one commit, one read of each
// conversation's Encounter, one statement per table), as the store's
// group commit does for single writes. Each message is built by its
// sender, concurrently, from the members last seen; the batch re-reads the
// Encounter in its transaction and rebuilds a message only if the members
// changed meanwhile, so a removal committed before the batch is always
// honoured.

// maxMessageBatch bounds the messages of one transaction.
const maxMessageBatch = 256

// maxCached bounds the conversations whose members are remembered.
const maxCached = 4096

// pending is one message waiting for its batch.
type pending struct {
	ctx      context.Context
	project  string
	conv     string
	author   string
	text     string
	attrsRaw json.RawMessage
	attrs    map[string]any
	sent     string
	// built from the members of Encounter version ver (0: not built).
	ver   int64
	res   store.Resource
	index []store.IndexRow

	done chan struct{}
	msg  Message
	err  error
}

// convState is what a batch needs of a conversation's Encounter.
type convState struct {
	version int64
	isConv  bool // the Encounter exists and is this conversation
	members []string
}

// maxFlushers bounds the batches in flight at once: a few, so that one
// batch's round trips to the database overlap another's (the counter row
// orders their numbers; streams restore the order, stream.go).
const maxFlushers = 4

// batcher queues messages for the transactions in flight.
type batcher struct {
	mu      sync.Mutex
	queue   []*pending
	running int // batches being written; their writers take the queue next

	cacheMu sync.Mutex
	cache   map[roomKey]convState
}

func (b *batcher) cached(k roomKey) (convState, bool) {
	b.cacheMu.Lock()
	defer b.cacheMu.Unlock()
	c, ok := b.cache[k]
	return c, ok
}

func (b *batcher) remember(k roomKey, c convState) {
	b.cacheMu.Lock()
	defer b.cacheMu.Unlock()
	if b.cache == nil || len(b.cache) >= maxCached {
		b.cache = map[roomKey]convState{}
	}
	b.cache[k] = c
}

// write queues p and returns once its batch has committed (or failed).
// The sender that finds no batch in flight writes one itself.
func (s *Service) write(p *pending) {
	b := &s.batch
	b.mu.Lock()
	b.queue = append(b.queue, p)
	lead := b.running < maxFlushers
	if lead {
		b.running++
	}
	b.mu.Unlock()
	if lead {
		s.drain()
	}
	<-p.done
}

// drain writes one batch, then hands the queue on to another goroutine
// (so its own sender returns) or, when it is empty, ends.
func (s *Service) drain() {
	b := &s.batch
	b.mu.Lock()
	n := min(len(b.queue), maxMessageBatch)
	batch := slices.Clone(b.queue[:n])
	b.queue = slices.Delete(b.queue, 0, n)
	b.mu.Unlock()
	if n > 0 {
		s.flush(batch)
	}
	b.mu.Lock()
	more := len(b.queue) > 0
	if !more {
		b.running--
	}
	b.mu.Unlock()
	if more {
		go s.drain()
	}
}

// build makes p's Communication for the given members.
func (s *Service) build(p *pending, st convState) error {
	comm := map[string]any{"resourceType": "Communication", "status": "completed",
		"partOf":    []any{map[string]any{"reference": "Encounter/" + p.conv}},
		"encounter": map[string]any{"reference": "Encounter/" + p.conv},
		"sent":      p.sent, "payload": []any{map[string]any{"contentString": p.text}}}
	if p.author != "" {
		comm["sender"] = map[string]any{"reference": p.author}
	}
	var to []any
	for _, m := range st.members {
		if m != p.author {
			to = append(to, map[string]any{"reference": m})
		}
	}
	if len(to) > 0 {
		comm["recipient"] = to
	}
	if p.attrs != nil {
		comm["extension"] = []any{map[string]any{"url": attributesExtension, "valueString": string(p.attrsRaw)}}
	}
	b, err := json.Marshal(comm)
	if err != nil {
		return err
	}
	r, rows, err := s.fhir.PrepareSystemCreate(p.project, b)
	if err != nil {
		return err
	}
	p.res, p.index, p.ver = r, rows, st.version
	p.msg = Message{ProjectID: p.project, ConversationID: p.conv, ID: r.ID, Author: p.author, Body: p.text,
		Attributes: p.attrs, Sent: p.sent, audience: st.members}
	return nil
}

// readConv reads a conversation's Encounter (in tx), remembering its
// members by version.
func (s *Service) readConv(ctx context.Context, tx *store.Tx, k roomKey) (convState, error) {
	r, err := tx.GetResource(ctx, k.project, "Encounter", k.conv)
	if errors.Is(err, store.ErrNotFound) || err == nil && r.Deleted {
		return convState{}, nil
	}
	if err != nil {
		return convState{}, err
	}
	if c, ok := s.batch.cached(k); ok && c.version == r.VersionID {
		return c, nil
	}
	enc, err := decodeObject(r.Content)
	if err != nil {
		return convState{}, err
	}
	c := convState{version: r.VersionID, isConv: conversationID(enc) == k.conv, members: members(enc)}
	s.batch.remember(k, c)
	return c, nil
}

// flush writes a batch in one transaction and then delivers it in order.
func (s *Service) flush(batch []*pending) {
	// Not bound to one sender's cancellation: the batch is everyone's.
	ctx := context.WithoutCancel(batch[0].ctx)
	var keys []roomKey
	groups := map[roomKey][]*pending{}
	for _, p := range batch {
		k := roomKey{p.project, p.conv}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], p)
	}
	var written []*pending
	var audits []func()
	// On PostgreSQL a batch built from the members last seen skips the
	// Encounter's read: the numbering statement returns its version, and a
	// change since (a removal, say) rolls the batch back for one more run
	// that reads it. On SQLite a read costs no round trip.
	read := s.fhir.Store().Dialect() != store.Postgres
	var err error
	for range 2 {
		err = s.writeBatch(ctx, batch, keys, groups, read, &written, &audits)
		if !errors.Is(err, errStale) {
			break
		}
		read = true
	}
	if err != nil {
		for _, p := range batch {
			p.err = err
			close(p.done)
		}
		return
	}
	s.fhir.Committed()
	for _, a := range audits {
		a()
	}
	// In order: each process's streams see a conversation's messages as
	// numbered. A failed live delivery loses nothing (the history has it).
	for _, p := range written {
		_ = s.prov.Post(ctx, p.msg)
	}
	for _, p := range batch {
		close(p.done)
	}
}

// errStale is a batch built from members that changed before it committed.
var errStale = errors.New("conversation members changed: rebuild")

// writeBatch is one transaction of flush; read makes it read each
// conversation's Encounter rather than trust the members the messages
// were built from.
func (s *Service) writeBatch(ctx context.Context, batch []*pending, keys []roomKey, groups map[roomKey][]*pending, read bool,
	written *[]*pending, audits *[]func()) error {
	// Replayable: the function sets again everything it sets outside tx.
	return s.fhir.Store().WithReplayableTx(ctx, func(tx *store.Tx) error {
		*written, *audits = (*written)[:0], (*audits)[:0]
		for _, p := range batch {
			p.err = nil
			a, err := tx.WritePendingAudit(p.ctx)
			if err != nil {
				return err
			}
			*audits = append(*audits, a)
		}
		for _, k := range keys {
			// The members the messages were built from, if all agree.
			st, trusted := s.batch.cached(k)
			trusted = trusted && st.isConv && !read
			for _, p := range groups[k] {
				trusted = trusted && p.ver == st.version
			}
			check := int64(0)
			if trusted {
				check = st.version
			} else {
				var err error
				if st, err = s.readConv(ctx, tx, k); err != nil {
					return err
				}
			}
			var ok []*pending
			for _, p := range groups[k] {
				if !st.isConv {
					p.err = fault.NotFound("no conversation %q", k.conv)
					continue
				}
				if p.ver != st.version {
					if err := s.build(p, st); err != nil {
						p.err = err
						continue
					}
				}
				ok = append(ok, p)
			}
			if len(ok) == 0 {
				continue
			}
			rs := make([]store.Resource, len(ok))
			idx := make([][]store.IndexRow, len(ok))
			for i, p := range ok {
				rs[i], idx[i] = p.res, p.index
			}
			if err := tx.CreateResources(ctx, rs, idx); err != nil {
				return err
			}
			// Numbered last: the counter row is locked from here to the
			// commit, which is all that concurrent batches wait for.
			ids := make([]string, len(ok))
			for i, p := range ok {
				ids[i] = p.res.ID
			}
			first, version, err := tx.NumberConversationMessages(ctx, k.project, k.conv, ids)
			if err != nil {
				return err
			}
			if check != 0 && version != check {
				return errStale
			}
			for i, p := range ok {
				p.msg.Seq = first + int64(i)
			}
			*written = append(*written, ok...)
		}
		return nil
	})
}

// newPending checks a message and builds it from the members last seen.
func (s *Service) newPending(ctx context.Context, c Caller, conv string, body []byte) (*pending, error) {
	in, attrs, err := ParseMessage(body)
	if err != nil {
		return nil, err
	}
	p := &pending{ctx: ctx, project: c.P.ProjectID, conv: conv, author: c.Profile, text: in.Message,
		attrsRaw: in.Attributes, attrs: attrs, sent: s.now().UTC().Format(time.RFC3339Nano), done: make(chan struct{})}
	if st, ok := s.batch.cached(roomKey{p.project, conv}); ok && st.isConv {
		if err := s.build(p, st); err != nil {
			return nil, err
		}
	}
	return p, nil
}
