package subscription

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/store"
)

// TestStopReleasesDeliveries: a stop lets a delivery in flight finish
// while inflight lasts (it is recorded as delivered), and one still
// running when inflight ends is released, not failed: no attempt is
// counted (with one attempt allowed, a failure would give up) and another
// dispatcher claims it at once rather than after its lease.
func TestStopReleasesDeliveries(t *testing.T) {
	for _, tc := range []struct {
		name       string
		finish     bool // the endpoint answers between the stop and the cut
		wantStatus string
		wantTries  int
	}{
		{"finished within the grace", true, "delivered", 1},
		{"cut at the end of the grace", false, "pending", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			var hits atomic.Int32
			arrived, answer := make(chan struct{}, 1), make(chan struct{})
			rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hits.Add(1) == 1 {
					arrived <- struct{}{}
					select {
					case <-answer:
					case <-r.Context().Done():
					}
				}
			}))
			defer rc.Close()
			defer close(answer)
			pol := mustPolicy(t, egress.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
			fs, svc := f.service(pol)
			svc.cfg.MaxAttempts = 1
			svc.cfg.Timeout = 30 * time.Second // longer than the test: only the cut ends the request
			sub, _, err := fs.Create(t.Context(), f.admin, "Subscription", subscriptionJSON(rc.URL), "")
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := fs.Create(t.Context(), f.admin, "Patient", []byte(`{"resourceType":"Patient","name":[{"family":"Egress"}]}`), ""); err != nil {
				t.Fatal(err)
			}
			stop, stopNow := context.WithCancel(t.Context())
			inflight, cut := context.WithCancel(context.WithoutCancel(t.Context()))
			done := make(chan struct{})
			go func() { svc.RunUntil(stop, inflight); close(done) }()
			select {
			case <-arrived:
			case <-time.After(10 * time.Second):
				t.Fatal("the delivery did not reach the endpoint")
			}
			stopNow()
			if tc.finish {
				answer <- struct{}{}
			} else {
				cut()
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("RunUntil did not return after the stop")
			}
			cut()
			ds, err := f.st.Deliveries(t.Context(), f.admin.ProjectID, sub.ID, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1 || ds[0].Status != tc.wantStatus || ds[0].Attempts != tc.wantTries {
				t.Fatalf("deliveries = %+v, want one %s after %d attempts", ds, tc.wantStatus, tc.wantTries)
			}
			if tc.finish {
				return
			}
			// Another dispatcher (a replica, or this one restarted) takes it
			// now, though the cut one's lease had 60 s to run.
			_, next := f.service(pol)
			ctx, cancel := context.WithCancel(t.Context())
			done = make(chan struct{})
			go func() { next.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			var got []store.Delivery
			for deadline := time.Now().Add(10 * time.Second); ; {
				if got, err = f.st.Deliveries(t.Context(), f.admin.ProjectID, sub.ID, 10); err != nil {
					t.Fatal(err)
				}
				if len(got) == 1 && got[0].Status == "delivered" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the released delivery was not delivered again: %+v", got)
				}
				time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
			}
			if got[0].Attempts != 1 || hits.Load() != 2 {
				t.Fatalf("attempts = %d, endpoint hits = %d, want 1 and 2", got[0].Attempts, hits.Load())
			}
		})
	}
}
