package iam

import (
	"context"
	"encoding/json"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/policy"
)

// ExplainRequest is the body of POST /iam/explain: one action on one
// resource, for a described principal, an M2M client or a developer.
type ExplainRequest struct {
	Action    string `json:"action"`
	Resource  string `json:"resource"`
	Principal *struct {
		RoleIDs      []string        `json:"roleIds"`
		AccessPolicy json.RawMessage `json:"accessPolicy"`
	} `json:"principal"`
	M2MID       string `json:"m2mId"`
	DeveloperID string `json:"developerId"`
}

// Explain answers whether the principal may act and which rule decided.
func (s *Service) Explain(ctx context.Context, projectID string, in ExplainRequest) (policy.Explanation, error) {
	if in.Action == "" || in.Resource == "" {
		return policy.Explanation{}, fault.Invalid("action and resource are required")
	}
	var set *policy.Set
	var err error
	switch {
	case in.Principal != nil:
		pol, _, perr := parsePolicy(in.Principal.AccessPolicy)
		if perr != nil {
			return policy.Explanation{}, perr
		}
		if _, err := checkRoles(ctx, s.store, projectID, in.Principal.RoleIDs); err != nil {
			return policy.Explanation{}, err
		}
		set, err = s.compile(ctx, projectID, pol, in.Principal.RoleIDs)
	case in.M2MID != "":
		set, err = s.PolicySet(ctx, auth.Principal{ProjectID: projectID, Kind: auth.KindM2M, ID: in.M2MID})
	case in.DeveloperID != "":
		set, err = s.PolicySet(ctx, auth.Principal{ProjectID: projectID, Kind: auth.KindDeveloper, ID: in.DeveloperID})
	default:
		return policy.Explanation{}, fault.Invalid("one of principal, m2mId or developerId is required")
	}
	if err != nil {
		return policy.Explanation{}, err
	}
	return set.Explain(in.Action, in.Resource), nil
}
