package erx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/provider"
)

// Ward's marks on the FHIR resources eRx writes.
const (
	// EnrollmentTag tags the PractitionerRole that is a practitioner's
	// enrollment (code: "enrollment").
	EnrollmentTag = "urn:ward:erx"
	// PrescriberSystem codes PractitionerRole.code: prescriber or
	// non-prescriber.
	PrescriberSystem = "urn:ward:erx:role"
	// PharmacyExtension is one of a patient's pharmacies (a complex
	// extension: "pharmacy" valueReference, "primary" valueBoolean).
	PharmacyExtension = "urn:ward:erx:pharmacy"
)

// FHIR is what the service needs of the FHIR API, as the caller.
type FHIR interface {
	Read(ctx context.Context, p auth.Principal, typ, id string) (fhir.Resource, error)
	Create(ctx context.Context, p auth.Principal, typ string, body []byte, ifNoneExist string) (fhir.Resource, bool, error)
	Update(ctx context.Context, p auth.Principal, typ, id string, body []byte, ifMatch string) (fhir.Resource, bool, error)
	Search(ctx context.Context, p auth.Principal, q *search.Query) (fhir.Page, error)
}

// Deps are what the service calls.
type Deps struct {
	FHIR FHIR
	// Providers returns the project's provider choices (service -> name).
	Providers func(ctx context.Context, projectID string) (map[string]string, error)
	// Local is the local provider (its catalog is the FHIR store).
	Local *Local
}

// Service answers the SDK's erx.* for a project's provider.
type Service struct{ d Deps }

// New builds the service.
func New(d Deps) *Service { return &Service{d: d} }

// Limits on what a caller sends.
const (
	maxName        = 200 // a search text
	searchLimit    = 50  // medications or allergens one search returns
	PharmacyPage   = 20  // pharmacies per page
	maxPharmacyPgs = 1000
)

func (s *Service) provider(ctx context.Context, projectID string) (Provider, error) {
	choices, err := s.d.Providers(ctx, projectID)
	if err != nil {
		return nil, err
	}
	switch name := choices["erx"]; name {
	case "", provider.Local:
		return s.d.Local, nil
	default:
		return nil, fault.Invalid("the project's eRx provider %q is not one this server has", name)
	}
}

func searchText(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", fault.Invalid("name is required")
	case !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 }):
		return "", fault.Invalid("name must be text")
	case utf8.RuneCountInString(name) > maxName:
		return "", fault.Invalid("name is longer than %d characters", maxName)
	case utf8.RuneCountInString(name) < 2:
		return "", fault.Invalid("name must be at least 2 characters")
	}
	return name, nil
}

// SearchMedications is erx.searchMedications.
func (s *Service) SearchMedications(ctx context.Context, p auth.Principal, name string) ([]Medication, error) {
	name, err := searchText(name)
	if err != nil {
		return nil, err
	}
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return nil, err
	}
	meds, err := pr.SearchMedications(ctx, p.ProjectID, name, searchLimit)
	for i := range meds {
		// The search answer is the SDK's short form.
		meds[i].DoseForm = ""
	}
	return meds, err
}

// GetMedication is erx.getMedication: exactly one of drugId, ndc, rxcui.
func (s *Service) GetMedication(ctx context.Context, p auth.Principal, q url.Values) (Medication, error) {
	var key MedicationKey
	n := 0
	for _, k := range []string{"drugId", "rxcui"} {
		v := q.Get(k)
		if v == "" {
			continue
		}
		n++
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return Medication{}, fault.Invalid("%s must be a positive integer, not %q", k, clip(v))
		}
		if k == "drugId" {
			key.DrugID = id
		} else {
			key.RxCUI = id
		}
	}
	if v := q.Get("ndc"); v != "" {
		n++
		if len(v) > 20 || strings.Trim(v, "0123456789-") != "" {
			return Medication{}, fault.Invalid("ndc must be digits and dashes, not %q", clip(v))
		}
		key.NDC = v
	}
	if n != 1 {
		return Medication{}, fault.Invalid("give exactly one of drugId, ndc or rxcui")
	}
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return Medication{}, err
	}
	return pr.Medication(ctx, p.ProjectID, key)
}

// SearchAllergens is erx.searchAllergens.
func (s *Service) SearchAllergens(ctx context.Context, p auth.Principal, name string) ([]Allergen, error) {
	name, err := searchText(name)
	if err != nil {
		return nil, err
	}
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return nil, err
	}
	return pr.SearchAllergens(ctx, p.ProjectID, name, searchLimit)
}

// PharmacyResult is searchPharmacies' answer.
type PharmacyResult struct {
	Data     []Pharmacy `json:"data"`
	Metadata struct {
		HasPrevious bool `json:"hasPrevious"`
		HasNext     bool `json:"hasNext"`
		Total       int  `json:"total"`
		CurrentPage int  `json:"currentPage"`
		TotalPages  int  `json:"totalPages"`
		PageSize    int  `json:"pageSize"`
	} `json:"metadata"`
}

// SearchPharmacies is erx.searchPharmacies: at least one filter, pages of
// PharmacyPage from pageNumber 1.
func (s *Service) SearchPharmacies(ctx context.Context, p auth.Principal, q url.Values) (PharmacyResult, error) {
	var pq PharmacyQuery
	set := 0
	for _, f := range []struct {
		key string
		dst *string
	}{{"name", &pq.Name}, {"address", &pq.Address}, {"city", &pq.City}, {"state", &pq.State}, {"zipCode", &pq.ZipCode},
		{"phoneOrFax", &pq.PhoneOrFax}, {"specialty", &pq.Specialty}, {"ncpdpId", &pq.NCPDPID}} {
		v := strings.TrimSpace(q.Get(f.key))
		if v == "" {
			continue
		}
		if !utf8.ValidString(v) || utf8.RuneCountInString(v) > maxName || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 }) {
			return PharmacyResult{}, fault.Invalid("%s must be text of at most %d characters", f.key, maxName)
		}
		*f.dst = v
		set++
	}
	if pq.NCPDPID != "" && strings.Trim(pq.NCPDPID, "0123456789") != "" {
		return PharmacyResult{}, fault.Invalid("ncpdpId must be digits")
	}
	if pq.PhoneOrFax != "" && onlyDigits(pq.PhoneOrFax) == "" {
		return PharmacyResult{}, fault.Invalid("phoneOrFax must hold digits")
	}
	if set == 0 {
		return PharmacyResult{}, fault.Invalid("give at least one of name, address, city, state, zipCode, phoneOrFax, specialty or ncpdpId")
	}
	page := 1
	if v := q.Get("pageNumber"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPharmacyPgs {
			return PharmacyResult{}, fault.Invalid("pageNumber must be an integer from 1 to %d", maxPharmacyPgs)
		}
		page = n
	}
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return PharmacyResult{}, err
	}
	all, err := pr.SearchPharmacies(ctx, p.ProjectID, pq)
	if err != nil {
		return PharmacyResult{}, err
	}
	var out PharmacyResult
	out.Data = []Pharmacy{}
	if from := (page - 1) * PharmacyPage; from < len(all) {
		out.Data = all[from:min(from+PharmacyPage, len(all))]
	}
	m := &out.Metadata
	m.Total, m.CurrentPage, m.PageSize = len(all), page, PharmacyPage
	m.TotalPages = (len(all) + PharmacyPage - 1) / PharmacyPage
	m.HasPrevious, m.HasNext = page > 1, page < m.TotalPages
	return out, nil
}

// GetPharmacy is erx.getPharmacy (SDK 4.3): one pharmacy by its id.
func (s *Service) GetPharmacy(ctx context.Context, p auth.Principal, id string) (Pharmacy, error) {
	n, err := pharmacyID(id)
	if err != nil {
		return Pharmacy{}, err
	}
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return Pharmacy{}, err
	}
	return pr.Pharmacy(ctx, p.ProjectID, n)
}

func pharmacyID(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fault.Invalid("pharmacyId must be a positive integer, not %q", clip(v))
	}
	return n, nil
}

// Config is erx.getConfiguration's answer: the SDK's configured, plus which
// provider and which interaction knowledge source ("none": checks are not
// done).
type Config struct {
	Configured         bool   `json:"configured"`
	Provider           string `json:"provider"`
	InteractionsSource string `json:"interactionsSource"`
}

// Configuration is erx.getConfiguration.
func (s *Service) Configuration(ctx context.Context, p auth.Principal) (Config, error) {
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return Config{}, err
	}
	chk, err := pr.Interactions(ctx, p.ProjectID, Patient{}, nil)
	if err != nil {
		return Config{}, err
	}
	return Config{Configured: true, Provider: pr.Name(), InteractionsSource: sourceName(chk.Source)}, nil
}

func sourceName(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

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

// Enrollment is checkPractitionerEnrollment's answer.
type Enrollment struct {
	Registered        bool `json:"registered"`
	Confirmed         bool `json:"confirmed"`
	Active            bool `json:"active"`
	IdentityVerified  bool `json:"identityVerified"`
	TwoFactorEnrolled bool `json:"twoFactorEnrolled"`
	IsPrescribing     bool `json:"isPrescribing"`
}

// enrollment finds the practitioner's enrollment PractitionerRole (as the
// caller), after reading the Practitioner (404 when not readable).
func (s *Service) enrollment(ctx context.Context, p auth.Principal, practitionerID string) (map[string]any, error) {
	if err := fhirID(practitionerID, "practitionerId"); err != nil {
		return nil, err
	}
	if _, err := s.d.FHIR.Read(ctx, p, "Practitioner", practitionerID); err != nil {
		return nil, err
	}
	roles, err := s.search(ctx, p, "PractitionerRole", url.Values{"practitioner": {"Practitioner/" + practitionerID}, "_tag": {EnrollmentTag + "|enrollment"}})
	if err != nil || len(roles) == 0 {
		return nil, err
	}
	return roles[0], nil
}

// CheckEnrollment is erx.checkPractitionerEnrollment. Identity
// verification and two-factor enrollment are an upstream service's; the
// local provider has neither and reports them false.
func (s *Service) CheckEnrollment(ctx context.Context, p auth.Principal, practitionerID string) (Enrollment, error) {
	role, err := s.enrollment(ctx, p, practitionerID)
	if err != nil || role == nil {
		return Enrollment{}, err
	}
	active, _ := role["active"].(bool)
	return Enrollment{Registered: active, Confirmed: active, Active: active, IsPrescribing: active && prescribing(role)}, nil
}

func prescribing(role map[string]any) bool {
	codes, _ := role["code"].([]any)
	for _, c := range codes {
		cm, _ := c.(map[string]any)
		cs, _ := cm["coding"].([]any)
		for _, cd := range cs {
			m, _ := cd.(map[string]any)
			if m["system"] == PrescriberSystem && m["code"] == "prescriber" {
				return true
			}
		}
	}
	return false
}

// Enroll is erx.enrollPractitioner: the enrollment PractitionerRole is
// created, or made active again, as the caller.
func (s *Service) Enroll(ctx context.Context, p auth.Principal, practitionerID string, isPrescribing bool) error {
	role, err := s.enrollment(ctx, p, practitionerID)
	if err != nil {
		return err
	}
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return err
	}
	if err := pr.Enroll(ctx, p.ProjectID, practitionerID, isPrescribing); err != nil {
		return err
	}
	code := "non-prescriber"
	if isPrescribing {
		code = "prescriber"
	}
	set := func(m map[string]any) error {
		m["active"] = true
		m["code"] = []any{map[string]any{"coding": []any{map[string]any{"system": PrescriberSystem, "code": code}}}}
		return nil
	}
	if role != nil {
		id, _ := role["id"].(string)
		return s.updateAs(ctx, p, "PractitionerRole", id, set)
	}
	m := map[string]any{"resourceType": "PractitionerRole", "practitioner": map[string]any{"reference": "Practitioner/" + practitionerID},
		"meta": map[string]any{"tag": []any{map[string]any{"system": EnrollmentTag, "code": "enrollment"}}}}
	_ = set(m)
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("erx: enrollment: %w", err)
	}
	_, _, err = s.d.FHIR.Create(ctx, p, "PractitionerRole", body, "")
	return err
}

// Unenroll is erx.unenrollPractitioner: the enrollment becomes inactive
// (its history kept). A practitioner not enrolled is left as is.
func (s *Service) Unenroll(ctx context.Context, p auth.Principal, practitionerID string) error {
	role, err := s.enrollment(ctx, p, practitionerID)
	if err != nil || role == nil {
		return err
	}
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return err
	}
	if err := pr.Unenroll(ctx, p.ProjectID, practitionerID); err != nil {
		return err
	}
	id, _ := role["id"].(string)
	return s.updateAs(ctx, p, "PractitionerRole", id, func(m map[string]any) error {
		m["active"] = false
		return nil
	})
}

// Connect is erx.connectPractitioner: a link to prescribe at. A user whose
// profile is a Practitioner must be enrolled; the patient and encounter,
// when given, must be readable by the caller.
func (s *Service) Connect(ctx context.Context, p auth.Principal, patientID, encounterID string) (string, error) {
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return "", err
	}
	if typ, id, ok := strings.Cut(p.FHIRUser, "/"); ok && typ == "Practitioner" {
		e, err := s.CheckEnrollment(ctx, p, id)
		if err != nil {
			return "", err
		}
		if !e.Active {
			return "", fault.Invalid("Practitioner/%s is not enrolled in eRx (erx.enrollPractitioner)", id)
		}
	}
	if patientID != "" {
		if _, err := s.patient(ctx, p, patientID, false); err != nil {
			return "", err
		}
	}
	if encounterID != "" {
		if err := fhirID(encounterID, "encounterId"); err != nil {
			return "", err
		}
		if _, err := s.d.FHIR.Read(ctx, p, "Encounter", encounterID); err != nil {
			return "", err
		}
	}
	return pr.Connect(ctx, p.ProjectID, p.FHIRUser, patientID, encounterID)
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
