package oauth

import (
	"strings"
	"testing"
)

func TestPageCSP(t *testing.T) {
	for _, c := range []struct{ redirect, formAction string }{
		{"", "form-action 'none';"},
		{"http://127.0.0.1:9/callback", "form-action 'self' http://127.0.0.1:9;"},
		{"https://App.example/cb?x=1", "form-action 'self' https://App.example;"},
		{"com.example.app:/oauth", "form-action 'self' com.example.app:;"},
		{"http://[::1]:8080/cb", "form-action 'self' http://[::1]:8080;"},
		// Nothing from a URI may widen or end the policy.
		{"https://a.example;script-src *", "form-action 'self';"},
		{"https://a.example%20*/cb", "form-action 'self';"},
		{"java script:x", "form-action 'self';"},
	} {
		got := pageCSP(c.redirect)
		if !strings.Contains(got, c.formAction) || !strings.HasPrefix(got, "default-src 'none'; style-src 'self';") ||
			!strings.Contains(got, "frame-ancestors 'none'") {
			t.Errorf("pageCSP(%q) = %q, want %q", c.redirect, got, c.formAction)
		}
	}
}

func TestDescribePatient(t *testing.T) {
	for _, c := range []struct {
		name, content string
		want          patientChoice
	}{
		{"name, birth date, identifier", `{"name":[{"given":["Ada","May"],"family":"Lovelace"}],"birthDate":"1815-12-10",
			"identifier":[{"value":""},{"type":{"coding":[{"code":"MR"}]},"value":"123"}]}`,
			patientChoice{"p1", "Ada May Lovelace", "Born 10 December 1815 · MR 123"}},
		{"text name, partial date, typed identifier", `{"name":[{"text":"Bob Smith"}],"birthDate":"1970","identifier":[{"type":{"text":"NHS number"},"value":"9"}]}`,
			patientChoice{"p1", "Bob Smith", "Born 1970 · NHS number 9"}},
		{"nothing but the id", `{}`, patientChoice{"p1", "Unnamed patient", "Record p1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := describePatient("p1", []byte(c.content)); got != c.want {
				t.Errorf("describePatient = %+v, want %+v", got, c.want)
			}
		})
	}
}
