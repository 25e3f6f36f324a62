package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SubOwner is the principal who last wrote a Subscription: deliveries only
// carry what that principal may read.
type SubOwner struct {
	Kind, ID, ClientID string
}

// SetSubOwner records the owner of a subscription.
func (s *Store) SetSubOwner(ctx context.Context, projectID, subID string, o SubOwner) error {
	_, err := s.exec(ctx, `INSERT INTO sub_owners (project_id, subscription_id, principal_kind, principal_id, client_id) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (project_id, subscription_id) DO UPDATE SET principal_kind = excluded.principal_kind,
		principal_id = excluded.principal_id, client_id = excluded.client_id`, projectID, subID, o.Kind, o.ID, o.ClientID)
	if err != nil {
		return fmt.Errorf("set subscription owner: %w", err)
	}
	return nil
}

// GetSubOwner returns a subscription's owner. Errors: ErrNotFound.
func (s *Store) GetSubOwner(ctx context.Context, projectID, subID string) (SubOwner, error) {
	var o SubOwner
	if err := s.queryRow(ctx, `SELECT principal_kind, principal_id, client_id FROM sub_owners WHERE project_id = ? AND subscription_id = ?`,
		projectID, subID).Scan(&o.Kind, &o.ID, &o.ClientID); err != nil {
		return SubOwner{}, fmt.Errorf("subscription owner: %w", s.mapErr(err))
	}
	return o, nil
}

// GetSubOwners returns the owners of subscriptions, by id; one without an
// owner is left out.
func (s *Store) GetSubOwners(ctx context.Context, projectID string, subIDs []string) (map[string]SubOwner, error) {
	out := make(map[string]SubOwner, len(subIDs))
	if len(subIDs) == 0 {
		return out, nil
	}
	args := []any{projectID}
	for _, id := range subIDs {
		args = append(args, id)
	}
	rows, err := s.query(ctx, `SELECT subscription_id, principal_kind, principal_id, client_id FROM sub_owners WHERE project_id = ?
		AND subscription_id IN (`+placeholders(len(subIDs))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("subscription owners: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var o SubOwner
		if err := rows.Scan(&id, &o.Kind, &o.ID, &o.ClientID); err != nil {
			return nil, fmt.Errorf("subscription owners: %w", err)
		}
		out[id] = o
	}
	return out, rows.Err()
}

// Delivery is one event for one subscription.
type Delivery struct {
	ID             int64
	ProjectID      string
	SubscriptionID string
	EventSeq       int64
	Type, ResID    string
	VersionID      int64
	Interaction    string
	Status         string // pending, delivered, failed
	Attempts       int
	NextAttemptAt  time.Time
	LastError      string
	CreatedAt      time.Time
	DeliveredAt    time.Time
	// LeaseToken is the claim's fencing token: every claim adds one, and
	// only the latest claim's result is applied (FinishAttempts).
	LeaseToken int64
}

const deliveryCols = `id, project_id, subscription_id, event_seq, resource_type, resource_id, version_id, interaction, status, attempts,
	next_attempt_at, last_error, created_at, delivered_at, lease_token`

func scanDelivery(row interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var next, created, delivered int64
	if err := row.Scan(&d.ID, &d.ProjectID, &d.SubscriptionID, &d.EventSeq, &d.Type, &d.ResID, &d.VersionID, &d.Interaction, &d.Status,
		&d.Attempts, &next, &d.LastError, &created, &delivered, &d.LeaseToken); err != nil {
		return Delivery{}, err
	}
	d.NextAttemptAt, d.CreatedAt = fromMS(next), fromMS(created)
	if delivered != 0 {
		d.DeliveredAt = fromMS(delivered)
	}
	return d, nil
}

// MatchOutbox takes up to limit unmatched outbox events (on PostgreSQL,
// locked so concurrent matchers take different ones), lets match turn them
// into deliveries with the transaction at hand, stores those and marks the
// events matched, all in one transaction: an event is matched exactly once,
// even across a crash. It returns how many events it took.
func (s *Store) MatchOutbox(ctx context.Context, limit int, match func(tx *Tx, events []OutboxEvent) ([]Delivery, error)) (int, error) {
	n := 0
	err := s.WithTx(ctx, func(tx *Tx) error {
		lock := ""
		if s.dialect == Postgres {
			lock = ` FOR UPDATE SKIP LOCKED`
		}
		rows, err := tx.query(ctx, fmt.Sprintf(`SELECT seq, project_id, resource_type, id, version_id, interaction, created_at FROM outbox
			WHERE matched = 0 ORDER BY seq LIMIT %d%s`, limit, lock))
		if err != nil {
			return fmt.Errorf("match outbox: %w", err)
		}
		var events []OutboxEvent
		for rows.Next() {
			var e OutboxEvent
			var at int64
			if err := rows.Scan(&e.Seq, &e.ProjectID, &e.Type, &e.ID, &e.VersionID, &e.Interaction, &at); err != nil {
				rows.Close()
				return fmt.Errorf("match outbox: %w", err)
			}
			e.CreatedAt = fromMS(at)
			events = append(events, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("match outbox: %w", err)
		}
		if len(events) == 0 {
			return nil
		}
		deliveries, err := match(tx, events)
		if err != nil {
			return err
		}
		if err := tx.insertDeliveries(ctx, deliveries); err != nil {
			return err
		}
		args := make([]any, len(events))
		for i, e := range events {
			args[i] = e.Seq
		}
		if _, err := tx.exec(ctx, `UPDATE outbox SET matched = 1 WHERE seq IN (`+placeholders(len(events))+`)`, args...); err != nil {
			return fmt.Errorf("mark outbox: %w", err)
		}
		n = len(events)
		return nil
	})
	return n, err
}

// insertDeliveries stores deliveries in their order (their ids keep it),
// many rows a statement: one event fans out to every subscription on it.
func (tx *Tx) insertDeliveries(ctx context.Context, ds []Delivery) error {
	const cols, per = 9, 100 // 900 parameters a statement
	for start := 0; start < len(ds); start += per {
		chunk := ds[start:min(start+per, len(ds))]
		args := make([]any, 0, cols*len(chunk))
		for _, d := range chunk {
			args = append(args, d.ProjectID, d.SubscriptionID, d.EventSeq, d.Type, d.ResID, d.VersionID, d.Interaction, ms(d.NextAttemptAt), ms(d.CreatedAt))
		}
		values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?),", len(chunk)), ",")
		if _, err := tx.exec(ctx, `INSERT INTO sub_deliveries (project_id, subscription_id, event_seq, resource_type, resource_id, version_id,
			interaction, status, next_attempt_at, created_at) VALUES `+values+` ON CONFLICT DO NOTHING`, args...); err != nil {
			return fmt.Errorf("insert deliveries: %w", err)
		}
	}
	return nil
}

// ClaimDeliveries leases up to limit due deliveries of active
// subscriptions for lease, oldest due first. Per subscription and resource
// only the oldest pending version is due, so a resource's events arrive in
// order. A subscription is active when its search index says so (status
// token "active"; a deleted one has no index rows), so deliveries kept for
// a subscription in error never crowd out the others. One statement
// selects and leases them ("next_attempt_at > 0" picks the index made for
// it: 0025 and 0028_delivery_claim_predicate).
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	var out []Delivery
	err := s.WithTx(ctx, func(tx *Tx) error {
		lock := ""
		if s.dialect == Postgres {
			lock = ` FOR UPDATE SKIP LOCKED`
			// A lease need not survive a crash of the database: lost, it
			// lets a delivery be claimed again, which at-least-once
			// allows (a crash of Ward loses the attempt in flight
			// anyway), and not waiting for the WAL flush shortens every
			// claim. The plan is the same for every claim, and planning
			// with the values took 60 ms under load (estimating
			// next_attempt_at <= now walks the dead index entries the
			// finished deliveries leave): the generic plan, planned once
			// per connection, walks the same index.
			if _, err := tx.exec(ctx, `SELECT set_config('synchronous_commit', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)`); err != nil {
				return fmt.Errorf("claim deliveries: %w", err)
			}
		}
		rows, err := tx.query(ctx, `UPDATE sub_deliveries SET lease_until = ?, lease_token = lease_token + 1 WHERE id IN (SELECT d.id FROM sub_deliveries d
			WHERE d.status = 'pending' AND d.next_attempt_at > 0 AND d.next_attempt_at <= ? AND d.lease_until <= ?
			AND NOT EXISTS (SELECT 1 FROM sub_deliveries o WHERE o.subscription_id = d.subscription_id AND o.resource_type = d.resource_type
				AND o.resource_id = d.resource_id AND o.status = 'pending' AND (o.version_id < d.version_id OR o.version_id = d.version_id AND o.id < d.id))
			AND EXISTS (SELECT 1 FROM fhir_idx_token a WHERE a.project_id = d.project_id AND a.resource_type = 'Subscription'
				AND a.id = d.subscription_id AND a.param = 'status' AND a.code = 'active')
			ORDER BY d.next_attempt_at, d.id LIMIT ?`+lock+`) RETURNING `+deliveryCols, ms(now.Add(lease)), ms(now), ms(now), limit)
		if err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				return fmt.Errorf("claim deliveries: %w", err)
			}
			out = append(out, d)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		// RETURNING has no order: oldest due first, as selected.
		slices.SortFunc(out, func(a, b Delivery) int {
			if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
		return nil
	})
	return out, err
}

// Attempt is one try at a delivery.
type Attempt struct {
	At         time.Time
	StatusCode int // 0: no HTTP answer
	Error      string
	Duration   time.Duration
	// Stale (set by the store) marks an attempt whose result was refused:
	// its claim's lease had lapsed and another claim held the delivery.
	Stale bool
}

// Finish is one attempt at a delivery and the delivery's new state: status
// "delivered", "pending" (retry at Next) or "failed" (given up).
type Finish struct {
	Delivery Delivery
	Attempt  Attempt
	Status   string
	Next     time.Time
}

// ErrLeaseLost is a result refused because its claim no longer held the
// delivery (see FinishAttempts).
var ErrLeaseLost = errors.New("lease lost: another claim holds the delivery")

// FinishAttempt records one attempt (see FinishAttempts). Errors:
// ErrLeaseLost when the result was refused (the attempt is kept).
func (s *Store) FinishAttempt(ctx context.Context, d Delivery, a Attempt, status string, next time.Time) error {
	refused, err := s.FinishAttempts(ctx, []Finish{{Delivery: d, Attempt: a, Status: status, Next: next}})
	if err == nil && refused[0] {
		err = fmt.Errorf("finish delivery %d: %w", d.ID, ErrLeaseLost)
	}
	return err
}

// FinishAttempts records attempts and their deliveries' new states in one
// transaction, a few statements for many (deliveries finish at hundreds a
// second: one commit each would be the dispatcher's bottleneck). A
// delivery appears at most once per claim (lease token).
//
// A new state is applied only if the attempt's claim still holds the
// delivery (its LeaseToken is the latest and the delivery is pending):
// a replica that stalled past its lease cannot overwrite the result of the
// replica that took the delivery over. Every attempt is kept, numbered by
// its claim's token; a refused one is marked stale. refused[i] reports
// whether fs[i]'s new state was refused.
func (s *Store) FinishAttempts(ctx context.Context, fs []Finish) (refused []bool, err error) {
	if len(fs) == 0 {
		return nil, nil
	}
	type claim struct{ id, token int64 }
	err = s.WithTx(ctx, func(tx *Tx) error {
		refused = make([]bool, len(fs))
		const per = 100 // rows a statement: 700 parameters
		for start := 0; start < len(fs); start += per {
			chunk := fs[start:min(start+per, len(fs))]
			states := make([]any, 0, 7*len(chunk))
			for _, f := range chunk {
				delivered := int64(0)
				if f.Status == "delivered" {
					delivered = ms(f.Attempt.At)
				}
				states = append(states, f.Delivery.ID, f.Status, f.Delivery.Attempts+1, ms(f.Next), clipText(f.Attempt.Error), delivered, f.Delivery.LeaseToken)
			}
			// One UPDATE from a VALUES list (columns column1...: the name
			// both dialects give them), typed for PostgreSQL.
			row := "(CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT)),"
			rows, err := tx.query(ctx, `UPDATE sub_deliveries SET status = v.column2, attempts = v.column3, next_attempt_at = v.column4,
				lease_until = 0, last_error = v.column5, delivered_at = v.column6 FROM (VALUES `+strings.TrimSuffix(strings.Repeat(row, len(chunk)), ",")+`) AS v
				WHERE sub_deliveries.id = v.column1 AND sub_deliveries.lease_token = v.column7 AND sub_deliveries.status = 'pending'
				RETURNING sub_deliveries.id, sub_deliveries.lease_token`, states...)
			if err != nil {
				return fmt.Errorf("finish deliveries: %w", err)
			}
			applied := map[claim]bool{}
			for rows.Next() {
				var c claim
				if err := rows.Scan(&c.id, &c.token); err != nil {
					rows.Close()
					return fmt.Errorf("finish deliveries: %w", err)
				}
				applied[c] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("finish deliveries: %w", err)
			}
			attempts := make([]any, 0, 7*len(chunk))
			for i, f := range chunk {
				stale := 0
				if !applied[claim{f.Delivery.ID, f.Delivery.LeaseToken}] {
					stale = 1
					refused[start+i] = true
				}
				attempts = append(attempts, f.Delivery.ID, f.Delivery.LeaseToken, ms(f.Attempt.At), f.Attempt.StatusCode, clipText(f.Attempt.Error),
					f.Attempt.Duration.Milliseconds(), stale)
			}
			if _, err := tx.exec(ctx, `INSERT INTO sub_attempts (delivery_id, attempt, at, status_code, error, duration_ms, stale) VALUES `+
				strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?),", len(chunk)), ",")+` ON CONFLICT DO NOTHING`, attempts...); err != nil {
				return fmt.Errorf("record attempts: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return refused, nil
}

// ReleaseDelivery gives a claimed delivery back without recording an
// attempt, for one cut by a shutdown: the endpoint did not fail, so it
// costs no attempt and any replica may claim it again at once. Only the
// claim that holds it releases it (a stalled one would free another's).
func (s *Store) ReleaseDelivery(ctx context.Context, d Delivery) error {
	if _, err := s.exec(ctx, `UPDATE sub_deliveries SET lease_until = 0 WHERE id = ? AND lease_token = ? AND status = 'pending'`, d.ID, d.LeaseToken); err != nil {
		return fmt.Errorf("release delivery: %w", err)
	}
	return nil
}

func clipText(s string) string {
	if len(s) > 500 {
		return s[:500] + "..."
	}
	return s
}

// Deliveries lists a subscription's deliveries, newest first.
func (s *Store) Deliveries(ctx context.Context, projectID, subID string, limit int) ([]Delivery, error) {
	rows, err := s.query(ctx, fmt.Sprintf(`SELECT `+deliveryCols+` FROM sub_deliveries WHERE project_id = ? AND subscription_id = ?
		ORDER BY id DESC LIMIT %d`, limit), projectID, subID)
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Attempts lists the attempts of deliveries, by delivery id.
func (s *Store) Attempts(ctx context.Context, ids []int64) (map[int64][]Attempt, error) {
	out := map[int64][]Attempt{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.query(ctx, `SELECT delivery_id, at, status_code, error, duration_ms, stale FROM sub_attempts WHERE delivery_id IN (`+
		placeholders(len(ids))+`) ORDER BY delivery_id, attempt`, args...)
	if err != nil {
		return nil, fmt.Errorf("attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, at, dur, stale int64
		var a Attempt
		if err := rows.Scan(&id, &at, &a.StatusCode, &a.Error, &dur, &stale); err != nil {
			return nil, fmt.Errorf("attempts: %w", err)
		}
		a.At, a.Duration, a.Stale = fromMS(at), time.Duration(dur)*time.Millisecond, stale != 0
		out[id] = append(out[id], a)
	}
	return out, rows.Err()
}

// Replay puts a subscription's deliveries from the event sequence number
// fromSeq on (0: all failed ones) back in the queue, due now. It returns
// how many.
func (s *Store) Replay(ctx context.Context, projectID, subID string, fromSeq int64, now time.Time) (int64, error) {
	where := `project_id = ? AND subscription_id = ? AND status = 'failed'`
	args := []any{ms(now), projectID, subID}
	if fromSeq > 0 {
		where = `project_id = ? AND subscription_id = ? AND event_seq >= ?`
		args = append(args, fromSeq)
	}
	// The token moves past the claim in flight, if any (its result is
	// refused: the replay sends again), and past every recorded attempt,
	// whose numbers are tokens (rows from before 0031 count from 1).
	const maxAttempt = `(SELECT COALESCE(MAX(a.attempt), 0) FROM sub_attempts a WHERE a.delivery_id = sub_deliveries.id)`
	res, err := s.exec(ctx, `UPDATE sub_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, lease_until = 0,
		lease_token = CASE WHEN lease_token >= `+maxAttempt+` THEN lease_token ELSE `+maxAttempt+` END + 1 WHERE `+where, args...)
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// CountDeliveries counts a subscription's deliveries by status.
func (s *Store) CountDeliveries(ctx context.Context, projectID, subID string) (map[string]int64, error) {
	rows, err := s.query(ctx, `SELECT status, COUNT(*) FROM sub_deliveries WHERE project_id = ? AND subscription_id = ? GROUP BY status`, projectID, subID)
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count deliveries: %w", err)
		}
		out[strings.ToLower(st)] = n
	}
	return out, rows.Err()
}

// HasUnmatched reports whether the outbox holds events the matcher has not
// taken, with one indexed read (no transaction, so idle polling is cheap).
func (s *Store) HasUnmatched(ctx context.Context) (bool, error) {
	var one int
	err := s.queryRow(ctx, `SELECT 1 FROM outbox WHERE matched = 0 LIMIT 1`).Scan(&one)
	if err = s.mapErr(err); err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("outbox: %w", err)
	}
	return true, nil
}

// HasDueDeliveries reports whether a pending delivery is due, likewise.
func (s *Store) HasDueDeliveries(ctx context.Context, now time.Time) (bool, error) {
	var one int
	err := s.queryRow(ctx, `SELECT 1 FROM sub_deliveries WHERE status = 'pending' AND next_attempt_at > 0 AND next_attempt_at <= ?
		AND lease_until <= ? LIMIT 1`,
		ms(now), ms(now)).Scan(&one)
	if err = s.mapErr(err); err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("deliveries: %w", err)
	}
	return true, nil
}
