package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
)

// errNoCustomer: the payor has no customer at this provider yet.
var errNoCustomer = errors.New("no payment customer")

// customerSystem is the Account identifier holding a provider's customer id.
func customerSystem(provider string) string { return TagSystem + ":customer:" + provider }

// accountID is the Account that records a beneficiary's payor and the
// payor's customer: one per (beneficiary, payor), at an id derived from
// both, so concurrent setups meet on one resource.
func accountID(py Payor) string {
	return "pay-" + idemKey("account", py.Beneficiary, py.Payor)[5:]
}

// customer returns the project's provider and the payor's customer there,
// creating it (and recording it on the Account, as the caller) when create
// is set. The caller must be able to read both patients. Errors:
// errNoCustomer (none and !create), NotFound, Forbidden, Invalid.
func (s *Service) customer(ctx context.Context, p auth.Principal, py Payor, create bool) (string, Provider, string, error) {
	py, err := py.normal()
	if err != nil {
		return "", nil, "", err
	}
	for _, id := range []string{py.Beneficiary, py.Payor} {
		if _, err := s.d.FHIR.Read(ctx, p, "Patient", id); err != nil {
			return "", nil, "", err
		}
	}
	name, prov, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return "", nil, "", err
	}
	id := accountID(py)
	for attempt := 0; attempt < 3; attempt++ {
		acct, err := s.d.FHIR.Read(ctx, p, "Account", id)
		exists := err == nil
		if err != nil && !errors.Is(err, fault.ErrNotFound) {
			return "", nil, "", err
		}
		m := map[string]any{}
		if exists {
			if err := json.Unmarshal(acct.Content, &m); err != nil {
				return "", nil, "", fmt.Errorf("account %s: %w", id, err)
			}
			if cust := identifier(m, customerSystem(name)); cust != "" {
				return name, prov, cust, nil
			}
		}
		if !create {
			return "", nil, "", errNoCustomer
		}
		// The key makes a retried creation (this loop, a concurrent setup)
		// the same customer at Stripe.
		cust, err := prov.Customer(ctx, idemKey("customer", p.ProjectID, name, py.Beneficiary, py.Payor), "Patient/"+py.Payor, "")
		if err != nil {
			return "", nil, "", s.providerErr(ctx, name, err)
		}
		ifMatch := ""
		if exists {
			ifMatch = `W/"` + strconv.FormatInt(acct.VersionID, 10) + `"`
		} else {
			m = map[string]any{"resourceType": "Account", "id": id, "status": "active", "name": "Payment account",
				"subject":   []any{map[string]any{"reference": "Patient/" + py.Beneficiary}},
				"guarantor": []any{map[string]any{"party": map[string]any{"reference": "Patient/" + py.Payor}}}}
		}
		addTag(m, name)
		idents, _ := m["identifier"].([]any)
		m["identifier"] = append(idents, map[string]any{"system": customerSystem(name), "value": cust})
		body, err := json.Marshal(m)
		if err != nil {
			return "", nil, "", err
		}
		_, _, err = s.d.FHIR.Update(ctx, p, "Account", id, body, ifMatch)
		if errors.Is(err, fault.ErrPrecondition) || errors.Is(err, fault.ErrConflict) {
			continue // another setup wrote it first: read theirs
		}
		if err != nil {
			return "", nil, "", err
		}
		return name, prov, cust, nil
	}
	return "", nil, "", fault.Conflict("Account/%s is being changed by other requests; try again", id)
}

func identifier(m map[string]any, system string) string {
	idents, _ := m["identifier"].([]any)
	for _, i := range idents {
		im, _ := i.(map[string]any)
		if im["system"] == system {
			v, _ := im["value"].(string)
			return v
		}
	}
	return ""
}

func addTag(m map[string]any, code string) {
	meta, _ := m["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		m["meta"] = meta
	}
	tags, _ := meta["tag"].([]any)
	for _, t := range tags {
		if tm, _ := t.(map[string]any); tm["system"] == TagSystem && tm["code"] == code {
			return
		}
	}
	meta["tag"] = append(tags, map[string]any{"system": TagSystem, "code": code})
}

// ref splits "Type/id".
func ref(v any) (string, string) {
	m, _ := v.(map[string]any)
	r, _ := m["reference"].(string)
	typ, id, _ := strings.Cut(r, "/")
	return typ, id
}
