package oauth

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/wardhealth/ward/internal/smart/scope"
)

// consentItem is one line of the consent page: what the app may do, in
// plain words, with the scope names behind it as secondary detail.
type consentItem struct {
	Text   string
	Scopes string
}

// typeWords names the resource types a patient meets most often; any other
// type is written as its name split into lower-case words.
var typeWords = map[string]string{
	"AllergyIntolerance": "allergies",
	"Appointment":        "appointments",
	"CarePlan":           "care plans",
	"Condition":          "conditions and diagnoses",
	"Coverage":           "insurance coverage",
	"DiagnosticReport":   "test reports",
	"DocumentReference":  "documents",
	"Encounter":          "visits",
	"Immunization":       "immunizations",
	"MedicationRequest":  "prescriptions",
	"Observation":        "test results and measurements",
	"Patient":            "basic details (name, birth date, contact details)",
	"Practitioner":       "care providers' details",
	"Procedure":          "procedures",
}

func typeWord(t string) string {
	if w, ok := typeWords[t]; ok {
		return w
	}
	var b strings.Builder
	for i, r := range t {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String() + " records"
}

// joinWords writes a, b and c.
func joinWords(w []string) string {
	switch len(w) {
	case 0:
		return ""
	case 1:
		return w[0]
	}
	return strings.Join(w[:len(w)-1], ", ") + " and " + w[len(w)-1]
}

// verbs says a permission set as a person would: read and search are both
// "see" (a patient does not tell them apart).
func verbs(p scope.Perm) string {
	var out []string
	if p&(scope.Read|scope.Search) != 0 {
		out = append(out, "see")
	}
	if p&scope.Create != 0 {
		out = append(out, "add")
	}
	if p&scope.Update != 0 {
		out = append(out, "change")
	}
	if p&scope.Delete != 0 {
		out = append(out, "delete")
	}
	return joinWords(out)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// describeScopes is the consent list for a granted scope set. patient names
// the patient a practitioner chose ("" when the records are the user's
// own); lines that read the same are merged, their scope names joined.
func describeScopes(scopes []string, patient string) []consentItem {
	set, err := scope.Parse(strings.Join(scopes, " "))
	if err != nil { // granted scopes were parsed at the request: not reached
		return []consentItem{{Text: strings.Join(scopes, " ")}}
	}
	var items []consentItem
	index := map[string]int{}
	add := func(text, sc string) {
		if i, ok := index[text]; ok {
			items[i].Scopes += ", " + sc
			return
		}
		index[text] = len(items)
		items = append(items, consentItem{Text: text, Scopes: sc})
	}
	whose := "your"
	if patient != "" {
		whose = patient + "'s"
	}
	for _, r := range set.Resources {
		var text string
		switch {
		case r.Context == "patient" && r.Type == "*":
			text = fmt.Sprintf("%s all of %s health records", verbs(r.Perms), whose)
		case r.Context == "patient":
			text = fmt.Sprintf("%s %s %s", verbs(r.Perms), whose, typeWord(r.Type))
		case r.Type == "*":
			text = verbs(r.Perms) + " all records your account can access"
		default:
			text = fmt.Sprintf("%s %s your account can access", verbs(r.Perms), typeWord(r.Type))
		}
		if len(r.Filter) > 0 {
			text += " (only some of them: " + r.Filter.Encode() + ")"
		}
		add(capitalize(text), r.Raw)
	}
	for _, o := range set.Other {
		switch o {
		case "openid", "fhirUser":
			add("Know who you are: your account and your name", o)
		case "launch/patient":
			if patient != "" {
				add("Know that you chose "+patient, o)
			} else {
				add("Know which patient record is yours", o)
			}
		case "offline_access":
			add(fmt.Sprintf("Stay connected for up to %d days, without asking you to sign in again", int(offlineTTL.Hours()/24)), o)
		case "online_access":
			add(fmt.Sprintf("Stay connected while you use it (up to %d hours)", int(onlineTTL.Hours())), o)
		default:
			add("Use the permission "+o, o)
		}
	}
	return items
}
