package auth

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// UnverifiedIssuer reads the iss claim of a JWT without verifying it (only
// to route the token); ok is false for anything that is not a JWT.
func UnverifiedIssuer(token string) (iss string, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[1]) > 16<<10 {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", false
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return "", false
	}
	return c.Iss, true
}
