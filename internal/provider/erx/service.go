package erx

import (
	"context"
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

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
