package server

import (
	"net/http/httptest"
	"testing"

	"github.com/wardhealth/ward/internal/policy"
	"github.com/wardhealth/ward/internal/provider/clearinghouse"
)

// The rcm routes use the catalog's RCM actions on resources of the
// actions' types (the SDK's documented pairs).
func TestRCMRoutesNameTheirActions(t *testing.T) {
	s := &Server{rcm: &clearinghouse.RCM{}}
	want := map[string]struct{ action, resource string }{
		"POST /v1/rcm/eligibility-check":           {"RCM:CheckInsuranceEligibility", "RCM:InsuranceEligibility"},
		"POST /v1/rcm/professional-claim/validate": {"RCM:ValidateProfessionalClaim", "RCM:Claim"},
		"POST /v1/rcm/professional-claim/submit":   {"RCM:SubmitProfessionalClaim", "RCM:Claim"},
		"GET /v1/rcm/payer":                        {"RCM:SearchPayer", "RCM:Payer:*"},
		"POST /v1/rcm/era":                         {"RCM:ProcessEra", "RCM:Era"},
		"GET /v1/rcm/payer/{id}":                   {"RCM:GetPayer", "RCM:Payer:p1"},
	}
	req := httptest.NewRequest("GET", "/v1/rcm/payer/p1", nil)
	req.SetPathValue("id", "p1")
	routes := s.rcmRoutes()
	if len(routes) != len(want) {
		t.Fatalf("%d routes, want %d", len(routes), len(want))
	}
	for _, rt := range routes {
		w, ok := want[rt.method+" "+rt.path]
		if !ok || rt.public || rt.action != w.action || rt.resource(req) != w.resource {
			t.Errorf("%s %s: %q on %q (public %v)", rt.method, rt.path, rt.action, rt.resource(req), rt.public)
		}
		if a, ok := policy.LookupAction(rt.action); !ok || "RCM:"+a.ResourceType != w.resource[:len("RCM:")+len(a.ResourceType)] {
			t.Errorf("%s: not a catalog action on its resource type", rt.action)
		}
	}
	if (&Server{}).rcmRoutes() != nil {
		t.Error("routes without the service")
	}
}
