package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestTickLease: the contract of a cron tick's fenced lease, on both
// databases with a fake clock. A tick before the function was armed is
// never claimed; a claim holds the tick until its lease lapses, then
// another claim takes it over with a newer token and the runs counted so
// far; the stale claim can then neither renew, count a run, record an
// outcome nor release; a release makes the tick claimable at once,
// optionally uncounting the cut run.
func TestTickLease(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := storetest.Open(t, b)
			ctx := context.Background()
			t0 := time.UnixMilli(1_700_000_000_000).UTC()
			const lease = 30 * time.Second
			z := store.Zambda{ProjectID: "p1", ID: "z1", Name: "tick", Runtime: "nodejs20.x", TriggerMethod: "cron", MemorySize: 128,
				TimeoutSeconds: 3, Status: "Active", Schedule: []byte(`{"expression":"rate(1 minute)"}`), CreatedAt: t0, UpdatedAt: t0}
			if err := s.CreateZambda(ctx, z); err != nil {
				t.Fatal(err)
			}
			claim := func(at time.Time, by string, now time.Time) (store.TickClaim, bool) {
				t.Helper()
				c, won, err := s.ClaimTick(ctx, "p1", "z1", at, by, now, lease)
				if err != nil {
					t.Fatal(err)
				}
				return c, won
			}
			if _, won := claim(t0.Add(-time.Millisecond), "a", t0); won {
				t.Fatal("claimed a tick before the function's creation")
			}
			tick := t0.Add(time.Minute)
			a, won := claim(tick, "a", tick)
			if !won || a.Token != 1 || a.Attempts != 0 {
				t.Fatalf("first claim: %+v %v", a, won)
			}
			if n, held, err := s.TickAttempt(ctx, "p1", "z1", tick, a.Token, tick.Add(lease)); err != nil || !held || n != 1 {
				t.Fatalf("count a run: %d %v %v", n, held, err)
			}
			if _, won := claim(tick, "b", tick.Add(lease-time.Millisecond)); won {
				t.Fatal("claimed under a live lease")
			}
			if lapsed, err := s.LapsedTicks(ctx, tick.Add(lease-time.Millisecond), 10); err != nil || len(lapsed) != 0 {
				t.Fatalf("lapsed under a live lease: %+v %v", lapsed, err)
			}
			lapsed, err := s.LapsedTicks(ctx, tick.Add(lease), 10)
			if err != nil || len(lapsed) != 1 || lapsed[0].ZambdaID != "z1" || !lapsed[0].At.Equal(tick) || lapsed[0].ClaimedBy != "a" {
				t.Fatalf("lapsed: %+v %v", lapsed, err)
			}
			bc, won := claim(tick, "b", tick.Add(lease))
			if !won || bc.Token != 2 || bc.Attempts != 1 {
				t.Fatalf("take-over: %+v %v, want token 2 and 1 run counted", bc, won)
			}
			// The stale claim a is fenced out of every write.
			if held, err := s.RenewTick(ctx, "p1", "z1", tick, a.Token, tick.Add(2*lease)); err != nil || held {
				t.Fatalf("stale renew: %v %v", held, err)
			}
			if _, held, err := s.TickAttempt(ctx, "p1", "z1", tick, a.Token, tick.Add(2*lease)); err != nil || held {
				t.Fatalf("stale run count: %v %v", held, err)
			}
			if held, err := s.TickOutcome(ctx, "p1", "z1", tick, a.Token, "stale"); err != nil || held {
				t.Fatalf("stale outcome: %v %v", held, err)
			}
			if err := s.ReleaseTick(ctx, "p1", "z1", tick, a.Token, true); err != nil {
				t.Fatal(err)
			}
			if _, won := claim(tick, "c", tick.Add(lease+time.Second)); won {
				t.Fatal("a stale release freed the holder's lease")
			}
			if held, err := s.RenewTick(ctx, "p1", "z1", tick, bc.Token, tick.Add(3*lease)); err != nil || !held {
				t.Fatalf("renew: %v %v", held, err)
			}
			if _, won := claim(tick, "c", tick.Add(2*lease+time.Second)); won {
				t.Fatal("claimed a renewed lease")
			}
			if held, err := s.TickOutcome(ctx, "p1", "z1", tick, bc.Token, "status 200"); err != nil || !held {
				t.Fatalf("outcome: %v %v", held, err)
			}
			if _, won := claim(tick, "c", tick.Add(time.Hour)); won {
				t.Fatal("claimed a tick with an outcome")
			}
			ticks, err := s.Ticks(ctx, "p1", "z1")
			if err != nil || len(ticks) != 1 || ticks[0].Outcome != "status 200" || ticks[0].ClaimedBy != "b" || ticks[0].Attempts != 1 || ticks[0].Token != 2 {
				t.Fatalf("ticks: %+v %v", ticks, err)
			}

			// A release lapses the lease at once; uncount drops the cut run.
			next := tick.Add(time.Minute)
			c, _ := claim(next, "a", next)
			for range 2 {
				if _, _, err := s.TickAttempt(ctx, "p1", "z1", next, c.Token, next.Add(lease)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.ReleaseTick(ctx, "p1", "z1", next, c.Token, true); err != nil {
				t.Fatal(err)
			}
			if d, won := claim(next, "b", next); !won || d.Attempts != 1 {
				t.Fatalf("after a release: %+v %v, want claimed at once with 1 run counted", d, won)
			}
		})
	}
}

// TestArmedAt: a function is armed at its creation and again when its
// schedule or trigger changes, not by other updates; the store refuses
// ticks before it.
func TestArmedAt(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := storetest.Open(t, b)
			ctx := context.Background()
			t0 := time.UnixMilli(1_700_000_000_000).UTC()
			z := store.Zambda{ProjectID: "p1", ID: "z1", Name: "tick", Runtime: "nodejs20.x", TriggerMethod: "cron", MemorySize: 128,
				TimeoutSeconds: 3, Status: "Draft", Schedule: []byte(`{"expression":"rate(1 minute)"}`), CreatedAt: t0, UpdatedAt: t0}
			if err := s.CreateZambda(ctx, z); err != nil {
				t.Fatal(err)
			}
			armed := func() time.Time {
				t.Helper()
				got, err := s.GetZambda(ctx, "p1", "z1")
				if err != nil {
					t.Fatal(err)
				}
				return got.ArmedAt
			}
			for i, step := range []struct {
				change func(*store.Zambda)
				armed  bool
			}{
				{func(z *store.Zambda) { z.Status = "Active" }, false},
				{func(z *store.Zambda) { z.MemorySize = 256 }, false},
				{func(z *store.Zambda) { z.Schedule = []byte(`{"expression":"rate(2 minutes)"}`) }, true},
				{func(z *store.Zambda) { z.TriggerMethod = "http_auth" }, true},
				{func(z *store.Zambda) { z.TriggerMethod = "cron" }, true},
				{func(z *store.Zambda) { z.Schedule = nil }, true},
			} {
				before := armed()
				z.UpdatedAt = t0.Add(time.Duration(i+1) * time.Minute)
				step.change(&z)
				if err := s.UpdateZambda(ctx, z); err != nil {
					t.Fatal(err)
				}
				if want := map[bool]time.Time{true: z.UpdatedAt, false: before}[step.armed]; !armed().Equal(want) {
					t.Fatalf("step %d: armed at %v, want %v", i, armed(), want)
				}
			}
			last := armed()
			if _, won, err := s.ClaimTick(ctx, "p1", "z1", last.Add(-time.Millisecond), "a", last, time.Minute); err != nil || won {
				t.Fatalf("claimed a tick before the last schedule change: %v %v", won, err)
			}
			if _, won, err := s.ClaimTick(ctx, "p1", "z1", last, "a", last, time.Minute); err != nil || !won {
				t.Fatalf("the tick at the change: %v %v", won, err)
			}
			if _, won, err := s.ClaimTick(ctx, "p1", "gone", last, "a", last, time.Minute); err != nil || won {
				t.Fatalf("claimed a tick of no function: %v %v", won, err)
			}
		})
	}
}

// TestUpgradeFencedLeases: a database from before migration 0031 keeps
// working: a pending delivery's token starts past its recorded attempts
// (the next attempt is kept beside them), a replay does the same for a
// finished one, functions are armed at their creation, and a tick claimed
// by the older release without an outcome is never taken over (its
// replica may still be running it).
func TestUpgradeFencedLeases(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.DSN(t)
			old, err := store.OpenUpTo(ctx, dsn, "0031")
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{`INSERT INTO zambdas (project_id, id, name, runtime, trigger_method, schedule, memory_size, timeout_seconds, status, created_at, updated_at)
					VALUES ('p1', 'z1', 'tick', 'nodejs20.x', 'cron', '{"expression":"rate(1 minute)"}', 128, 3, 'Active', ?, ?)`, []any{1000, 5000}},
				{`INSERT INTO zambda_ticks (project_id, zambda_id, tick_at, claimed_by, claimed_at) VALUES ('p1', 'z1', 60000, 'old', 60000)`, nil},
				{`INSERT INTO sub_deliveries (project_id, subscription_id, event_seq, resource_type, resource_id, version_id, interaction, status, attempts,
					next_attempt_at, created_at) VALUES ('p1', 's1', 1, 'Patient', 'a', 1, 'create', 'pending', 2, 1, 1),
					('p1', 's1', 2, 'Patient', 'b', 1, 'create', 'delivered', 1, 1, 1)`, nil},
				{`INSERT INTO sub_attempts (delivery_id, attempt, at, status_code, error, duration_ms) VALUES
					((SELECT id FROM sub_deliveries WHERE event_seq = 1), 1, 1, 500, 'x', 1), ((SELECT id FROM sub_deliveries WHERE event_seq = 1), 2, 2, 500, 'x', 1),
					((SELECT id FROM sub_deliveries WHERE event_seq = 2), 1, 1, 200, '', 1)`, nil},
			} {
				if err := old.Exec(ctx, q.sql, q.args...); err != nil {
					t.Fatal(err)
				}
			}
			old.Close()

			s, err := store.Open(ctx, dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			token := func(seq int) int64 {
				t.Helper()
				n, err := s.QueryInt(ctx, `SELECT lease_token FROM sub_deliveries WHERE event_seq = ?`, seq)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			if got := token(1); got != 2 {
				t.Fatalf("the pending delivery's token: %d, want 2 (its last attempt)", got)
			}
			if _, err := s.Replay(ctx, "p1", "s1", 2, time.UnixMilli(10)); err != nil {
				t.Fatal(err)
			}
			if got := token(2); got != 2 {
				t.Fatalf("the replayed delivery's token: %d, want 2 (past its attempt 1)", got)
			}
			if z, err := s.GetZambda(ctx, "p1", "z1"); err != nil || !z.ArmedAt.Equal(time.UnixMilli(1000)) {
				t.Fatalf("armed at %v (%v), want the creation", z.ArmedAt, err)
			}
			if lapsed, err := s.LapsedTicks(ctx, time.UnixMilli(1<<50), 10); err != nil || len(lapsed) != 0 {
				t.Fatalf("an older release's tick is taken over: %+v %v", lapsed, err)
			}
			if _, won, err := s.ClaimTick(ctx, "p1", "z1", time.UnixMilli(60000), "new", time.UnixMilli(1<<50), time.Minute); err != nil || won {
				t.Fatalf("an older release's tick was claimed again: %v %v", won, err)
			}
		})
	}
}
