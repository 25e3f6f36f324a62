package iam

import (
	"errors"
	"testing"

	"github.com/wardhealth/ward/internal/fault"
)

func TestMergeProviders(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		name, stored string
		in           map[string]*string
		want         string
		invalid      bool
	}{
		{"set", "{}", map[string]*string{"sms": s("twilio")}, `{"sms":"twilio"}`, false},
		{"empty stored", "", map[string]*string{"sms": s("local")}, `{"sms":"local"}`, false},
		{"null resets", `{"sms":"twilio"}`, map[string]*string{"sms": nil}, `{}`, false},
		{"unknown provider", "{}", map[string]*string{"sms": s("pigeon")}, "", true},
		{"unknown service", "{}", map[string]*string{"pager": s("local")}, "", true},
		{"unknown service reset", "{}", map[string]*string{"pager": nil}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mergeProviders(tc.stored, tc.in)
			if tc.invalid {
				if !errors.Is(err, fault.ErrInvalid) {
					t.Fatalf("err %v, want invalid", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
