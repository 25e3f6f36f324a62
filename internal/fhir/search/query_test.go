package search

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func mustValues(t *testing.T, raw string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatalf("url.ParseQuery(%q): %v", raw, err)
	}
	return v
}

func ms(t *testing.T, s string) int64 {
	t.Helper()
	lo, _, err := DateRange(s)
	if err != nil {
		t.Fatal(err)
	}
	return lo
}

// clause is the expected shape of one parsed clause.
type clause struct {
	key    string // canonical key
	target string // TargetType
	values []Cond
}

func TestParseQueryClauses(t *testing.T) {
	tests := []struct {
		typ, query string
		want       []clause
	}{
		{"Patient", "name=Smith,J%C3%B6nes", []clause{{key: "name", values: []Cond{{Text: "Smith", String: "smith"}, {Text: "Jönes", String: "jones"}}}}},
		{"Patient", "name=a&name=b", []clause{{key: "name", values: []Cond{{Text: "a", String: "a"}}}, {key: "name", values: []Cond{{Text: "b", String: "b"}}}}},
		{"Patient", `name=a\,b`, []clause{{key: "name", values: []Cond{{Text: "a,b", String: "a,b"}}}}},
		{"Patient", "name=%20x%20%20", []clause{{key: "name", values: []Cond{{Text: "x", String: "x"}}}}},
		{"Patient", "name=", nil},
		{"Patient", "name:exact=Ab", []clause{{key: "name:exact", values: []Cond{{Text: "Ab", String: "ab"}}}}},
		{"Patient", "family:contains=mal", []clause{{key: "family:contains", values: []Cond{{Text: "mal", String: "mal"}}}}},
		{"Patient", "gender:missing=true", []clause{{key: "gender:missing", values: []Cond{{Text: "true", Missing: true}}}}},
		{"Patient", "birthdate:missing=false", []clause{{key: "birthdate:missing", values: []Cond{{Text: "false"}}}}},
		{"Patient", "birthdate=ge2020-01", []clause{{key: "birthdate", values: []Cond{{Prefix: Ge, Text: "2020-01", Low: ms(t, "2020-01"), High: ms(t, "2020-02")}}}}},
		{"Patient", "birthdate=2020", []clause{{key: "birthdate", values: []Cond{{Prefix: Eq, Text: "2020", Low: ms(t, "2020"), High: ms(t, "2021")}}}}},
		{"Patient", "identifier=http://x|123", []clause{{key: "identifier", values: []Cond{{Text: "http://x|123", System: "http://x", Code: "123", HasSystem: true}}}}},
		{"Patient", "identifier=|123", []clause{{key: "identifier", values: []Cond{{Text: "|123", Code: "123", HasSystem: true}}}}},
		{"Patient", "identifier=http://x|", []clause{{key: "identifier", values: []Cond{{Text: "http://x|", System: "http://x", HasSystem: true}}}}},
		{"Patient", "identifier=123", []clause{{key: "identifier", values: []Cond{{Text: "123", Code: "123"}}}}},
		{"Patient", `identifier=a\|b`, []clause{{key: "identifier", values: []Cond{{Text: "a|b", Code: "a|b"}}}}},
		{"Patient", "gender:not=male", []clause{{key: "gender:not", values: []Cond{{Text: "male", Code: "male"}}}}},
		{"Observation", "code:text=Blood%20Pressure", []clause{{key: "code:text", values: []Cond{{Text: "Blood Pressure", String: "blood pressure"}}}}},
		{"Observation", "code:in=http://vs/x", []clause{{key: "code:in", values: []Cond{{Text: "http://vs/x"}}}}},
		{"Observation", "code:not-in=http://vs/x", []clause{{key: "code:not-in", values: []Cond{{Text: "http://vs/x"}}}}},
		{"Observation", "code:below=http://snomed.info/sct|235862008", []clause{{key: "code:below", values: []Cond{{Text: "http://snomed.info/sct|235862008", System: "http://snomed.info/sct", Code: "235862008", HasSystem: true}}}}},
		{"Patient", "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053", []clause{{key: "identifier:of-type",
			values: []Cond{{System: "http://terminology.hl7.org/CodeSystem/v2-0203", Code: "MR", HasSystem: true, Text: "446053"}}}}},
		{"Observation", "value-quantity=gt5.4|http://unitsofmeasure.org|mg", []clause{{key: "value-quantity",
			values: []Cond{{Prefix: Gt, Text: "5.4", Number: 5.4, System: "http://unitsofmeasure.org", Code: "mg", HasSystem: true}}}}},
		{"Observation", "value-quantity=5.4", []clause{{key: "value-quantity", values: []Cond{{Prefix: Eq, Text: "5.4", Number: 5.4}}}}},
		{"Observation", "value-quantity=ap5.4||mg", []clause{{key: "value-quantity", values: []Cond{{Prefix: Ap, Text: "5.4", Number: 5.4, Code: "mg", HasSystem: true}}}}},
		{"RiskAssessment", "probability=le0.5,1e-1", []clause{{key: "probability", values: []Cond{{Prefix: Le, Text: "0.5", Number: 0.5}, {Prefix: Eq, Text: "1e-1", Number: 0.1}}}}},
		{"Observation", "subject=Patient/123", []clause{{key: "subject", values: []Cond{{Text: "Patient/123", RefType: "Patient", RefID: "123"}}}}},
		{"Observation", "subject=123", []clause{{key: "subject", values: []Cond{{Text: "123", RefID: "123"}}}}},
		{"Observation", "subject:Patient=123", []clause{{key: "subject:Patient", target: "Patient", values: []Cond{{Text: "123", RefType: "Patient", RefID: "123"}}}}},
		{"Observation", "subject=http://other.org/fhir/Patient/1", []clause{{key: "subject", values: []Cond{{Text: "http://other.org/fhir/Patient/1", RefURL: "http://other.org/fhir/Patient/1"}}}}},
		{"Observation", "subject:identifier=http://sys|v1", []clause{{key: "subject:identifier", values: []Cond{{Text: "http://sys|v1", System: "http://sys", Code: "v1", HasSystem: true}}}}},
		{"Observation", "code-value-quantity=http://loinc.org|8480-6$gt100", []clause{{key: "code-value-quantity", values: []Cond{{Components: []Cond{
			{Text: "http://loinc.org|8480-6", System: "http://loinc.org", Code: "8480-6", HasSystem: true}, {Prefix: Gt, Text: "100", Number: 100}}}}}}},
		{"Patient", "_id=a,b", []clause{{key: "_id", values: []Cond{{Text: "a", Code: "a"}, {Text: "b", Code: "b"}}}}},
		{"Patient", "_lastUpdated=gt2020-01-01T00:00:00Z", []clause{{key: "_lastUpdated",
			values: []Cond{{Prefix: Gt, Text: "2020-01-01T00:00:00Z", Low: ms(t, "2020-01-01"), High: ms(t, "2020-01-01") + 1000}}}}},
		{"Patient", "_tag=http://x|y", []clause{{key: "_tag", values: []Cond{{Text: "http://x|y", System: "http://x", Code: "y", HasSystem: true}}}}},
		{"Patient", "_security=R", []clause{{key: "_security", values: []Cond{{Text: "R", Code: "R"}}}}},
		{"Patient", "_profile=http://p/x", []clause{{key: "_profile", values: []Cond{{Text: "http://p/x"}}}}},
		{"Patient", "_source=http://s", []clause{{key: "_source", values: []Cond{{Text: "http://s"}}}}},
		{"Observation", "_format=json&_pretty=true&status=final", []clause{{key: "status", values: []Cond{{Text: "final", Code: "final"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"?"+tt.query, func(t *testing.T) {
			q, err := ParseQuery(tt.typ, mustValues(t, tt.query), false)
			if err != nil {
				t.Fatal(err)
			}
			if len(q.Clauses) != len(tt.want) {
				t.Fatalf("got %d clauses, want %d", len(q.Clauses), len(tt.want))
			}
			for i, w := range tt.want {
				c := q.Clauses[i]
				if c.key() != w.key || c.TargetType != w.target {
					t.Errorf("clause %d: key %q target %q, want %q %q", i, c.key(), c.TargetType, w.key, w.target)
				}
				if !reflect.DeepEqual(c.Values, w.values) {
					t.Errorf("clause %d values:\n got %+v\nwant %+v", i, c.Values, w.values)
				}
			}
		})
	}
}

func TestParseQueryChainsAndHas(t *testing.T) {
	tests := []struct {
		typ, query         string
		key, target, inner string
	}{
		{"Observation", "subject:Patient.name=x", "subject:Patient.name", "Patient", "name"},
		{"Observation", "patient.name=x", "patient:Patient.name", "Patient", "name"},
		{"Observation", "subject.birthdate=2020", "subject:Patient.birthdate", "Patient", "birthdate"},
		{"Observation", "subject:Patient.name:exact=x", "subject:Patient.name:exact", "Patient", "name"},
		{"Encounter", "subject:Patient.identifier=s|1", "subject:Patient.identifier", "Patient", "identifier"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := ParseQuery(tt.typ, mustValues(t, tt.query), false)
			if err != nil {
				t.Fatal(err)
			}
			c := q.Clauses[0]
			if c.key() != tt.key || c.TargetType != tt.target || c.Chain == nil || c.Chain.Param.Name != tt.inner || c.Chain.Param.Base != "Patient" {
				t.Fatalf("got key %q target %q chain %+v", c.key(), c.TargetType, c.Chain)
			}
			if len(c.Values) != 0 || len(c.Chain.Values) != 1 {
				t.Fatalf("values belong to the chained clause: %+v / %+v", c.Values, c.Chain.Values)
			}
		})
	}

	q, err := ParseQuery("Patient", mustValues(t, "_has:Observation:patient:code=1234-5"), false)
	if err != nil {
		t.Fatal(err)
	}
	r := q.Clauses[0].Reverse
	if r == nil || r.Type != "Observation" || r.Ref.Name != "patient" || r.Clause.Param.Name != "code" || r.Clause.Values[0].Code != "1234-5" {
		t.Fatalf("_has parsed as %+v", q.Clauses[0])
	}
}

func TestParseQueryResultParams(t *testing.T) {
	q, err := ParseQuery("Observation", mustValues(t, "_count=5%20%20%20%20%20%20&_offset=10&_sort=-date,code&_sort=_id"+
		"&_total=accurate&_summary=count&_elements=id,code&_include=Observation:subject&_include=Observation:subject:Patient"+
		"&_include:iterate=Patient:general-practitioner&_revinclude=Provenance:target&_revinclude:recurse=Observation:*"), false)
	if err != nil {
		t.Fatal(err)
	}
	want := &Query{
		ResourceType: "Observation", Count: 5, Offset: 10,
		Sort:  []SortKey{{"date", true}, {"code", false}, {"_id", false}},
		Total: "accurate", Summary: "count", Elements: []string{"id", "code"},
		Include: []Include{{Type: "Observation", Param: "subject"}, {Type: "Observation", Param: "subject", Target: "Patient"},
			{Type: "Patient", Param: "general-practitioner", Iterate: true}},
		RevInclude: []Include{{Type: "Provenance", Param: "target"}, {Type: "Observation", Param: "*", Iterate: true}},
	}
	if !reflect.DeepEqual(q, want) {
		t.Fatalf("got  %+v\nwant %+v", q, want)
	}
	if got := q.Encode(); got != "_count=5&_offset=10&_sort=-date,code,_id&_total=accurate&_summary=count&_elements=id,code"+
		"&_include=Observation:subject&_include=Observation:subject:Patient&_include:iterate=Patient:general-practitioner"+
		"&_revinclude=Provenance:target&_revinclude:iterate=Observation:*" {
		t.Errorf("Encode = %s", got)
	}
	q, err = ParseQuery("Patient", mustValues(t, "_include=*"), false)
	if err != nil || len(q.Include) != 1 || q.Include[0].Type != "*" || q.Count != -1 {
		t.Fatalf("_include=*: %+v %v", q, err)
	}
}

func TestParseQueryLenient(t *testing.T) {
	q, err := ParseQuery("Patient", mustValues(t, "foo=1&name=x&subject.name=y&_has:Observation:patient:nope=1"), true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(q.Ignored, []string{"_has:Observation:patient:nope", "foo", "subject.name"}) || len(q.Clauses) != 1 {
		t.Fatalf("ignored %v, clauses %d", q.Ignored, len(q.Clauses))
	}
	if q.Encode() != "name=x" {
		t.Errorf("Encode kept ignored params: %s", q.Encode())
	}
}

func TestParseQueryErrors(t *testing.T) {
	tests := []struct {
		typ, query, param, msg string
	}{
		{"Patient", "foo=1", "foo", `unknown search parameter "foo" for Patient`},
		{"Patient", "birthdate=2020-13", "birthdate", `invalid date "2020-13"`},
		{"Patient", "birthdate=gt2020-02-30", "birthdate", `invalid date "2020-02-30"`},
		{"Patient", "name:foo=x", "name:foo", "modifier :foo is not valid on string parameter name"},
		{"Patient", "gender:exact=x", "gender:exact", "modifier :exact is not valid"},
		{"Patient", "gender:missing=maybe", "gender:missing", "invalid :missing value"},
		{"Patient", "_count=-1", "_count", "invalid _count"},
		{"Patient", "_count=abc", "_count", "invalid _count"},
		{"Patient", "_count=1&_count=2", "_count", "more than once"},
		{"Patient", "_sort=nope", "_sort", `cannot sort by "nope"`},
		{"Observation", "_sort=code-value-quantity", "_sort", `cannot sort by "code-value-quantity": a composite parameter`},
		{"Patient", "_total=some", "_total", "invalid _total"},
		{"Patient", "_summary=yes", "_summary", "invalid _summary"},
		{"Patient", "_elements=a b", "_elements", "invalid element"},
		{"Observation", "subject=Medication/1", "subject", "subject cannot reference Medication"},
		{"Observation", "subject:Medication=1", "subject:Medication", "subject cannot reference Medication"},
		{"Observation", "subject.name=x", "subject.name", "ambiguous"},
		{"Observation", "subject:Patient.organization.partof.partof.name=x", "subject:Patient.organization.partof.partof.name", "more than 3 references"},
		{"Observation", "subject:Patient.organization._has:Patient:organization:name=x", "subject:Patient.organization._has:Patient:organization:name", "cannot end in _has"},
		{"Patient", "name.family=x", "name.family", "cannot be chained"},
		{"Patient", "_include=Foo:bar", "_include", `unknown resource type "Foo"`},
		{"Observation", "_include=Observation:code", "_include", "not a reference parameter"},
		{"Patient", "_include=Observation:subject", "_include", "must start from Patient"},
		{"Patient", "_revinclude=Observation:specimen", "_revinclude", "cannot reference Patient"},
		{"Observation", "value-quantity=abc", "value-quantity", `invalid number "abc"`},
		{"Observation", "value-quantity=1|mg", "value-quantity", "invalid quantity"},
		{"Observation", "value-quantity=inf", "value-quantity", "invalid number"},
		{"Observation", "code-value-quantity=x", "code-value-quantity", "needs 2 parts"},
		{"Patient", "identifier:of-type=a|b", "identifier:of-type", "invalid :of-type"},
		{"Patient", "identifier=a|b|c", "identifier", "invalid token"},
		{"Encounter", "_has:Observation:specimen:code=1", "_has:Observation:specimen:code", "does not reference Encounter"},
		{"Patient", "_has:Observation:patient:_has:X:y:z=1", "_has:Observation:patient:_has:X:y:z", "nested _has"},
		{"Patient", "_has:Observation=1", "_has:Observation", "_has needs the form"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			_, err := ParseQuery(tt.typ, mustValues(t, tt.query), false)
			var qe *Error
			if !errors.As(err, &qe) || !errors.Is(err, ErrInvalidQuery) {
				t.Fatalf("got %v, want an *Error wrapping ErrInvalidQuery", err)
			}
			if qe.Param != tt.param || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got param %q error %q; want %q containing %q", qe.Param, err, tt.param, tt.msg)
			}
		})
	}
	if _, err := ParseQuery("Nope", url.Values{}, true); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("unknown resource type: %v", err)
	}
	_, err := ParseQuery("Patient", mustValues(t, "birthdate=2020-13"), true)
	if !errors.Is(err, ErrInvalidDate) || err.Error() != `invalid date "2020-13" in birthdate` {
		t.Errorf("lenient parsing must still reject bad values: %v", err)
	}
}

func TestEncodeCanonical(t *testing.T) {
	q, err := ParseQuery("Observation", mustValues(t,
		"status=final&code=http://loinc.org|1234-5,|x%5C,y&subject:Patient=1&value-quantity=eq5||mg&name=ignored"), true)
	if err != nil {
		t.Fatal(err)
	}
	want := `code=http://loinc.org|1234-5,|x\,y&status=final&subject:Patient=1&value-quantity=5||mg`
	if got, _ := url.QueryUnescape(q.Encode()); got != want {
		t.Errorf("Encode = %s, want %s", got, want)
	}
}
