package server

import "testing"

func TestLogPathRedactsCredentials(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/oauth/reset/VMdzGIP7saOD9yOOdUzZg7jz55dm0immvrTO0iF7J6M", "/oauth/reset/REDACTED"},
		{"/user-invite/abc", "/user-invite/REDACTED"},
		{"/invite/abc/../x", "/invite/REDACTED"},
		{"/oauth/reset/", "/oauth/reset/"},
		{"/oauth/authorize", "/oauth/authorize"},
		{"/fhir/Patient/1", "/fhir/Patient/1"},
		{"/v1/user/1/reset-password-link", "/v1/user/1/reset-password-link"},
	} {
		if got := logPath(c.in); got != c.want {
			t.Errorf("logPath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
