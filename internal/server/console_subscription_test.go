package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/subscription"
)

// The subscription pages: a failed delivery in the log with its HTTP
// status, replayed from the console and then delivered; a bad replay
// input's message next to the field; another tenant's subscription 404;
// a read-only developer has no replay button and a forced one is 403.
func TestConsoleSubscriptions(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if failing.Load() {
			http.Error(w, "<b>down</b>", http.StatusInternalServerError)
		}
	}))
	defer hook.Close()
	pol, err := egress.New(t.Context(), egress.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ts := newTestServerWith(t, pol, func(st *store.Store, _ *seal.Sealer, d *Deps) {
		subs := subscription.New(subscription.Config{MaxAttempts: 1, RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond,
			Timeout: 2 * time.Second, Poll: 10 * time.Millisecond}, d.FHIR.Service(), nil, pol, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
		subs.Register(d.FHIR)
		go func() { defer close(done); subs.Run(ctx) }()
	})
	t.Cleanup(func() { cancel(); <-done })

	st, sub := ts.do(t, "POST", "/fhir/Subscription", ts.token, `{"resourceType":"Subscription","status":"requested","reason":"console","criteria":"Patient?family=Hooked",`+
		`"channel":{"type":"rest-hook","endpoint":"`+hook.URL+`/hook","payload":"application/fhir+json"}}`)
	if st != 201 {
		t.Fatalf("subscription: %d %v", st, sub)
	}
	page := "/console/subscriptions/" + sub["id"].(string)
	if st, _ := ts.do(t, "POST", "/fhir/Patient", ts.token, `{"resourceType":"Patient","name":[{"family":"Hooked"}]}`); st != 201 {
		t.Fatalf("patient: %d", st)
	}
	ts.inviteConsoleDeveloper(t, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	b, csrf := ts.consoleSignIn(t, "dev@example.org")
	if status, body := get(t, b, "/console/subscriptions"); status != 200 || !strings.Contains(body, `href="`+page+`"`) || !strings.Contains(body, "Patient?family=Hooked") {
		t.Fatalf("list: %d %s", status, body)
	}
	waitFor := func(what string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			status, body := get(t, b, page)
			if status == 200 && strings.Contains(body, what) {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q on the subscription page: %d %s", what, status, body)
			}
			time.Sleep(20 * time.Millisecond) // polling with a deadline
		}
	}
	body := waitFor(`id="sub-status">error`)
	if !strings.Contains(body, "HTTP 500") || strings.Contains(body, "<b>down") || !strings.Contains(body, "Resume deliveries") ||
		!regexp.MustCompile(`<a href="/console/fhir/Patient/[^/"]+/_history">Patient/[^/"]+/_history/1</a> \(create\)`).MatchString(body) {
		t.Fatalf("failed delivery: %s", body)
	}
	if status, body := post(t, b, page+"/replay", url.Values{"csrf": {csrf}, "from": {"<i>x</i>"}}); status != 400 ||
		!strings.Contains(body, "event sequence number") || strings.Contains(body, "<i>x</i>") || !strings.Contains(body, `aria-invalid="true"`) {
		t.Fatalf("bad replay: %d %s", status, body)
	}
	if status, _ := post(t, b, page+"/replay", url.Values{}); status != 403 {
		t.Fatalf("replay without CSRF: %d", status)
	}
	failing.Store(false)
	if status, body := post(t, b, page+"/resume", url.Values{"csrf": {csrf}}); status != 200 || !strings.Contains(body, "Resumed") {
		t.Fatalf("resume: %d %s", status, body)
	}
	waitFor(", 1 delivered,")
	// Replay from the first event: delivered again.
	if status, body := post(t, b, page+"/replay", url.Values{"csrf": {csrf}, "from": {"1"}}); status != 200 || !strings.Contains(body, "Requeued 1 deliveries") {
		t.Fatalf("replay: %d %s", status, body)
	}
	body = waitFor(", 1 delivered,")
	if strings.Count(body, "HTTP 200") < 2 {
		t.Errorf("the replayed delivery was not sent again: %s", body)
	}

	// Another tenant's subscription.
	other, err := ts.iam.CreateProject(t.Context(), "Other tenant")
	if err != nil {
		t.Fatal(err)
	}
	otherToken := ts.clientToken(t, other.ClientID, other.ClientSecret)
	st, theirs := ts.do(t, "POST", "/fhir/Subscription", otherToken, `{"resourceType":"Subscription","status":"requested","reason":"theirs","criteria":"Patient",`+
		`"channel":{"type":"rest-hook","endpoint":"`+hook.URL+`/theirs"}}`)
	if st != 201 {
		t.Fatalf("other tenant's subscription: %d %v", st, theirs)
	}
	tp := "/console/subscriptions/" + theirs["id"].(string)
	if status, _ := get(t, b, tp); status != 404 {
		t.Errorf("GET %s: %d, want 404", tp, status)
	}
	if status, _ := post(t, b, tp+"/replay", url.Values{"csrf": {csrf}}); status != 404 {
		t.Errorf("replay of another tenant's subscription: %d, want 404", status)
	}

	// Read-only: no replay button; forced, the API's 403.
	ts.inviteConsoleDeveloper(t, "reader@example.org", `{"rule":[{"resource":["FHIR:*"],"action":["FHIR:Read","FHIR:Search"],"effect":"Allow"},`+
		`{"resource":["Project:Settings"],"action":["Project:GetProjectInfo"],"effect":"Allow"}]}`)
	rb, rcsrf := ts.consoleSignIn(t, "reader@example.org")
	if status, body := get(t, rb, page); status != 200 || strings.Contains(body, ">Replay</button>") || !strings.Contains(body, ", 1 delivered,") {
		t.Fatalf("reader's page: %d %s", status, body)
	}
	if status, body := post(t, rb, page+"/replay", url.Values{"csrf": {rcsrf}}); status != 403 || !strings.Contains(body, "FHIR:Update") {
		t.Fatalf("forced replay: %d %s", status, body)
	}
}
