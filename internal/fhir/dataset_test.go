package fhir

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/store"
)

// The search suite's data: a seeded, realistic population kept as Go
// structs too, so expected results come from plain Go predicates over the
// structs, independent of the index and the SQL.
type (
	patient struct {
		ID, Family, Given, Gender, BirthDate, MRN, City, GP string
		Active                                              bool
		Deceased                                            bool
	}
	encounter struct {
		ID, Patient, Status, Class, Start, End string
	}
	observation struct {
		ID, Patient, Code, Effective, Status string
		Value                                float64
		Unit                                 string
	}
	condition struct {
		ID, Patient, Code, Onset, Clinical string
	}
	medRequest struct {
		ID, Patient, Rx, Status, Authored string
	}
	dataset struct {
		practitioners []string
		patients      []patient
		encounters    []encounter
		observations  []observation
		conditions    []condition
		medRequests   []medRequest
	}
)

var (
	families = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "García", "Miller", "Davis", "Rodríguez", "Martínez",
		"Hernández", "López", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
		"Lee", "Pérez", "Thompson", "White", "Harris", "Sánchez", "Clark", "Ramírez", "Lewis", "Robinson",
		"Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
		"Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts"}
	givens   = []string{"James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "Zoë", "Élodie", "Ana", "Luis"}
	cities   = []string{"Boston", "Austin", "Denver", "Seattle", "Portland"}
	loinc    = []struct{ code, unit string }{{"8867-4", "/min"}, {"8480-6", "mm[Hg]"}, {"29463-7", "kg"}, {"8310-5", "Cel"}, {"2339-0", "mg/dL"}}
	snomed   = []string{"38341003", "44054006", "195967001", "73211009", "35489007"}
	rxnorm   = []string{"197361", "860975", "314076", "617314"}
	statuses = []string{"planned", "in-progress", "finished", "cancelled"}
)

// generate builds n patients and their records from a fixed seed.
func generate(n int) *dataset {
	rng := rand.New(rand.NewSource(42))
	d := &dataset{}
	for i := 0; i < 10; i++ {
		d.practitioners = append(d.practitioners, fmt.Sprintf("prac-%d", i))
	}
	day := func(from, to int) string {
		start := time.Date(from, 1, 1, 0, 0, 0, 0, time.UTC)
		span := time.Date(to, 1, 1, 0, 0, 0, 0, time.UTC).Sub(start)
		return start.Add(time.Duration(rng.Int63n(int64(span/(24*time.Hour)))) * 24 * time.Hour).Format("2006-01-02")
	}
	for i := 0; i < n; i++ {
		p := patient{ID: fmt.Sprintf("pat-%04d", i), Family: families[rng.Intn(len(families))], Given: givens[rng.Intn(len(givens))],
			Gender: []string{"male", "female", "other", "unknown"}[rng.Intn(4)], BirthDate: day(1930, 2020), MRN: fmt.Sprintf("MRN%05d", i),
			City: cities[rng.Intn(len(cities))], Active: rng.Intn(5) > 0, Deceased: rng.Intn(20) == 0}
		if i%7 != 0 {
			p.GP = d.practitioners[rng.Intn(len(d.practitioners))]
		}
		if i%13 == 0 {
			p.BirthDate = p.BirthDate[:4] // year precision
		}
		d.patients = append(d.patients, p)
		for j := 0; j < 1+rng.Intn(2); j++ {
			start := day(2018, 2025)
			e := encounter{ID: fmt.Sprintf("enc-%04d-%d", i, j), Patient: p.ID, Status: statuses[rng.Intn(len(statuses))], Class: []string{"AMB", "EMER", "IMP"}[rng.Intn(3)], Start: start}
			if rng.Intn(4) > 0 {
				e.End = start // a same-day visit
			}
			d.encounters = append(d.encounters, e)
		}
		for j := 0; j < 2+rng.Intn(2); j++ {
			l := loinc[rng.Intn(len(loinc))]
			d.observations = append(d.observations, observation{ID: fmt.Sprintf("obs-%04d-%d", i, j), Patient: p.ID, Code: l.code,
				Effective: day(2019, 2025), Status: []string{"final", "amended", "preliminary"}[rng.Intn(3)],
				Value: float64(rng.Intn(2000)) / 10, Unit: l.unit})
		}
		if rng.Intn(2) == 0 {
			d.conditions = append(d.conditions, condition{ID: fmt.Sprintf("cond-%04d", i), Patient: p.ID, Code: snomed[rng.Intn(len(snomed))],
				Onset: day(2000, 2025), Clinical: []string{"active", "resolved"}[rng.Intn(2)]})
		}
		if rng.Intn(3) == 0 {
			d.medRequests = append(d.medRequests, medRequest{ID: fmt.Sprintf("mr-%04d", i), Patient: p.ID, Rx: rxnorm[rng.Intn(len(rxnorm))],
				Status: []string{"active", "completed", "stopped"}[rng.Intn(3)], Authored: day(2020, 2025)})
		}
	}
	return d
}

func (p patient) json() map[string]any {
	m := map[string]any{"resourceType": "Patient", "id": p.ID, "active": p.Active, "gender": p.Gender, "birthDate": p.BirthDate,
		"name":       []any{map[string]any{"family": p.Family, "given": []any{p.Given}}},
		"identifier": []any{map[string]any{"system": "http://hospital.example/mrn", "value": p.MRN}},
		"address":    []any{map[string]any{"city": p.City}}, "deceasedBoolean": p.Deceased}
	if p.GP != "" {
		m["generalPractitioner"] = []any{map[string]any{"reference": "Practitioner/" + p.GP}}
	}
	return m
}

func (e encounter) json() map[string]any {
	period := map[string]any{"start": e.Start}
	if e.End != "" {
		period["end"] = e.End
	}
	return map[string]any{"resourceType": "Encounter", "id": e.ID, "status": e.Status,
		"class":   map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": e.Class},
		"subject": map[string]any{"reference": "Patient/" + e.Patient}, "period": period}
}

func (o observation) json() map[string]any {
	return map[string]any{"resourceType": "Observation", "id": o.ID, "status": o.Status,
		"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": o.Code}}},
		"subject":           map[string]any{"reference": "Patient/" + o.Patient},
		"effectiveDateTime": o.Effective,
		"valueQuantity":     map[string]any{"value": o.Value, "unit": o.Unit, "system": "http://unitsofmeasure.org", "code": o.Unit}}
}

func (c condition) json() map[string]any {
	return map[string]any{"resourceType": "Condition", "id": c.ID,
		"clinicalStatus": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": c.Clinical}}},
		"code":           map[string]any{"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": c.Code}}},
		"subject":        map[string]any{"reference": "Patient/" + c.Patient}, "onsetDateTime": c.Onset}
}

func (m medRequest) json() map[string]any {
	return map[string]any{"resourceType": "MedicationRequest", "id": m.ID, "status": m.Status, "intent": "order",
		"medicationCodeableConcept": map[string]any{"coding": []any{map[string]any{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": m.Rx}}},
		"subject":                   map[string]any{"reference": "Patient/" + m.Patient}, "authoredOn": m.Authored}
}

// load writes the data set through the service's own write path (validate,
// index, store), batched into transactions for speed.
func (d *dataset) load(t testing.TB, svc *Service, p auth.Principal) {
	t.Helper()
	var all []map[string]any
	for _, id := range d.practitioners {
		all = append(all, map[string]any{"resourceType": "Practitioner", "id": id, "name": []any{map[string]any{"family": "Doc " + id}}})
	}
	for _, x := range d.patients {
		all = append(all, x.json())
	}
	for _, x := range d.encounters {
		all = append(all, x.json())
	}
	for _, x := range d.observations {
		all = append(all, x.json())
	}
	for _, x := range d.conditions {
		all = append(all, x.json())
	}
	for _, x := range d.medRequests {
		all = append(all, x.json())
	}
	ctx := context.Background()
	for start := 0; start < len(all); start += 500 {
		batch := all[start:min(start+500, len(all))]
		err := svc.store.WithTx(ctx, func(tx *store.Tx) error {
			txSvc := *svc
			txSvc.store = &tx.Store
			for _, m := range batch {
				body, _ := json.Marshal(m)
				if _, _, err := txSvc.Update(ctx, p, m["resourceType"].(string), m["id"].(string), body, ""); err != nil {
					return fmt.Errorf("%s/%s: %w", m["resourceType"], m["id"], err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.store.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
}
