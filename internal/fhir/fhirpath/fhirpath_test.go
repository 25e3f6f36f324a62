package fhirpath

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

const patient = `{"resourceType":"Patient","id":"p1","active":true,
 "name":[{"family":"Chalmers","given":["Peter","James"]},{"use":"usual","given":["Jim"]}],
 "telecom":[{"system":"phone","value":"555"},{"system":"email","value":"a@b.c"}],
 "deceasedBoolean":false,
 "extension":[{"url":"http://x/race","valueCode":"2106-3"},{"url":"http://x/other","valueString":"o"}],
 "generalPractitioner":[{"reference":"Practitioner/pr1"},{"reference":"Organization/o1"},{"reference":"#c1"}],
 "contained":[{"resourceType":"Practitioner","id":"c1"}]}`

const observation = `{"resourceType":"Observation","id":"o1",
 "subject":{"reference":"Patient/p1"},
 "code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},
 "valueQuantity":{"value":120.5,"unit":"mmHg"},
 "effectiveDateTime":"2020-01-02",
 "component":[
  {"code":{"text":"sys"},"valueQuantity":{"value":107}},
  {"code":{"text":"note"},"valueCodeableConcept":{"text":"ok"}},
  {"code":{"text":"str"},"valueString":"s"}]}`

func TestEval(t *testing.T) {
	p, o := decode(t, patient), decode(t, observation)
	num := func(s string) json.Number { return json.Number(s) }
	tests := []struct {
		expr string
		res  map[string]any
		want []any
	}{
		{"Patient.id", p, []any{"p1"}},
		{"Observation.id", p, nil},
		{"Resource.id", p, []any{"p1"}},
		{"name", p, []any{p["name"].([]any)[0], p["name"].([]any)[1]}},
		{"Patient.name.given", p, []any{"Peter", "James", "Jim"}},
		{"Patient.name.family | Patient.name.given", p, []any{"Chalmers", "Peter", "James", "Jim"}},
		{"Patient.name.given | Patient.name.given", p, []any{"Peter", "James", "Jim"}},
		{"Patient.name.where(use = 'usual').given", p, []any{"Jim"}},
		{"Patient.name.where(use != 'usual').family", p, nil}, // use is empty on the first name, so != is empty too
		{"Patient.name.given.first()", p, []any{"Peter"}},
		{"Patient.name.given.last()", p, []any{"Jim"}},
		{"Patient.name.given[1]", p, []any{"James"}},
		{"Patient.name.given.count()", p, []any{num("3")}},
		{"Patient.telecom.where(system='email').value", p, []any{"a@b.c"}},
		{"Patient.telecom.where(system='fax').value", p, nil},
		{"Patient.deceased.exists() and Patient.deceased != false", p, []any{false}},
		{"Patient.deceased", p, []any{false}},
		{"Patient.birthDate.empty()", p, []any{true}},
		{"Patient.extension('http://x/race').value", p, []any{"2106-3"}},
		{"Patient.extension.where(url = 'http://x/other').value", p, []any{"o"}},
		{"Patient.generalPractitioner.where(resolve() is Practitioner).reference", p, []any{"Practitioner/pr1", "#c1"}},
		{"Patient.generalPractitioner.where(resolve() is Organization).reference", p, []any{"Organization/o1"}},
		{"Patient.generalPractitioner.resolve().id", p, []any{"pr1", "o1", "c1"}},
		{"%resource.id", p, []any{"p1"}},
		{"Patient.active = true and Patient.id = 'p1'", p, []any{true}},
		{"Patient.active or Patient.missing", p, []any{true}},
		{"Patient.missing and false", p, []any{false}},
		{"Patient.missing and true", p, nil},
		{"Patient.name.exists(given = 'Jim')", p, []any{true}},
		{"Patient.name.given.where($this = 'Jim')", p, []any{"Jim"}},
		{"Patient.name.all(given.exists())", p, []any{true}},
		{"Patient.name.select(given.first())", p, []any{"Peter", "Jim"}},
		{"Patient.active.not()", p, []any{false}},
		{"Patient.id ~ 'P1'", p, []any{true}},
		{"Patient.name.given.first() < 'Q'", p, []any{true}},
		{"Observation.value", o, []any{o["valueQuantity"]}},
		{"Observation.value.value", o, []any{num("120.5")}},
		{"Observation.value.value = 120.50", o, []any{true}},
		{"(Observation.value as Quantity).unit", o, []any{"mmHg"}},
		{"(Observation.value as CodeableConcept).text", o, nil},
		{"Observation.value.as(Quantity).value", o, []any{num("120.5")}},
		{"Observation.value.ofType(FHIR.Quantity).unit", o, []any{"mmHg"}},
		{"Observation.value is Quantity", o, []any{true}},
		{"Observation.value.is(string)", o, []any{false}},
		{"(Observation.component.value as Quantity).value", o, []any{num("107")}},
		{"(Observation.component.value as CodeableConcept).text", o, []any{"ok"}},
		{"Observation.component.value.as(string)", o, []any{"s"}},
		{"Observation.effective.as(DateTime)", o, []any{"2020-01-02"}},
		{"Observation.subject.where(resolve() is Patient)", o, []any{o["subject"]}},
		{"Observation | Observation.component", o, append([]any{o}, o["component"].([]any)...)},
		{"Observation.component.where(code.text = 'sys').exists()", o, []any{true}},
		{"Observation.component.code.text.tail()", o, []any{"note", "str"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e, err := Compile(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Eval(tt.res)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestEvalItemsKeepsChoiceType(t *testing.T) {
	items, err := MustCompile("Observation.component.value").EvalItems(decode(t, observation))
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, it := range items {
		types = append(types, it.Type)
	}
	if !reflect.DeepEqual(types, []string{"Quantity", "CodeableConcept", "string"}) {
		t.Fatalf("types %v", types)
	}
}

func TestEvalFrom(t *testing.T) {
	o := decode(t, observation)
	comp := o["component"].([]any)[0]
	got, err := MustCompile("value.as(Quantity).value | %resource.id").EvalFrom(o, Item{Value: comp})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Value != json.Number("107") || got[1].Value != "o1" {
		t.Fatalf("got %v", got)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ expr, msg string }{
		{"Patient.name.substring(1)", "function substring(): unsupported FHIRPath"},
		{"Patient.a + 1", `operator "+" at 10: unsupported FHIRPath`},
		{"@2020", "date/time literals"},
		{"%foo", "variable %foo: unsupported"},
		{"Patient.name.where(", "unexpected end"},
		{"Patient.name)", `unexpected ")"`},
		{"Patient.", "expected a name"},
		{"'abc", "unterminated string"},
		{"first(1)", "first() takes 0 to 0 arguments"},
		{"as('x')", "as() needs a type name"},
		{"Patient #", "unexpected character"},
		{strings.Repeat("(", 100) + "a" + strings.Repeat(")", 100), "nested deeper"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.expr)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Compile(%q) = %v, want error containing %q", tt.expr, err, tt.msg)
		}
	}
	if _, err := Compile("x.aggregate($this)"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unsupported functions must wrap ErrUnsupported: %v", err)
	}
}

func TestEvalErrors(t *testing.T) {
	p := decode(t, patient)
	for _, expr := range []string{"Patient.name.given and true", "Patient.name.given.single()", "Patient.name.given is string"} {
		if _, err := MustCompile(expr).Eval(p); err == nil {
			t.Errorf("%s: want an error for a multi-item operand", expr)
		}
	}
}

func TestSplitReference(t *testing.T) {
	tests := []struct{ ref, typ, id string }{
		{"Patient/1", "Patient", "1"},
		{"http://x.org/fhir/Patient/1/_history/2", "Patient", "1"},
		{"urn:uuid:1234", "", ""},
		{"1", "", ""},
		{"patient/1", "", ""},
	}
	for _, tt := range tests {
		typ, id, ok := SplitReference(tt.ref)
		if typ != tt.typ || id != tt.id || ok != (tt.typ != "") {
			t.Errorf("SplitReference(%q) = %q %q %v", tt.ref, typ, id, ok)
		}
	}
}
