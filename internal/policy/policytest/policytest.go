// Package policytest has stand-ins for IAM in other packages' tests.
package policytest

import (
	"context"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/policy"
)

// AllowAll allows every action to everyone: for tests of a service whose
// endpoints' policies are tested through the server.
type AllowAll struct{}

// Authorize allows.
func (AllowAll) Authorize(context.Context, auth.Principal, string, string) (policy.Decision, error) {
	return policy.Decision{Allowed: true}, nil
}

// PolicySet is the empty set (no conditions, nothing hidden).
func (AllowAll) PolicySet(context.Context, auth.Principal) (*policy.Set, error) {
	return policy.Compile(), nil
}
