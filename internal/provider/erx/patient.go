package erx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
)

// patient reads the patient as the caller (a patient they may not read, or
// of another project, is a 404 or 403 as a FHIR read) with, when full, its
// allergies and active prescriptions.
func (s *Service) patient(ctx context.Context, p auth.Principal, id string, full bool) (Patient, error) {
	if err := fhirID(id, "patientId"); err != nil {
		return Patient{}, err
	}
	res, err := s.d.FHIR.Read(ctx, p, "Patient", id)
	if err != nil {
		return Patient{}, err
	}
	pt := Patient{ID: id}
	if err := json.Unmarshal(res.Content, &pt.Resource); err != nil {
		return Patient{}, fmt.Errorf("erx: patient %s: %w", id, err)
	}
	if !full {
		return pt, nil
	}
	if pt.Allergies, err = s.search(ctx, p, "AllergyIntolerance", url.Values{"patient": {"Patient/" + id}}); err != nil {
		return Patient{}, err
	}
	if pt.Medications, err = s.search(ctx, p, "MedicationRequest", url.Values{"subject": {"Patient/" + id}, "status": {"active,on-hold,draft"}}); err != nil {
		return Patient{}, err
	}
	return pt, nil
}

func (s *Service) search(ctx context.Context, p auth.Principal, typ string, params url.Values) ([]map[string]any, error) {
	params.Set("_count", "1000")
	q, err := search.ParseQuery(typ, params, false)
	if err != nil {
		return nil, fmt.Errorf("erx: %s query: %w", typ, err)
	}
	page, err := s.d.FHIR.Search(ctx, p, q)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(page.Matches))
	for _, r := range page.Matches {
		var m map[string]any
		if err := json.Unmarshal(r.Content, &m); err != nil {
			return nil, fmt.Errorf("erx: %s/%s: %w", typ, r.ID, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// fhirID checks an id from the path: FHIR's id syntax.
func fhirID(id, what string) error {
	if id == "" || len(id) > 64 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != "" {
		return fault.Invalid("%s must be a FHIR id (1-64 letters, digits, '-' and '.'), not %q", what, clip(id))
	}
	return nil
}

// notChecked is the warning every check answers when the provider has no
// interaction knowledge: an empty list would read as "no interactions".
const notChecked = "NOT CHECKED: this project's eRx provider (%s) has no drug interaction knowledge source configured, so %s interactions were not checked; review them manually"

// AllergyFinding is checkAllergyInteractions' element: the SDK's message,
// plus where the answer came from.
type AllergyFinding struct {
	Message string `json:"message"`
	Source  string `json:"source"`
	Checked bool   `json:"checked"`
}

// MedicationFinding is checkMedicationInteractions' element.
type MedicationFinding struct {
	Message         string       `json:"message"`
	SeverityLevel   string       `json:"severityLevel"`
	Medications     []Medication `json:"medications,omitempty"`
	IncludesPending bool         `json:"includesPending"`
	Source          string       `json:"source"`
	Checked         bool         `json:"checked"`
}

// Precheck is checkPrecheckInteractions' answer.
type Precheck struct {
	Allergies   []AllergyFinding    `json:"allergies"`
	Medications []MedicationFinding `json:"medications"`
	Source      string              `json:"source"`
	Checked     bool                `json:"checked"`
}

// Interactions checks a patient: kind "allergy", "medication", or
// "precheck" with drugID. The answer is always in the SDK's shape.
func (s *Service) Interactions(ctx context.Context, p auth.Principal, patientID, kind, drugID string) (any, error) {
	var candidate *Medication
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return nil, err
	}
	if kind == "precheck" {
		id, err := strconv.ParseInt(drugID, 10, 64)
		if err != nil || id <= 0 {
			return nil, fault.Invalid("drugId must be a positive integer, not %q", clip(drugID))
		}
		m, err := pr.Medication(ctx, p.ProjectID, MedicationKey{DrugID: id})
		if err != nil {
			return nil, err
		}
		candidate = &m
	}
	pt, err := s.patient(ctx, p, patientID, true)
	if err != nil {
		return nil, err
	}
	chk, err := pr.Interactions(ctx, p.ProjectID, pt, candidate)
	if err != nil {
		return nil, err
	}
	src, checked := sourceName(chk.Source), chk.Source != ""
	allergies := []AllergyFinding{}
	meds := []MedicationFinding{}
	if !checked {
		allergies = append(allergies, AllergyFinding{Message: fmt.Sprintf(notChecked, pr.Name(), "drug-allergy"), Source: src})
		meds = append(meds, MedicationFinding{Message: fmt.Sprintf(notChecked, pr.Name(), "drug-drug"), SeverityLevel: "Unknown", Source: src})
	}
	for _, f := range chk.Allergies {
		allergies = append(allergies, AllergyFinding{Message: f.Message, Source: src, Checked: true})
	}
	for _, f := range chk.Medications {
		meds = append(meds, MedicationFinding{Message: f.Message, SeverityLevel: firstOf(f.SeverityLevel, "Unknown"), Medications: f.Medications, Source: src, Checked: true})
	}
	switch kind {
	case "allergy":
		return allergies, nil
	case "medication":
		return meds, nil
	}
	return Precheck{Allergies: allergies, Medications: meds, Source: src, Checked: checked}, nil
}

// SyncPatient is erx.syncPatient: the patient must have what an upstream
// service needs (first and last name, birth date, gender, a phone number).
func (s *Service) SyncPatient(ctx context.Context, p auth.Principal, patientID string) error {
	pt, err := s.patient(ctx, p, patientID, true)
	if err != nil {
		return err
	}
	if missing := missingDemographics(pt.Resource); len(missing) > 0 {
		return fault.Invalid("Patient/%s cannot be synced: it has no %s", patientID, strings.Join(missing, ", no "))
	}
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return err
	}
	return pr.SyncPatient(ctx, p.ProjectID, pt)
}

func missingDemographics(pt map[string]any) []string {
	var missing []string
	var first, last bool
	names, _ := pt["name"].([]any)
	for _, n := range names {
		nm, _ := n.(map[string]any)
		if f, _ := nm["family"].(string); f != "" {
			last = true
		}
		if g, _ := nm["given"].([]any); len(g) > 0 {
			first = true
		}
	}
	if !first {
		missing = append(missing, "first name")
	}
	if !last {
		missing = append(missing, "last name")
	}
	if b, _ := pt["birthDate"].(string); b == "" {
		missing = append(missing, "birthDate")
	}
	if g, _ := pt["gender"].(string); g == "" {
		missing = append(missing, "gender")
	}
	phone := false
	tel, _ := pt["telecom"].([]any)
	for _, t := range tel {
		tm, _ := t.(map[string]any)
		if tm["system"] == "phone" && tm["value"] != "" && tm["value"] != nil {
			phone = true
		}
	}
	if !phone {
		missing = append(missing, "phone number")
	}
	return missing
}

// AddPatientPharmacy is erx.addPatientPharmacy: the pharmacy joins the
// patient's list (an extension on the Patient, updated as the caller);
// primary makes it the only primary one.
func (s *Service) AddPatientPharmacy(ctx context.Context, p auth.Principal, patientID string, pharmacyID int64, primary bool) error {
	if pharmacyID <= 0 {
		return fault.Invalid("pharmacyId must be a positive integer")
	}
	if err := fhirID(patientID, "patientId"); err != nil {
		return err
	}
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return err
	}
	ph, err := pr.Pharmacy(ctx, p.ProjectID, pharmacyID)
	if err != nil {
		return err
	}
	if _, err := s.patient(ctx, p, patientID, false); err != nil {
		return err
	}
	if err := pr.AddPharmacy(ctx, p.ProjectID, patientID, ph, primary); err != nil {
		return err
	}
	return s.updateAs(ctx, p, "Patient", patientID, func(m map[string]any) error {
		exts, _ := m["extension"].([]any)
		kept := exts[:0:0]
		for _, e := range exts {
			em, _ := e.(map[string]any)
			if em["url"] == PharmacyExtension {
				if pharmacyRef(em) == ph.Ref {
					continue // replaced below
				}
				if primary {
					setPrimary(em, false)
				}
			}
			kept = append(kept, e)
		}
		m["extension"] = append(kept, map[string]any{"url": PharmacyExtension, "extension": []any{
			map[string]any{"url": "pharmacy", "valueReference": map[string]any{"reference": ph.Ref, "display": ph.Name}},
			map[string]any{"url": "primary", "valueBoolean": primary},
		}})
		return nil
	})
}

func pharmacyRef(ext map[string]any) string {
	subs, _ := ext["extension"].([]any)
	for _, s := range subs {
		sm, _ := s.(map[string]any)
		if sm["url"] == "pharmacy" {
			ref, _ := sm["valueReference"].(map[string]any)
			r, _ := ref["reference"].(string)
			return r
		}
	}
	return ""
}

func setPrimary(ext map[string]any, v bool) {
	subs, _ := ext["extension"].([]any)
	for _, s := range subs {
		if sm, _ := s.(map[string]any); sm["url"] == "primary" {
			sm["valueBoolean"] = v
		}
	}
}

// updateAs reads, changes and writes a resource as the caller, retrying
// when another write came between (If-Match).
func (s *Service) updateAs(ctx context.Context, p auth.Principal, typ, id string, mutate func(map[string]any) error) error {
	for range 5 {
		res, err := s.d.FHIR.Read(ctx, p, typ, id)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(res.Content, &m); err != nil {
			return fmt.Errorf("erx: %s/%s: %w", typ, id, err)
		}
		if err := mutate(m); err != nil {
			return err
		}
		body, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("erx: %s/%s: %w", typ, id, err)
		}
		_, _, err = s.d.FHIR.Update(ctx, p, typ, id, body, fmt.Sprintf(`W/"%d"`, res.VersionID))
		if !errors.Is(err, fault.ErrPrecondition) {
			return err
		}
	}
	return fault.Conflict("%s/%s is changing under this request; try again", typ, id)
}

// CancelPrescription is erx.cancelPrescription: the patient's
// MedicationRequest becomes cancelled (as the caller). One of another
// patient is a 404; a completed or already stopped one a 409; a cancelled
// one is left as it is.
func (s *Service) CancelPrescription(ctx context.Context, p auth.Principal, patientID, requestID string) error {
	if err := fhirID(patientID, "patientId"); err != nil {
		return err
	}
	if err := fhirID(requestID, "medicationRequestId"); err != nil {
		return err
	}
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return err
	}
	res, err := s.d.FHIR.Read(ctx, p, "MedicationRequest", requestID)
	if err != nil {
		return err
	}
	var mr struct {
		Status  string `json:"status"`
		Subject struct {
			Reference string `json:"reference"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(res.Content, &mr); err != nil {
		return fmt.Errorf("erx: MedicationRequest/%s: %w", requestID, err)
	}
	if mr.Subject.Reference != "Patient/"+patientID {
		return fault.NotFound("Patient/%s has no prescription MedicationRequest/%s", patientID, requestID)
	}
	switch mr.Status {
	case "cancelled":
		return nil
	case "completed", "stopped", "entered-in-error":
		return fault.Conflict("MedicationRequest/%s is %s and cannot be cancelled", requestID, mr.Status)
	}
	if err := pr.Cancel(ctx, p.ProjectID, patientID, requestID); err != nil {
		return err
	}
	return s.updateAs(ctx, p, "MedicationRequest", requestID, func(m map[string]any) error {
		if m["status"] == "cancelled" {
			return nil
		}
		m["status"] = "cancelled"
		return nil
	})
}
