package bulk

import (
	"net/url"
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
	// Patients are a Group export's members (fixed at kick-off).
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
