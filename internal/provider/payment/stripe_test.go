package payment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
