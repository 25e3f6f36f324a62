package subscription

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// syncBuf is a log destination safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDeliveryFenced: a replica that stalls past its lease (frozen, then
// resumed) cannot change the delivery another replica took over, whatever
// its result and whichever records first: the survivor's result stands,
// the stalled attempt is kept as a stale attempt ($events lists it), and
// nothing is sent a third time. Its release cannot free the survivor's
// lease either.
func TestDeliveryFenced(t *testing.T) {
	for _, tc := range []struct {
		name       string
		stale      string // the stalled replica's result: a status, or "deliver 500"/"release" through the dispatcher
		staleFirst bool   // it records while the survivor's attempt is still in flight
	}{
		{name: "stale retry after the survivor delivered", stale: "pending"},
		{name: "stale delivered after the survivor delivered", stale: "delivered"},
		{name: "stale error after the survivor delivered", stale: "failed"},
		{name: "stale skip after the survivor delivered", stale: "skipped"},
		{name: "stale retry before the survivor records", stale: "pending", staleFirst: true},
		{name: "stale failed attempt through the dispatcher", stale: "deliver 500"},
		{name: "stale release before the survivor records", stale: "release", staleFirst: true},
	} {
		for _, b := range storetest.Backends() {
			t.Run(tc.name+"/"+b.Name, func(t *testing.T) {
				d := newDispatch(t, b)
				var logs syncBuf
				d.svc.log = slog.New(slog.NewTextHandler(&logs, nil))
				other := New(testConfig, d.fs, d.runner, nil, d.clock.now, slog.New(slog.NewTextHandler(&logs, nil)))
				sub := d.subscribe("Patient?family=Fenced")
				d.create("Patient", `{"resourceType":"Patient","name":[{"family":"Fenced"}]}`)
				d.match()

				t0 := d.clock.now()
				stalled := d.claimOne() // then the replica freezes
				d.clock.set(t0.Add(testConfig.Timeout + 30*time.Second))
				ds, err := other.claim(t.Context(), 10)
				if err != nil || len(ds) != 1 || ds[0].ID != stalled.ID || ds[0].LeaseToken <= stalled.LeaseToken {
					t.Fatalf("the survivor claimed %+v (%v), want delivery %d with a newer token than %d", ds, err, stalled.ID, stalled.LeaseToken)
				}
				survivor := ds[0]

				resume := func() { // the stalled replica resumes and records its result
					switch tc.stale {
					case "deliver 500":
						d.runner.answer(500)
						d.svc.deliver(t.Context(), stalled)
						d.runner.answer(200)
					case "release":
						if err := d.f.st.ReleaseDelivery(t.Context(), stalled); err != nil {
							t.Fatal(err)
						}
						if ds := d.claim(); len(ds) != 0 {
							t.Fatalf("a stale release freed the survivor's lease: claimed %+v", ds)
						}
					default:
						a := store.Attempt{At: t0, StatusCode: 500, Error: "stale", Duration: time.Second}
						if tc.stale == "delivered" {
							a = store.Attempt{At: t0, StatusCode: 200, Duration: time.Second}
						}
						err := d.f.st.FinishAttempt(t.Context(), stalled, a, tc.stale, d.clock.now().Add(time.Second))
						if !errors.Is(err, store.ErrLeaseLost) {
							t.Fatalf("the stale holder's %s: %v, want ErrLeaseLost", tc.stale, err)
						}
					}
				}
				if tc.staleFirst {
					resume()
				}
				other.deliver(t.Context(), survivor)
				if !tc.staleFirst {
					resume()
				}

				x := d.delivery(sub, stalled.ID)
				if x.Status != "delivered" || x.Attempts != 1 || x.DeliveredAt.IsZero() {
					t.Fatalf("delivery after both recorded: %+v, want delivered by the survivor with 1 attempt", x)
				}
				attempts, err := d.f.st.Attempts(t.Context(), []int64{x.ID})
				if err != nil {
					t.Fatal(err)
				}
				want := 2 // the stalled attempt and the survivor's
				if tc.stale == "release" {
					want = 1 // a release records no attempt
				}
				stale := 0
				for _, a := range attempts[x.ID] {
					if a.Stale {
						stale++
					}
				}
				if len(attempts[x.ID]) != want || stale != want-1 || attempts[x.ID][want-1].Stale {
					t.Fatalf("attempts %+v, want %d with all but the survivor's marked stale", attempts[x.ID], want)
				}
				d.clock.set(t0.Add(time.Hour)) // long past every lease and backoff
				if ds := d.claim(); len(ds) != 0 {
					t.Fatalf("claimed %+v after the delivery was delivered: a third send", ds)
				}
				if tc.stale == "deliver 500" && !strings.Contains(logs.String(), "result refused") {
					t.Fatalf("the refused result was not logged:\n%s", logs.String())
				}
			})
		}
	}
}

// TestReplayFences: a replay moves the token past the claim in flight, so
// that claim's result is refused (the replay sends again), and past every
// recorded attempt, so the next attempt is kept beside them.
func TestReplayFences(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			d := newDispatch(t, b)
			sub := d.subscribe("Patient?family=Replay")
			d.create("Patient", `{"resourceType":"Patient","name":[{"family":"Replay"}]}`)
			d.match()
			first := d.claimOne()
			d.svc.deliver(t.Context(), first) // delivered
			if n, err := d.f.st.Replay(t.Context(), d.f.admin.ProjectID, sub, 1, d.clock.now()); err != nil || n != 1 {
				t.Fatalf("replay: %d %v", n, err)
			}
			inFlight := d.claimOne()
			if n, err := d.f.st.Replay(t.Context(), d.f.admin.ProjectID, sub, 1, d.clock.now()); err != nil || n != 1 {
				t.Fatalf("replay: %d %v", n, err)
			}
			if err := d.f.st.FinishAttempt(t.Context(), inFlight, store.Attempt{At: d.clock.now(), StatusCode: 200}, "delivered", d.clock.now()); !errors.Is(err, store.ErrLeaseLost) {
				t.Fatalf("the result of a claim the replay overtook: %v, want ErrLeaseLost", err)
			}
			d.svc.deliver(t.Context(), d.claimOne())
			attempts, err := d.f.st.Attempts(t.Context(), []int64{first.ID})
			if err != nil || len(attempts[first.ID]) != 3 {
				t.Fatalf("attempts %+v %v, want 3 kept (first, overtaken, after the replay)", attempts[first.ID], err)
			}
			if x := d.delivery(sub, first.ID); x.Status != "delivered" || d.runner.calls() != 2 {
				t.Fatalf("%+v after %d calls, want delivered after 2 (the overtaken claim was never sent)", x, d.runner.calls())
			}
		})
	}
}

// TestDeliveryFencedInOneBatch: both claims of one delivery (a replica
// that stalled past its own lease and claimed it again) finishing in one
// shared commit: only the newer claim's result is applied, and both
// attempts are kept, the older marked stale.
func TestDeliveryFencedInOneBatch(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			d := newDispatch(t, b)
			sub := d.subscribe("Patient?family=Batch")
			d.create("Patient", `{"resourceType":"Patient","name":[{"family":"Batch"}]}`)
			d.match()
			t0 := d.clock.now()
			older := d.claimOne()
			d.clock.set(t0.Add(testConfig.Timeout + 30*time.Second))
			newer := d.claimOne()
			refused, err := d.f.st.FinishAttempts(t.Context(), []store.Finish{
				{Delivery: older, Attempt: store.Attempt{At: t0, StatusCode: 500, Error: "older"}, Status: "pending", Next: d.clock.now().Add(time.Hour)},
				{Delivery: newer, Attempt: store.Attempt{At: d.clock.now(), StatusCode: 200}, Status: "delivered", Next: d.clock.now()},
			})
			if err != nil || len(refused) != 2 || !refused[0] || refused[1] {
				t.Fatalf("refused %v (%v), want the older claim's only", refused, err)
			}
			if x := d.delivery(sub, older.ID); x.Status != "delivered" {
				t.Fatalf("status %s, want delivered", x.Status)
			}
			attempts, err := d.f.st.Attempts(t.Context(), []int64{older.ID})
			if as := attempts[older.ID]; err != nil || len(as) != 2 || !as[0].Stale || as[1].Stale {
				t.Fatalf("attempts %+v %v, want the older stale, then the newer", as, err)
			}
		})
	}
}
