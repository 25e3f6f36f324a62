package subscription

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestFailuresLoggedPerSubscription: failed deliveries are logged at most
// once a minute per subscription, the next line saying how many were not;
// two subscriptions failing together each get their line; every attempt
// is counted for /metrics.
func TestFailuresLoggedPerSubscription(t *testing.T) {
	d := newDispatch(t, storetest.Backends()[0])
	var logs syncBuf
	d.svc = New(Config{MaxAttempts: 20, RetryBase: time.Second, RetryMax: time.Second, Timeout: 10 * time.Second},
		d.fs, d.runner, nil, d.clock.now, slog.New(slog.NewTextHandler(&logs, nil)))
	a := d.subscribe("Patient?family=Down")
	b := d.subscribe("Patient?family=Down")
	d.create("Patient", `{"resourceType":"Patient","name":[{"family":"Down"}]}`)
	d.match()
	d.runner.answer(500)
	lines := func(sub string) []string {
		var out []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "delivery failed") && strings.Contains(l, "subscription="+sub) {
				out = append(out, l)
			}
		}
		return out
	}
	round := func() {
		t.Helper()
		ds := d.claim()
		if len(ds) != 2 {
			t.Fatalf("claimed %d deliveries, want 2", len(ds))
		}
		for _, x := range ds {
			d.svc.deliver(t.Context(), x)
		}
		d.clock.set(d.clock.now().Add(time.Second)) // the retry is due
	}
	for range 5 { // 5 s: within one minute
		round()
	}
	for _, sub := range []string{a, b} {
		if got := lines(sub); len(got) != 1 || !strings.Contains(got[0], "suppressed=0") || !strings.Contains(got[0], "status=500") {
			t.Fatalf("subscription %s after 5 failures in 5 s: %q", sub, got)
		}
	}
	d.clock.set(d.clock.now().Add(time.Minute))
	round()
	for _, sub := range []string{a, b} {
		if got := lines(sub); len(got) != 2 || !strings.Contains(got[1], "suppressed=4") {
			t.Fatalf("subscription %s a minute later: %q", sub, got)
		}
	}
	d.runner.answer(200)
	round()
	var m bytes.Buffer
	if err := d.svc.Stats().WritePrometheus(&m); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`ward_subscription_attempts_total{outcome="failed"} 12`, `ward_subscription_attempts_total{outcome="delivered"} 2`,
		"ward_subscription_deliveries_failed_total 0"} {
		if !strings.Contains(m.String(), want) {
			t.Fatalf("metrics lack %q:\n%s", want, m.String())
		}
	}
}

func TestRedactURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`POST https://hooks.example/x?token=s3cret: dial tcp: refused`, `POST https://hooks.example/x?<redacted>: dial tcp: refused`},
		{`POST https://user:pw@hooks.example/x answered 500`, `POST https://hooks.example/x answered 500`},
		{`Post "https://h.example/a#frag": EOF`, `Post "https://h.example/a": EOF`},
		{`no url here`, `no url here`},
	} {
		if got := redactURLs(tc.in); got != tc.want {
			t.Errorf("redactURLs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzRedactURLs: whatever surrounds it, a URL's query never reaches the
// log, and redacting twice changes nothing more.
func FuzzRedactURLs(f *testing.F) {
	f.Add("hooks.example", "token=s3cret", `POST `, `: dial tcp: refused`)
	f.Add("h", "a", `Post "`, `": EOF`)
	f.Fuzz(func(t *testing.T, host, query, before, after string) {
		out := redactURLs(before + "https://" + host + "/p?" + query + after)
		if again := redactURLs(out); again != out {
			t.Fatalf("not stable: %q then %q", out, again)
		}
		plain := func(s string) bool {
			for _, r := range s {
				if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
					return false
				}
			}
			return s != ""
		}
		// A secret-looking query on a plain host, outside the text around it.
		if plain(host) && plain(query) && len(query) >= 6 && !strings.Contains(host, query) && !strings.Contains(before+after, query) &&
			strings.Contains(out, query) {
			t.Fatalf("query %q in %q", query, out)
		}
	})
}
