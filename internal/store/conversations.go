package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// MaxConversationNotice bounds an announced conversation event: PostgreSQL
// refuses NOTIFY payloads of 8000 bytes or more.
const MaxConversationNotice = 7900

// conversationChannel is where conversation events are announced, one per
// schema like the change channel ("" on SQLite).
func (s *Store) conversationChannel() string {
	if s.channel == "" {
		return ""
	}
	return s.channel + "_conv"
}

// Announces reports whether NotifyConversation reaches other processes
// (PostgreSQL); on SQLite the one process delivers in memory.
func (s *Store) Announces() bool { return s.dialect == Postgres }

// NotifyConversation announces payloads (each at most
// MaxConversationNotice bytes), in order, to every replica listening with
// ListenConversations: one statement and one commit for them all, since
// PostgreSQL serialises the commits of notifying transactions. It does
// nothing on SQLite.
func (s *Store) NotifyConversation(ctx context.Context, payloads ...string) error {
	if s.dialect != Postgres || len(payloads) == 0 {
		return nil
	}
	for _, p := range payloads {
		if len(p) > MaxConversationNotice {
			return fmt.Errorf("conversation notice of %d bytes is over %d", len(p), MaxConversationNotice)
		}
	}
	if _, err := s.exec(ctx, `SELECT pg_notify(?, p) FROM unnest(?::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n`,
		s.conversationChannel(), payloads); err != nil {
		return fmt.Errorf("announce conversation events: %w", err)
	}
	return nil
}

// ListenConversations listens for conversation events on a connection of
// its own: it calls listening once later announcements will reach it, then
// heard with each payload, until ctx ends or the connection fails.
// Errors: ErrNoListen on SQLite.
func (s *Store) ListenConversations(ctx context.Context, listening func(), heard func(payload string)) error {
	if s.dialect != Postgres {
		return ErrNoListen
	}
	conn, err := pgx.ConnectConfig(ctx, s.pg)
	if err != nil {
		return fmt.Errorf("listen for conversation events: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.conversationChannel()}.Sanitize()); err != nil {
		return fmt.Errorf("listen for conversation events: %w", err)
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("listen for conversation events: %w", err)
		}
		heard(n.Payload)
	}
}

// CreateResources writes new resources (version 1 each, of one project,
// at ids no resource has) with their index rows and outbox rows: one
// statement per table for all of them, in the caller's transaction.
// index[i] is rs[i]'s. Errors: ErrConflict when an id is taken.
func (tx *Tx) CreateResources(ctx context.Context, rs []Resource, index [][]IndexRow) error {
	if len(rs) == 0 {
		return nil
	}
	if len(index) != len(rs) {
		return fmt.Errorf("create resources: %d resources but %d index lists", len(rs), len(index))
	}
	projectID := rs[0].ProjectID
	items := make([]indexed, len(rs))
	for i, r := range rs {
		if r.ProjectID != projectID || r.VersionID != 1 {
			return fmt.Errorf("create resources: %s/%s is not version 1 of project %s", r.Type, r.ID, projectID)
		}
		items[i] = indexed{r.Type, r.ID, index[i]}
	}
	if tx.dialect == Postgres {
		if done, err := tx.createResourcesOnce(ctx, rs, items); done || err != nil {
			return err
		}
	}
	start := 0
	for _, n := range chunkSizes(len(rs), 64) {
		chunk := rs[start : start+n]
		start += n
		args := make([]any, 0, 8*len(chunk))
		outbox := make([]any, 0, 6*len(chunk))
		for _, r := range chunk {
			upd := ms(r.LastUpdated)
			args = append(args, r.ProjectID, r.Type, r.ID, r.VersionID, upd, r.Deleted, string(r.Content), r.Method)
			outbox = append(outbox, r.ProjectID, r.Type, r.ID, r.VersionID, "create", upd)
		}
		if _, err := tx.exec(ctx, `INSERT INTO fhir_resources (`+resourceCols+`, method) VALUES `+rowsOf(8, len(chunk)), args...); err != nil {
			return fmt.Errorf("insert resources: %w", err)
		}
		if _, err := tx.exec(ctx, `INSERT INTO outbox (project_id, resource_type, id, version_id, interaction, created_at) VALUES `+rowsOf(6, len(chunk)), outbox...); err != nil {
			return fmt.Errorf("insert outbox: %w", err)
		}
	}
	return tx.insertIndexMany(ctx, projectID, items)
}

// maxPGParams stays under PostgreSQL's 65,535 bound parameters.
const maxPGParams = 60000

// createResourcesOnce is CreateResources on PostgreSQL in one statement
// (resources, outbox and every index table as the parts of one WITH): one
// round trip for the batch, where each is a wait when the database is
// busy. done is false (nothing written) when the batch has too many
// values for one statement.
func (tx *Tx) createResourcesOnce(ctx context.Context, rs []Resource, items []indexed) (done bool, err error) {
	var parts []string
	var args []any
	res := make([]any, 0, 8*len(rs))
	outbox := make([]any, 0, 6*len(rs))
	for _, r := range rs {
		upd := ms(r.LastUpdated)
		res = append(res, r.ProjectID, r.Type, r.ID, r.VersionID, upd, r.Deleted, string(r.Content), r.Method)
		outbox = append(outbox, r.ProjectID, r.Type, r.ID, r.VersionID, "create", upd)
	}
	parts = append(parts, `INSERT INTO fhir_resources (`+resourceCols+`, method) VALUES `+rowsOf(8, len(rs)))
	args = append(args, res...)
	parts = append(parts, `INSERT INTO outbox (project_id, resource_type, id, version_id, interaction, created_at) VALUES `+rowsOf(6, len(rs)))
	args = append(args, outbox...)
	for _, b := range indexBatches(rs[0].ProjectID, items) {
		parts = append(parts, `INSERT INTO `+b.table+` (project_id, resource_type, id, `+b.cols+`) VALUES `+rowsOf(b.n, len(b.args)/b.n))
		args = append(args, b.args...)
	}
	if len(args) > maxPGParams {
		return false, nil
	}
	var q strings.Builder
	q.WriteString("WITH ")
	for i, p := range parts[:len(parts)-1] {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "w%d AS (%s)", i, p)
	}
	q.WriteString(" ")
	q.WriteString(parts[len(parts)-1])
	if _, err := tx.exec(ctx, q.String(), args...); err != nil {
		return false, fmt.Errorf("insert resources: %w", err)
	}
	return true, nil
}

// chunkSizes splits n rows into chunks of a few fixed sizes (largest, 16, 4,
// 1, largest first): a multi-row statement of each size is prepared once
// and reused, where one per count would crowd the statement caches.
func chunkSizes(n, largest int) []int {
	var out []int
	for _, size := range []int{largest, 16, 4, 1} {
		if size > largest {
			continue
		}
		for ; n >= size; n -= size {
			out = append(out, size)
		}
	}
	return out
}

// rowsOf is n rows of cols placeholders for a multi-row VALUES.
func rowsOf(cols, n int) string {
	row := "(" + placeholders(cols) + ")"
	return strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

// NextConversationSeq reserves n message numbers of a conversation and
// returns the last (the first is last-n+1). The counter row stays locked
// until the transaction ends, so numbers follow commit order.
func (tx *Tx) NextConversationSeq(ctx context.Context, projectID, conv string, n int) (int64, error) {
	var last int64
	err := tx.queryRow(ctx, `INSERT INTO conversation_seq (project_id, conversation_id, last_seq) VALUES (?, ?, ?)
		ON CONFLICT (project_id, conversation_id) DO UPDATE SET last_seq = conversation_seq.last_seq + excluded.last_seq
		RETURNING last_seq`, projectID, conv, n).Scan(&last)
	if err != nil {
		return 0, fmt.Errorf("number conversation messages: %w", tx.mapErr(err))
	}
	return last, nil
}

// ConversationMessage is a message's place in its conversation.
type ConversationMessage struct {
	Seq int64
	ID  string // the Communication's id
}

// AddConversationMessages records messages' numbers, in the caller's
// transaction.
func (tx *Tx) AddConversationMessages(ctx context.Context, projectID, conv string, msgs []ConversationMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	start := 0
	for _, n := range chunkSizes(len(msgs), 64) {
		chunk := msgs[start : start+n]
		start += n
		args := make([]any, 0, 4*len(chunk))
		for _, m := range chunk {
			args = append(args, projectID, conv, m.Seq, m.ID)
		}
		if _, err := tx.exec(ctx, `INSERT INTO conversation_messages (project_id, conversation_id, seq, message_id) VALUES `+rowsOf(4, len(chunk)), args...); err != nil {
			return fmt.Errorf("record conversation messages: %w", err)
		}
	}
	return nil
}

// ConversationMessagesAfter lists up to limit messages of a conversation
// numbered after seq, in order.
func (s *Store) ConversationMessagesAfter(ctx context.Context, projectID, conv string, after int64, limit int) ([]ConversationMessage, error) {
	rows, err := s.query(ctx, `SELECT seq, message_id FROM conversation_messages WHERE project_id = ? AND conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		projectID, conv, after, limit)
	if err != nil {
		return nil, fmt.Errorf("conversation messages: %w", err)
	}
	defer rows.Close()
	var out []ConversationMessage
	for rows.Next() {
		var m ConversationMessage
		if err := rows.Scan(&m.Seq, &m.ID); err != nil {
			return nil, fmt.Errorf("conversation messages: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// WritePendingAudit writes the audit event ctx carries, if not yet
// written, in tx; call the returned func once tx has committed. For work
// that writes for many requests in one transaction (each request's own
// context is not the transaction's).
func (tx *Tx) WritePendingAudit(ctx context.Context) (committed func(), err error) {
	a, ok := ctx.Value(auditKey{}).(*PendingAudit)
	if !ok || a.Written() {
		return func() {}, nil
	}
	if err := tx.InsertAudit(ctx, a.Event); err != nil {
		return nil, err
	}
	return func() { a.written.Store(true) }, nil
}

// ConversationLastSeq is the number of a conversation's latest message (0
// before the first).
func (s *Store) ConversationLastSeq(ctx context.Context, projectID, conv string) (int64, error) {
	var last int64
	err := s.queryRow(ctx, `SELECT last_seq FROM conversation_seq WHERE project_id = ? AND conversation_id = ?`, projectID, conv).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("conversation position: %w", s.mapErr(err))
	}
	return last, nil
}

// NumberConversationMessages gives messages (Communication ids, in order)
// the next numbers of their conversation and records them; it returns the
// first. The counter row stays locked until the transaction ends, so
// numbers follow commit order: call it last. On PostgreSQL it is one
// statement, as the lock is held from it to the commit.
//
// On PostgreSQL it also returns the current version of the conversation's
// Encounter, as that statement saw it (0: none, or deleted): a batch built
// from members it did not read in this transaction checks them with it,
// at no extra round trip. On SQLite the version is 0.
func (tx *Tx) NumberConversationMessages(ctx context.Context, projectID, conv string, ids []string) (first, encounterVersion int64, err error) {
	if tx.dialect != Postgres {
		last, err := tx.NextConversationSeq(ctx, projectID, conv, len(ids))
		if err != nil {
			return 0, 0, err
		}
		first := last - int64(len(ids)) + 1
		msgs := make([]ConversationMessage, len(ids))
		for i, id := range ids {
			msgs[i] = ConversationMessage{Seq: first + int64(i), ID: id}
		}
		// No version: on SQLite the caller reads the Encounter (no round
		// trip there).
		return first, 0, tx.AddConversationMessages(ctx, projectID, conv, msgs)
	}
	var version sql.NullInt64
	err = tx.queryRow(ctx, `WITH s AS (
		INSERT INTO conversation_seq (project_id, conversation_id, last_seq) VALUES (?, ?, ?)
		ON CONFLICT (project_id, conversation_id) DO UPDATE SET last_seq = conversation_seq.last_seq + excluded.last_seq
		RETURNING last_seq - ? AS base
	), ins AS (
		INSERT INTO conversation_messages (project_id, conversation_id, seq, message_id)
		SELECT ?, ?, s.base + t.n, t.id FROM s, unnest(?::text[]) WITH ORDINALITY AS t(id, n)
	)
	SELECT base + 1, (SELECT version_id FROM fhir_resources WHERE project_id = ? AND resource_type = 'Encounter' AND id = ? AND NOT deleted) FROM s`,
		projectID, conv, len(ids), len(ids), projectID, conv, ids, projectID, conv).Scan(&first, &version)
	if err != nil {
		return 0, 0, fmt.Errorf("number conversation messages: %w", tx.mapErr(err))
	}
	return first, version.Int64, nil
}
