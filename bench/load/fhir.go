package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

var (
	families = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
		"Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
		"Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
		"Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
		"Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts"}
	givens = []string{"James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "Ana", "Luis"}
	loinc  = []struct{ code, unit string }{{"8867-4", "/min"}, {"8480-6", "mm[Hg]"}, {"29463-7", "kg"}, {"8310-5", "Cel"}, {"2339-0", "mg/dL"}}
	snomed = []string{"38341003", "44054006", "195967001", "73211009", "35489007"}
	rxnorm = []string{"197361", "860975", "314076", "617314"}
)

// dataset is what was loaded: the ids the scenarios pick from.
type dataset struct {
	patients []string
}

func observation(r *rand.Rand, patient string) map[string]any {
	l := loinc[r.IntN(len(loinc))]
	return map[string]any{"resourceType": "Observation", "status": "final",
		"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": l.code}}},
		"subject":           map[string]any{"reference": patient},
		"effectiveDateTime": time.Date(2020+r.IntN(6), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), 0, 0, 0, time.UTC).Format(time.RFC3339),
		"valueQuantity":     map[string]any{"value": 40 + r.Float64()*100, "unit": l.unit, "system": "http://unitsofmeasure.org", "code": l.unit}}
}

// load creates the data set with transaction bundles of 25 patients and
// their encounters, observations, conditions and medication requests
// (about 18 resources per patient).
func load(ctx context.Context, base, token string, patients int) (dataset, error) {
	r := rand.New(rand.NewPCG(42, 7))
	client := newClient(4)
	var ds dataset
	for start := 0; start < patients; start += 25 {
		var entries []any
		add := func(res map[string]any, fullURL string) {
			e := map[string]any{"resource": res, "request": map[string]any{"method": "POST", "url": res["resourceType"]}}
			if fullURL != "" {
				e["fullUrl"] = fullURL
			}
			entries = append(entries, e)
		}
		for i := start; i < min(start+25, patients); i++ {
			pu := fmt.Sprintf("urn:uuid:00000000-0000-4000-8000-%012d", i)
			add(map[string]any{"resourceType": "Patient", "active": true, "gender": []string{"male", "female"}[r.IntN(2)],
				"birthDate":  fmt.Sprintf("%d-%02d-%02d", 1930+r.IntN(90), 1+r.IntN(12), 1+r.IntN(28)),
				"identifier": []any{map[string]any{"system": "urn:mrn", "value": fmt.Sprintf("MRN%06d", i)}},
				"name":       []any{map[string]any{"family": families[r.IntN(len(families))], "given": []any{givens[r.IntN(len(givens))]}}},
				"address":    []any{map[string]any{"city": []string{"Boston", "Austin", "Denver", "Seattle"}[r.IntN(4)]}}}, pu)
			for k := 0; k < 3; k++ {
				add(map[string]any{"resourceType": "Encounter", "status": "finished",
					"class":   map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
					"subject": map[string]any{"reference": pu}}, "")
			}
			for k := 0; k < 10; k++ {
				add(observation(r, pu), "")
			}
			for k := 0; k < 2; k++ {
				add(map[string]any{"resourceType": "Condition", "subject": map[string]any{"reference": pu},
					"code": map[string]any{"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": snomed[r.IntN(len(snomed))]}}}}, "")
				add(map[string]any{"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": map[string]any{"reference": pu},
					"medicationCodeableConcept": map[string]any{"coding": []any{map[string]any{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rxnorm[r.IntN(len(rxnorm))]}}}}, "")
			}
		}
		b, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": entries})
		code, body, err := do(ctx, client, "POST", base, token, b, "application/fhir+json")
		if err != nil || code != 200 {
			return ds, fmt.Errorf("load bundle: %d %v %.300s", code, err, body)
		}
		var out struct {
			Entry []struct {
				Response struct{ Location string } `json:"response"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return ds, err
		}
		for _, e := range out.Entry {
			if strings.HasPrefix(e.Response.Location, "Patient/") {
				id := strings.SplitN(strings.TrimPrefix(e.Response.Location, "Patient/"), "/", 2)[0]
				ds.patients = append(ds.patients, id)
			}
		}
	}
	return ds, nil
}

// scenarios are the four requests against one FHIR base.
func scenarios(base, token string, ds dataset) []struct {
	name string
	fn   request
} {
	return []struct {
		name string
		fn   request
	}{
		{"read", func(ctx context.Context, c *http.Client) (int, error) {
			code, _, err := do(ctx, c, "GET", base+"/Patient/"+pick(ds.patients), token, nil, "")
			return code, err
		}},
		{"create", func(ctx context.Context, c *http.Client) (int, error) {
			b, _ := json.Marshal(observation(rand.New(rand.NewPCG(rand.Uint64(), 1)), "Patient/"+pick(ds.patients)))
			code, _, err := do(ctx, c, "POST", base+"/Observation", token, b, "application/fhir+json")
			return code, err
		}},
		{"search-obs", func(ctx context.Context, c *http.Client) (int, error) {
			q := url.Values{"subject": {"Patient/" + pick(ds.patients)}, "code": {"http://loinc.org|" + pick(loinc).code}}
			code, _, err := do(ctx, c, "GET", base+"/Observation?"+q.Encode(), token, nil, "")
			return code, err
		}},
		{"search-name", func(ctx context.Context, c *http.Client) (int, error) {
			code, _, err := do(ctx, c, "GET", base+"/Patient?name="+pick(families), token, nil, "")
			return code, err
		}},
	}
}

// bare serves a fixed Patient on every path: the ceiling of a Go HTTP
// server on this machine.
func bare() (string, func()) {
	patient := []byte(`{"resourceType":"Patient","id":"example","meta":{"versionId":"1","lastUpdated":"2026-11-22T10:00:00Z"},` +
		`"identifier":[{"system":"urn:mrn","value":"MRN000001"}],"active":true,"name":[{"family":"Smith","given":["James"]}],` +
		`"gender":"male","birthDate":"1970-01-01","address":[{"city":"Boston"}]}`)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Write(patient)
	})}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }
}

func fhirSuite(ctx context.Context, o options, w *ward) error {
	t0 := time.Now()
	ds, err := load(ctx, w.url+"/fhir", w.token, o.patients)
	if err != nil {
		return err
	}
	fmt.Printf("loaded %d patients (about %d resources) in %s\n\n%s\n", len(ds.patients), len(ds.patients)*18, time.Since(t0).Round(time.Millisecond), header)
	var baseline *stats
	if selected(o, "bare") {
		url, stop := bare()
		s := measure(ctx, "bare net/http (fixed Patient)", o.clients, o.warmup, o.duration, func(ctx context.Context, c *http.Client) (int, error) {
			code, _, err := do(ctx, c, "GET", url+"/Patient/x", w.token, nil, "")
			return code, err
		})
		stop()
		baseline = &s
		fmt.Println(s.row(nil))
	}
	var peerDS dataset
	if o.peer != "" {
		if peerDS, err = load(ctx, o.peer, "", o.patients); err != nil {
			return fmt.Errorf("peer: %w", err)
		}
	}
	for _, sc := range scenarios(w.url+"/fhir", w.token, ds) {
		if !selected(o, sc.name) {
			continue
		}
		s := measure(ctx, "ward "+o.db+" "+sc.name, o.clients, o.warmup, o.duration, sc.fn)
		fmt.Println(s.row(baseline))
		if s.firstErr != "" {
			fmt.Println("  first error:", s.firstErr)
		}
		if o.peer != "" {
			for _, psc := range scenarios(o.peer, "", peerDS) {
				if psc.name == sc.name {
					ps := measure(ctx, "peer "+sc.name, o.clients, o.warmup, o.duration, psc.fn)
					fmt.Println(ps.row(baseline))
					if ps.rate > 0 {
						fmt.Printf("  ward / peer: %.2f\n", s.rate/ps.rate)
					}
				}
			}
		}
	}
	return nil
}
