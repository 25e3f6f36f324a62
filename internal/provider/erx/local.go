package erx

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
)

// Catalog searches a project's FHIR resources as Ward (the directories are
// reference data the eRx action has already authorized).
type Catalog interface {
	SystemSearch(ctx context.Context, projectID, typ string, params url.Values, limit int) ([]fhir.Resource, error)
}

// maxDirectory bounds what one directory search reads.
const maxDirectory = 1000

// Local is the provider that needs nothing outside Ward: medications are
// the project's Medication resources (an RxNorm extract: code.coding in
// RxNorm, optionally NDC), allergens those and its Substance resources
// (SNOMED CT codes), pharmacies its Organizations with an NCPDP identifier.
// It has no interaction knowledge and sends nothing anywhere.
type Local struct {
	Catalog   Catalog
	PublicURL string // for Connect's link
}

var _ Provider = (*Local)(nil)

func (*Local) Name() string { return "local" }

func (l *Local) SearchMedications(ctx context.Context, projectID, name string, limit int) ([]Medication, error) {
	res, err := l.Catalog.SystemSearch(ctx, projectID, "Medication", url.Values{"code:text": {name}}, limit)
	if err != nil {
		return nil, err
	}
	out := []Medication{}
	for _, r := range res {
		if m, ok := medication(r.Content); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

func (l *Local) Medication(ctx context.Context, projectID string, key MedicationKey) (Medication, error) {
	var code string
	switch {
	case key.DrugID > 0:
		code = RxNorm + "|" + strconv.FormatInt(key.DrugID, 10)
	case key.RxCUI > 0:
		code = RxNorm + "|" + strconv.FormatInt(key.RxCUI, 10)
	default:
		code = NDC + "|" + key.NDC
	}
	res, err := l.Catalog.SystemSearch(ctx, projectID, "Medication", url.Values{"code": {code}}, 10)
	if err != nil {
		return Medication{}, err
	}
	for _, r := range res {
		if m, ok := medication(r.Content); ok {
			return m, nil
		}
	}
	return Medication{}, fault.NotFound("no medication %s in this project's directory", code)
}

func (l *Local) SearchAllergens(ctx context.Context, projectID, name string, limit int) ([]Allergen, error) {
	meds, err := l.SearchMedications(ctx, projectID, name, limit)
	if err != nil {
		return nil, err
	}
	out := []Allergen{}
	for _, m := range meds {
		out = append(out, Allergen{ID: m.ID, Name: m.Name, Type: "RoutedDoseFormDrugs", Category: "CommonAllergens"})
	}
	subs, err := l.Catalog.SystemSearch(ctx, projectID, "Substance", url.Values{"code:text": {name}}, limit)
	if err != nil {
		return nil, err
	}
	for _, r := range subs {
		var s struct {
			Code concept `json:"code"`
		}
		if json.Unmarshal(r.Content, &s) != nil {
			continue
		}
		id, display, ok := s.Code.numeric(SNOMED)
		if !ok {
			continue
		}
		out = append(out, Allergen{ID: id, Name: firstOf(s.Code.Text, display), Type: "FoodAndEnvironmentalAllergens", Category: "CommonAllergens"})
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (l *Local) SearchPharmacies(ctx context.Context, projectID string, q PharmacyQuery) ([]Pharmacy, error) {
	params := url.Values{"identifier": {NCPDP + "|" + q.NCPDPID}, "_sort": {"name"}}
	for k, v := range map[string]string{"name": q.Name, "address": q.Address, "address-city": q.City,
		"address-state": q.State, "address-postalcode": q.ZipCode} {
		if v != "" {
			params.Set(k, v)
		}
	}
	res, err := l.Catalog.SystemSearch(ctx, projectID, "Organization", params, maxDirectory)
	if err != nil {
		return nil, err
	}
	digits := onlyDigits(q.PhoneOrFax)
	out := []Pharmacy{}
	for _, r := range res {
		ph, ok := pharmacy(r)
		if !ok {
			continue
		}
		if digits != "" && !strings.Contains(onlyDigits(ph.Phone), digits) && !strings.Contains(onlyDigits(ph.Fax), digits) {
			continue
		}
		if q.Specialty != "" && !slices.ContainsFunc(ph.Specialties, func(s string) bool { return strings.EqualFold(s, q.Specialty) }) {
			continue
		}
		out = append(out, ph)
	}
	return out, nil
}

func (l *Local) Pharmacy(ctx context.Context, projectID string, id int64) (Pharmacy, error) {
	// NCPDP ids are seven digits, leading zeros kept; the SDK's id is a number.
	ids := NCPDP + "|" + fmt.Sprintf("%07d", id) + "," + NCPDP + "|" + strconv.FormatInt(id, 10)
	res, err := l.Catalog.SystemSearch(ctx, projectID, "Organization", url.Values{"identifier": {ids}}, 2)
	if err != nil {
		return Pharmacy{}, err
	}
	for _, r := range res {
		if ph, ok := pharmacy(r); ok {
			return ph, nil
		}
	}
	return Pharmacy{}, fault.NotFound("no pharmacy %d in this project's directory", id)
}

// Interactions: the local provider holds no interaction knowledge (no
// drug-drug or drug-allergy data set ships with Ward), so it checks nothing
// and says so: Source "" makes every answer a warning, never an empty list.
func (*Local) Interactions(context.Context, string, Patient, *Medication) (Check, error) {
	return Check{}, nil
}

func (*Local) SyncPatient(context.Context, string, Patient) error                { return nil }
func (*Local) Enroll(context.Context, string, string, bool) error                { return nil }
func (*Local) Unenroll(context.Context, string, string) error                    { return nil }
func (*Local) AddPharmacy(context.Context, string, string, Pharmacy, bool) error { return nil }
func (*Local) Cancel(context.Context, string, string, string) error              { return nil }

// Connect: the local provider has no prescribing screen of its own; its
// link is the console's MedicationRequest form (developers sign in there).
func (l *Local) Connect(_ context.Context, _, _, patientID, _ string) (string, error) {
	u := strings.TrimRight(l.PublicURL, "/") + "/console/fhir/MedicationRequest/new"
	if patientID != "" {
		u += "?" + url.Values{"subject": {"Patient/" + patientID}}.Encode()
	}
	return u, nil
}

// concept is a CodeableConcept as the directories read it.
type concept struct {
	Text   string `json:"text"`
	Coding []struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display"`
	} `json:"coding"`
}

// code returns the first code of system, and its display.
func (c concept) code(system string) (string, string, bool) {
	for _, cd := range c.Coding {
		if cd.System == system && cd.Code != "" {
			return cd.Code, cd.Display, true
		}
	}
	return "", "", false
}

// numeric returns the first code of system that is a positive integer.
func (c concept) numeric(system string) (int64, string, bool) {
	for _, cd := range c.Coding {
		if cd.System != system {
			continue
		}
		if n, err := strconv.ParseInt(cd.Code, 10, 64); err == nil && n > 0 {
			return n, cd.Display, true
		}
	}
	return 0, "", false
}

type quantity struct {
	Value *json.Number `json:"value"`
	Unit  string       `json:"unit"`
	Code  string       `json:"code"`
}

func (q *quantity) String() string {
	if q == nil || q.Value == nil {
		return ""
	}
	return strings.TrimSpace(q.Value.String() + " " + firstOf(q.Unit, q.Code))
}

// medication reads a Medication resource into the directory's shape; one
// without a numeric RxNorm code is not in the directory.
func medication(content []byte) (Medication, bool) {
	var r struct {
		Status     string  `json:"status"`
		Code       concept `json:"code"`
		Form       concept `json:"form"`
		Ingredient []struct {
			Strength *struct {
				Numerator   *quantity `json:"numerator"`
				Denominator *quantity `json:"denominator"`
			} `json:"strength"`
		} `json:"ingredient"`
	}
	if json.Unmarshal(content, &r) != nil {
		return Medication{}, false
	}
	rxcui, display, ok := r.Code.numeric(RxNorm)
	if !ok {
		return Medication{}, false
	}
	m := Medication{ID: rxcui, RoutedDoseFormDrugID: rxcui, RxCUI: &rxcui, Name: firstOf(r.Code.Text, display),
		IsObsolete: r.Status == "inactive" || r.Status == "entered-in-error"}
	if ndc, _, ok := r.Code.code(NDC); ok {
		m.NDC = &ndc
	}
	var strengths []string
	for _, in := range r.Ingredient {
		if in.Strength == nil {
			continue
		}
		s := in.Strength.Numerator.String()
		// "per one tablet" is the strength itself: 10 mg, not 10 mg/1 tablet.
		if d := in.Strength.Denominator; d != nil && d.Value != nil && d.Value.String() != "1" {
			s += "/" + d.String()
		}
		if s != "" {
			strengths = append(strengths, s)
		}
	}
	m.Strength = strings.Join(strengths, " / ")
	_, formDisplay, _ := firstCoding(r.Form)
	m.DoseForm = firstOf(r.Form.Text, formDisplay)
	return m, true
}

func firstCoding(c concept) (string, string, bool) {
	if len(c.Coding) == 0 {
		return "", "", false
	}
	return c.Coding[0].Code, c.Coding[0].Display, true
}

// pharmacy reads an Organization with an NCPDP identifier.
func pharmacy(r fhir.Resource) (Pharmacy, bool) {
	var o struct {
		Name       string `json:"name"`
		Identifier []struct {
			System string `json:"system"`
			Value  string `json:"value"`
		} `json:"identifier"`
		Type    []concept `json:"type"`
		Telecom []struct {
			System string `json:"system"`
			Value  string `json:"value"`
		} `json:"telecom"`
		Address []struct {
			Line       []string `json:"line"`
			City       string   `json:"city"`
			State      string   `json:"state"`
			PostalCode string   `json:"postalCode"`
		} `json:"address"`
	}
	if json.Unmarshal(r.Content, &o) != nil {
		return Pharmacy{}, false
	}
	ph := Pharmacy{Name: o.Name, Specialties: []string{}, Ref: "Organization/" + r.ID}
	for _, id := range o.Identifier {
		if id.System == NCPDP {
			n, err := strconv.ParseInt(id.Value, 10, 64)
			if err != nil || n <= 0 {
				return Pharmacy{}, false
			}
			ph.ID, ph.NCPDPID = n, id.Value
			break
		}
	}
	if ph.ID == 0 {
		return Pharmacy{}, false
	}
	for _, t := range o.Type {
		_, d, _ := firstCoding(t)
		if s := firstOf(t.Text, d); s != "" {
			ph.Specialties = append(ph.Specialties, s)
		}
	}
	for _, t := range o.Telecom {
		switch {
		case t.System == "phone" && ph.Phone == "":
			ph.Phone = t.Value
		case t.System == "fax" && ph.Fax == "":
			ph.Fax = t.Value
		}
	}
	if len(o.Address) > 0 {
		a := o.Address[0]
		if len(a.Line) > 0 {
			ph.Address1 = a.Line[0]
		}
		if len(a.Line) > 1 {
			ph.Address2 = strings.Join(a.Line[1:], ", ")
		}
		ph.City, ph.State, ph.ZipCode = a.City, a.State, a.PostalCode
	}
	return ph, true
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func onlyDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
