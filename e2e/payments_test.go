package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// stripeMock builds (testdata/stripemock/build.sh) and starts stripe-mock
// on loopback, and returns its base URL. stripe-mock checks each request
// against Stripe's OpenAPI spec and answers with fixtures; it keeps no
// state (a customer's default card is never remembered, a PaymentIntent
// is never the same twice), which the assertions allow for.
func stripeMock(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", "testdata/stripemock/build.sh")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("build stripe-mock: %v\n%s", err, stderr.String())
		}
		t.Skipf("cannot build stripe-mock (not CI, so skipping): %v\n%s", err, stderr.String())
	}
	addr := freeAddr(t)
	sm := exec.Command(strings.TrimSpace(stdout.String()), "-http-addr", addr, "-https-addr", freeAddr(t))
	var logs syncBuffer
	sm.Stdout, sm.Stderr = &logs, &logs
	if err := sm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sm.Process.Kill(); _ = sm.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stripe-mock did not listen on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "http://" + addr
}

// stripeCounter sits between Ward and stripe-mock and records every
// PaymentIntent creation with its Idempotency-Key (stripe-mock cannot
// tell how many it made). GET /_intents lists the keys.
type stripeCounter struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []string
	refunds []string // Idempotency-Keys of POST /v1/refunds
}

func newStripeCounter(t *testing.T, target string) *stripeCounter {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	sc := &stripeCounter{}
	sc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/_intents" {
			sc.mu.Lock()
			defer sc.mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": append([]string{}, sc.keys...)})
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/_refunds" {
			sc.mu.Lock()
			defer sc.mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": append([]string{}, sc.refunds...)})
			return
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer sk_test_") {
			t.Errorf("stripe request %s %s without the project's secret key", r.Method, r.URL.Path)
		}
		if r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents" {
			sc.mu.Lock()
			sc.keys = append(sc.keys, r.Header.Get("Idempotency-Key"))
			sc.mu.Unlock()
		}
		if r.Method == http.MethodPost && r.URL.Path == "/v1/refunds" {
			sc.mu.Lock()
			sc.refunds = append(sc.refunds, r.Header.Get("Idempotency-Key"))
			sc.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(sc.srv.Close)
	return sc
}

// TestPaymentsWithSDK runs e2e/payments.test.mjs: the real @oystehr/sdk's
// paymentMethod and charge services against a real `ward serve`, first on
// the local provider, then on Stripe (a real stripe-mock, reached through
// the egress policy), with retried and concurrent charges, signed and
// forged webhooks, authorization and a second project.
func TestPaymentsWithSDK(t *testing.T) {
	mock := stripeMock(t)
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			sc := newStripeCounter(t, mock)
			w := startWardWith(t, b, "--egress-allow", "127.0.0.1/32", "--stripe-api-url", sc.srv.URL)
			other := w.createProject(t, "other")
			nodeTest(t, "payments.test.mjs", map[string]string{
				"WARD_URL":               w.URL,
				"WARD_ADMIN_CREDENTIALS": filepath.Join(w.DataDir, "admin-credentials.json"),
				"WARD_B_CLIENT_ID":       other.ClientID,
				"WARD_B_CLIENT_SECRET":   other.ClientSecret,
				"STRIPE_COUNTER":         sc.srv.URL,
			})
			sc.mu.Lock()
			defer sc.mu.Unlock()
			// Three Stripe encounters were charged (one of them five times
			// over, one on its Invoice): three PaymentIntents, three keys;
			// one refund (asked twice, and once for too much).
			if len(sc.keys) != 3 || sc.keys[0] == sc.keys[1] || sc.keys[1] == sc.keys[2] || !strings.HasPrefix(sc.keys[0], "ward-") {
				t.Fatalf("PaymentIntent creations with keys %q, want three distinct ward- keys", sc.keys)
			}
			if len(sc.refunds) != 1 || !strings.HasPrefix(sc.refunds[0], "ward-") {
				t.Fatalf("Refund creations with keys %q, want one with a ward- key", sc.refunds)
			}
		})
	}
}
