package server

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/policy"
	"github.com/wardhealth/ward/internal/provider/payment"
)

// TestPaymentRoutesNameTheirActions: every payment route but Stripe's
// webhook names a seed Payment action on the resource type the seed gives
// it (PaymentMethod or Charge).
func TestPaymentRoutesNameTheirActions(t *testing.T) {
	s := &Server{payment: &payment.Service{}}
	req := httptest.NewRequest("POST", "/v1/payment/charge/issue", nil)
	public := 0
	for _, rt := range s.paymentRoutes() {
		if rt.public {
			public++
			if !strings.HasPrefix(rt.path, "/v1/payment/stripe/webhook/") {
				t.Errorf("%s %s is public", rt.method, rt.path)
			}
			continue
		}
		a, ok := policy.LookupAction(rt.action)
		if !ok || a.Service != "Payment" || a.Source != policy.SeedSource {
			t.Errorf("%s %s: action %q is not a seed Payment action", rt.method, rt.path, rt.action)
			continue
		}
		if res := rt.resource(req); res != "Payment:"+a.ResourceType {
			t.Errorf("%s %s: resource %q, want Payment:%s", rt.method, rt.path, res, a.ResourceType)
		}
	}
	if public != 1 {
		t.Errorf("%d public payment routes, want the webhook only", public)
	}
	if len((&Server{}).paymentRoutes()) != 0 {
		t.Error("payment routes without the payment service")
	}
}
