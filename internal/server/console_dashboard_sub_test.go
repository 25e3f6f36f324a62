package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/activity"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/subscription"
)

// The dashboard's subscription figures come from the database: a failed
// attempt, a delivery in flight as the backlog, then delivered.
func TestConsoleDashboardDeliveries(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		<-release
	}))
	defer hook.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	pol := loopbackEgress(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ts := newTestServerWith(t, pol, func(st *store.Store, _ *seal.Sealer, d *Deps) {
		subs := subscription.New(subscription.Config{MaxAttempts: 1, RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond,
			Timeout: 30 * time.Second, Poll: 10 * time.Millisecond}, d.FHIR.Service(), nil, pol, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
		subs.Register(d.FHIR)
		go func() { defer close(done); subs.Run(ctx) }()
		d.Activity, d.Deliveries = activity.New(nil, 0), st.DeliveryActivity
	})
	t.Cleanup(func() { cancel(); <-done })
	st, sub := ts.do(t, "POST", "/fhir/Subscription", ts.token, `{"resourceType":"Subscription","status":"requested","reason":"dash","criteria":"Patient",`+
		`"channel":{"type":"rest-hook","endpoint":"`+hook.URL+`/hook","payload":"application/fhir+json"}}`)
	if st != 201 {
		t.Fatalf("subscription: %d %v", st, sub)
	}
	ts.inviteConsoleDeveloper(t, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	b, csrf := ts.consoleSignIn(t, "dev@example.org")
	until := func(what string, ok func(map[string]string, string) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, body := get(t, b, "/console/dashboard")
			got := tiles(body)
			if ok(got, body) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("dashboard never showed %s: %v", what, got)
			}
			time.Sleep(20 * time.Millisecond) // polling with a deadline
		}
	}
	if st, _ := ts.do(t, "POST", "/fhir/Patient", ts.token, `{"resourceType":"Patient"}`); st != 201 {
		t.Fatal(st)
	}
	until("a failed attempt", func(got map[string]string, body string) bool {
		return got["Subscription deliveries"] == "1" && strings.Contains(body, `<span class="hint">1 failed attempts</span>`)
	})
	// The subscription is in error after its failure: resume it, then a
	// second Patient's delivery hangs at the webhook: the backlog.
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, body := post(t, b, "/console/subscriptions/"+sub["id"].(string)+"/resume", url.Values{"csrf": {csrf}})
		if status == 200 && strings.Contains(body, "Resumed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resume: %d %s", status, body)
		}
		time.Sleep(20 * time.Millisecond) // the error status lands after the attempt: poll with a deadline
	}
	if st, _ := ts.do(t, "POST", "/fhir/Patient", ts.token, `{"resourceType":"Patient"}`); st != 201 {
		t.Fatal(st)
	}
	until("the backlog", func(got map[string]string, _ string) bool {
		n, _ := strconv.Atoi(got["Delivery backlog"])
		return n >= 1
	})
	close(release)
	// Resuming may send the failed event again too: at least the second
	// Patient's attempt more, and still the one failure.
	until("the delivery", func(got map[string]string, body string) bool {
		n, _ := strconv.Atoi(got["Subscription deliveries"])
		return n >= 2 && got["Delivery backlog"] == "0" && strings.Contains(body, `<span class="hint">1 failed attempts</span>`)
	})
}
