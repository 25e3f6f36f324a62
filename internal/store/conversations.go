package store

import (
	"context"
	"fmt"

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
