package clearinghouse

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/rcm"
	"github.com/wardhealth/ward/internal/x12"
)

// ERAResult is what processing an 835 did: a ClaimResponse per claim paid
// that the project has, and the CLP01s it has no Claim for.
type ERAResult struct {
	ClaimResponses []string `json:"claimResponses"`
	Unmatched      []string `json:"unmatched"`
}

// ProcessERA reads an 835 remittance advice and records each claim
// payment as a ClaimResponse (as the caller) for the project's Claim whose
// identifier is the payment's CLP01 (the claim's CLM01), the most recently
// updated when several are.
func (s *RCM) ProcessERA(ctx context.Context, p auth.Principal, x835 string) (ERAResult, error) {
	ix, err := x12.Parse([]byte(x835))
	if err != nil {
		return ERAResult{}, fault.Invalid("x12: %v", err)
	}
	out := ERAResult{ClaimResponses: []string{}, Unmatched: []string{}}
	seen := false
	for _, set := range ix.Sets() {
		if set.Segments[0].E(1) != "835" {
			continue
		}
		seen = true
		remits, err := rcm.Read835(set.Segments)
		if err != nil {
			return out, fault.Invalid("%v", err)
		}
		for _, r := range remits {
			claim, ok, err := s.claimByControlNo(ctx, p, r.ControlNo)
			if err != nil {
				return out, err
			}
			if !ok {
				out.Unmatched = append(out.Unmatched, r.ControlNo)
				continue
			}
			cr := rcm.RemitClaimResponse(r, "Claim/"+claim.id, s.d.Now())
			cr["patient"], cr["insurer"] = claim.patient, claim.insurer
			body, err := json.Marshal(cr)
			if err != nil {
				return out, err
			}
			res, _, err := s.d.FHIR.Create(ctx, p, "ClaimResponse", body, "")
			if err != nil {
				return out, err
			}
			out.ClaimResponses = append(out.ClaimResponses, "ClaimResponse/"+res.ID)
		}
	}
	if !seen {
		return out, fault.Invalid("the interchange holds no 835 transaction set")
	}
	return out, nil
}

type claimRef struct {
	id               string
	patient, insurer map[string]any
}

// claimByControlNo finds the Claim an 835 pays, as the caller.
func (s *RCM) claimByControlNo(ctx context.Context, p auth.Principal, control string) (claimRef, bool, error) {
	if control == "" {
		return claimRef{}, false, nil
	}
	q, err := search.ParseQuery("Claim", url.Values{"identifier": {control}, "_sort": {"-_lastUpdated"}, "_count": {"1"}}, false)
	if err != nil {
		return claimRef{}, false, fault.Invalid("CLP01 %q: %v", control, err)
	}
	page, err := s.d.FHIR.Search(ctx, p, q)
	if err != nil || len(page.Matches) == 0 {
		return claimRef{}, false, err
	}
	r := page.Matches[0]
	m, err := readJSON(r.Content)
	if err != nil {
		return claimRef{}, false, err
	}
	// A contained patient or payer cannot be referenced from outside the
	// Claim: the response names it.
	named := func(key, what string) map[string]any {
		ref := refOf(m, key)
		if ref == "" || strings.HasPrefix(ref, "#") {
			return map[string]any{"display": what + " of Claim/" + r.ID}
		}
		return map[string]any{"reference": ref}
	}
	return claimRef{id: r.ID, patient: named("patient", "the patient"), insurer: named("insurer", "the payer")}, true, nil
}
