package bulk

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/schema"
)

// Export levels (Bulk Data IG 2.0 "Bulk Data Kick-off Request").
const (
	LevelSystem  = "system"
	LevelPatient = "patient"
	LevelGroup   = "group"
)

// maxTypes bounds _type: R4 has 145 resource types, so a longer list only
// repeats or invents names.
const maxTypes = 200

// maxFilters bounds _typeFilter searches (each is a clause set in every
// batch's SQL).
const maxFilters = 50

// Params is a parsed kick-off request.
type Params struct {
	Level string `json:"level"`
	Group string `json:"group,omitempty"`
	// Types are _type's, nil for every type the principal may search.
	Types []string  `json:"types,omitempty"`
	Since time.Time `json:"since"`
	// Filters are _typeFilter's searches by type, each a query string.
	Filters map[string][]string `json:"filters,omitempty"`
	// Patients are a Group export's members, or the patients a POST
	// kick-off's patient parameter names (both fixed at kick-off): the
	// export holds their compartments only.
	Patients []string `json:"patients,omitempty"`
}

// outputFormats are the _outputFormat values the IG asks servers to take.
var outputFormats = []string{"application/fhir+ndjson", "application/ndjson", "ndjson"}

// ParseParams reads a kick-off request's query. A parameter Ward does not
// support is a 400, or ignored when lenient (Prefer: handling=lenient).
func ParseParams(level, group string, q url.Values, lenient bool) (Params, error) {
	p := Params{Level: level, Group: group}
	for k, vs := range q {
		switch k {
		case "_type":
			for _, v := range vs {
				for _, t := range strings.Split(v, ",") {
					t = strings.TrimSpace(t)
					if !schema.IsResourceType(t) {
						return Params{}, fault.Invalid("_type: %q is not a FHIR R4 resource type", clip(t))
					}
					if !slices.Contains(p.Types, t) {
						p.Types = append(p.Types, t)
					}
					if len(p.Types) > maxTypes {
						return Params{}, fault.Invalid("_type names more than %d types", maxTypes)
					}
				}
			}
		case "_since":
			if len(vs) != 1 {
				return Params{}, fault.Invalid("_since may be given once")
			}
			t, err := parseInstant(vs[0])
			if err != nil {
				return Params{}, err
			}
			p.Since = t
		case "_typeFilter":
			n := 0
			for _, v := range vs {
				for _, f := range splitFilters(v) {
					typ, query, ok := strings.Cut(f, "?")
					if !ok || !schema.IsResourceType(typ) {
						return Params{}, fault.Invalid("_typeFilter %q is not [type]?[search]", clip(f))
					}
					if n++; n > maxFilters {
						return Params{}, fault.Invalid("_typeFilter holds more than %d searches", maxFilters)
					}
					if p.Filters == nil {
						p.Filters = map[string][]string{}
					}
					p.Filters[typ] = append(p.Filters[typ], query)
				}
			}
		case "_outputFormat":
			for _, v := range vs {
				if !slices.Contains(outputFormats, v) {
					return Params{}, fault.Invalid("_outputFormat %q is not supported: use application/fhir+ndjson", clip(v))
				}
			}
		default:
			if !lenient {
				return Params{}, fault.Invalid("parameter %q is not supported by $export (Prefer: handling=lenient ignores it)", clip(k))
			}
		}
	}
	for typ := range p.Filters {
		if p.Types != nil && !slices.Contains(p.Types, typ) {
			return Params{}, fault.Invalid("_typeFilter names %s, which _type does not", typ)
		}
	}
	return p, nil
}

// splitFilters splits a _typeFilter value at the commas between searches:
// a comma inside a search (a value list) follows "=" or another value,
// never begins "Type?".
func splitFilters(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		typ, _, ok := strings.Cut(part, "?")
		if len(out) > 0 && (!ok || !schema.IsResourceType(typ)) {
			out[len(out)-1] += "," + part
			continue
		}
		out = append(out, part)
	}
	return out
}

// parseInstant reads _since: a FHIR instant (a time zone is required).
func parseInstant(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.Year() < 1 {
		return time.Time{}, fault.Invalid("_since %q is not a FHIR instant (like 2026-01-02T15:04:05Z)", clip(v))
	}
	return t.UTC(), nil
}

// clip keeps echoed input short.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// idPattern is FHIR's id (R4 datatypes.html#id).
var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// maxPatients bounds a POST kick-off's patient parameters (each is
// checked against the caller's access at kick-off).
const maxPatients = 1000

// parameter is one entry of a Parameters resource: its name and value[x]
// kept raw (which value[x] does not matter: every one Ward takes is a
// string, or a Reference for patient).
type parameter struct {
	Name  string
	Value json.RawMessage
	Kind  string // the value[x] element's name
}

// ParseParameters reads a POST kick-off's body, a FHIR Parameters
// resource (Bulk Data IG 2.0 "POST kick-off"), into the query form
// ParseParams takes and the patient references apart ("Patient/[id]",
// POST only in the IG). Values that are not primitives (a resource, parts)
// and a patient that is not a relative Patient reference are a 400; a
// name ParseParams does not know is left to it (400 unless lenient).
func ParseParameters(body []byte) (url.Values, []string, error) {
	var res struct {
		ResourceType string                       `json:"resourceType"`
		Parameter    []map[string]json.RawMessage `json:"parameter"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&res); err != nil {
		return nil, nil, fault.Invalid("the $export body is not a FHIR Parameters resource in JSON: %v", clip(err.Error()))
	}
	if dec.More() {
		return nil, nil, fault.Invalid("the $export body holds more than one JSON value")
	}
	if res.ResourceType != "Parameters" {
		return nil, nil, fault.Invalid("the $export body is a %q, not a Parameters resource", clip(res.ResourceType))
	}
	q := url.Values{}
	var patients []string
	for i, raw := range res.Parameter {
		p, err := readParameter(raw)
		if err != nil {
			return nil, nil, fault.Invalid("Parameters.parameter[%d]: %v", i, err)
		}
		if p.Name == "patient" {
			id, err := patientRef(p)
			if err != nil {
				return nil, nil, fault.Invalid("Parameters.parameter[%d] (patient): %v", i, err)
			}
			if !slices.Contains(patients, id) {
				patients = append(patients, id)
			}
			if len(patients) > maxPatients {
				return nil, nil, fault.Invalid("patient is given more than %d times", maxPatients)
			}
			continue
		}
		var s string
		if err := json.Unmarshal(p.Value, &s); err != nil {
			return nil, nil, fault.Invalid("Parameters.parameter[%d] (%s): %s is not a primitive value", i, clip(p.Name), p.Kind)
		}
		q.Add(p.Name, s)
	}
	return q, patients, nil
}

// readParameter reads one Parameters.parameter: a name and exactly one
// value[x] (id and extension are ignored).
func readParameter(raw map[string]json.RawMessage) (parameter, error) {
	var p parameter
	if err := json.Unmarshal(raw["name"], &p.Name); err != nil || p.Name == "" {
		return p, fault.Invalid("a parameter needs a name")
	}
	for k, v := range raw {
		switch {
		case k == "name" || k == "id" || k == "extension" || k == "modifierExtension":
		case strings.HasPrefix(k, "value") && len(k) > len("value"):
			if p.Kind != "" {
				return p, fault.Invalid("%s has two values (%s, %s)", clip(p.Name), p.Kind, clip(k))
			}
			p.Kind, p.Value = k, v
		default:
			return p, fault.Invalid("%s has %s, which $export does not take (a value[x] only)", clip(p.Name), clip(k))
		}
	}
	if p.Kind == "" {
		return p, fault.Invalid("%s has no value", clip(p.Name))
	}
	return p, nil
}

// patientRef reads a patient parameter: a valueReference to
// "Patient/[id]" on this server.
func patientRef(p parameter) (string, error) {
	var ref struct {
		Reference string `json:"reference"`
	}
	if p.Kind != "valueReference" || json.Unmarshal(p.Value, &ref) != nil {
		return "", fault.Invalid("patient must be a valueReference")
	}
	id, ok := strings.CutPrefix(ref.Reference, "Patient/")
	if !ok || !idPattern.MatchString(id) {
		return "", fault.Invalid("patient %q is not a reference of the form Patient/[id]", clip(ref.Reference))
	}
	return id, nil
}
