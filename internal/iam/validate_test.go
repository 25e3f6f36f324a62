package iam_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
)

// ValidatePolicy is the check creating a role runs: the console's editor
// shows its message as the API would.
func TestValidatePolicy(t *testing.T) {
	for _, tc := range []struct {
		name, policy, want string // want: a part of the message, "" for valid
	}{
		{"valid", `{"rule":[{"resource":["FHIR:Patient"],"action":["FHIR:Read"],"effect":"Allow"}]}`, ""},
		{"empty", ``, "accessPolicy is required"},
		{"not JSON", `{"rule": [`, "accessPolicy: invalid JSON"},
		{"unknown action names its rule", `{"rule":[{"resource":["*"],"action":["FHIR:Read"],"effect":"Allow"},{"resource":["*"],"action":["FHIR:Nope"],"effect":"Allow"}]}`, "rule[1].action[0]"},
		{"bad effect", `{"rule":[{"resource":["*"],"action":["FHIR:Read"],"effect":"Maybe"}]}`, "rule[0].effect"},
		{"not an object", `"allow everything"`, "accessPolicy:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := iam.ValidatePolicy(json.RawMessage(tc.policy))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid policy refused: %v", err)
				}
				return
			}
			if !errors.Is(err, fault.ErrInvalid) {
				t.Fatalf("err = %v, want an Invalid fault", err)
			}
			if _, msg := fault.Public(err); !strings.Contains(msg, tc.want) {
				t.Errorf("message %q lacks %q", msg, tc.want)
			}
		})
	}
}
