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
		{"payment", "stripe", ""},
		{"payment", "twilio", `no provider "twilio"`},
		{"fax", "local", `no service "fax"`},
	} {
		err := Valid(tc.service, tc.name)
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Valid(%q, %q) = %v, want %q", tc.service, tc.name, err, tc.err)
		}
	}
}
