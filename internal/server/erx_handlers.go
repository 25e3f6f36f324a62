package server

import (
	"net/http"

	"github.com/wardhealth/ward/internal/fault"
)

// erxRoutes are the SDK's erx.* (erxApiUrl = <public>/erx/v3), each with the
// action and resource the SDK's doc comment names.
func (s *Server) erxRoutes() []route {
	if s.erx == nil {
		return nil
	}
	const b = "/erx/v3"
	return []route{
		{method: "GET", path: b + "/allergen", action: "eRx:SearchAllergen", resource: fixed("eRx:Allergen"), handle: s.erxSearchAllergens},
		{method: "GET", path: b + "/medication", action: "eRx:SearchMedication", resource: fixed("eRx:Medication"), handle: s.erxSearchMedications},
		{method: "GET", path: b + "/medication/details", action: "eRx:GetMedication", resource: fixed("eRx:Medication"), handle: s.erxGetMedication},
		{method: "GET", path: b + "/config", action: "eRx:GetConfiguration", resource: fixed("eRx:Configuration"), handle: s.erxConfig},
		{method: "GET", path: b + "/patient/{patient}/interactions/allergy", action: "eRx:Check", resource: fixed("eRx:Interaction"), handle: s.erxInteractions("allergy")},
		{method: "GET", path: b + "/patient/{patient}/interactions/medication", action: "eRx:Check", resource: fixed("eRx:Interaction"), handle: s.erxInteractions("medication")},
		{method: "GET", path: b + "/patient/{patient}/interactions/precheck/{drug}", action: "eRx:Check", resource: fixed("eRx:Interaction"), handle: s.erxInteractions("precheck")},
		{method: "POST", path: b + "/patient/{patient}/pharmacies", action: "eRx:AddPatientPharmacy", resource: fixed("eRx:Patient"), handle: s.erxAddPharmacy},
		{method: "DELETE", path: b + "/patient/{patient}/prescriptions/{id}", action: "eRx:CancelPrescription", resource: fixed("eRx:Prescription"), handle: s.erxCancel},
		{method: "POST", path: b + "/patient/{patient}/sync", action: "eRx:SyncPatient", resource: fixed("eRx:Patient"), handle: s.erxSync},
		{method: "GET", path: b + "/pharmacy", action: "eRx:SearchPharmacy", resource: fixed("eRx:Pharmacy"), handle: s.erxSearchPharmacies},
		// SDK 4.3's erx.getPharmacy.
		{method: "GET", path: b + "/pharmacy/{id}", action: "eRx:GetPharmacy", resource: fixed("eRx:Pharmacy"), handle: s.erxGetPharmacy},
		{method: "GET", path: b + "/practitioner/connect", action: "eRx:Connect", resource: fixed("eRx:SSO"), handle: s.erxConnect},
		{method: "GET", path: b + "/practitioner/{id}", action: "eRx:Read", resource: fixed("eRx:Enrollment"), handle: s.erxCheckEnrollment},
		{method: "POST", path: b + "/practitioner/{id}", action: "eRx:Create", resource: fixed("eRx:Enrollment"), handle: s.erxEnroll},
		{method: "DELETE", path: b + "/practitioner/{id}", action: "eRx:Delete", resource: fixed("eRx:Enrollment"), handle: s.erxUnenroll},
	}
}

func (s *Server) erxSearchAllergens(w http.ResponseWriter, r *http.Request, c call) error {
	out, err := s.erx.SearchAllergens(r.Context(), c.p, r.URL.Query().Get("name"))
	return answer(w, out, err)
}

func (s *Server) erxSearchMedications(w http.ResponseWriter, r *http.Request, c call) error {
	out, err := s.erx.SearchMedications(r.Context(), c.p, r.URL.Query().Get("name"))
	return answer(w, out, err)
}

func (s *Server) erxGetMedication(w http.ResponseWriter, r *http.Request, c call) error {
	out, err := s.erx.GetMedication(r.Context(), c.p, r.URL.Query())
	return answer(w, out, err)
}

func (s *Server) erxConfig(w http.ResponseWriter, r *http.Request, c call) error {
	out, err := s.erx.Configuration(r.Context(), c.p)
	return answer(w, out, err)
}

func (s *Server) erxInteractions(kind string) func(w http.ResponseWriter, r *http.Request, c call) error {
	return func(w http.ResponseWriter, r *http.Request, c call) error {
		out, err := s.erx.Interactions(r.Context(), c.p, r.PathValue("patient"), kind, r.PathValue("drug"))
		return answer(w, out, err)
	}
}

func (s *Server) erxAddPharmacy(w http.ResponseWriter, r *http.Request, c call) error {
	var in struct {
		PharmacyID   *int64 `json:"pharmacyId"`
		SetAsPrimary bool   `json:"setAsPrimary"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.PharmacyID == nil {
		return fault.Invalid("pharmacyId is required")
	}
	return done(w, s.erx.AddPatientPharmacy(r.Context(), c.p, r.PathValue("patient"), *in.PharmacyID, in.SetAsPrimary))
}

func (s *Server) erxCancel(w http.ResponseWriter, r *http.Request, c call) error {
	return done(w, s.erx.CancelPrescription(r.Context(), c.p, r.PathValue("patient"), r.PathValue("id")))
}

func (s *Server) erxSync(w http.ResponseWriter, r *http.Request, c call) error {
	// The body may name an encounter; the local provider needs none.
	var in struct {
		EncounterID string `json:"encounterId"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	return done(w, s.erx.SyncPatient(r.Context(), c.p, r.PathValue("patient")))
}

func (s *Server) erxSearchPharmacies(w http.ResponseWriter, r *http.Request, c call) error {
	out, err := s.erx.SearchPharmacies(r.Context(), c.p, r.URL.Query())
	return answer(w, out, err)
}

func (s *Server) erxGetPharmacy(w http.ResponseWriter, r *http.Request, c call) error {
	out, err := s.erx.GetPharmacy(r.Context(), c.p, r.PathValue("id"))
	return answer(w, out, err)
}

func (s *Server) erxConnect(w http.ResponseWriter, r *http.Request, c call) error {
	q := r.URL.Query()
	link, err := s.erx.Connect(r.Context(), c.p, q.Get("patientId"), q.Get("encounterId"))
	return answer(w, map[string]string{"ssoLink": link}, err)
}

func (s *Server) erxCheckEnrollment(w http.ResponseWriter, r *http.Request, c call) error {
	out, err := s.erx.CheckEnrollment(r.Context(), c.p, r.PathValue("id"))
	return answer(w, out, err)
}

func (s *Server) erxEnroll(w http.ResponseWriter, r *http.Request, c call) error {
	var in struct {
		IsPrescribing *bool `json:"isPrescribing"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	// Enrolled practitioners prescribe unless told otherwise.
	prescribing := in.IsPrescribing == nil || *in.IsPrescribing
	return done(w, s.erx.Enroll(r.Context(), c.p, r.PathValue("id"), prescribing))
}

func (s *Server) erxUnenroll(w http.ResponseWriter, r *http.Request, c call) error {
	return done(w, s.erx.Unenroll(r.Context(), c.p, r.PathValue("id")))
}

// answer writes out as JSON, or returns err.
func answer(w http.ResponseWriter, out any, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// done answers 204 (the SDK's methods without a response type), or
// returns err.
func done(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
