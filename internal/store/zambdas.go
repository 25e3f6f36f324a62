package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Zambda is a function's configuration and the state of its code.
type Zambda struct {
	ProjectID       string
	ID              string
	Name            string
	Runtime         string
	TriggerMethod   string
	Schedule        []byte // JSON, nil if none
	MemorySize      int
	TimeoutSeconds  int
	ExecutionRoleID string
	Status          string
	StatusReason    string
	UploadName      string
	CodePath        string
	FileName        string
	FileSize        int64
	FileModified    time.Time
	FileChecksum    string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	// ArmedAt is when the schedule took effect: creation or the last
	// change of schedule or trigger (set by the store). No tick before it
	// is claimed.
	ArmedAt time.Time
}

const zambdaCols = `project_id, id, name, runtime, trigger_method, schedule, memory_size, timeout_seconds, execution_role_id,
	status, status_reason, upload_name, code_path, file_name, file_size, file_modified, file_checksum, created_at, updated_at, armed_at`

func scanZambda(row interface{ Scan(...any) error }) (Zambda, error) {
	var z Zambda
	var sched, role sql.NullString
	var modified, created, updated, armed int64
	if err := row.Scan(&z.ProjectID, &z.ID, &z.Name, &z.Runtime, &z.TriggerMethod, &sched, &z.MemorySize, &z.TimeoutSeconds, &role,
		&z.Status, &z.StatusReason, &z.UploadName, &z.CodePath, &z.FileName, &z.FileSize, &modified, &z.FileChecksum, &created, &updated, &armed); err != nil {
		return Zambda{}, err
	}
	if sched.Valid {
		z.Schedule = []byte(sched.String)
	}
	z.ExecutionRoleID = role.String
	if modified != 0 {
		z.FileModified = fromMS(modified)
	}
	z.CreatedAt, z.UpdatedAt, z.ArmedAt = fromMS(created), fromMS(updated), fromMS(armed)
	return z, nil
}

func (z Zambda) args() []any {
	var sched sql.NullString
	if z.Schedule != nil {
		sched = sql.NullString{String: string(z.Schedule), Valid: true}
	}
	var modified int64
	if !z.FileModified.IsZero() {
		modified = ms(z.FileModified)
	}
	return []any{z.ProjectID, z.ID, z.Name, z.Runtime, z.TriggerMethod, sched, z.MemorySize, z.TimeoutSeconds, nullString(z.ExecutionRoleID),
		z.Status, z.StatusReason, z.UploadName, z.CodePath, z.FileName, z.FileSize, modified, z.FileChecksum, ms(z.CreatedAt), ms(z.UpdatedAt),
		ms(z.CreatedAt)}
}

// CreateZambda inserts z. Errors: ErrConflict if the name is taken.
func (s *Store) CreateZambda(ctx context.Context, z Zambda) error {
	if _, err := s.exec(ctx, `INSERT INTO zambdas (`+zambdaCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, z.args()...); err != nil {
		return fmt.Errorf("create zambda: %w", err)
	}
	return nil
}

// UpdateZambda writes every field of z but ArmedAt, which becomes
// z.UpdatedAt when the schedule or trigger changes (SET reads the row as
// it was). Activation does not arm: a rate schedule's first tick is the
// creation, run once the code is in. Errors: ErrNotFound, ErrConflict
// (name).
func (s *Store) UpdateZambda(ctx context.Context, z Zambda) error {
	a := z.args()
	armed := []any{a[5], a[4], a[18]} // schedule, trigger, updated_at
	res, err := s.exec(ctx, `UPDATE zambdas SET armed_at = CASE WHEN COALESCE(schedule, '') <> COALESCE(?, '') OR trigger_method <> ?
			THEN ? ELSE armed_at END,
		name = ?, runtime = ?, trigger_method = ?, schedule = ?, memory_size = ?, timeout_seconds = ?,
		execution_role_id = ?, status = ?, status_reason = ?, upload_name = ?, code_path = ?, file_name = ?, file_size = ?, file_modified = ?,
		file_checksum = ?, updated_at = ? WHERE project_id = ? AND id = ?`,
		append(append(armed, a[2:17:17]...), a[18], z.ProjectID, z.ID)...)
	if err != nil {
		return fmt.Errorf("update zambda: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("update zambda: %w", ErrNotFound)
	}
	return nil
}

// GetZambda returns a function by id or, failing that, by name. Errors: ErrNotFound.
func (s *Store) GetZambda(ctx context.Context, projectID, idOrName string) (Zambda, error) {
	z, err := scanZambda(s.queryRow(ctx, `SELECT `+zambdaCols+` FROM zambdas WHERE project_id = ? AND (id = ? OR name = ?) ORDER BY id = ? DESC LIMIT 1`,
		projectID, idOrName, idOrName, idOrName))
	if err != nil {
		return Zambda{}, fmt.Errorf("get zambda: %w", s.mapErr(err))
	}
	return z, nil
}

// ListZambdas returns the project's functions by name ("" project: all
// projects, for the cron scheduler), optionally only one trigger method.
func (s *Store) ListZambdas(ctx context.Context, projectID, trigger string) ([]Zambda, error) {
	q, args := `SELECT `+zambdaCols+` FROM zambdas WHERE 1 = 1`, []any{}
	if projectID != "" {
		q += ` AND project_id = ?`
		args = append(args, projectID)
	}
	if trigger != "" {
		q += ` AND trigger_method = ?`
		args = append(args, trigger)
	}
	rows, err := s.query(ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, fmt.Errorf("list zambdas: %w", err)
	}
	defer rows.Close()
	var out []Zambda
	for rows.Next() {
		z, err := scanZambda(rows)
		if err != nil {
			return nil, fmt.Errorf("list zambdas: %w", err)
		}
		out = append(out, z)
	}
	return out, rows.Err()
}

// ZambdasWithRole names the functions whose execution role is roleID.
func (s *Store) ZambdasWithRole(ctx context.Context, projectID, roleID string) ([]Zambda, error) {
	rows, err := s.query(ctx, `SELECT `+zambdaCols+` FROM zambdas WHERE project_id = ? AND execution_role_id = ? ORDER BY name`, projectID, roleID)
	if err != nil {
		return nil, fmt.Errorf("zambdas with role: %w", err)
	}
	defer rows.Close()
	var out []Zambda
	for rows.Next() {
		z, err := scanZambda(rows)
		if err != nil {
			return nil, fmt.Errorf("zambdas with role: %w", err)
		}
		out = append(out, z)
	}
	return out, rows.Err()
}

// DeleteZambda removes a function, its logs and ticks. Errors: ErrNotFound.
func (s *Store) DeleteZambda(ctx context.Context, projectID, id string) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM zambdas WHERE project_id = ? AND id = ?`, projectID, id)
		if err != nil {
			return fmt.Errorf("delete zambda: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("delete zambda: %w", ErrNotFound)
		}
		for _, t := range []string{"zambda_logs", "zambda_ticks"} {
			if _, err := tx.exec(ctx, `DELETE FROM `+t+` WHERE project_id = ? AND zambda_id = ?`, projectID, id); err != nil {
				return fmt.Errorf("delete zambda: %w", err)
			}
		}
		return nil
	})
}

// PutSecret upserts an encrypted secret.
func (s *Store) PutSecret(ctx context.Context, projectID, name string, value []byte, at time.Time) error {
	_, err := s.exec(ctx, `INSERT INTO zambda_secrets (project_id, name, value, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (project_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, projectID, name, value, ms(at))
	if err != nil {
		return fmt.Errorf("put secret: %w", err)
	}
	return nil
}

// GetSecret returns one encrypted secret. Errors: ErrNotFound.
func (s *Store) GetSecret(ctx context.Context, projectID, name string) ([]byte, error) {
	var v []byte
	if err := s.queryRow(ctx, `SELECT value FROM zambda_secrets WHERE project_id = ? AND name = ?`, projectID, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("get secret: %w", s.mapErr(err))
	}
	return v, nil
}

// Secrets returns every encrypted secret of the project by name.
func (s *Store) Secrets(ctx context.Context, projectID string) (map[string][]byte, error) {
	rows, err := s.query(ctx, `SELECT name, value FROM zambda_secrets WHERE project_id = ?`, projectID)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var n string
		var v []byte
		if err := rows.Scan(&n, &v); err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
		out[n] = v
	}
	return out, rows.Err()
}

// DeleteSecret removes a secret. Errors: ErrNotFound.
func (s *Store) DeleteSecret(ctx context.Context, projectID, name string) error {
	res, err := s.exec(ctx, `DELETE FROM zambda_secrets WHERE project_id = ? AND name = ?`, projectID, name)
	if err != nil {
		return fmt.Errorf("delete secret: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete secret: %w", ErrNotFound)
	}
	return nil
}

// LogLine is one line a function wrote.
type LogLine struct {
	Stream     string
	Seq        int64
	At         time.Time
	IngestedAt time.Time
	Message    string
}

// AppendLogs stores lines of one function.
func (s *Store) AppendLogs(ctx context.Context, projectID, zambdaID string, lines []LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	return s.WithTx(ctx, func(tx *Tx) error {
		for _, l := range lines {
			if _, err := tx.exec(ctx, `INSERT INTO zambda_logs (project_id, zambda_id, stream, seq, at, ingested_at, message) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				projectID, zambdaID, l.Stream, l.Seq, ms(l.At), ms(l.IngestedAt), l.Message); err != nil {
				return fmt.Errorf("append logs: %w", err)
			}
		}
		return nil
	})
}

// LogStream summarises one stream.
type LogStream struct {
	Name          string
	First, Last   time.Time
	LastIngestion time.Time
}

// LogStreams lists a function's streams, newest first, after the cursor
// (the last stream name of the previous page), at most limit.
func (s *Store) LogStreams(ctx context.Context, projectID, zambdaID, after string, limit int) ([]LogStream, error) {
	q := `SELECT stream, MIN(at), MAX(at), MAX(ingested_at) FROM zambda_logs WHERE project_id = ? AND zambda_id = ?`
	args := []any{projectID, zambdaID}
	if after != "" {
		q += ` AND stream < ?`
		args = append(args, after)
	}
	rows, err := s.query(ctx, q+fmt.Sprintf(` GROUP BY stream ORDER BY stream DESC LIMIT %d`, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("log streams: %w", err)
	}
	defer rows.Close()
	var out []LogStream
	for rows.Next() {
		var ls LogStream
		var first, last, ing int64
		if err := rows.Scan(&ls.Name, &first, &last, &ing); err != nil {
			return nil, fmt.Errorf("log streams: %w", err)
		}
		ls.First, ls.Last, ls.LastIngestion = fromMS(first), fromMS(last), fromMS(ing)
		out = append(out, ls)
	}
	return out, rows.Err()
}

// LogQuery selects log lines: of one stream or all, in [From, To), after
// the sequence cursor, oldest first unless Backward.
type LogQuery struct {
	Stream   string
	From, To time.Time
	AfterSeq int64 // forward: seq > AfterSeq; backward: seq < AfterSeq (0: no bound)
	Backward bool
	Limit    int
}

// Logs returns lines of a function matching q.
func (s *Store) Logs(ctx context.Context, projectID, zambdaID string, lq LogQuery) ([]LogLine, error) {
	q := `SELECT stream, seq, at, ingested_at, message FROM zambda_logs WHERE project_id = ? AND zambda_id = ?`
	args := []any{projectID, zambdaID}
	if lq.Stream != "" {
		q += ` AND stream = ?`
		args = append(args, lq.Stream)
	}
	if !lq.From.IsZero() {
		q += ` AND at >= ?`
		args = append(args, ms(lq.From))
	}
	if !lq.To.IsZero() {
		q += ` AND at < ?`
		args = append(args, ms(lq.To))
	}
	order := `ASC`
	if lq.AfterSeq != 0 {
		if lq.Backward {
			q += ` AND seq < ?`
		} else {
			q += ` AND seq > ?`
		}
		args = append(args, lq.AfterSeq)
	}
	if lq.Backward {
		order = `DESC`
	}
	rows, err := s.query(ctx, q+fmt.Sprintf(` ORDER BY seq %s LIMIT %d`, order, lq.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	defer rows.Close()
	var out []LogLine
	for rows.Next() {
		var l LogLine
		var at, ing int64
		if err := rows.Scan(&l.Stream, &l.Seq, &at, &ing, &l.Message); err != nil {
			return nil, fmt.Errorf("logs: %w", err)
		}
		l.At, l.IngestedAt = fromMS(at), fromMS(ing)
		out = append(out, l)
	}
	return out, rows.Err()
}

// TickClaim is a claim on a cron tick: Token fences what the claimant
// writes about the tick (a later claim makes it stale), and Attempts is how
// many runs earlier claims started.
type TickClaim struct {
	Token    int64
	Attempts int
}

// ClaimTick claims the function's tick at for replica, leased until
// now+lease. It claims a new tick, or takes over one whose lease lapsed
// without an outcome (its replica died or froze: the claim's Attempts say
// how many runs it had started). It reports false when another replica
// holds the tick, the tick has an outcome, or the tick is earlier than the
// function's ArmedAt (creation or last schedule change), or the function
// is gone: such a tick is never run.
func (s *Store) ClaimTick(ctx context.Context, projectID, zambdaID string, at time.Time, replica string, now time.Time, lease time.Duration) (TickClaim, bool, error) {
	var c TickClaim
	won := false
	err := s.WithTx(ctx, func(tx *Tx) error {
		rows, err := tx.query(ctx, `INSERT INTO zambda_ticks (project_id, zambda_id, tick_at, claimed_by, claimed_at, lease_until, lease_token)
			SELECT project_id, id, ?, ?, ?, ?, 1 FROM zambdas WHERE project_id = ? AND id = ? AND armed_at <= ?
			ON CONFLICT (project_id, zambda_id, tick_at) DO UPDATE SET claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at,
				lease_until = excluded.lease_until, lease_token = zambda_ticks.lease_token + 1
			WHERE zambda_ticks.outcome = '' AND zambda_ticks.lease_until > 0 AND zambda_ticks.lease_until <= ?
			RETURNING lease_token, attempts`,
			ms(at), replica, ms(now), ms(now.Add(lease)), projectID, zambdaID, ms(at), ms(now))
		if err != nil {
			return err
		}
		defer rows.Close()
		if rows.Next() {
			won = true
			if err := rows.Scan(&c.Token, &c.Attempts); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return TickClaim{}, false, fmt.Errorf("claim tick: %w", err)
	}
	return c, won, nil
}

// LapsedTicks returns up to limit ticks whose lease ran out before now
// without an outcome, oldest first: ClaimTick takes them over.
func (s *Store) LapsedTicks(ctx context.Context, now time.Time, limit int) ([]Tick, error) {
	rows, err := s.query(ctx, fmt.Sprintf(`SELECT project_id, zambda_id, `+tickCols+` FROM zambda_ticks
		WHERE outcome = '' AND lease_until > 0 AND lease_until <= ? ORDER BY lease_until LIMIT %d`, limit), ms(now))
	if err != nil {
		return nil, fmt.Errorf("lapsed ticks: %w", err)
	}
	defer rows.Close()
	var out []Tick
	for rows.Next() {
		var t Tick
		if err := scanTick(rows, &t, &t.ProjectID, &t.ZambdaID); err != nil {
			return nil, fmt.Errorf("lapsed ticks: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RenewTick extends the claim's lease to until. It reports false when the
// claim no longer holds the tick (another replica took it over).
func (s *Store) RenewTick(ctx context.Context, projectID, zambdaID string, at time.Time, token int64, until time.Time) (bool, error) {
	res, err := s.exec(ctx, `UPDATE zambda_ticks SET lease_until = ? WHERE project_id = ? AND zambda_id = ? AND tick_at = ? AND lease_token = ? AND outcome = ''`,
		ms(until), projectID, zambdaID, ms(at), token)
	if err != nil {
		return false, fmt.Errorf("renew tick: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// TickAttempt counts a run the claim is about to start and extends its
// lease to until. It returns the runs counted so far, this one included,
// and false when the claim no longer holds the tick (then start no run).
func (s *Store) TickAttempt(ctx context.Context, projectID, zambdaID string, at time.Time, token int64, until time.Time) (int, bool, error) {
	n, held := 0, false
	err := s.WithTx(ctx, func(tx *Tx) error {
		rows, err := tx.query(ctx, `UPDATE zambda_ticks SET attempts = attempts + 1, lease_until = ?
			WHERE project_id = ? AND zambda_id = ? AND tick_at = ? AND lease_token = ? AND outcome = '' RETURNING attempts`,
			ms(until), projectID, zambdaID, ms(at), token)
		if err != nil {
			return err
		}
		defer rows.Close()
		if rows.Next() {
			held = true
			if err := rows.Scan(&n); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return 0, false, fmt.Errorf("tick attempt: %w", err)
	}
	return n, held, nil
}

// ReleaseTick gives back a tick the claim holds and did not finish (a
// shutdown cut it): its lease lapses at once, so any replica takes it over
// on its next check. With uncount, the last run counted does not count (a
// stop cut it, the function did not fail). A claim that no longer holds
// the tick changes nothing.
func (s *Store) ReleaseTick(ctx context.Context, projectID, zambdaID string, at time.Time, token int64, uncount bool) error {
	n := 0
	if uncount {
		n = 1
	}
	if _, err := s.exec(ctx, `UPDATE zambda_ticks SET lease_until = 1, attempts = CASE WHEN attempts >= ? THEN attempts - ? ELSE 0 END
		WHERE project_id = ? AND zambda_id = ? AND tick_at = ? AND lease_token = ? AND outcome = ''`,
		n, n, projectID, zambdaID, ms(at), token); err != nil {
		return fmt.Errorf("release tick: %w", err)
	}
	return nil
}

// TickOutcome records how a claimed tick ended, if the claim still holds
// it. It reports false, recording nothing, when another replica has taken
// the tick over (this claim's lease lapsed) or it already has an outcome.
func (s *Store) TickOutcome(ctx context.Context, projectID, zambdaID string, at time.Time, token int64, outcome string) (bool, error) {
	res, err := s.exec(ctx, `UPDATE zambda_ticks SET outcome = ?, lease_until = 0
		WHERE project_id = ? AND zambda_id = ? AND tick_at = ? AND lease_token = ? AND outcome = ''`,
		outcome, projectID, zambdaID, ms(at), token)
	if err != nil {
		return false, fmt.Errorf("tick outcome: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Tick is one claimed cron tick.
type Tick struct {
	ProjectID, ZambdaID string // set by LapsedTicks
	At                  time.Time
	ClaimedBy           string
	Outcome             string
	LeaseUntil          time.Time // zero once it has an outcome
	Token               int64     // claims so far
	Attempts            int       // runs started
}

const tickCols = `tick_at, claimed_by, outcome, lease_until, lease_token, attempts`

func scanTick(row interface{ Scan(...any) error }, t *Tick, prefix ...any) error {
	var at, until int64
	if err := row.Scan(append(prefix, &at, &t.ClaimedBy, &t.Outcome, &until, &t.Token, &t.Attempts)...); err != nil {
		return err
	}
	t.At = fromMS(at)
	if until > 0 {
		t.LeaseUntil = fromMS(until)
	}
	return nil
}

// Ticks returns a function's claimed ticks, oldest first.
func (s *Store) Ticks(ctx context.Context, projectID, zambdaID string) ([]Tick, error) {
	rows, err := s.query(ctx, `SELECT `+tickCols+` FROM zambda_ticks WHERE project_id = ? AND zambda_id = ? ORDER BY tick_at`, projectID, zambdaID)
	if err != nil {
		return nil, fmt.Errorf("ticks: %w", err)
	}
	defer rows.Close()
	var out []Tick
	for rows.Next() {
		var t Tick
		if err := scanTick(rows, &t); err != nil {
			return nil, fmt.Errorf("ticks: %w", err)
		}
		t.ProjectID, t.ZambdaID = projectID, zambdaID
		out = append(out, t)
	}
	return out, rows.Err()
}

// ZambdaProject returns the project of the function with this id (ids are
// globally unique), for public calls by id without a project header.
// Errors: ErrNotFound.
func (s *Store) ZambdaProject(ctx context.Context, id string) (string, error) {
	var p string
	if err := s.queryRow(ctx, `SELECT project_id FROM zambdas WHERE id = ?`, id).Scan(&p); err != nil {
		return "", fmt.Errorf("zambda project: %w", s.mapErr(err))
	}
	return p, nil
}
