package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/iam/iamtest"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// fixture is a project on a fresh SQLite store, its admin principal, and
// the IAM service FHIR services over it are built with.
type fixture struct {
	st    *store.Store
	authz *iam.Service
	admin auth.Principal
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	return newFixtureOn(t, storetest.Backends()[0])
}

// newFixtureOn is newFixture on the database b.
func newFixtureOn(t *testing.T, b storetest.Backend) fixture {
	t.Helper()
	st := storetest.Open(t, b)
	authz := iam.New(st, "http://x/invite/", time.Now, iam.Deps{})
	return fixture{st: st, authz: authz, admin: iamtest.Project(t, authz, st, "test")}
}

// service is a FHIR service with the subscription machinery on pol:
// quick retries, two attempts.
func (f fixture) service(pol *egress.Policy) (*fhir.Service, *Service) {
	fs := fhir.New(f.st, f.authz, fhir.Config{}, time.Now)
	return fs, New(Config{MaxAttempts: 2, RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, Timeout: 2 * time.Second, Poll: 10 * time.Millisecond},
		fs, nil, pol, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func subscriptionJSON(endpoint string) []byte {
	b, _ := json.Marshal(map[string]any{"resourceType": "Subscription", "status": "requested", "reason": "test", "criteria": "Patient?family=Egress",
		"channel": map[string]any{"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json"}})
	return b
}

func mustPolicy(t *testing.T, cfg egress.Config) *egress.Policy {
	t.Helper()
	p, err := egress.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEndpointRefusedOnWrite: creating, updating or patching a
// Subscription onto a refused address is a 400 naming the rule.
func TestEndpointRefusedOnWrite(t *testing.T) {
	f := newFixture(t)
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	protected := mustPolicy(t, egress.Config{Allow: loopback, Protect: []string{"127.0.0.1:5432"}})
	for _, tc := range []struct {
		name     string
		policy   *egress.Policy
		endpoint string
		want     string // "" = accepted
	}{
		{"loopback", nil, "http://127.0.0.1:9/hook", "127.0.0.1:9 is a loopback address (refused by the egress policy; open it with --egress-allow 127.0.0.1/32)"},
		{"metadata", nil, "http://169.254.169.254/latest/meta-data/", "169.254.169.254:80 is the cloud metadata address"},
		{"private", nil, "http://10.0.0.1/", "10.0.0.1:80 is a private address"},
		{"IPv6 loopback", nil, "http://[::1]/", "[::1]:80 is a loopback address"},
		{"IPv4-mapped loopback", nil, "https://[::ffff:127.0.0.1]/", "[::ffff:127.0.0.1]:443 is a loopback address"},
		{"a name for loopback", nil, "http://localhost:9/", "localhost (127.0.0.1:9) is a loopback address"},
		{"public", nil, "https://203.0.113.9/hook", ""},
		{"unresolvable now", nil, "https://hooks.invalid/x", ""},
		{"zambda", nil, LambdaPrefix + "some-zambda", ""},
		{"allowed", protected, "http://127.0.0.1:9/hook", ""},
		{"allowed but Ward's database", protected, "http://127.0.0.1:5432/", "127.0.0.1:5432 is one of Ward's own service addresses (its database or debug server) (always refused)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, _ := f.service(tc.policy)
			r, _, err := fs.Create(t.Context(), f.admin, "Subscription", subscriptionJSON(tc.endpoint), "")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("create: %v", err)
				}
				return
			}
			if !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), "Subscription.channel.endpoint "+tc.endpoint+" is refused: "+tc.want) {
				t.Fatalf("create: %v (%+v), want a 400 with %q", err, r, tc.want)
			}
		})
	}
	// An existing subscription cannot be moved onto a refused address.
	fs, _ := f.service(nil)
	r, _, err := fs.Create(t.Context(), f.admin, "Subscription", subscriptionJSON("https://203.0.113.9/hook"), "")
	if err != nil {
		t.Fatal(err)
	}
	var moved map[string]any
	_ = json.Unmarshal(subscriptionJSON("http://10.1.2.3/"), &moved)
	moved["id"] = r.ID
	body, _ := json.Marshal(moved)
	if _, _, err := fs.Update(t.Context(), f.admin, "Subscription", r.ID, body, ""); !errors.Is(err, fault.ErrInvalid) ||
		!strings.Contains(err.Error(), "a private address") {
		t.Errorf("update onto a private address: %v", err)
	}
	patch := `[{"op":"replace","path":"/channel/endpoint","value":"http://169.254.169.254/"}]`
	if _, err := fs.Patch(t.Context(), f.admin, "Subscription", r.ID, []byte(patch), ""); !errors.Is(err, fault.ErrInvalid) ||
		!strings.Contains(err.Error(), "cloud metadata") {
		t.Errorf("patch onto the metadata address: %v", err)
	}
}

// TestDeliveryRefused: a subscription written while its address was
// allowed, delivered by a server whose policy refuses it, is never sent:
// each attempt is a failure naming the rule, retried, and then given up
// like any other.
func TestDeliveryRefused(t *testing.T) {
	f := newFixture(t)
	var hits atomic.Int32
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer rc.Close()
	allowing, _ := f.service(mustPolicy(t, egress.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}))
	sub, _, err := allowing.Create(t.Context(), f.admin, "Subscription", subscriptionJSON(rc.URL), "")
	if err != nil {
		t.Fatal(err)
	}
	fs, svc := f.service(nil) // the default policy: loopback refused
	if _, _, err := fs.Create(t.Context(), f.admin, "Patient", []byte(`{"resourceType":"Patient","name":[{"family":"Egress"}]}`), ""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var ds []store.Delivery
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ds, err = f.st.Deliveries(t.Context(), f.admin.ProjectID, sub.ID, 10); err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Status == "failed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refused delivery was not given up: %+v", ds)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
	}
	attempts, err := f.st.Attempts(t.Context(), []int64{ds[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	want := "POST " + rc.URL + ": egress: " + strings.TrimPrefix(rc.URL, "http://") + " is a loopback address (refused by the egress policy"
	if got := attempts[ds[0].ID]; len(got) != 2 || !strings.HasPrefix(got[0].Error, want) || !strings.HasPrefix(got[1].Error, want) {
		t.Fatalf("attempts = %+v, want two starting %q", got, want)
	}
	if hits.Load() != 0 {
		t.Fatal("the refused receiver was reached")
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		r, err := fs.Read(t.Context(), f.admin, "Subscription", sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(r.Content, &m)
		if m["status"] == "error" {
			if !strings.Contains(str(m, "error"), "is a loopback address") {
				t.Fatalf("Subscription.error = %q, want the rule", str(m, "error"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscription did not go to error: %v", m["status"])
		}
		time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
	}
}
