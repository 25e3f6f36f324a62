package sms

import (
	"context"
	"regexp"
	"testing"

	"github.com/wardhealth/ward/internal/provider"
)

// TestInfo: which provider a project's settings and secrets select, as
// messaging.getMessagingConfig reports it.
func TestInfo(t *testing.T) {
	full := map[string]string{SecretAccountSID: "AC1", SecretAuthToken: "tok", SecretFrom: "+15550001111"}
	viaService := map[string]string{SecretAccountSID: "AC1", SecretAuthToken: "tok", SecretService: "MG1"}
	for _, tc := range []struct {
		name    string
		choices map[string]string
		secrets map[string]string
		want    provider.Info
	}{
		{"default is local", nil, nil, provider.Info{Provider: "local", Configured: true}},
		{"local named", map[string]string{"sms": "local"}, full, provider.Info{Provider: "local", Configured: true}},
		{"other services do not matter", map[string]string{"telemed": "livekit"}, nil, provider.Info{Provider: "local", Configured: true}},
		{"twilio without secrets", map[string]string{"sms": "twilio"}, nil, provider.Info{Provider: "twilio"}},
		{"twilio without a sender", map[string]string{"sms": "twilio"}, map[string]string{SecretAccountSID: "AC1", SecretAuthToken: "tok"}, provider.Info{Provider: "twilio"}},
		{"twilio", map[string]string{"sms": "twilio"}, full, provider.Info{Provider: "twilio", Configured: true, PhoneNumber: "+15550001111"}},
		{"twilio messaging service", map[string]string{"sms": "twilio"}, viaService, provider.Info{Provider: "twilio", Configured: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{PublicURL: "https://ward.example/"}, Deps{
				Providers: func(context.Context, string) (map[string]string, error) { return tc.choices, nil },
				Secret: func(_ context.Context, _, name string) (string, bool, error) {
					v, ok := tc.secrets[name]
					return v, ok, nil
				},
			})
			got, err := s.Info(t.Context(), "p1")
			if err != nil || got != tc.want {
				t.Fatalf("Info = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

func FuzzMobileNumber(f *testing.F) {
	f.Add([]byte(`{"telecom":[{"system":"phone","use":"mobile","value":"+1 (555) 123-4567"}]}`))
	f.Add([]byte(`{"telecom":[{"system":"sms","value":"5551234567"}]}`))
	f.Add([]byte(`{"telecom":"x"}`))
	f.Fuzz(func(t *testing.T, content []byte) {
		n, err := MobileNumber(content)
		if err == nil && !e164.MatchString(n) {
			t.Fatalf("%q gave %q, not E.164", content, n)
		}
	})
}
