package server

import "strings"

// credentialPaths are the routes whose last segment is a one-time
// credential (invitation and password reset links): never logged.
var credentialPaths = []string{"/invite/", "/user-invite/", "/oauth/reset/"}

// logPath is a request path as logs may show it: a credential in it is
// replaced by "REDACTED".
func logPath(p string) string {
	for _, prefix := range credentialPaths {
		if rest, ok := strings.CutPrefix(p, prefix); ok && rest != "" {
			return prefix + "REDACTED"
		}
	}
	return p
}
