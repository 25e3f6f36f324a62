package rcm

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// CMS1500 is the SDK's ClaimCMS1500: the paper claim form's boxes.
type CMS1500 struct {
	InsuranceProgram string    `json:"_1_insuranceProgram"`
	InsuredID        string    `json:"_1a_insuredIdNumber"`
	PatientName      FormName  `json:"_2_patientName"`
	PatientBirth     FormDate  `json:"_3_patientBirthDate"`
	PatientSex       string    `json:"_3_patientSex"`
	InsuredName      *FormName `json:"_4_insuredName,omitempty"`
	PatientAddress   FormAddr  `json:"_5_patientAddress"`
	Relationship     string    `json:"_6_patientRelationshipToInsured,omitempty"`
	InsuredAddress   *FormAddr `json:"_7_insuredAddress,omitempty"`
	InsuredGroup     string    `json:"_11_insuredPolicyGroupOrFecaNumber,omitempty"`
	InsuredBirth     *FormDate `json:"_11a_insuredDateOfBirth,omitempty"`
	InsuredSex       string    `json:"_11a_insuredSex,omitempty"`
	PlanName         string    `json:"_11c_insurancePlanNameOrProgramName,omitempty"`
	OtherPlan        bool      `json:"_11d_anotherHealthBenefitPlan"`
	CurrentIllness   *struct {
		Date      FormDate `json:"date"`
		Qualifier string   `json:"qualifier"`
	} `json:"_14_dateOfCurrentIllness,omitempty"`
	Referring struct {
		Qualifier string   `json:"qualifier"`
		Name      FormName `json:"name"`
		NPI       string   `json:"_b_npiId"`
	} `json:"_17_referringProvider"`
	Diagnosis struct {
		ICDIndicator string   `json:"icdIndicator"`
		Codes        []string `json:"codes"`
	} `json:"_21_diagnosis"`
	Resubmission *struct {
		Code     string `json:"code"`
		Original string `json:"originalReferenceNumber"`
	} `json:"_22_resubmission,omitempty"`
	PriorAuth string        `json:"_23_priorAuthorizationNumber,omitempty"`
	Services  []FormService `json:"_24_services"`
	TaxID     struct {
		Value string `json:"value"`
		Type  string `json:"type"`
	} `json:"_25_federalTaxIdNumber"`
	AccountNumber    string   `json:"_26_patientAccountNumber,omitempty"`
	AcceptAssignment *bool    `json:"_27_acceptAssignment,omitempty"`
	TotalCharge      float64  `json:"_28_totalCharge"`
	PhysicianSigned  FormDate `json:"_31_physicianSignedDate"`
	Facility         struct {
		Name    string   `json:"name"`
		Address FormAddr `json:"address"`
		NPI     string   `json:"_a_npiId,omitempty"`
	} `json:"_32_serviceFacilityLocationInfo"`
	Billing struct {
		Name    string   `json:"name"`
		Address FormAddr `json:"address"`
		NPI     string   `json:"_a_npiId"`
	} `json:"_33_billingProviderInfoAndPhone"`
}

// FormName is the SDK's ClaimName.
type FormName struct {
	First  string  `json:"firstName"`
	Last   string  `json:"lastName"`
	Middle *string `json:"middleName,omitempty"`
	Suffix *string `json:"suffix,omitempty"`
}

// FormDate is the SDK's ClaimDate.
type FormDate struct {
	Day   string `json:"day"`
	Month string `json:"month"`
	Year  string `json:"year"`
}

// FormAddr is the SDK's ClaimAddress.
type FormAddr struct {
	Line      string  `json:"line"`
	City      string  `json:"city"`
	State     string  `json:"state"`
	Zip       string  `json:"zipCode"`
	Telephone *string `json:"telephone,omitempty"`
}

// FormService is one line of box 24.
type FormService struct {
	Dates struct {
		From FormDate  `json:"from"`
		To   *FormDate `json:"to,omitempty"`
	} `json:"_a_datesOfService"`
	POS        string `json:"_b_placeOfService"`
	Procedures struct {
		Code      string   `json:"cptOrHcpcs"`
		Modifiers []string `json:"modifiers,omitempty"`
	} `json:"_d_procedures"`
	Pointer   string  `json:"_e_diagnosisPointer"`
	Charges   float64 `json:"_f_charges"`
	Units     float64 `json:"_g_daysOrUnits"`
	Rendering struct {
		NPI string `json:"npiId"`
	} `json:"_j_renderingProviderId"`
}

func (d FormDate) fhir() string {
	if d.Year == "" && d.Month == "" && d.Day == "" {
		return ""
	}
	p := func(s string, n int) string {
		for len(s) < n {
			s = "0" + s
		}
		return s
	}
	return p(d.Year, 4) + "-" + p(d.Month, 2) + "-" + p(d.Day, 2)
}

func (n FormName) fhir() []any {
	given := []any{n.First}
	if n.Middle != nil && *n.Middle != "" {
		given = append(given, *n.Middle)
	}
	m := map[string]any{"family": n.Last, "given": given}
	if n.Suffix != nil && *n.Suffix != "" {
		m["suffix"] = []any{*n.Suffix}
	}
	return []any{m}
}

func (a FormAddr) fhir() []any {
	return []any{map[string]any{"line": []any{a.Line}, "city": a.City, "state": a.State, "postalCode": a.Zip}}
}

func (a FormAddr) telecom() []any {
	if a.Telephone == nil || *a.Telephone == "" {
		return nil
	}
	return []any{map[string]any{"system": "phone", "value": *a.Telephone}}
}

var programFiling = map[string]string{"MEDICARE": "MB", "MEDICAID": "MC", "TRICARE": "CH", "CHAMPVA": "VA",
	"GROUP_HEALTH_PLAN": "CI", "FECA_BLK_LUNG": "FI", "OTHER": "ZZ"}

var relationshipCode = map[string]string{"": "self", "Self": "self", "Spouse": "spouse", "Child": "child", "Other": "other"}

// ClaimFromCMS1500 writes the form as a FHIR professional Claim whose
// patient, subscriber, coverage, billing provider, facility and referring
// provider are contained resources. payer is the payer's Organization
// (JSON, from the project) or nil: then a contained one with payerID only.
func ClaimFromCMS1500(f CMS1500, payerID string, payer []byte, created time.Time) ([]byte, error) {
	gender := map[string]string{"M": "male", "F": "female"}
	contained := []any{}
	patient := map[string]any{"resourceType": "Patient", "id": "patient", "name": f.PatientName.fhir(), "birthDate": f.PatientBirth.fhir(),
		"gender": gender[f.PatientSex], "address": f.PatientAddress.fhir()}
	if t := f.PatientAddress.telecom(); t != nil {
		patient["telecom"] = t
	}
	contained = append(contained, patient)
	rel, ok := relationshipCode[f.Relationship]
	if !ok {
		rel = strings.ToLower(f.Relationship) // the validator names it
	}
	subscriberRef := "#patient"
	if rel != "self" {
		sub := map[string]any{"resourceType": "Patient", "id": "subscriber", "gender": gender[f.InsuredSex]}
		if f.InsuredName != nil {
			sub["name"] = f.InsuredName.fhir()
		}
		if f.InsuredBirth != nil {
			sub["birthDate"] = f.InsuredBirth.fhir()
		}
		if f.InsuredAddress != nil {
			sub["address"] = f.InsuredAddress.fhir()
		}
		contained = append(contained, sub)
		subscriberRef = "#subscriber"
	}
	var payerOrg map[string]any
	if payer != nil {
		if err := json.Unmarshal(payer, &payerOrg); err != nil {
			return nil, fmt.Errorf("rcm: payer: %w", err)
		}
		delete(payerOrg, "meta")
		delete(payerOrg, "text")
	} else {
		payerOrg = map[string]any{"resourceType": "Organization"}
	}
	payerOrg["id"] = "payer"
	payerOrg["identifier"] = []any{map[string]any{"type": coding("http://terminology.hl7.org/CodeSystem/v2-0203", PayerIDType), "value": payerID}}
	contained = append(contained, payerOrg)
	cov := map[string]any{"resourceType": "Coverage", "id": "coverage", "status": "active", "subscriberId": f.InsuredID,
		"subscriber": ref(subscriberRef), "beneficiary": ref("#patient"), "payor": []any{ref("#payer")},
		"relationship": coding("http://terminology.hl7.org/CodeSystem/subscriber-relationship", rel),
		"type":         coding(SystemFiling, programFiling[f.InsuranceProgram])}
	if f.InsuredGroup != "" || f.PlanName != "" {
		cl := map[string]any{"type": coding("http://terminology.hl7.org/CodeSystem/coverage-class", "group"), "value": f.InsuredGroup}
		if f.PlanName != "" {
			cl["name"] = f.PlanName
		}
		cov["class"] = []any{cl}
	}
	contained = append(contained, cov)
	taxSystem := SystemEIN
	if f.TaxID.Type == "SSN" {
		taxSystem = SystemSSN
	}
	billing := map[string]any{"resourceType": "Organization", "id": "billing", "name": f.Billing.Name,
		"identifier": []any{ident(SystemNPI, f.Billing.NPI), ident(taxSystem, f.TaxID.Value)}, "address": f.Billing.Address.fhir()}
	if t := f.Billing.Address.telecom(); t != nil {
		billing["telecom"] = t
	}
	contained = append(contained, billing)
	claim := map[string]any{
		"resourceType": "Claim", "status": "active", "use": "claim",
		"type":     coding("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
		"patient":  ref("#patient"),
		"created":  created.UTC().Format("2006-01-02"),
		"insurer":  ref("#payer"),
		"provider": ref("#billing"),
		"priority": coding("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
		"payee":    map[string]any{"type": coding("http://terminology.hl7.org/CodeSystem/payeetype", "provider")},
		"total":    map[string]any{"value": f.TotalCharge, "currency": "USD"},
	}
	if f.AcceptAssignment != nil && !*f.AcceptAssignment {
		claim["payee"] = map[string]any{"type": coding("http://terminology.hl7.org/CodeSystem/payeetype", "subscriber")}
	}
	if f.AccountNumber != "" {
		claim["identifier"] = []any{map[string]any{"system": "urn:ward:claim:patient-account", "value": f.AccountNumber}}
	}
	if f.Facility.Name != "" {
		loc := map[string]any{"resourceType": "Location", "id": "facility", "name": f.Facility.Name, "address": f.Facility.Address.fhir()[0]}
		if f.Facility.NPI != "" {
			loc["identifier"] = []any{ident(SystemNPI, f.Facility.NPI)}
		}
		contained = append(contained, loc)
		claim["facility"] = ref("#facility")
	}
	if f.Referring.Qualifier == "DN" && (f.Referring.NPI != "" || f.Referring.Name.Last != "") {
		contained = append(contained,
			map[string]any{"resourceType": "Practitioner", "id": "referring", "name": f.Referring.Name.fhir(), "identifier": []any{ident(SystemNPI, f.Referring.NPI)}},
			map[string]any{"resourceType": "ServiceRequest", "id": "referral", "status": "active", "intent": "order", "subject": ref("#patient"), "requester": ref("#referring")})
		claim["referral"] = ref("#referral")
	}
	icd := SystemICD10
	if f.Diagnosis.ICDIndicator == "9" {
		icd = "http://hl7.org/fhir/sid/icd-9-cm"
	}
	var diags []any
	for i, c := range f.Diagnosis.Codes {
		diags = append(diags, map[string]any{"sequence": i + 1, "diagnosisCodeableConcept": coding(icd, c)})
	}
	claim["diagnosis"] = diags
	ins := map[string]any{"sequence": 1, "focal": true, "coverage": ref("#coverage")}
	if f.PriorAuth != "" {
		ins["preAuthRef"] = []any{f.PriorAuth}
	}
	claim["insurance"] = []any{ins}
	if f.Resubmission != nil {
		claim["related"] = []any{map[string]any{"relationship": coding(SystemFrequency, f.Resubmission.Code),
			"reference": map[string]any{"value": f.Resubmission.Original}}}
	}
	if f.CurrentIllness != nil && f.CurrentIllness.Qualifier == "431" {
		claim["supportingInfo"] = []any{map[string]any{"sequence": 1,
			"category":   coding("http://terminology.hl7.org/CodeSystem/claiminformationcategory", "onset"),
			"timingDate": f.CurrentIllness.Date.fhir()}}
	}
	var team, items []any
	teamSeq := map[string]int{}
	for i, s := range f.Services {
		it := map[string]any{"sequence": i + 1,
			"productOrService":        coding(procedureSystem(s.Procedures.Code), s.Procedures.Code),
			"locationCodeableConcept": coding(SystemPOS, s.POS),
			"quantity":                map[string]any{"value": s.Units},
			"net":                     map[string]any{"value": s.Charges, "currency": "USD"},
		}
		if s.Units != 0 {
			it["unitPrice"] = map[string]any{"value": s.Charges / s.Units, "currency": "USD"}
		}
		var mods []any
		for _, m := range s.Procedures.Modifiers {
			mods = append(mods, coding("http://www.ama-assn.org/go/cpt", m))
		}
		if mods != nil {
			it["modifier"] = mods
		}
		from, to := s.Dates.From.fhir(), ""
		if s.Dates.To != nil {
			to = s.Dates.To.fhir()
		}
		if to == "" || to == from {
			it["servicedDate"] = from
		} else {
			it["servicedPeriod"] = map[string]any{"start": from, "end": to}
		}
		it["diagnosisSequence"] = pointers(s.Pointer)
		if npi := s.Rendering.NPI; npi != "" && npi != f.Billing.NPI {
			seq, ok := teamSeq[npi]
			if !ok {
				seq = len(team) + 1
				teamSeq[npi] = seq
				id := fmt.Sprintf("rendering-%d", seq)
				contained = append(contained, map[string]any{"resourceType": "Practitioner", "id": id, "identifier": []any{ident(SystemNPI, npi)}})
				team = append(team, map[string]any{"sequence": seq, "provider": ref("#" + id)})
			}
			it["careTeamSequence"] = []any{seq}
		}
		items = append(items, it)
	}
	if team != nil {
		claim["careTeam"] = team
	}
	claim["item"] = items
	claim["contained"] = contained
	return json.Marshal(claim)
}

// pointers reads box 24E: letters A-L (or 1-12) naming box 21's codes.
// Anything else points at sequence 0, which the validator reports.
func pointers(s string) []any {
	var out []any
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if len(part) > 1 && !digits(part) {
			for _, c := range part {
				out = append(out, pointer(string(c)))
			}
			continue
		}
		out = append(out, pointer(part))
	}
	return out
}

func pointer(s string) int {
	if len(s) == 1 && s[0] >= 'A' && s[0] <= 'L' {
		return int(s[0]-'A') + 1
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && n >= 1 && n <= 12 {
		return n
	}
	return 0
}

func procedureSystem(code string) string {
	if code != "" && code[0] >= 'A' && code[0] <= 'Z' {
		return SystemHCPCS
	}
	return SystemCPT
}

func ref(r string) map[string]any { return map[string]any{"reference": r} }

func coding(system, code string) map[string]any {
	return map[string]any{"coding": []any{map[string]any{"system": system, "code": code}}}
}

func ident(system, value string) map[string]any {
	return map[string]any{"system": system, "value": value}
}
