package clearinghouse

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/rcm"
)

// A payer is an Organization of type "pay" (organization-type); its payer
// id is its identifier of type NIIP (v2-0203), or its first identifier.
const (
	SystemOrgType = "http://terminology.hl7.org/CodeSystem/organization-type"
	payerType     = SystemOrgType + "|pay"
)

// Payer reads one payer (as the caller): an Organization that is not a
// payer is not found.
func (s *RCM) Payer(ctx context.Context, p auth.Principal, id string) ([]byte, error) {
	r, err := s.d.FHIR.Read(ctx, p, "Organization", id)
	if err != nil {
		return nil, err
	}
	if !isPayer(r.Content) {
		return nil, fault.NotFound("no payer Organization/%s", id)
	}
	return r.Content, nil
}

// PayerQuery is listPayers' filter: name (contains), payerId, page.
type PayerQuery struct {
	Name, PayerID string
	Count, Offset int
}

// Payers searches the project's payers (as the caller) and returns a FHIR
// searchset Bundle of Organizations.
func (s *RCM) Payers(ctx context.Context, p auth.Principal, pq PayerQuery) ([]byte, error) {
	v := url.Values{"type": {payerType}, "_total": {"accurate"}, "_sort": {"name"}}
	if pq.Name != "" {
		v.Set("name:contains", pq.Name)
	}
	if pq.PayerID != "" {
		v.Set("identifier", pq.PayerID)
	}
	if pq.Count <= 0 || pq.Count > 100 {
		pq.Count = 20
	}
	v.Set("_count", strconv.Itoa(pq.Count))
	if pq.Offset > 0 {
		v.Set("_offset", strconv.Itoa(pq.Offset))
	}
	q, err := search.ParseQuery("Organization", v, false)
	if err != nil {
		return nil, fault.Invalid("%v", err)
	}
	page, err := s.d.FHIR.Search(ctx, p, q)
	if err != nil {
		return nil, err
	}
	entries := make([]any, 0, len(page.Matches))
	for _, r := range page.Matches {
		entries = append(entries, map[string]any{"fullUrl": "Organization/" + r.ID, "resource": json.RawMessage(r.Content), "search": map[string]any{"mode": "match"}})
	}
	bundle := map[string]any{"resourceType": "Bundle", "type": "searchset", "entry": entries}
	if page.Total >= 0 {
		bundle["total"] = page.Total
	}
	return json.Marshal(bundle)
}

// payerByID finds the payer with this payer id; ok is false when the
// project has none.
func (s *RCM) payerByID(ctx context.Context, p auth.Principal, payerID string) (payer []byte, ok bool, err error) {
	q, err := search.ParseQuery("Organization", url.Values{"type": {payerType}, "identifier": {payerID}, "_count": {"10"}}, false)
	if err != nil {
		return nil, false, fault.Invalid("payerId: %v", err)
	}
	page, err := s.d.FHIR.Search(ctx, p, q)
	if err != nil {
		return nil, false, err
	}
	for _, r := range page.Matches {
		if rcm.PayerIDOf(r.Content) == payerID {
			return r.Content, true, nil
		}
	}
	return nil, false, nil
}

func isPayer(b []byte) bool {
	var o struct {
		Type []struct {
			Coding []struct{ System, Code string } `json:"coding"`
		} `json:"type"`
	}
	if json.Unmarshal(b, &o) != nil {
		return false
	}
	for _, t := range o.Type {
		for _, c := range t.Coding {
			if c.System == SystemOrgType && c.Code == "pay" {
				return true
			}
		}
	}
	return false
}
