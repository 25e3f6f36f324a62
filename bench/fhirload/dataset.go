package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// Reference data for the generated records. Read-only after init.
//
// No family name is a substring of any other name in these lists (a test
// checks it): FHIR's name search matches a prefix and Medplum's in-memory
// search matches a substring, so with this data both return the same
// patients for a family and the peers answer the same question.
var (
	families = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
		"Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Taylor", "Moore", "Jackson", "Novak", "Perez",
		"Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
		"Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Ibarra", "Flores", "Green", "Adams",
		"Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Okafor", "Kowalski",
		"Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart",
		"Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson",
		"Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Sato", "Richardson", "Watson",
		"Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price",
		"Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Haddad"}
	givens = []string{"Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Charlotte", "Mateo",
		"Mia", "Lucas", "Ava", "Levi", "Harper", "Ezra", "Luna", "Asher", "Isla", "Leo",
		"Chloe", "Henry", "Aria", "Theo", "Zoe", "Omar", "Priya", "Wei", "Fatima", "Kenji"}
	cities = []struct{ city, state, zip string }{{"Springfield", "MA", "01103"}, {"Austin", "TX", "78701"},
		{"Denver", "CO", "80202"}, {"Seattle", "WA", "98101"}, {"Columbus", "OH", "43215"}, {"Raleigh", "NC", "27601"}}
	streets = []string{"Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St", "Park Rd", "Lakeview Blvd", "Hillside Ter"}
	// LOINC vital signs and common labs, with plausible value ranges.
	loincCodes = []struct {
		code, display, unit, category string
		lo, hi                        float64
	}{
		{"8867-4", "Heart rate", "/min", "vital-signs", 50, 110},
		{"9279-1", "Respiratory rate", "/min", "vital-signs", 12, 24},
		{"8480-6", "Systolic blood pressure", "mm[Hg]", "vital-signs", 95, 170},
		{"8462-4", "Diastolic blood pressure", "mm[Hg]", "vital-signs", 55, 105},
		{"8310-5", "Body temperature", "Cel", "vital-signs", 36, 39},
		{"29463-7", "Body weight", "kg", "vital-signs", 45, 130},
		{"8302-2", "Body height", "cm", "vital-signs", 150, 200},
		{"39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", "vital-signs", 17, 40},
		{"59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", "vital-signs", 88, 100},
		{"2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", "laboratory", 65, 250},
		{"2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", "laboratory", 120, 300},
		{"4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", "laboratory", 4.5, 11},
	}
	snomedConditions = []struct{ code, display string }{{"38341003", "Hypertensive disorder"}, {"44054006", "Diabetes mellitus type 2"},
		{"195967001", "Asthma"}, {"13645005", "Chronic obstructive lung disease"}, {"35489007", "Depressive disorder"},
		{"55822004", "Hyperlipidemia"}, {"40055000", "Chronic sinusitis"}, {"239873007", "Osteoarthritis of knee"}}
	rxnormMeds = []struct{ code, display string }{{"197361", "amlodipine 5 MG Oral Tablet"}, {"860975", "metformin hydrochloride 500 MG 24HR Extended Release Oral Tablet"},
		{"314076", "lisinopril 10 MG Oral Tablet"}, {"617314", "atorvastatin 10 MG Oral Tablet"}, {"745679", "albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"},
		{"312940", "sertraline 50 MG Oral Tablet"}}
)

// patientsPerBundle sets the transaction size of the load (about 380
// entries per bundle).
const patientsPerBundle = 20

// loadBundle is one transaction of the data set.
type loadBundle struct {
	body []byte
	// patientAt maps an entry position to the patient index it creates:
	// a transaction response lists entries in request order.
	patientAt map[int]int
}

// dataset is the deterministic 1,000-patient data set: the same bytes go to
// every target.
type dataset struct {
	patients int
	bundles  []loadBundle
	family   []string       // family name of patient i
	counts   map[string]int // resources per type
}

// generate builds the data set from seed: per patient 2-4 encounters, 8-12
// observations (LOINC, valueQuantity), 1-3 conditions and 1-3 medication
// requests, about 18 resources on average.
func generate(seed uint64, patients int) (*dataset, error) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	ds := &dataset{patients: patients, counts: map[string]int{}}
	for start := 0; start < patients; start += patientsPerBundle {
		var entries []any
		b := loadBundle{patientAt: map[int]int{}}
		add := func(res map[string]any, fullURL string) {
			e := map[string]any{"resource": res, "request": map[string]any{"method": "POST", "url": res["resourceType"]}}
			if fullURL != "" {
				e["fullUrl"] = fullURL
			}
			entries = append(entries, e)
			ds.counts[res["resourceType"].(string)]++
		}
		for i := start; i < min(start+patientsPerBundle, patients); i++ {
			pat := patient(r, i)
			ds.family = append(ds.family, pat["name"].([]any)[0].(map[string]any)["family"].(string))
			b.patientAt[len(entries)] = i
			pref := fmt.Sprintf("urn:uuid:00000000-0000-4000-8000-%012d", i)
			add(pat, pref)
			var encs []string
			for k := range 2 + r.IntN(3) {
				eref := fmt.Sprintf("urn:uuid:00000000-0000-4000-9%03d-%012d", k, i)
				encs = append(encs, eref)
				add(encounter(r, pref), eref)
			}
			for range 8 + r.IntN(5) {
				add(observation(r, pref, encs[r.IntN(len(encs))]), "")
			}
			for range 1 + r.IntN(3) {
				add(condition(r, pref), "")
			}
			for range 1 + r.IntN(3) {
				add(medicationRequest(r, pref), "")
			}
		}
		body, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": entries})
		if err != nil {
			return nil, fmt.Errorf("encode bundle: %w", err)
		}
		b.body = body
		ds.bundles = append(ds.bundles, b)
	}
	return ds, nil
}

func coding(system, code, display string) map[string]any {
	c := map[string]any{"system": system, "code": code}
	if display != "" {
		c["display"] = display
	}
	return c
}

func concept(system, code, display string) map[string]any {
	c := map[string]any{"coding": []any{coding(system, code, display)}}
	if display != "" {
		c["text"] = display
	}
	return c
}

func ref(r string) map[string]any { return map[string]any{"reference": r} }

// day returns a date between 2015 and 2025.
func day(r *rand.Rand) time.Time {
	return time.Date(2015+r.IntN(11), time.Month(1+r.IntN(12)), 1+r.IntN(28), 7+r.IntN(11), r.IntN(60), 0, 0, time.UTC)
}

func patient(r *rand.Rand, i int) map[string]any {
	c := cities[r.IntN(len(cities))]
	given := []any{givens[r.IntN(len(givens))]}
	if r.IntN(3) == 0 {
		given = append(given, givens[r.IntN(len(givens))])
	}
	return map[string]any{
		"resourceType": "Patient",
		"identifier": []any{map[string]any{"use": "usual", "type": concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical record number"),
			"system": "urn:oid:2.16.840.1.113883.19.5", "value": fmt.Sprintf("MRN%07d", 1000000+i)}},
		"active": true,
		"name":   []any{map[string]any{"use": "official", "family": families[r.IntN(len(families))], "given": given}},
		"telecom": []any{map[string]any{"system": "phone", "value": fmt.Sprintf("555-%03d-%04d", r.IntN(1000), r.IntN(10000)), "use": "home"},
			map[string]any{"system": "email", "value": fmt.Sprintf("patient%d@example.org", i)}},
		"gender":    []string{"female", "male"}[r.IntN(2)],
		"birthDate": time.Date(1935+r.IntN(85), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format(time.DateOnly),
		"address": []any{map[string]any{"use": "home", "line": []any{fmt.Sprintf("%d %s", 1+r.IntN(9000), streets[r.IntN(len(streets))])},
			"city": c.city, "state": c.state, "postalCode": c.zip, "country": "US"}},
	}
}

func encounter(r *rand.Rand, pref string) map[string]any {
	start := day(r)
	return map[string]any{
		"resourceType": "Encounter",
		"status":       "finished",
		"class":        coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
		"type":         []any{concept("http://snomed.info/sct", "185349003", "Encounter for check up")},
		"subject":      ref(pref),
		"period":       map[string]any{"start": start.Format(time.RFC3339), "end": start.Add(time.Duration(15+r.IntN(45)) * time.Minute).Format(time.RFC3339)},
	}
}

// observation is a final vital sign or lab result; enc may be "".
func observation(r *rand.Rand, pref, enc string) map[string]any {
	l := loincCodes[r.IntN(len(loincCodes))]
	o := map[string]any{
		"resourceType":      "Observation",
		"status":            "final",
		"category":          []any{concept("http://terminology.hl7.org/CodeSystem/observation-category", l.category, "")},
		"code":              concept("http://loinc.org", l.code, l.display),
		"subject":           ref(pref),
		"effectiveDateTime": day(r).Format(time.RFC3339),
		"valueQuantity": map[string]any{"value": float64(int((l.lo+r.Float64()*(l.hi-l.lo))*10)) / 10, "unit": l.unit,
			"system": "http://unitsofmeasure.org", "code": l.unit},
	}
	if enc != "" {
		o["encounter"] = ref(enc)
	}
	return o
}

func condition(r *rand.Rand, pref string) map[string]any {
	c := snomedConditions[r.IntN(len(snomedConditions))]
	return map[string]any{
		"resourceType":       "Condition",
		"clinicalStatus":     concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
		"verificationStatus": concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
		"category":           []any{concept("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item", "Problem List Item")},
		"code":               concept("http://snomed.info/sct", c.code, c.display),
		"subject":            ref(pref),
		"onsetDateTime":      day(r).Format(time.RFC3339),
	}
}

func medicationRequest(r *rand.Rand, pref string) map[string]any {
	m := rxnormMeds[r.IntN(len(rxnormMeds))]
	return map[string]any{
		"resourceType":              "MedicationRequest",
		"status":                    "active",
		"intent":                    "order",
		"medicationCodeableConcept": concept("http://www.nlm.nih.gov/research/umls/rxnorm", m.code, m.display),
		"subject":                   ref(pref),
		"authoredOn":                day(r).Format(time.RFC3339),
		"dosageInstruction":         []any{map[string]any{"text": "1 tablet by mouth once daily"}},
	}
}
