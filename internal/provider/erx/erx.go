// Package erx is e-prescribing (the SDK's erx.*) behind a provider chosen
// per project: the drug, allergen and pharmacy directories, the interaction
// knowledge source and whatever an upstream service (DoseSpot, Photon) must
// be told. The local provider (the default) reads the directories from the
// project's own FHIR resources and has no interaction knowledge, which every
// check says. Patient, prescription and enrollment records are FHIR
// resources written by Service as the caller, whichever provider is chosen.
package erx

import (
	"context"
)

// Code systems the directories are read in.
const (
	RxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
	NDC    = "http://hl7.org/fhir/sid/ndc"
	SNOMED = "http://snomed.info/sct"
	// NCPDP is the pharmacy identifier system: a pharmacy's id in the SDK
	// is its NCPDP provider id.
	NCPDP = "http://ncpdp.org/provider-id"
)

// Medication is one drug of the directory, in the SDK's fields (its id is
// the RxCUI for the local provider).
type Medication struct {
	ID                   int64   `json:"id"`
	RoutedDoseFormDrugID int64   `json:"routedDoseFormDrugId"`
	Name                 string  `json:"name"`
	RxCUI                *int64  `json:"rxcui"`
	NDC                  *string `json:"ndc"`
	Strength             string  `json:"strength"`
	IsObsolete           bool    `json:"isObsolete"`
	// Details (getMedication).
	DoseForm    string  `json:"doseForm,omitempty"`
	IsBrandName bool    `json:"isBrandName"`
	IsOTC       bool    `json:"isOtc"`
	GenericName *string `json:"genericName,omitempty"`
}

// MedicationKey names one medication for getMedication: one of the three.
type MedicationKey struct {
	DrugID int64
	NDC    string
	RxCUI  int64
}

// Allergen is one allergen of the directory.
type Allergen struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Category string `json:"category"`
}

// Pharmacy is one pharmacy of the directory.
type Pharmacy struct {
	ID          int64    `json:"id"`
	Name        string   `json:"name"`
	Address1    string   `json:"address1"`
	Address2    string   `json:"address2,omitempty"`
	City        string   `json:"city"`
	State       string   `json:"state"`
	ZipCode     string   `json:"zipCode"`
	Phone       string   `json:"phone"`
	Fax         string   `json:"fax,omitempty"`
	Specialties []string `json:"specialties"`
	NCPDPID     string   `json:"ncpdpId"`
	// Ref is the FHIR resource the pharmacy is ("Organization/<id>"): what
	// a patient's pharmacy list points at. Not part of the SDK's shape.
	Ref string `json:"-"`
}

// PharmacyQuery is searchPharmacies' filters (all optional, ANDed).
type PharmacyQuery struct {
	Name, Address, City, State, ZipCode, PhoneOrFax, Specialty, NCPDPID string
}

// Patient is what a provider is given of a patient: the FHIR Patient and
// what was found of its allergies and medications, as the caller may read
// them.
type Patient struct {
	ID          string
	Resource    map[string]any
	Allergies   []map[string]any // AllergyIntolerance
	Medications []map[string]any // active MedicationRequest
}

// Finding is one interaction a knowledge source reports.
type Finding struct {
	Message       string       `json:"message"`
	SeverityLevel string       `json:"severityLevel,omitempty"` // MajorInteraction, ModerateInteraction, MinorInteraction, Unknown
	Medications   []Medication `json:"medications,omitempty"`
}

// Check is a knowledge source's answer. Source names it; "" means the
// provider has none, and the answer then says the check was not done.
type Check struct {
	Source      string
	Allergies   []Finding
	Medications []Finding
}

// Provider is one e-prescribing service. The directory methods return
// ErrNotFound (wrapped) for an id they do not know.
type Provider interface {
	// Name is the provider's name in the project's settings ("local").
	Name() string
	SearchMedications(ctx context.Context, projectID, name string, limit int) ([]Medication, error)
	Medication(ctx context.Context, projectID string, key MedicationKey) (Medication, error)
	SearchAllergens(ctx context.Context, projectID, name string, limit int) ([]Allergen, error)
	// SearchPharmacies returns every match (up to the provider's bound);
	// the service pages them.
	SearchPharmacies(ctx context.Context, projectID string, q PharmacyQuery) ([]Pharmacy, error)
	Pharmacy(ctx context.Context, projectID string, id int64) (Pharmacy, error)
	// Interactions checks the patient's allergies and medications, and
	// candidate with them when not nil.
	Interactions(ctx context.Context, projectID string, pt Patient, candidate *Medication) (Check, error)
	// SyncPatient sends the patient upstream (nothing for local).
	SyncPatient(ctx context.Context, projectID string, pt Patient) error
	// Enroll, Unenroll, AddPharmacy and Cancel tell the upstream service
	// before Ward records the change (nothing for local).
	Enroll(ctx context.Context, projectID, practitionerID string, prescribing bool) error
	Unenroll(ctx context.Context, projectID, practitionerID string) error
	AddPharmacy(ctx context.Context, projectID, patientID string, pharmacy Pharmacy, primary bool) error
	Cancel(ctx context.Context, projectID, patientID, medicationRequestID string) error
	// Connect returns the link a practitioner prescribes at.
	Connect(ctx context.Context, projectID, practitionerRef, patientID, encounterID string) (string, error)
}
