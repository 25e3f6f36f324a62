package policy

import (
	"strings"
	"testing"
)

// TestExplainOrigin: Explain says where a name beyond the seed comes from,
// and nothing of the kind for a seed action or its alias.
func TestExplainOrigin(t *testing.T) {
	s := Compile(inline(allow(res("Lab:*", "RCM:*", "eRx:*", "FHIR:Patient"), "*")))
	tests := []struct{ action, resource, want string }{
		{"Lab:SubmitOrder", "Lab:Order:*", "IAM action Lab:SubmitOrder is not in Oystehr's published action table (seed 002); it comes from @oystehr/sdk 4.2.6 lab.orderSubmit"},
		{"eRx:GetMedicationHistory", "eRx:Patient:p1", "it comes from Oystehr's documentation, https://docs.oystehr.com/oystehr/services/erx/medication-history"},
		{"RCM:GetPayer", "RCM:Payer:x", "it comes from the access policies Ottehr deploys to Oystehr (masslight/ottehr config/oystehr-core/roles.json)"},
		{"FHIR:Read", "FHIR:Patient:p1", ""},
		{"App:CreateM2MClient", "IAM:M2MClient:*", ""},
	}
	for _, tt := range tests {
		e := s.Explain(tt.action, tt.resource)
		joined := strings.Join(e.Warnings, "\n")
		switch {
		case tt.want == "" && strings.Contains(joined, "published action table"):
			t.Errorf("%s: warnings %q name an origin", tt.action, e.Warnings)
		case tt.want != "" && !strings.Contains(joined, tt.want):
			t.Errorf("%s: warnings %q, want one containing %q", tt.action, e.Warnings, tt.want)
		}
	}
	// The origin note does not hide why a request is denied.
	e := Compile(inline(allow(res("FHIR:Patient"), "FHIR:Read"))).Explain("Telemed:EndMeeting", "Telemed:Meeting:*")
	if e.Allowed || len(e.Warnings) != 2 || !strings.Contains(e.Warnings[1], "no Allow rule grants Telemed:EndMeeting") {
		t.Errorf("denied extension: %+v", e)
	}
}
