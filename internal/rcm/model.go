// Package rcm turns FHIR billing resources into X12 5010 transactions and
// back: a professional Claim into an 837P (005010X222A1) and its
// validation against the implementation guide, a CoverageEligibilityRequest
// into a 270 (005010X279A1) and a 271 into a CoverageEligibilityResponse,
// and a 277CA into a ClaimResponse. Every value carries the FHIR element
// it came from, so a validation error names both the X12 loop, segment and
// element and the FHIR element to fix.
package rcm

// V is one value and where it came from (a FHIR element path, e.g.
// "Claim.item[0].net.value" or "Patient/1.birthDate").
type V struct {
	Val string
	Src string
	// Parts are a composite element's components' sources.
	Parts []string
}

func v(val, src string) V { return V{Val: val, Src: src} }

// Name is a person's name, or an organization's in Last.
type Name struct {
	Last, First, Middle, Suffix V
}

// Address is a US postal address.
type Address struct {
	Line, City, State, Zip V
}

// Person is a subscriber or patient.
type Person struct {
	Name     Name
	MemberID V // subscribers only (NM109, MI)
	Birth    V // CCYYMMDD
	Sex      V // M, F or U
	Address  Address
}

// Provider is a billing, referring, rendering or facility provider.
type Provider struct {
	Name    Name // organizations: Last only
	Person  bool // NM102 1 (person) or 2 (organization)
	NPI     V
	TaxID   V // billing only
	TaxType V // EI (EIN) or SY (SSN)
	Address Address
	Contact V // submitters only: PER02
	Phone   V // ten digits: the billing provider's becomes the submitter's PER04
}

// Line is one service line (loop 2400).
type Line struct {
	Procedure V         // SV101-2, CPT or HCPCS
	Modifiers []V       // SV101-3..6
	Charge    V         // SV102
	Units     V         // SV104
	POS       V         // SV105, when it differs from the claim's
	Pointers  []V       // SV107, 1-based diagnosis positions
	From, To  V         // DTP*472
	Rendering *Provider // when it differs from the claim's (2420A)
}

// Professional is what an 837P carries of one claim.
type Professional struct {
	Submitter  Provider // 1000A: NPI holds the submitter id (ETIN)
	Receiver   Provider // 1000B
	Billing    Provider // 2010AA
	Subscriber Person   // 2010BA
	// Relationship is the patient's to the subscriber (SBR02/PAT01,
	// X12 codes: 18 self, 01 spouse, 19 child, G8 other).
	Relationship V
	Patient      *Person // 2010CA, when the patient is not the subscriber
	Group        V       // SBR03
	PlanName     V       // SBR04 group name, when there is no SBR03
	Filing       V       // SBR09 claim filing indicator (MB, MC, CI, ...)
	Payer        Provider
	ControlNo    V // CLM01 patient control number
	Total        V // CLM02
	POS          V // CLM05-1 place of service
	Frequency    V // CLM05-3: 1 original, 7 replacement, 8 void
	OriginalRef  V // REF*F8 for 7 and 8
	PriorAuth    V // REF*G1
	Assignment   V // CLM07: A assigned, C not assigned
	OnsetDate    V // DTP*431
	ICD          V // BK (ICD-9) or ABK (ICD-10): the code list qualifier
	Diagnoses    []V
	Referring    *Provider // 2310A
	Rendering    *Provider // 2310B
	Facility     *Provider // 2310C
	Lines        []Line
}
