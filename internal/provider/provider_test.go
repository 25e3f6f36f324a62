package provider

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		service, name, err string
	}{
		{"sms", "local", ""},
		{"sms", "twilio", ""},
		{"sms", "Twilio", `no provider "Twilio"`},
		{"sms", "", `no provider ""`},
		{"erx", "local", ""},
		{"erx", "dosespot", `no provider "dosespot"`},
		{"fax", "local", ""},
		{"fax", "phaxio", ""},
		{"fax", "sinch", `no provider "sinch"`},
		{"pager", "local", `no service "pager"`},
		{"payment", "stripe", ""},
		{"payment", "twilio", `no provider "twilio"`},
	} {
		err := Valid(tc.service, tc.name)
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Valid(%q, %q) = %v, want %q", tc.service, tc.name, err, tc.err)
		}
	}
}
