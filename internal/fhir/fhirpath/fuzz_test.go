package fhirpath

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzCompileEval checks that no expression text and no JSON input makes
// Compile or Eval panic or run away.
func FuzzCompileEval(f *testing.F) {
	for _, e := range []string{
		"Patient.name.where(use = 'usual').given | Patient.name.family",
		"(Observation.value as Quantity).value",
		"Patient.deceased.exists() and Patient.deceased != false",
		"Observation.subject.where(resolve() is Patient)",
		"Patient.extension('http://x').value.first()",
		"Observation | Observation.component",
		"name.given[0] ~ 'a' or %resource.id.empty()",
	} {
		f.Add(e, patient)
		f.Add(e, observation)
	}
	f.Fuzz(func(t *testing.T, expr, doc string) {
		e, err := Compile(expr)
		if err != nil {
			return
		}
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		_, _ = e.Eval(v)
	})
}
