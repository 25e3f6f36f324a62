package policy

import (
	"fmt"
	"strings"
)

// Problem is one reason a policy is invalid. Message says what to write instead.
type Problem struct {
	RuleIndex int    `json:"ruleIndex"`
	Field     string `json:"field"` // "resource[1]", "action[0]", "effect", "condition[0]", or "" for the rule
	Message   string `json:"message"`
}

// Warning is a note on a valid policy: a grant with no effect, an alias, a
// non-canonical form.
type Warning struct {
	RuleIndex int    `json:"ruleIndex"`
	Field     string `json:"field"`
	Message   string `json:"message"`
}

func (w Warning) String() string {
	return fmt.Sprintf("rule[%d]%s: %s", w.RuleIndex, dotField(w.Field), w.Message)
}

// ValidationError lists every problem found. errors.Is(err, ErrInvalidPolicy) holds.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = fmt.Sprintf("rule[%d]%s: %s", p.RuleIndex, dotField(p.Field), p.Message)
	}
	return "invalid access policy: " + strings.Join(parts, "; ")
}

func (e *ValidationError) Unwrap() error { return ErrInvalidPolicy }

func dotField(f string) string {
	if f == "" {
		return ""
	}
	return "." + f
}

// Validate checks a parsed document against the action catalog: known
// services, actions and types, actions that apply to every resource of their
// rule, minimum scopes, resource syntax (including Z3 paths) and conditions.
// Unmet dependencies (FHIR:History without FHIR:Read over the same
// resources) are warnings, not errors: the grant is valid but has no effect.
func Validate(doc Document) (warnings []Warning, err error) {
	var problems []Problem
	checked := make([]checkedRule, len(doc.Rule))
	for i, r := range doc.Rule {
		checked[i] = checkRule(r)
		for _, p := range checked[i].problems {
			p.RuleIndex = i
			problems = append(problems, p)
		}
		for _, w := range checked[i].warnings {
			w.RuleIndex = i
			warnings = append(warnings, w)
		}
	}
	warnings = append(warnings, dependencyWarnings(doc, checked)...)
	if len(problems) > 0 {
		return warnings, &ValidationError{Problems: problems}
	}
	return warnings, nil
}

// checkedRule is a rule parsed against the catalog; Compile uses it too.
type checkedRule struct {
	actions   []actionPattern // nil entries skipped: only parsed ones
	resources []pattern
	conds     []Condition // queries normalised to "Type?query"
	problems  []Problem
	warnings  []Warning
}

func checkRule(r Rule) checkedRule {
	var c checkedRule
	add := func(field, format string, args ...any) {
		c.problems = append(c.problems, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if r.Effect != Allow && r.Effect != Deny {
		add("effect", `must be "Allow" or "Deny"`)
	}
	if len(r.Resource.Values) == 0 {
		add("resource", `must name at least one resource, e.g. "FHIR:Patient:*"`)
	}
	if len(r.Action.Values) == 0 {
		add("action", `must name at least one action, e.g. "FHIR:Read"`)
	}
	rawRes := make([]string, 0, len(r.Resource.Values))
	for i, s := range r.Resource.Values {
		p, problem, warning := parseResource(s)
		if problem != "" {
			add(fmt.Sprintf("resource[%d]", i), "%s", problem)
			continue
		}
		if warning != "" {
			c.warnings = append(c.warnings, Warning{Field: fmt.Sprintf("resource[%d]", i), Message: warning})
		}
		c.resources = append(c.resources, p)
		rawRes = append(rawRes, s)
	}
	for i, s := range r.Action.Values {
		a, problem, warning := parseAction(s)
		field := fmt.Sprintf("action[%d]", i)
		if problem != "" {
			add(field, "%s", problem)
			continue
		}
		if warning != "" {
			c.warnings = append(c.warnings, Warning{Field: field, Message: warning})
		}
		c.actions = append(c.actions, a)
		for j, p := range c.resources {
			if msg := applicability(a, s, p, rawRes[j]); msg != "" {
				add(field, "%s", msg)
			} else if w := z3Usefulness(a, p, rawRes[j]); w != "" {
				c.warnings = append(c.warnings, Warning{Field: field, Message: w})
			}
		}
	}
	c.conds = checkConditions(r, c.resources, add)
	return c
}

// applicability says why action pattern a cannot apply to resource p, or "".
func applicability(a actionPattern, raw string, p pattern, rawRes string) string {
	if a.all || p.service == "" {
		return "" // "*" applies to whatever exists; a "*" resource satisfies every scope
	}
	if a.id < 0 {
		if p.service != a.service {
			return fmt.Sprintf("%q applies only to %s resources, not %q: write \"%s:*\" or move %q to its own rule", raw, a.service, rawRes, a.service, rawRes)
		}
		return ""
	}
	act := allActions[a.id]
	if !matches(act, p) {
		return fmt.Sprintf("%s applies to %s resources, not %q: write %q, or move it to a rule of its own",
			raw, strings.Join(typeNames(act), " or "), rawRes, act.Service+":"+typeExample(act)+":*")
	}
	switch act.MinScope {
	case ScopeWildcard:
		if p.id != "" {
			return fmt.Sprintf("%s has minimum scope *: it cannot name one resource; write %q instead of %q", raw, p.service+":"+p.typ+":*", rawRes)
		}
	case ScopeServiceRoot:
		if p.service == "Z3" && p.z3.kind != z3Root {
			return fmt.Sprintf("%s has minimum scope service-root: write \"Z3:*\" instead of %q", raw, rawRes)
		}
	case ScopeSubfolder:
		if p.service == "Z3" && !p.z3.isFolder() {
			folder := "Z3:" + p.z3.bucket + "/"
			if dirs := p.z3.segs[:len(p.z3.segs)-1]; len(dirs) > 0 {
				folder += strings.Join(dirs, "/") + "/"
			}
			return fmt.Sprintf("%s has minimum scope subfolder: name a bucket or folder, not one object; write %q or %q instead of %q",
				raw, folder, folder+"*", rawRes)
		}
	}
	return ""
}

func typeNames(act Action) []string {
	if act.ResourceType == fhirResourcePlaceholder {
		return []string{"FHIR resource types"}
	}
	var out []string
	for _, t := range typesOf(act) {
		out = append(out, act.Service+":"+t)
	}
	return out
}

func typeExample(act Action) string {
	if act.ResourceType == fhirResourcePlaceholder {
		return "Patient"
	}
	return act.ResourceType
}

// z3Usefulness warns about Z3 grants that are valid but match nothing useful:
// object actions on a bucket pattern, bucket actions on an object path.
func z3Usefulness(a actionPattern, p pattern, rawRes string) string {
	if a.id < 0 || p.service != "Z3" {
		return ""
	}
	act := allActions[a.id]
	switch act.Name {
	case "GetObject", "PutObject", "DeleteObject":
		if p.z3.kind == z3Bucket {
			return fmt.Sprintf("%s on %q matches the bucket, not its objects: write %q for every object in it", act.FullName(), rawRes, "Z3:"+p.z3.bucket+"/**")
		}
	case "DeleteBucket":
		if p.z3.kind == z3Path {
			return fmt.Sprintf("%s on %q matches no bucket: write %q", act.FullName(), rawRes, "Z3:"+p.z3.bucket)
		}
	}
	return ""
}

// checkConditions enforces the conditions contract (section 6): Allow only,
// exactly one FHIR type and no specific id, and each query searches that
// type. It returns the conditions with bare queries prefixed by the type.
func checkConditions(r Rule, res []pattern, add func(field, format string, args ...any)) []Condition {
	if len(r.Condition.Items) == 0 {
		return nil
	}
	if r.Effect != Allow {
		add("condition", "only Allow rules may have a condition: remove it, or make the rule an Allow")
		return nil
	}
	if len(r.Resource.Values) != 1 || len(res) != 1 || res[0].service != "FHIR" || res[0].typ == "" || res[0].id != "" {
		add("condition", `a rule with a condition must name exactly one FHIR type and no id, e.g. "FHIR:Patient" or "FHIR:Patient:*"`)
		return nil
	}
	typ := res[0].typ
	out := make([]Condition, 0, len(r.Condition.Items))
	for i, c := range r.Condition.Items {
		field := fmt.Sprintf("condition[%d]", i)
		if c.Object != nil {
			out = append(out, c)
			continue
		}
		base, query, hasBase := strings.Cut(c.Query, "?")
		if !hasBase {
			base, query = typ, c.Query
		}
		switch {
		case base != typ:
			add(field, "%q searches %s but the rule's resource is FHIR:%s: write \"%s?%s\" or the bare query %q", c.Query, or(base, "nothing"), typ, typ, query, query)
		case !strings.Contains(query, "="):
			add(field, "%q has no search parameter: write a FHIR search such as \"%s?general-practitioner=Practitioner/123\"", c.Query, typ)
		default:
			out = append(out, Condition{Query: typ + "?" + query})
		}
	}
	return out
}

// dependencyWarnings names each Allow of a dependent action (FHIR:History)
// over a resource that no Allow rule in the document also grants the
// dependency (FHIR:Read) on.
func dependencyWarnings(doc Document, checked []checkedRule) []Warning {
	var out []Warning
	for i, c := range checked {
		if doc.Rule[i].Effect != Allow {
			continue
		}
		for _, a := range c.actions {
			if a.id < 0 || allActions[a.id].DependsOn == "" {
				continue
			}
			act := allActions[a.id]
			dep := actionIDs[act.DependsOn]
			for _, p := range c.resources {
				if !depGranted(doc, checked, dep, p) {
					out = append(out, Warning{RuleIndex: i, Field: "action",
						Message: fmt.Sprintf("%s on %q has no effect without %s over the same resources: add %q to this rule or to an Allow rule covering %q",
							act.FullName(), p.String(), act.DependsOn, act.DependsOn, p.String())})
				}
			}
		}
	}
	return out
}

func depGranted(doc Document, checked []checkedRule, dep int, p pattern) bool {
	for j, c := range checked {
		if doc.Rule[j].Effect != Allow {
			continue
		}
		for _, a := range c.actions {
			if !a.covers(dep) {
				continue
			}
			for _, q := range c.resources {
				if q.covers(p) {
					return true
				}
			}
		}
	}
	return false
}
