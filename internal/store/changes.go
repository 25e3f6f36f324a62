package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ChangeKind names what a change invalidates in a server's memory.
type ChangeKind string

const (
	// ChangeRevocation: a token id was revoked (Subject, until ExpiresAt).
	ChangeRevocation ChangeKind = "revocation"
	// ChangeProject: a project's access policies, principals or settings
	// changed (ProjectID).
	ChangeProject ChangeKind = "project"
	// ChangeKeys: the signing keys changed.
	ChangeKeys ChangeKind = "keys"
)

// Change is one row of the change log.
type Change struct {
	Version   int64
	Kind      ChangeKind
	ProjectID string
	Subject   string
	ExpiresAt time.Time
}

// changeLogKeep is how many versions the log keeps: a replica further
// behind than this reloads everything instead.
const changeLogKeep = 10_000

// ErrNoListen: the database cannot announce changes (SQLite, one process).
var ErrNoListen = errors.New("this database does not announce changes")

// changeChannel is the NOTIFY channel of a schema: channels are
// database-wide, and tests (or tenants) may share a database.
func changeChannel(schema string) string {
	h := sha256.Sum256([]byte(schema))
	return "ward_changes_" + hex.EncodeToString(h[:8])
}

// RecordChange bumps the change version and logs c under it, in tx: the
// change and its announcement commit together. On PostgreSQL the
// listening replicas are notified at commit. It returns the new version.
func (tx *Tx) RecordChange(ctx context.Context, c Change) (int64, error) {
	var v int64
	// The row lock held to commit orders versions as commits: a reader that
	// sees version v sees every change up to v.
	if err := tx.queryRow(ctx, `UPDATE change_version SET version = version + 1 WHERE id = 1 RETURNING version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("record change: %w", tx.mapErr(err))
	}
	var exp int64
	if !c.ExpiresAt.IsZero() {
		exp = ms(c.ExpiresAt)
	}
	if _, err := tx.exec(ctx, `INSERT INTO changes (version, kind, project_id, subject, expires_at) VALUES (?, ?, ?, ?, ?)`,
		v, string(c.Kind), c.ProjectID, c.Subject, exp); err != nil {
		return 0, fmt.Errorf("record change: %w", err)
	}
	if v%1000 == 0 {
		if _, err := tx.exec(ctx, `DELETE FROM changes WHERE version <= ?`, v-changeLogKeep); err != nil {
			return 0, fmt.Errorf("trim change log: %w", err)
		}
	}
	if tx.dialect == Postgres {
		if _, err := tx.exec(ctx, `SELECT pg_notify(?, ?)`, tx.channel, strconv.FormatInt(v, 10)); err != nil {
			return 0, fmt.Errorf("announce change: %w", err)
		}
		if tx.changed != nil {
			*tx.changed = max(*tx.changed, v) // awaited after the commit (withTx)
		}
	}
	return v, nil
}

// RecordChange is Tx.RecordChange in a transaction of its own.
func (s *Store) RecordChange(ctx context.Context, c Change) (int64, error) {
	var v int64
	err := s.WithTx(ctx, func(tx *Tx) error {
		var err error
		v, err = tx.RecordChange(ctx, c)
		return err
	})
	return v, err
}

// ChangeVersion is the version of the latest committed change.
func (s *Store) ChangeVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.queryRow(ctx, changeVersionSQL).Scan(&v); err != nil {
		return 0, fmt.Errorf("change version: %w", s.mapErr(err))
	}
	return v, nil
}

// ChangesSince lists the logged changes after version v, oldest first, at
// most limit. The first has version v+1 unless the log was trimmed past it.
func (s *Store) ChangesSince(ctx context.Context, v int64, limit int) ([]Change, error) {
	rows, err := s.query(ctx, `SELECT version, kind, project_id, subject, expires_at FROM changes WHERE version > ? ORDER BY version LIMIT `+strconv.Itoa(limit), v)
	if err != nil {
		return nil, fmt.Errorf("changes since %d: %w", v, err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var c Change
		var kind string
		var exp int64
		if err := rows.Scan(&c.Version, &kind, &c.ProjectID, &c.Subject, &exp); err != nil {
			return nil, fmt.Errorf("changes since %d: %w", v, err)
		}
		c.Kind = ChangeKind(kind)
		if exp != 0 {
			c.ExpiresAt = fromMS(exp)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ListenChanges listens for changes on a connection of its own: it calls
// listening once the database will announce every later commit to it,
// then heard with each announced version, until ctx ends or the
// connection fails (the error says which). Errors: ErrNoListen on SQLite.
func (s *Store) ListenChanges(ctx context.Context, listening func(), heard func(version int64)) error {
	return s.Listen(ctx, ListenConfig{Listening: listening, Heard: heard})
}

// ReplicaLease is how long a replica's lease lasts from its renewal: the
// longest a writer waits for a replica that stopped answering (killed,
// frozen, cut off) before it answers its client.
const ReplicaLease = 3 * time.Second

// ListenConfig is what Listen calls. With ReplicaID set the listener also
// holds a replica lease (table replica_leases): every ReplicaLease/3, on
// the listening connection (so a lease is renewed only while
// announcements can reach it), it records the version applied and a lease
// until ReplicaLease from now by the database's clock, reads the version
// again, has CatchUp apply up to it and only then tells Leased until when
// the lease holds. While it holds, every commit of a change waits for
// this replica to apply it (Tx.RecordChange), so the replica need not read
// the version per request.
type ListenConfig struct {
	Listening func()
	Heard     func(version int64)

	ReplicaID string
	Applied   func() int64                             // the version applied in memory
	CatchUp   func(ctx context.Context, v int64) error // apply changes up to v
	Leased    func(until time.Time)                    // zero: no lease (read per request)
}

// dbNowMS is the database's clock in ms, for leases: writers and replicas
// compare lease ends on one clock.
const dbNowMS = `CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)`

// Listen is ListenChanges with a replica lease (see ListenConfig). With
// the lease it also keeps this replica's resource cache (rcache.go):
// it applies the evictions other replicas announce, records the marks
// heard in the lease row, and lets GetResource use the cache only while
// the lease holds.
func (s *Store) Listen(ctx context.Context, lc ListenConfig) error {
	if s.dialect != Postgres {
		return ErrNoListen
	}
	conn, err := pgx.ConnectConfig(ctx, s.pg)
	if err != nil {
		return fmt.Errorf("listen for changes: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen for changes: %w", err)
	}
	leased := lc.ReplicaID != ""
	rs := s.rs
	if leased {
		if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.rchannel}.Sanitize()); err != nil {
			return fmt.Errorf("listen for resource writes: %w", err)
		}
		rs.id.Store(&lc.ReplicaID)
		// Evictions announced while no listener ran are lost: start empty
		// (the first renewal empties it again, after it committed).
		rs.clear()
	}
	lc.Listening()
	if leased {
		defer func() {
			lc.Leased(time.Time{})
			rs.setLease(time.Time{})
			rs.clear()
			// A clean stop: writers no longer wait for this replica.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_, _ = s.write.ExecContext(dctx, `DELETE FROM replica_leases WHERE id = $1`, lc.ReplicaID)
		}()
	}
	recorded := int64(-1) // the applied version the lease row holds
	var heard, recordedMark int64
	var markSince time.Time // when an unrecorded mark was heard (zero: none)
	// ack records the applied version and the marks heard, in one UPDATE
	// for all heard since the last.
	ack := func() error {
		v := lc.Applied()
		if v <= recorded && heard <= recordedMark {
			markSince = time.Time{}
			return nil
		}
		m := max(heard, recordedMark)
		if _, err := conn.Exec(ctx, `UPDATE replica_leases SET applied = $1, mark = $2 WHERE id = $3`, max(v, recorded), m, lc.ReplicaID); err != nil {
			return fmt.Errorf("replica lease: %w", err)
		}
		recorded, recordedMark, markSince = max(v, recorded), m, time.Time{}
		return nil
	}
	// hear handles one announcement.
	hear := func(n *pgconn.Notification) {
		if n.Channel == s.rchannel {
			if m, joiner, ok := parseMark(n.Payload); ok {
				heard = max(heard, m)
				if markSince.IsZero() {
					markSince = time.Now()
				}
				if joiner != "" && joiner != lc.ReplicaID {
					rs.others.Store(true)
				}
			} else if k, ok := parseEvict(n.Payload); ok {
				s.evictLocal([]rkey{k})
			}
			return
		}
		v, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil {
			return // not ours: the channel name is all that ties it to us
		}
		lc.Heard(v)
		if markSince.IsZero() {
			markSince = time.Now()
		}
	}
	var next time.Time // the next renewal
	for {
		if leased && !time.Now().Before(next) {
			start := time.Now()
			next = start.Add(ReplicaLease / 3)
			// A lease taken anew (first, or after a lapse) empties the
			// cache once the renewal committed, so the row may claim every
			// mark taken so far.
			lapsed := !rs.leased()
			applied := lc.Applied()
			var others int
			if err := conn.QueryRow(ctx, `WITH l AS (INSERT INTO replica_leases (id, applied, lease_until, pid, mark)
				VALUES ($1, $2, `+dbNowMS+` + $3, pg_backend_pid(),
					GREATEST($4, CASE WHEN $5 THEN (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM resource_marks) ELSE 0 END))
				ON CONFLICT (id) DO UPDATE SET applied = EXCLUDED.applied, lease_until = EXCLUDED.lease_until, pid = EXCLUDED.pid, mark = EXCLUDED.mark
				RETURNING mark)
				SELECT (SELECT mark FROM l), (SELECT count(*) FROM replica_leases WHERE id <> $1 AND lease_until > `+dbNowMS+`)`,
				lc.ReplicaID, applied, ReplicaLease.Milliseconds(), max(heard, recordedMark), lapsed).Scan(&recordedMark, &others); err != nil {
				return fmt.Errorf("replica lease: %w", err)
			}
			// A lease that ran out on this clock while the renewal was on
			// its way may have ended in the database too: writers may have
			// stopped waiting for this replica, so it is taken anew.
			fresh := lapsed || !rs.leased()
			recorded = applied
			rs.others.Store(others > 0)
			if fresh {
				// Announce this replica and wait until every leased one
				// has heard it (so each waits for this cache from then on).
				if err := s.join(ctx, conn, lc.ReplicaID, hear, ack); err != nil {
					return err
				}
			}
			// Read after the renewal committed: a writer that did not see
			// it committed its change before, and this read sees that.
			var v int64
			if err := conn.QueryRow(ctx, changeVersionSQL).Scan(&v); err != nil {
				return fmt.Errorf("replica lease: %w", err)
			}
			if err := lc.CatchUp(ctx, v); err != nil {
				lc.Leased(time.Time{})
				s.log.WarnContext(ctx, "replica lease: catch up failed, reading the change version per request", "err", err)
			} else {
				if err := ack(); err != nil {
					return err
				}
				// Local clock, from before the renewal was sent: the
				// database's lease ends no earlier.
				lc.Leased(start.Add(ReplicaLease - ReplicaLease/10))
			}
			if fresh {
				rs.clear()
			}
			rs.setLease(start.Add(ReplicaLease - ReplicaLease/10))
		}
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if leased {
			until := next
			if !markSince.IsZero() {
				// Heard marks are recorded within markDelay, together.
				until = markSince.Add(markDelay)
			}
			wctx, cancel = context.WithDeadline(ctx, until)
		}
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if leased && ctx.Err() == nil && wctx.Err() != nil {
				if err := ack(); err != nil {
					return err
				}
				continue // time to record marks, or to renew
			}
			return fmt.Errorf("listen for changes: %w", err)
		}
		hear(n)
		if leased && !markSince.IsZero() && time.Since(markSince) >= markDelay {
			if err := ack(); err != nil {
				return err
			}
		}
	}
}

// markDelay is how long a replica may hold heard marks (and applied
// versions) before recording them: one UPDATE for the writes of that
// window, at the cost of up to that much more wait for their writers.
const markDelay = 300 * time.Microsecond

// join announces a replica taking its lease anew (a mark) and waits until
// every other leased replica has heard it or its lease ran out, hearing
// announcements meanwhile (two replicas may join at once).
func (s *Store) join(ctx context.Context, conn *pgx.Conn, id string, hear func(*pgconn.Notification), ack func() error) error {
	var m int64
	if err := conn.QueryRow(ctx, `SELECT x.s FROM (SELECT nextval('resource_marks') AS s) x CROSS JOIN LATERAL pg_notify($1, 'j' || x.s || ' ' || $2::text) n`,
		s.rchannel, id).Scan(&m); err != nil {
		return fmt.Errorf("replica lease: announce: %w", err)
	}
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM replica_leases WHERE id <> $1 AND mark < $2 AND lease_until > `+dbNowMS, id, m).Scan(&n); err != nil {
			return fmt.Errorf("replica lease: announce: %w", err)
		}
		if n == 0 {
			return nil
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Millisecond)
		note, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil && (ctx.Err() != nil || wctx.Err() == nil) {
			return fmt.Errorf("listen for changes: %w", err)
		}
		if err == nil {
			hear(note)
		}
		if err := ack(); err != nil {
			return err
		}
	}
}

// afterCommit runs after the commit of a PostgreSQL transaction that
// recorded change version changed (0: none) or updated or deleted the
// resources evicted: it drops them from this replica's cache, and waits
// until every leased replica has applied the change and dropped them, or
// its lease ran out (rcache.go says why), so that both hold on every
// replica's next request once the writer answers.
func (s *Store) afterCommit(ctx context.Context, changed int64, evicted []rkey) {
	s.evictLocal(evicted)
	var mark int64
	if len(evicted) > 0 && !s.rs.alone() {
		err := s.write.QueryRowContext(ctx, `SELECT x.s FROM (SELECT nextval('resource_marks') AS s) x CROSS JOIN LATERAL pg_notify($1, 'm' || x.s) n`, s.rchannel).Scan(&mark)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.WarnContext(ctx, "resource write not announced: waiting out the lease", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(ReplicaLease):
			}
			return
		}
	}
	if changed > 0 || mark > 0 {
		s.awaitReplicas(ctx, changed, mark)
	}
}

// awaitReplicas waits, after the commit of change version v (0: none) and
// the announcement of resource mark m (0: none), until every replica
// holding a lease has applied v and every other one has heard m, or its
// lease ran out. Should the leases not be readable, it waits out the
// longest lease instead.
func (s *Store) awaitReplicas(ctx context.Context, v, m int64) {
	self := ""
	if id := s.rs.id.Load(); id != nil {
		self = *id
	}
	wait := 500 * time.Microsecond
	for {
		var n int
		err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM replica_leases WHERE (applied < $1 OR mark < $2 AND id <> $3) AND lease_until > `+dbNowMS, v, m, self).Scan(&n)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.WarnContext(ctx, "replica leases unreadable: waiting out the lease after a change", "err", err, "version", v, "mark", m)
			select {
			case <-ctx.Done():
			case <-time.After(ReplicaLease):
			}
			return
		}
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// resourceChannel is the NOTIFY channel of a schema's resource writes.
func resourceChannel(schema string) string {
	h := sha256.Sum256([]byte(schema))
	return "ward_resources_" + hex.EncodeToString(h[:8])
}

// evictPayload announces a write of k: "e" and the key's parts,
// tab-separated (no part holds a tab: ids and types are FHIR's [A-Za-z0-9-.]).
func evictPayload(k rkey) string { return "e" + k.project + "\t" + k.typ + "\t" + k.id }

func parseEvict(p string) (rkey, bool) {
	rest, ok := strings.CutPrefix(p, "e")
	if !ok {
		return rkey{}, false
	}
	parts := strings.Split(rest, "\t")
	if len(parts) != 3 {
		return rkey{}, false
	}
	return rkey{parts[0], parts[1], parts[2]}, true
}

// parseMark reads a mark ("m<n>") or a joining replica's mark
// ("j<n> <id>").
func parseMark(p string) (m int64, joiner string, ok bool) {
	if p == "" || p[0] != 'm' && p[0] != 'j' {
		return 0, "", false
	}
	num := p[1:]
	if p[0] == 'j' {
		var found bool
		num, joiner, found = strings.Cut(num, " ")
		if !found || joiner == "" {
			return 0, "", false
		}
	}
	m, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return m, joiner, true
}

// ChangeChannel is the NOTIFY channel changes are announced on ("" on
// SQLite).
func (s *Store) ChangeChannel() string { return s.channel }

const changeVersionSQL = `SELECT version FROM change_version WHERE id = 1`
