package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// diagnostics is the text of an OperationOutcome's first issue.
func diagnostics(out map[string]any) string {
	issues, _ := out["issue"].([]any)
	if len(issues) == 0 {
		return ""
	}
	details, _ := issues[0].(map[string]any)["details"].(map[string]any)
	d, _ := details["text"].(string)
	return d
}

// TestSubscriptionEgressRefused: without --egress-allow, a rest-hook
// Subscription into the host's own network is a 400 naming the rule, and
// none is stored.
func TestSubscriptionEgressRefused(t *testing.T) {
	w := startWard(t, storetest.Backends()[0])
	tok := w.token(t, w.Admin)
	rc := newReceiver(t)
	port := rc.URL[strings.LastIndex(rc.URL, ":")+1:]
	for _, tc := range []struct{ endpoint, want string }{
		{rc.URL + "/", strings.TrimPrefix(rc.URL, "http://") + " is a loopback address (refused by the egress policy; open it with --egress-allow 127.0.0.1/32)"},
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254:80 is the cloud metadata address"},
		{"http://10.0.0.1/", "10.0.0.1:80 is a private address"},
		{"http://[::1]:" + port + "/", "[::1]:" + port + " is a loopback address"},
		{"http://[::ffff:127.0.0.1]:" + port + "/", "[::ffff:127.0.0.1]:" + port + " is a loopback address"},
		{"http://localhost:" + port + "/", "is a loopback address"}, // a name: its resolved address is checked
	} {
		st, out := w.fhirDo(t, tok, "POST", "Subscription", subscriptionFor("Patient?family=Egress", tc.endpoint))
		if st != 400 || !strings.Contains(diagnostics(out), "Subscription.channel.endpoint "+tc.endpoint+" is refused") ||
			!strings.Contains(diagnostics(out), tc.want) {
			t.Errorf("subscription to %s: %d %q, want 400 with %q", tc.endpoint, st, diagnostics(out), tc.want)
		}
	}
	// A zambda endpoint is not a network address.
	st, marker := w.fhirDo(t, tok, "POST", "Subscription", subscriptionFor("Patient?family=Egress", "zapehr-lambda:some-zambda"))
	if st != 201 {
		t.Fatalf("zapehr-lambda subscription: %d %v", st, marker)
	}
	_, bundle := w.fhirDo(t, tok, "GET", "Subscription?_total=accurate", nil)
	if bundle["total"] != float64(1) {
		t.Errorf("refused subscriptions were stored: %v subscriptions, want only the zambda's", bundle["total"])
	}
	st, p := w.fhirDo(t, tok, "POST", "Patient", patient("Egress"))
	if st != 201 {
		t.Fatal("patient")
	}
	// Rather than a window in which nothing arrives: the only stored
	// subscription's attempt (its zambda does not exist) shows the event
	// was matched and dispatched; nothing else was there to send it.
	ref := "Patient/" + p["id"].(string) + "/_history/1"
	waitFor(t, "the zambda subscription's first attempt", 10*time.Second, func() bool {
		attempts := w.events(t, tok, marker["id"].(string))[ref][1]
		return attempts != "" && attempts != "0"
	})
	if n := rc.requests.Load(); n != 0 {
		t.Errorf("the loopback receiver got %d requests", n)
	}
}

// TestSubscriptionEgressAllowed: --egress-allow 127.0.0.1/32 opens the
// loopback receivers, but not Ward's own debug server or database; a
// subscription written while its address was allowed is refused at
// delivery once the server runs without it, and the attempt says why.
func TestSubscriptionEgressAllowed(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			debug := freeAddr(t)
			w := startWardWith(t, b, "--egress-allow", "127.0.0.1/32", "--debug-addr", debug)
			tok := w.token(t, w.Admin)
			own := []string{"http://" + debug + "/debug/pprof/"}
			if w.DB != "" {
				u, err := url.Parse(w.DB)
				if err != nil {
					t.Fatal(err)
				}
				own = append(own, "http://"+u.Host+"/")
			}
			for _, ep := range own {
				st, out := w.fhirDo(t, tok, "POST", "Subscription", subscriptionFor("Patient?family=Own", ep))
				if st != 400 || !strings.Contains(diagnostics(out), "is one of Ward's own service addresses (its database or debug server) (always refused)") {
					t.Errorf("subscription to Ward's own %s: %d %q", ep, st, diagnostics(out))
				}
			}

			rc := newReceiver(t)
			st, sub := w.fhirDo(t, tok, "POST", "Subscription", subscriptionFor("Patient?family=Allowed", rc.URL))
			if st != 201 {
				t.Fatalf("subscription to an allowed receiver: %d %v", st, sub)
			}
			w.fhirDo(t, tok, "POST", "Patient", patient("Allowed"))
			waitFor(t, "the allowed delivery", 10*time.Second, func() bool { return len(rc.deliveries()) == 1 })

			// The same server, restarted without --egress-allow.
			w.kill9(t)
			w.flags = []string{"--debug-addr", debug}
			w.launch(t)
			tok = w.token(t, w.Admin)
			_, p := w.fhirDo(t, tok, "POST", "Patient", patient("Allowed"))
			ref := fmt.Sprintf("Patient/%s/_history/1", p["id"])
			want := "POST " + rc.URL + ": egress: " + strings.TrimPrefix(rc.URL, "http://") +
				" is a loopback address (refused by the egress policy; open it with --egress-allow 127.0.0.1/32)"
			var errs []string
			waitFor(t, "a refused attempt", 10*time.Second, func() bool {
				errs = w.attemptErrors(t, tok, sub["id"].(string), ref)
				return len(errs) > 0
			})
			if errs[0] != want {
				t.Errorf("attempt error = %q\nwant %q", errs[0], want)
			}
			if got := w.events(t, tok, sub["id"].(string))[ref][0]; got != "pending" {
				t.Errorf("the refused delivery is %q, want pending (retried like any failure)", got)
			}
			if n := len(rc.deliveries()); n != 1 {
				t.Errorf("the receiver got %d deliveries, want only the one made while it was allowed", n)
			}
		})
	}
}

// attemptErrors reads $events: the errors of the attempts to deliver ref.
func (w *ward) attemptErrors(t *testing.T, token, subID, ref string) []string {
	t.Helper()
	st, out := w.fhirDo(t, token, "GET", "Subscription/"+subID+"/$events", nil)
	if st != 200 {
		t.Fatalf("$events: %d %v", st, out)
	}
	var errs []string
	for _, p := range out["parameter"].([]any) {
		pm := p.(map[string]any)
		if pm["name"] != "delivery" {
			continue
		}
		var mine bool
		var found []string
		for _, part := range pm["part"].([]any) {
			pp := part.(map[string]any)
			switch pp["name"] {
			case "resource":
				mine = pp["valueReference"].(map[string]any)["reference"] == ref
			case "attempt":
				for _, ap := range pp["part"].([]any) {
					if a := ap.(map[string]any); a["name"] == "error" {
						found = append(found, a["valueString"].(string))
					}
				}
			}
		}
		if mine {
			errs = append(errs, found...)
		}
	}
	return errs
}
