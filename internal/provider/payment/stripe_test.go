package payment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestStripeErrors: how Stripe's answers become Ward's, and that the
// secret key never appears in one (stripe-mock, for one, echoes it).
func TestStripeErrors(t *testing.T) {
	const key = "sk_test_SuperSecret123"
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		refused bool
		want    string
	}{
		{"bad key", 401, `{"error":{"type":"invalid_request_error","message":"Authorization was 'Bearer ` + key + `'"}}`, true, "Stripe refused the project's STRIPE_SECRET_KEY"},
		{"no such customer", 404, `{"error":{"type":"invalid_request_error","message":"No such customer: 'cus_x'"}}`, true, "No such customer"},
		{"echoed key in a 400", 400, `{"error":{"type":"invalid_request_error","message":"bad ` + key + `"}}`, true, "[the secret key]"},
		{"server error", 500, `{"error":{"type":"api_error","message":"boom"}}`, false, "boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Idempotency-Key") != "k1" {
					t.Errorf("Idempotency-Key = %q", r.Header.Get("Idempotency-Key"))
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			s := NewStripe(srv.URL, key, srv.Client())
			_, err := s.Customer(context.Background(), "k1", "Patient/p", "")
			if err == nil || errors.Is(err, ErrRefused) != tc.refused || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want refused=%v containing %q", err, tc.refused, tc.want)
			}
			if strings.Contains(err.Error(), key) {
				t.Fatalf("the key is in the error: %v", err)
			}
		})
	}
}

// TestStripeDecline: a card Stripe declines (402 card_error, which
// stripe-mock never answers) is a failed charge: a 400 saying so, the
// PaymentReconciliation in error naming the PaymentIntent, and a retry of
// the same request answers the same without a second PaymentIntent.
func TestStripeDecline(t *testing.T) {
	r := newRig(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN})
	var mu sync.Mutex
	intents := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch req.Method + " " + req.URL.Path {
		case "POST /v1/customers":
			fmt.Fprint(w, `{"id":"cus_1","object":"customer"}`)
		case "POST /v1/setup_intents":
			fmt.Fprint(w, `{"id":"seti_1","object":"setup_intent","client_secret":"seti_1_secret_x"}`)
		case "GET /v1/customers/cus_1":
			fmt.Fprint(w, `{"id":"cus_1","object":"customer","invoice_settings":{"default_payment_method":"pm_1"}}`)
		case "GET /v1/payment_methods":
			fmt.Fprint(w, `{"object":"list","url":"/v1/payment_methods","has_more":false,"data":[{"id":"pm_1","object":"payment_method","type":"card","card":{"brand":"visa","last4":"0002","exp_month":1,"exp_year":2030}}]}`)
		case "POST /v1/payment_intents":
			mu.Lock()
			intents++
			mu.Unlock()
			w.WriteHeader(http.StatusPaymentRequired)
			fmt.Fprint(w, `{"error":{"type":"card_error","code":"card_declined","message":"Your card was declined.","payment_intent":{"id":"pi_declined","object":"payment_intent","status":"requires_payment_method"}}}`)
		default:
			t.Errorf("unexpected %s %s", req.Method, req.URL.Path)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	r.svc.cfg.StripeURL, r.svc.d.HTTP = srv.URL, srv.Client()
	r.chosen["payment"], r.secrets[SecretStripeKey] = "stripe", "sk_test_Decline123"
	ctx := context.Background()
	pat, enc := r.visit(t, [3]any{30, "EUR", "billable"})
	secret, err := r.svc.Setup(ctx, r.p, Payor{Beneficiary: pat})
	if err != nil || secret != "seti_1_secret_x" {
		t.Fatalf("setup = %q, %v", secret, err)
	}
	for range 2 {
		if err := r.svc.Issue(ctx, r.p, enc); !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), "declined") {
			t.Fatalf("issue = %v, want a 400 saying declined", err)
		}
	}
	mu.Lock()
	n := intents
	mu.Unlock()
	if n != 1 {
		t.Fatalf("%d PaymentIntents, want 1", n)
	}
	d, err := r.svc.Status(ctx, r.p, enc)
	if err != nil || d.Status != StatusFailed || d.Card.LastFour != "0002" || d.Currency != "eur" || d.Amount != 30 {
		t.Fatalf("status = %+v, %v", d, err)
	}
	res, err := r.fhir.Read(ctx, r.p, "PaymentReconciliation", d.ChargeUUID)
	if err != nil || !strings.Contains(string(res.Content), `"outcome":"error"`) || !strings.Contains(string(res.Content), "pi_declined") ||
		!strings.Contains(string(res.Content), "Your card was declined.") {
		t.Fatalf("PaymentReconciliation = %s, %v", res.Content, err)
	}
}
