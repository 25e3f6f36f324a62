package policy

import (
	"strings"
	"testing"
)

// TestOttehrGrants: the grants that Oystehr accepts and Ward refused (issue
// 25: six of Ottehr's nine roles and its zambda M2M client), as Ottehr
// writes them and at each action's minimum scope.
func TestOttehrGrants(t *testing.T) {
	tests := []struct{ action, resource string }{
		{"Terminology:SearchCodes", "Terminology:Code:*"},
		{"Fax:Send", "Fax:Fax:*"},
		{"Lab:*", "Lab:*"},
		{"RCM:SearchPayer", "RCM:Payer"},
		{"RCM:GetPayer", "RCM:Payer"},
		{"RCM:ProcessEra", "RCM:Era"},
		{"Telemed:EndMeeting", "Telemed:Meeting:*"},
		{"eRx:SearchAllergen", "eRx:Allergen"},
		{"eRx:GetMedication", "eRx:Medication"},
		{"eRx:GetConfiguration", "eRx:Configuration"},
		{"eRx:Check", "eRx:Interaction"},
		{"eRx:Delete", "eRx:Enrollment"},
		{"eRx:GetMedicationHistory", "eRx:Patient"},
		{"eRx:GetPharmacy", "eRx:Pharmacy"},
		{"eRx:SearchPharmacy", "eRx:Pharmacy"},
	}
	var all []Rule
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			rule := allow(res(tt.resource), tt.action)
			all = append(all, rule)
			if _, err := Validate(Document{Rule: []Rule{rule}}); err != nil {
				t.Fatalf("%s on %s rejected: %v", tt.action, tt.resource, err)
			}
			act, ok := LookupAction(tt.action)
			if !ok {
				return // a service wildcard
			}
			min := resourceAtMinScope(act, act.ResourceType)
			doc := Document{Rule: []Rule{allow(res(min), tt.action)}}
			if _, err := Validate(doc); err != nil {
				t.Fatalf("%s on %s (minimum scope) rejected: %v", tt.action, min, err)
			}
			if d := Compile(Source{Kind: "inline", Doc: doc}).Decide(tt.action, min); !d.Allowed {
				t.Errorf("Decide(%s, %s) denied under its own grant", tt.action, min)
			}
		})
	}
	if _, err := Validate(Document{Rule: all}); err != nil {
		t.Errorf("the grants together rejected: %v", err)
	}
}

// TestTyposRefused: near misses of the new names are refused with the same
// clear messages as before.
func TestTyposRefused(t *testing.T) {
	tests := []struct{ action, resource, want string }{
		{"FHIR:Teleport", "FHIR:Patient:*", `unknown action "FHIR:Teleport": FHIR actions are Create, Read`},
		{"Telemed:EndMeetings", "Telemed:Meeting:*", `unknown action "Telemed:EndMeetings": Telemed actions are`},
		{"Lab:SubmitOrders", "Lab:Order", `unknown action "Lab:SubmitOrders"`},
		{"eRx:getPharmacy", "eRx:Pharmacy", `did you mean "eRx:GetPharmacy"`},
		{"RCM:ProcessERA", "RCM:Era", `did you mean "RCM:ProcessEra"`},
		{"fax:Send", "Fax:Fax", `did you mean "Fax:Send"`},
		{"Terminolgy:SearchCodes", "*", `unknown service "Terminolgy"`},
		{"Fax:Send", "Fax:Fax:f1", "minimum scope *"},
		{"Lab:SubmitOrder", "Lab:Route:*", "applies to Lab:Order resources"},
		{"eRx:Check", "eRx:Interactions", `unknown eRx type "Interactions"`},
		{"Telemed:EndMeeting", "Telemed:Meeting:m1", "minimum scope *"},
	}
	for _, tt := range tests {
		_, err := Validate(Document{Rule: []Rule{allow(res(tt.resource), tt.action)}})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s on %s: error %v, want one containing %q", tt.action, tt.resource, err, tt.want)
		}
	}
}
