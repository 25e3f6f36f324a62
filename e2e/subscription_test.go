package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// receiver is a webhook endpoint that records what it gets and can be told
// to fail. It is on loopback, which the egress policy refuses unless the
// server runs with --egress-allow 127.0.0.1/32.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []delivery
	failNext atomic.Int32 // answer 500 to this many requests first
	requests atomic.Int32
}

type delivery struct {
	Method, Path, Auth, Event string
	Resource                  map[string]any
	At                        time.Time
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.requests.Add(1)
		if rc.failNext.Load() > 0 {
			rc.failNext.Add(-1)
			w.WriteHeader(500)
			return
		}
		var res map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &res)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("X-Subscription-Auth"),
			Event: r.Header.Get("X-Ward-Event"), Resource: res, At: time.Now()})
		rc.mu.Unlock()
		w.WriteHeader(200)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

// fhirDo sends a FHIR request and decodes the JSON answer.
func (w *ward) fhirDo(t *testing.T, token, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, w.URL+"/fhir/"+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/fhir+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out
}

func subscriptionFor(criteria, endpoint string, triggers ...string) map[string]any {
	s := map[string]any{
		"resourceType": "Subscription", "status": "requested", "reason": "e2e", "criteria": criteria,
		"channel": map[string]any{"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
			"header": []string{"X-Subscription-Auth: s3cret"}},
	}
	var exts []any
	for _, tr := range triggers {
		exts = append(exts, map[string]any{"url": "http://zapehr.com/fhir/extension/SubscriptionTriggerEvent", "valueString": tr})
	}
	if exts != nil {
		s["extension"] = exts
	}
	return s
}

func patient(family string) map[string]any {
	return map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": family}}}
}

// events reads $events: delivery status and attempts by resource reference.
func (w *ward) events(t *testing.T, token, subID string) map[string][2]string {
	t.Helper()
	st, out := w.fhirDo(t, token, "GET", "Subscription/"+subID+"/$events", nil)
	if st != 200 {
		t.Fatalf("$events: %d %v", st, out)
	}
	res := map[string][2]string{}
	for _, p := range out["parameter"].([]any) {
		pm := p.(map[string]any)
		if pm["name"] != "delivery" {
			continue
		}
		var ref, status, attempts string
		for _, part := range pm["part"].([]any) {
			pp := part.(map[string]any)
			switch pp["name"] {
			case "resource":
				ref = pp["valueReference"].(map[string]any)["reference"].(string)
			case "status":
				status = pp["valueCode"].(string)
			case "attempts":
				attempts = fmt.Sprint(pp["valueInteger"])
			}
		}
		res[ref] = [2]string{status, attempts}
	}
	return res
}

func TestSubscriptions(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWardWith(t, b, "--subscription-retry-base", "50ms", "--subscription-retry-max", "200ms", "--subscription-max-attempts", "4",
				"--egress-allow", "127.0.0.1/32")
			tok := w.token(t, w.Admin)
			rc := newReceiver(t)

			// Matching, non-matching, and the trigger extension.
			st, sub := w.fhirDo(t, tok, "POST", "Subscription", subscriptionFor("Patient?family=Test", rc.URL))
			if st != 201 || sub["status"] != "active" {
				t.Fatalf("create subscription: %d %v", st, sub)
			}
			st, createOnly := w.fhirDo(t, tok, "POST", "Subscription", subscriptionFor("Patient?family=Test", rc.URL+"/create-only", "create"))
			if st != 201 {
				t.Fatalf("create subscription: %d %v", st, createOnly)
			}
			_, other := w.fhirDo(t, tok, "POST", "Patient", patient("Other"))
			_, match := w.fhirDo(t, tok, "POST", "Patient", patient("Test"))
			waitFor(t, "two deliveries of the matching create", 10*time.Second, func() bool { return len(rc.deliveries()) >= 2 })
			for _, d := range rc.deliveries() {
				if d.Auth != "s3cret" || d.Resource["id"] != match["id"] || d.Method != "POST" {
					t.Fatalf("delivery = %+v, want the matching Patient with the header", d)
				}
			}
			// An update reaches the plain subscription, not the create-only one.
			match["gender"] = "female"
			if st, _ := w.fhirDo(t, tok, "PUT", "Patient/"+match["id"].(string), match); st != 200 {
				t.Fatalf("update: %d", st)
			}
			waitFor(t, "the update's delivery", 10*time.Second, func() bool { return len(rc.deliveries()) >= 3 })
			// What must not arrive is checked after a later write that must:
			// the matcher takes events in order, so once the marker reached
			// both subscriptions every earlier write has been matched, and
			// $events lists every delivery those writes will ever make.
			_, marker := w.fhirDo(t, tok, "POST", "Patient", patient("Test"))
			waitFor(t, "the marker's two deliveries", 10*time.Second, func() bool {
				n := 0
				for _, d := range rc.deliveries() {
					if d.Resource["id"] == marker["id"] {
						n++
					}
				}
				return n == 2
			})
			for ref := range w.events(t, tok, sub["id"].(string)) {
				if strings.HasPrefix(ref, "Patient/"+other["id"].(string)+"/") {
					t.Errorf("the non-matching Patient was matched: %s", ref)
				}
			}
			if _, ok := w.events(t, tok, createOnly["id"].(string))["Patient/"+match["id"].(string)+"/_history/2"]; ok {
				t.Error("the update was matched to the create-only subscription")
			}
			for _, d := range rc.deliveries() {
				if d.Resource["id"] == other["id"] {
					t.Error("the non-matching Patient was delivered")
				}
				if d.Path == "/create-only" && d.Resource["gender"] == "female" {
					t.Error("the update reached the create-only subscription")
				}
			}
			if got := len(rc.deliveries()); got != 5 {
				t.Errorf("%d deliveries, want 5", got)
			}

			// Criteria written as a _filter: the earlier, non-matching
			// write is matched first (events run in order), so one delivery
			// of the matching Patient means the other was not.
			rc4 := newReceiver(t)
			st, filtered := w.fhirDo(t, tok, "POST", "Subscription", subscriptionFor("Patient?_filter="+url.QueryEscape(`family eq "Filtered" and gender eq male`), rc4.URL))
			if st != 201 {
				t.Fatalf("_filter subscription: %d %v", st, filtered)
			}
			near := patient("Filtered")
			w.fhirDo(t, tok, "POST", "Patient", near)
			want := patient("Filtered")
			want["gender"] = "male"
			_, wanted := w.fhirDo(t, tok, "POST", "Patient", want)
			waitFor(t, "the _filter subscription's delivery", 10*time.Second, func() bool { return len(rc4.deliveries()) >= 1 })
			if d := rc4.deliveries(); len(d) != 1 || d[0].Resource["id"] != wanted["id"] {
				t.Errorf("_filter deliveries: %+v, want only Patient %v", d, wanted["id"])
			}
			if evs := w.events(t, tok, filtered["id"].(string)); len(evs) != 1 {
				t.Errorf("_filter subscription's $events: %v, want only Patient %v", evs, wanted["id"])
			}

			// Fails 3 times, then succeeds on the 4th attempt.
			rc2 := newReceiver(t)
			rc2.failNext.Store(3)
			_, flaky := w.fhirDo(t, tok, "POST", "Subscription", subscriptionFor("Patient?family=Flaky", rc2.URL))
			_, fp := w.fhirDo(t, tok, "POST", "Patient", patient("Flaky"))
			waitFor(t, "the flaky receiver's delivery", 10*time.Second, func() bool { return len(rc2.deliveries()) == 1 })
			if n := rc2.requests.Load(); n != 4 {
				t.Errorf("the flaky receiver saw %d requests, want 4", n)
			}
			flakyRef := "Patient/" + fp["id"].(string) + "/_history/1"
			waitFor(t, "$events to show the flaky delivery done", 5*time.Second, func() bool {
				return w.events(t, tok, flaky["id"].(string))[flakyRef][0] == "delivered"
			})
			if got := w.events(t, tok, flaky["id"].(string))[flakyRef]; got != [2]string{"delivered", "4"} {
				t.Errorf("$events for the flaky delivery: %v", got)
			}

			// Down for the whole window: the subscription goes to error and
			// keeps the event; resuming delivers it.
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			downURL := "http://" + ln.Addr().String()
			ln.Close()
			_, down := w.fhirDo(t, tok, "POST", "Subscription", subscriptionFor("Patient?family=Down", downURL))
			_, dp := w.fhirDo(t, tok, "POST", "Patient", patient("Down"))
			var cur map[string]any
			waitFor(t, "the subscription to go to error", 15*time.Second, func() bool {
				_, cur = w.fhirDo(t, tok, "GET", "Subscription/"+down["id"].(string), nil)
				return cur["status"] == "error"
			})
			if !strings.Contains(fmt.Sprint(cur["error"]), "failed 4 times") {
				t.Errorf("error text = %v", cur["error"])
			}
			ref := "Patient/" + dp["id"].(string) + "/_history/1"
			if got := w.events(t, tok, down["id"].(string))[ref]; got != [2]string{"failed", "4"} {
				t.Errorf("$events for the dead endpoint: %v", got)
			}
			rc3 := newReceiver(t)
			cur["status"], cur["channel"].(map[string]any)["endpoint"] = "requested", rc3.URL
			if st, _ := w.fhirDo(t, tok, "PUT", "Subscription/"+down["id"].(string), cur); st != 200 {
				t.Fatalf("resume: %d", st)
			}
			waitFor(t, "the kept event after resuming", 10*time.Second, func() bool { return len(rc3.deliveries()) == 1 })

			// Registering the same subscription five times leaves one; a
			// changed criteria updates it in place.
			endpoint := rc.URL + "/registered"
			for i := 0; i < 5; i++ {
				crit := "Patient?family=Reg"
				if i == 4 {
					crit = "Patient?family=Reg2"
				}
				st, _ := w.fhirDo(t, tok, "PUT", "Subscription?url="+url.QueryEscape(endpoint), subscriptionFor(crit, endpoint))
				if st != 200 && st != 201 {
					t.Fatalf("register %d: %d", i, st)
				}
			}
			_, bundle := w.fhirDo(t, tok, "GET", "Subscription?url="+url.QueryEscape(endpoint)+"&_total=accurate", nil)
			if bundle["total"] != float64(1) {
				t.Fatalf("registered %v times, want 1", bundle["total"])
			}
			entry := bundle["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
			if entry["criteria"] != "Patient?family=Reg2" {
				t.Errorf("criteria after re-registration = %v", entry["criteria"])
			}

			// Bad criteria and endpoints are 400s.
			for _, bad := range []map[string]any{
				subscriptionFor("Patient?nosuchparam=1", rc.URL),
				subscriptionFor("NotAType?x=1", rc.URL),
				subscriptionFor("Patient?family=x", "ftp://example.com"),
			} {
				if st, out := w.fhirDo(t, tok, "POST", "Subscription", bad); st != 400 {
					t.Errorf("bad subscription accepted: %d %v", st, out)
				}
			}
		})
	}
}

// TestSubscriptionReadAccess: a subscriber never receives a resource its
// owner may not read.
func TestSubscriptionReadAccess(t *testing.T) {
	w := startWardWith(t, storetest.Backends()[0], "--egress-allow", "127.0.0.1/32")
	admin := w.token(t, w.Admin)
	rc := newReceiver(t)
	// A client that may manage subscriptions and read only active patients.
	var client struct {
		ID       string `json:"id"`
		ClientID string `json:"clientId"`
	}
	policy := `{"name":"sub-owner","accessPolicy":{"rule":[
		{"resource":"FHIR:Subscription:*","action":["FHIR:Create","FHIR:Read","FHIR:Update","FHIR:Search"],"effect":"Allow"},
		{"resource":"FHIR:Patient:*","action":["FHIR:Read"],"effect":"Allow","condition":"Patient?active=true"}]}}`
	if st := w.api(t, admin, "POST", "/m2m", policy, &client); st != 200 {
		t.Fatalf("m2m: %d", st)
	}
	var sec struct {
		Secret string `json:"secret"`
	}
	w.api(t, admin, "POST", "/m2m/"+client.ID+"/rotate-secret", `{}`, &sec)
	owner := w.token(t, creds{ClientID: client.ClientID, ClientSecret: sec.Secret})
	st, sub := w.fhirDo(t, owner, "POST", "Subscription", subscriptionFor("Patient?family=Scoped", rc.URL))
	if st != 201 {
		t.Fatalf("subscription: %d %v", st, sub)
	}
	hidden := patient("Scoped")
	hidden["active"] = false
	_, h := w.fhirDo(t, admin, "POST", "Patient", hidden)
	visible := patient("Scoped")
	visible["active"] = true
	_, v := w.fhirDo(t, admin, "POST", "Patient", visible)
	waitFor(t, "the readable patient's delivery", 10*time.Second, func() bool { return len(rc.deliveries()) >= 1 })
	// The unreadable patient's delivery must end, and end skipped: a
	// final status rather than a window in which nothing arrives.
	hiddenRef := "Patient/" + h["id"].(string) + "/_history/1"
	var status [2]string
	waitFor(t, "the unreadable patient's delivery to end", 10*time.Second, func() bool {
		status = w.events(t, admin, sub["id"].(string))[hiddenRef]
		return status[0] != "" && status[0] != "pending"
	})
	if status[0] != "skipped" {
		t.Errorf("the unreadable patient's delivery is %v, want skipped", status)
	}
	for _, d := range rc.deliveries() {
		if d.Resource["id"] == h["id"] {
			t.Error("a patient the owner may not read was delivered")
		}
	}
	if d := rc.deliveries(); len(d) != 1 || d[0].Resource["id"] != v["id"] {
		t.Errorf("deliveries = %+v", d)
	}
}

// TestSubscriptionCrash: while concurrent clients create 2,000 matching
// resources, the server is killed (SIGKILL) and restarted; every create
// that got a 2xx is delivered at least once.
func TestSubscriptionCrash(t *testing.T) {
	w := startWardWith(t, storetest.Backends()[0], "--egress-allow", "127.0.0.1/32")
	tok := w.token(t, w.Admin)
	rc := newReceiver(t)
	if st, _ := w.fhirDo(t, tok, "POST", "Subscription", subscriptionFor("Patient?family=Crash", rc.URL)); st != 201 {
		t.Fatal("subscription")
	}
	const total, clients = 2000, 16
	var acked sync.Map
	var ackCount atomic.Int32
	var next atomic.Int32
	var wg sync.WaitGroup
	killed := make(chan struct{})
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 5 * time.Second}
			for next.Add(1) <= total {
				b, _ := json.Marshal(patient("Crash"))
				req, _ := http.NewRequest("POST", w.URL+"/fhir/Patient", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/fhir+json")
				res, err := hc.Do(req)
				if err != nil {
					continue // the server is down: this create was never acknowledged
				}
				var out map[string]any
				json.NewDecoder(res.Body).Decode(&out)
				res.Body.Close()
				if res.StatusCode == 201 {
					acked.Store(out["id"], true)
					ackCount.Add(1)
				}
			}
		}()
	}
	go func() {
		for ackCount.Load() < total/2 {
			time.Sleep(time.Millisecond) // polling interval; ends when half are acknowledged
		}
		w.kill9(t)
		close(killed)
	}()
	<-killed
	w.launch(t)
	wg.Wait()
	want := 0
	acked.Range(func(_, _ any) bool { want++; return true })
	t.Logf("%d creates acknowledged (server killed at %d)", want, total/2)
	waitFor(t, "every acknowledged create to be delivered", 60*time.Second, func() bool {
		got := map[any]bool{}
		for _, d := range rc.deliveries() {
			got[d.Resource["id"]] = true
		}
		missing := 0
		acked.Range(func(id, _ any) bool {
			if !got[id] {
				missing++
			}
			return true
		})
		return missing == 0
	})
	t.Logf("%d deliveries received for %d acknowledged creates", len(rc.deliveries()), want)
}
