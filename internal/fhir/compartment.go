package fhir

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// patientCompartmentJSON maps each resource type in the R4 Patient
// compartment to the search parameters that link it to the patient. It is
// CompartmentDefinition-patient.json of the npm package
// hl7.fhir.r4.examples 4.0.1 (CC0), reduced to {type: [params]}.
//
//go:embed patient_compartment.json
var patientCompartmentJSON []byte

// compartments is the parsed Patient compartment definition.
type compartments struct {
	patient map[string][]string
}

// patientCompartment is read once from the embedded file and never
// changed; a broken file fails every test at start-up.
var patientCompartment = mustLoadCompartments()

func mustLoadCompartments() compartments {
	var m map[string][]string
	if err := json.Unmarshal(patientCompartmentJSON, &m); err != nil {
		panic(fmt.Errorf("embedded patient compartment definition: %w", err))
	}
	return compartments{patient: m}
}

// patientQueries returns the alternative searches that confine typ to the
// compartment of Patient pid, or nil when typ is not in the compartment (a
// Medication or an Organization is not anyone's: patient/ scopes do not
// restrict such types beyond their letters, as in HAPI and Medplum).
func (c compartments) patientQueries(typ, pid string) []map[string][]string {
	ref := "Patient/" + pid
	var out []map[string][]string
	if typ == "Patient" {
		out = append(out, map[string][]string{"_id": {pid}})
	}
	for _, param := range c.patient[typ] {
		out = append(out, map[string][]string{param: {ref}})
	}
	return out
}
