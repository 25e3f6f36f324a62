package subscription

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// clock is a settable clock, so retries fall due and leases run out when a
// test says.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// runner stands in for the zambda service: subscriptions whose endpoint is
// a zambda are delivered through it, so a test decides each answer.
type runner struct {
	mu     sync.Mutex
	status int      // the answer to the next calls
	bodies []string // every call's body, in order
}

func (r *runner) RunSubscription(_ context.Context, _, _ string, body []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bodies = append(r.bodies, string(body))
	if r.status >= 300 {
		return r.status, fmt.Errorf("zambda answered %d", r.status)
	}
	return r.status, nil
}

func (r *runner) answer(status int) {
	r.mu.Lock()
	r.status = status
	r.mu.Unlock()
}

func (r *runner) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// dispatch drives one replica's matcher and dispatcher a step at a time on
// a fake clock, in place of their loops.
type dispatch struct {
	t      *testing.T
	f      fixture
	fs     *fhir.Service
	svc    *Service
	clock  *clock
	runner *runner
}

// testConfig: three attempts, retries from 10 s doubling, 10 s deliveries
// (so the lease is 40 s).
var testConfig = Config{MaxAttempts: 3, RetryBase: 10 * time.Second, RetryMax: time.Hour, Timeout: 10 * time.Second}

func newDispatch(t *testing.T, b storetest.Backend) *dispatch {
	t.Helper()
	f := newFixtureOn(t, b)
	c := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	r := &runner{status: 200}
	fs := fhir.New(f.st, f.authz, fhir.Config{}, c.now)
	svc := New(testConfig, fs, r, nil, c.now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return &dispatch{t: t, f: f, fs: fs, svc: svc, clock: c, runner: r}
}

// create writes a resource as the project's admin and returns its id.
func (d *dispatch) create(typ, body string) string {
	d.t.Helper()
	r, _, err := d.fs.Create(d.t.Context(), d.f.admin, typ, []byte(body), "")
	if err != nil {
		d.t.Fatalf("create: %v", err)
	}
	return r.ID
}

// subscribe creates an active subscription delivered to a zambda.
func (d *dispatch) subscribe(criteria string, triggers ...string) string {
	d.t.Helper()
	m := map[string]any{"resourceType": "Subscription", "status": "requested", "reason": "test", "criteria": criteria,
		"channel": map[string]any{"type": "rest-hook", "endpoint": LambdaPrefix + "handler"}}
	var exts []any
	for _, tr := range triggers {
		exts = append(exts, map[string]any{"url": TriggerExt, "valueString": tr})
	}
	if exts != nil {
		m["extension"] = exts
	}
	b, _ := json.Marshal(m)
	return d.create("Subscription", string(b))
}

// match turns every outbox event into deliveries.
func (d *dispatch) match() {
	d.t.Helper()
	for {
		n, err := d.svc.MatchOnce(d.t.Context())
		if err != nil {
			d.t.Fatalf("match: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

// claim leases what is due now.
func (d *dispatch) claim() []store.Delivery {
	d.t.Helper()
	ds, err := d.svc.claim(d.t.Context(), 10)
	if err != nil {
		d.t.Fatalf("claim: %v", err)
	}
	return ds
}

// claimOne claims and requires exactly one delivery.
func (d *dispatch) claimOne() store.Delivery {
	d.t.Helper()
	ds := d.claim()
	if len(ds) != 1 {
		d.t.Fatalf("at %v claimed %d deliveries, want 1: %+v", d.clock.now(), len(ds), ds)
	}
	return ds[0]
}

// delivery re-reads a delivery.
func (d *dispatch) delivery(subID string, id int64) store.Delivery {
	d.t.Helper()
	ds, err := d.f.st.Deliveries(d.t.Context(), d.f.admin.ProjectID, subID, 100)
	if err != nil {
		d.t.Fatal(err)
	}
	for _, x := range ds {
		if x.ID == id {
			return x
		}
	}
	d.t.Fatalf("no delivery %d", id)
	return store.Delivery{}
}

func (d *dispatch) subStatus(id string) map[string]any {
	d.t.Helper()
	r, err := d.fs.Read(d.t.Context(), d.f.admin, "Subscription", id)
	if err != nil {
		d.t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(r.Content, &m)
	return m
}

// TestDeliveryRetries: a failed delivery is retried with doubling backoff
// and jitter (never before it is due), given up after MaxAttempts with the
// subscription in status error, and requeued and delivered once a client
// sets the subscription back to requested.
func TestDeliveryRetries(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			d := newDispatch(t, b)
			sub := d.subscribe("Patient?family=Retry")
			d.create("Patient", `{"resourceType":"Patient","name":[{"family":"Retry"}]}`)
			d.match()
			d.runner.answer(500)

			for attempt := 1; attempt <= testConfig.MaxAttempts; attempt++ {
				at := d.clock.now()
				x := d.claimOne()
				d.svc.deliver(t.Context(), x)
				x = d.delivery(sub, x.ID)
				if x.Attempts != attempt {
					t.Fatalf("after attempt %d: %d attempts recorded", attempt, x.Attempts)
				}
				if attempt == testConfig.MaxAttempts {
					if x.Status != "failed" {
						t.Fatalf("after the last attempt: status %s, want failed", x.Status)
					}
					break
				}
				// Backoff doubles from RetryBase, with jitter in its upper half.
				full := testConfig.RetryBase << (attempt - 1)
				if x.Status != "pending" || x.NextAttemptAt.Before(at.Add(full/2)) || x.NextAttemptAt.After(at.Add(full)) {
					t.Fatalf("after attempt %d: %s, next at +%v, want pending within [+%v, +%v]", attempt, x.Status, x.NextAttemptAt.Sub(at), full/2, full)
				}
				if ds := d.claim(); len(ds) != 0 {
					t.Fatalf("claimed again at once after attempt %d", attempt)
				}
				d.clock.set(x.NextAttemptAt.Add(-time.Millisecond))
				if ds := d.claim(); len(ds) != 0 {
					t.Fatalf("claimed a millisecond before its retry is due (attempt %d)", attempt)
				}
				d.clock.set(x.NextAttemptAt)
			}
			m := d.subStatus(sub)
			if m["status"] != "error" || !strings.Contains(str(m, "error"), fmt.Sprintf("delivery failed %d times", testConfig.MaxAttempts)) {
				t.Fatalf("subscription after giving up: status %v, error %q", m["status"], str(m, "error"))
			}
			if ds := d.claim(); len(ds) != 0 {
				t.Fatalf("a failed delivery was claimed: %+v", ds)
			}

			// The client resumes the subscription: the kept event goes out.
			delete(m, "error")
			m["status"] = "requested"
			body, _ := json.Marshal(m)
			if _, _, err := d.fs.Update(t.Context(), d.f.admin, "Subscription", sub, body, ""); err != nil {
				t.Fatal(err)
			}
			d.runner.answer(200)
			x := d.claimOne()
			d.svc.deliver(t.Context(), x)
			if x = d.delivery(sub, x.ID); x.Status != "delivered" || x.Attempts != 1 {
				t.Fatalf("after resuming: %s with %d attempts, want delivered with 1", x.Status, x.Attempts)
			}
			if n := d.runner.calls(); n != testConfig.MaxAttempts+1 {
				t.Fatalf("the zambda was called %d times, want %d", n, testConfig.MaxAttempts+1)
			}
		})
	}
}

// TestDeliveryLease: a claimed delivery is leased for one attempt's
// timeout plus 30 s; another replica cannot take it until the lease runs
// out, and then does (the first replica died holding it).
func TestDeliveryLease(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			d := newDispatch(t, b)
			// Another replica on the same database and clock.
			other := New(testConfig, d.fs, d.runner, nil, d.clock.now, slog.New(slog.NewTextHandler(io.Discard, nil)))
			sub := d.subscribe("Patient?family=Lease")
			d.create("Patient", `{"resourceType":"Patient","name":[{"family":"Lease"}]}`)
			d.match()

			t0 := d.clock.now()
			first := d.claimOne() // and this replica dies before delivering it
			lease := testConfig.Timeout + 30*time.Second
			for _, at := range []time.Duration{0, lease / 2, lease - time.Millisecond} {
				d.clock.set(t0.Add(at))
				if ds, err := other.claim(t.Context(), 10); err != nil || len(ds) != 0 {
					t.Fatalf("at +%v another replica claimed %+v (%v) under the lease", at, ds, err)
				}
			}
			d.clock.set(t0.Add(lease))
			ds, err := other.claim(t.Context(), 10)
			if err != nil || len(ds) != 1 || ds[0].ID != first.ID {
				t.Fatalf("when the lease ran out another replica claimed %+v (%v), want delivery %d", ds, err, first.ID)
			}
			other.deliver(t.Context(), ds[0])
			if x := d.delivery(sub, first.ID); x.Status != "delivered" || d.runner.calls() != 1 {
				t.Fatalf("%s after %d calls, want delivered after 1", x.Status, d.runner.calls())
			}
		})
	}
}

// TestDeliveryOrder: a resource's versions go out in order: a newer
// version waits while an older one is being retried, due or not.
func TestDeliveryOrder(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			d := newDispatch(t, b)
			sub := d.subscribe("Patient?family=Order")
			id := d.create("Patient", `{"resourceType":"Patient","name":[{"family":"Order"}]}`)
			if _, _, err := d.fs.Update(t.Context(), d.f.admin, "Patient", id,
				[]byte(`{"resourceType":"Patient","id":"`+id+`","name":[{"family":"Order","given":["Two"]}]}`), ""); err != nil {
				t.Fatal(err)
			}
			d.match()

			d.runner.answer(500)
			v1 := d.claimOne()
			if v1.VersionID != 1 {
				t.Fatalf("claimed version %d first, want 1", v1.VersionID)
			}
			d.svc.deliver(t.Context(), v1)
			if ds := d.claim(); len(ds) != 0 {
				t.Fatalf("version 2 went out while version 1 waits for its retry: %+v", ds)
			}
			d.runner.answer(200)
			d.clock.set(d.delivery(sub, v1.ID).NextAttemptAt)
			if x := d.claimOne(); x.ID != v1.ID {
				t.Fatalf("claimed version %d, want version 1 again", x.VersionID)
			} else {
				d.svc.deliver(t.Context(), x)
			}
			if x := d.claimOne(); x.VersionID != 2 {
				t.Fatalf("claimed version %d after version 1 was delivered, want 2", x.VersionID)
			}
		})
	}
}

// TestMatch: which writes become deliveries: the criteria (evaluated by
// the search engine), the trigger extension, and deletes only when asked.
func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		criteria string
		triggers []string
		want     []string // interactions delivered, in order
	}{
		{"create and update by default", "Patient?family=Match", nil, []string{"create", "update"}},
		{"create only", "Patient?family=Match", []string{"create"}, []string{"create"}},
		{"delete only when asked", "Patient?family=Match", []string{"delete"}, []string{"delete"}},
		{"criteria that do not match", "Patient?family=Other", nil, nil},
		{"another type", "Observation?status=final", nil, nil},
		{"no criteria beyond the type", "Patient", []string{"create", "update", "delete"}, []string{"create", "update", "delete"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDispatch(t, storetest.Backends()[0])
			sub := d.subscribe(tc.criteria, tc.triggers...)
			// Matched after each write, as the matcher runs on every commit:
			// criteria are evaluated on the resource as it is when matched.
			id := d.create("Patient", `{"resourceType":"Patient","name":[{"family":"Match"}]}`)
			d.match()
			if _, _, err := d.fs.Update(t.Context(), d.f.admin, "Patient", id,
				[]byte(`{"resourceType":"Patient","id":"`+id+`","name":[{"family":"Match","given":["Two"]}]}`), ""); err != nil {
				t.Fatal(err)
			}
			d.match()
			if err := d.fs.Delete(t.Context(), d.f.admin, "Patient", id); err != nil {
				t.Fatal(err)
			}
			d.match()
			ds, err := d.f.st.Deliveries(t.Context(), d.f.admin.ProjectID, sub, 10)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i := len(ds) - 1; i >= 0; i-- { // newest first
				got = append(got, ds[i].Interaction)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("deliveries %v, want %v", got, tc.want)
			}
		})
	}
}

// TestClaimSkipsInactive: deliveries kept for a subscription that is not
// active (off here; in error likewise) are never claimed, and however
// many there are, they do not keep other subscriptions' deliveries from
// being claimed.
func TestClaimSkipsInactive(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			d := newDispatch(t, b)
			off := d.subscribe("Patient?family=Kept")
			for range 50 { // more than a claim's candidates
				d.create("Patient", `{"resourceType":"Patient","name":[{"family":"Kept"}]}`)
			}
			d.match()
			m := d.subStatus(off)
			m["status"] = "off"
			body, _ := json.Marshal(m)
			if _, _, err := d.fs.Update(t.Context(), d.f.admin, "Subscription", off, body, ""); err != nil {
				t.Fatal(err)
			}
			on := d.subscribe("Patient?family=Fresh")
			d.create("Patient", `{"resourceType":"Patient","name":[{"family":"Fresh"}]}`)
			d.match()
			if x := d.claimOne(); x.SubscriptionID != on {
				t.Fatalf("claimed a delivery of %s, want one of the active %s", x.SubscriptionID, on)
			}
			if n, err := d.f.st.CountDeliveries(t.Context(), d.f.admin.ProjectID, off); err != nil || n["pending"] != 50 {
				t.Fatalf("the inactive subscription's deliveries: %v %v, want 50 pending", n, err)
			}
		})
	}
}
