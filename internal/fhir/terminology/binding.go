package terminology

import (
	"fmt"
	"strings"
)

// Finding is a coded value outside its element's bound value set.
type Finding struct {
	Severity string // "error" for a required binding, "warning" for extensible and preferred
	Message  string
}

// CheckBinding judges value v of the element at path ("Patient.gender"), of type typ (code,
// Coding or CodeableConcept; v as encoding/json decodes it), against the element's binding.
// It reports false when the value is in the value set, the element has no binding, or the
// value set cannot be expanded here (an external code system): only what can be decided is
// judged. A Coding is judged on its system and code, a code alone on any system of the value
// set; a CodeableConcept passes when one of its codings does, or when it has text only.
func (c *Core) CheckBinding(path, typ string, v any) (Finding, bool) {
	b, ok := c.bindings[path]
	if !ok {
		return Finding{}, false
	}
	m := c.members(b.ValueSet)
	if m.err != nil {
		return Finding{}, false
	}
	var shown string
	switch typ {
	case "code":
		code, ok := v.(string)
		if !ok || inSet(m.set, "", code) {
			return Finding{}, false
		}
		shown = fmt.Sprintf("%q", code)
	case "Coding":
		obj, _ := v.(map[string]any)
		system, code, ok := coding(obj)
		if !ok || inSet(m.set, system, code) {
			return Finding{}, false
		}
		shown = codingText(system, code)
	case "CodeableConcept":
		obj, _ := v.(map[string]any)
		list, _ := obj["coding"].([]any)
		var seen []string
		for _, item := range list {
			o, _ := item.(map[string]any)
			system, code, ok := coding(o)
			if !ok {
				continue
			}
			if inSet(m.set, system, code) {
				return Finding{}, false
			}
			seen = append(seen, codingText(system, code))
		}
		if len(seen) == 0 {
			return Finding{}, false
		}
		shown = strings.Join(seen, ", ")
	default:
		return Finding{}, false
	}
	sev, verb := "warning", "should"
	if b.Strength == "required" {
		sev, verb = "error", "must"
	}
	return Finding{Severity: sev, Message: fmt.Sprintf("%s is not in the value set %s: %s %s come from it (%s binding)",
		shown, b.ValueSet, path, verb, b.Strength)}, true
}

func coding(obj map[string]any) (system, code string, ok bool) {
	code, _ = obj["code"].(string)
	system, _ = obj["system"].(string)
	return system, code, code != ""
}

func codingText(system, code string) string {
	if system == "" {
		return fmt.Sprintf("%q", code)
	}
	return fmt.Sprintf("%s|%s", system, code)
}

// inSet reports whether system|code is in s; an empty system matches any.
func inSet(s *codeSet, system, code string) bool {
	if system != "" {
		return s.has(system, code)
	}
	for _, c := range s.list {
		if c.Code == code {
			return true
		}
	}
	return false
}
