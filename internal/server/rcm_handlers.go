package server

import (
	"net/http"
	"strconv"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/provider/clearinghouse"
)

// rcmRoutes are the SDK's rcm service: eligibility (270/271) and
// professional claims (837P) through the project's clearinghouse, and the
// project's payers (Organizations of type pay). The FHIR resources they
// read and write are read and written as the caller, so the caller also
// needs the FHIR actions the SDK lists (docs/rcm.md).
func (s *Server) rcmRoutes() []route {
	if s.rcm == nil {
		return nil
	}
	return []route{
		{method: "POST", path: "/v1/rcm/eligibility-check", action: "RCM:CheckInsuranceEligibility",
			resource: fixed("RCM:InsuranceEligibility"), handle: s.eligibilityCheck},
		{method: "POST", path: "/v1/rcm/professional-claim/validate", action: "RCM:ValidateProfessionalClaim",
			resource: fixed("RCM:Claim"), handle: s.validateClaim},
		{method: "POST", path: "/v1/rcm/professional-claim/submit", action: "RCM:SubmitProfessionalClaim",
			resource: fixed("RCM:Claim"), handle: s.submitClaim},
		// Ward's own route (the SDK has none): an 835 the project received,
		// recorded as ClaimResponses.
		{method: "POST", path: "/v1/rcm/era", action: "RCM:ProcessEra", resource: fixed("RCM:Era"), handle: s.processERA},
		{method: "GET", path: "/v1/rcm/payer", action: "RCM:SearchPayer", resource: fixed("RCM:Payer:*"), handle: s.listPayers},
		{method: "GET", path: "/v1/rcm/payer/{id}", action: "RCM:GetPayer", resource: withID("RCM:Payer:"), handle: s.getPayer},
	}
}

func (s *Server) eligibilityCheck(w http.ResponseWriter, r *http.Request, c call) error {
	var in struct {
		ID string `json:"eligibilityRequestId"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	out, err := s.rcm.Eligibility(r.Context(), c.p, in.ID)
	if err != nil {
		return err
	}
	writeRaw(w, http.StatusOK, out)
	return nil
}

func (s *Server) validateClaim(w http.ResponseWriter, r *http.Request, c call) error {
	var in clearinghouse.ClaimInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	out, err := s.rcm.Validate(r.Context(), c.p, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) submitClaim(w http.ResponseWriter, r *http.Request, c call) error {
	var in clearinghouse.ClaimInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	out, err := s.rcm.Submit(r.Context(), c.p, in)
	if err != nil {
		return err
	}
	writeRaw(w, http.StatusOK, out)
	return nil
}

func (s *Server) processERA(w http.ResponseWriter, r *http.Request, c call) error {
	var in struct {
		X12 string `json:"x12"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	out, err := s.rcm.ProcessERA(r.Context(), c.p, in.X12)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getPayer(w http.ResponseWriter, r *http.Request, c call) error {
	out, err := s.rcm.Payer(r.Context(), c.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeRaw(w, http.StatusOK, out)
	return nil
}

func (s *Server) listPayers(w http.ResponseWriter, r *http.Request, c call) error {
	q := r.URL.Query()
	pq := clearinghouse.PayerQuery{Name: q.Get("name"), PayerID: q.Get("payerId")}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"_count", &pq.Count}, {"_offset", &pq.Offset}} {
		if v := q.Get(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fault.Invalid("%s must be a whole number, not %q", f.name, v)
			}
			*f.dst = n
		}
	}
	out, err := s.rcm.Payers(r.Context(), c.p, pq)
	if err != nil {
		return err
	}
	writeRaw(w, http.StatusOK, out)
	return nil
}

// writeRaw sends JSON already encoded (a FHIR resource).
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
