package policy

import (
	"errors"
	"strings"
	"testing"
)

func allow(resources []string, actions ...string) Rule {
	return Rule{Resource: List(resources...), Action: List(actions...), Effect: Allow}
}

func deny(resources []string, actions ...string) Rule {
	return Rule{Resource: List(resources...), Action: List(actions...), Effect: Deny}
}

func res(r ...string) []string { return r }

// minScopeResource is a rule resource of act's own type at its minimum
// scope, and a request that it covers.
func minScopeResource(act Action) (pattern, request string) {
	typ := act.ResourceType
	if typ == fhirResourcePlaceholder {
		typ = "Patient"
	}
	switch {
	case act.Service == "Z3" && act.MinScope == ScopeServiceRoot:
		return "Z3:*", "Z3:*"
	case act.Service == "Z3" && act.MinScope == ScopeSubfolder:
		return "Z3:bucket-a/dir/", "Z3:bucket-a/dir/"
	case act.Service == "Z3" && act.Name == "DeleteBucket":
		return "Z3:bucket-a", "Z3:bucket-a"
	case act.Service == "Z3":
		return "Z3:bucket-a/dir/f.pdf", "Z3:bucket-a/dir/f.pdf"
	case act.Service == "Project":
		return "Project:" + typ, "Project:" + typ
	case act.MinScope == ScopeWildcard:
		return act.Service + ":" + typ + ":*", act.Service + ":" + typ + ":*"
	}
	return act.Service + ":" + typ + ":abc", act.Service + ":" + typ + ":abc"
}

// wrongTypeResource is a resource the action does not apply to.
func wrongTypeResource(act Action) string {
	if act.Service == "FHIR" {
		if act.ResourceType == "Group" {
			return "FHIR:Patient:*"
		}
		return "Zambda:Function:*"
	}
	for _, t := range serviceTypes[act.Service] {
		if !appliesTo(act, t) {
			return act.Service + ":" + t + ":*"
		}
	}
	return "FHIR:Patient:*"
}

// TestEveryCatalogAction walks every action of the seed and the extensions.
func TestEveryCatalogAction(t *testing.T) {
	for _, act := range append(Catalog(), Extensions()...) {
		name := act.FullName()
		t.Run(name, func(t *testing.T) {
			good, request := minScopeResource(act)
			doc := Document{Rule: []Rule{allow(res(good), name)}}
			warnings, err := Validate(doc)
			if err != nil {
				t.Fatalf("%s on %s rejected: %v", name, good, err)
			}
			set := Compile(Source{Kind: "inline", Doc: doc})
			d := set.Decide(name, request)
			if act.DependsOn == "" && !d.Allowed {
				t.Errorf("Decide(%s, %s) denied under its own grant", name, request)
			}

			bad := wrongTypeResource(act)
			if _, err := Validate(Document{Rule: []Rule{allow(res(bad), name)}}); err == nil {
				t.Errorf("%s on %s (wrong type) accepted", name, bad)
			}
			if act.MinScope == ScopeWildcard {
				one := strings.TrimSuffix(good, ":*") + ":abc"
				if _, err := Validate(Document{Rule: []Rule{allow(res(one), name)}}); err == nil {
					t.Errorf("%s on %s (one resource, minimum scope *) accepted", name, one)
				}
			}
			if act.DependsOn == "" {
				return
			}
			if len(warnings) != 1 || warnings[0].RuleIndex != 0 || !strings.Contains(warnings[0].Message, act.DependsOn) {
				t.Errorf("%s without %s: warnings %v, want one naming rule 0", name, act.DependsOn, warnings)
			}
			if d.Allowed {
				t.Errorf("Decide(%s) allowed without %s", name, act.DependsOn)
			}
			doc.Rule = append(doc.Rule, allow(res(good), act.DependsOn))
			if w, err := Validate(doc); err != nil || len(w) != 0 {
				t.Errorf("with %s: warnings %v, err %v", act.DependsOn, w, err)
			}
			if d := Compile(Source{Kind: "inline", Doc: doc}).Decide(name, request); !d.Allowed {
				t.Errorf("Decide(%s) denied with %s granted", name, act.DependsOn)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		want string // "" = valid; else a fragment of the problem
		warn string // a fragment of a warning
	}{
		{"create user on app wildcard", allow(res("App:Application:*"), "App:CreateUser"), "", ""},
		{"create user on app service", allow(res("App:*"), "App:CreateUser"), "", ""},
		{"create user on everything", allow(res("*"), "App:CreateUser"), "", ""},
		{"create user on one app", allow(res("App:Application:abc"), "App:CreateUser"), "minimum scope *", ""},
		{"create user on user type", allow(res("App:User"), "App:CreateUser"), "", ""},
		{"unknown service", allow(res("Fhir:Patient"), "FHIR:Read"), `did you mean "FHIR"`, ""},
		{"unknown action service", allow(res("*"), "Foo:Read"), `unknown service "Foo"`, ""},
		{"unknown action", allow(res("FHIR:Patient"), "FHIR:read"), `did you mean "FHIR:Read"`, ""},
		{"unknown action list", allow(res("FHIR:Patient"), "FHIR:Frobnicate"), "FHIR actions are", ""},
		{"partial action wildcard", allow(res("FHIR:Patient"), "FHIR:Re*"), "whole action name", ""},
		{"bare service action", allow(res("FHIR:Patient"), "FHIR"), "is not an action", ""},
		{"unknown fhir type", allow(res("FHIR:Patiant"), "FHIR:Read"), "unknown FHIR type", ""},
		{"type case", allow(res("FHIR:patient"), "FHIR:Read"), `did you mean "Patient"`, ""},
		{"wildcard then id", allow(res("FHIR:*:123"), "FHIR:Read"), "cannot be followed by a specific segment", ""},
		{"wildcard service then type", allow(res("*:Patient"), "FHIR:Read"), "cannot be followed", ""},
		{"all wildcards", allow(res("*:*:*"), "FHIR:Read"), "", ""},
		{"too many segments", allow(res("FHIR:Patient:1:2"), "FHIR:Read"), "has 4 segments", ""},
		{"empty segment", allow(res("FHIR::1"), "FHIR:Read"), "empty segment", ""},
		{"empty resource", allow(res(""), "FHIR:Read"), "empty resource", ""},
		{"prefix id", allow(res("Zambda:Function:admin-*"), "Zambda:InvokeFunction"), "whole segment", ""},
		{"no resources", allow(nil, "FHIR:Read"), "at least one resource", ""},
		{"no actions", allow(res("*")), "at least one action", ""},
		{"bad effect", Rule{Resource: List("*"), Action: List("*"), Effect: "allow"}, `"Allow" or "Deny"`, ""},
		{"action wrong service", allow(res("Z3:*"), "FHIR:Read"), "FHIR resource types", ""},
		{"service wildcard wrong service", allow(res("Z3:*"), "FHIR:*"), `applies only to FHIR`, ""},
		{"every action to every resource", allow(res("FHIR:Patient", "Zambda:Function"), "FHIR:Read"), "FHIR resource types", ""},
		{"star action anywhere", allow(res("FHIR:Patient:1", "Z3:b-1/x"), "*"), "", ""},
		{"project settings", allow(res("Project:Settings"), "Project:GetProjectInfo", "Project:ListAllUsers"), "", ""},
		{"project id", allow(res("Project:Settings:x"), "Project:GetProjectInfo"), "no id segment", ""},
		{"alias", allow(res("IAM:M2MClient:*"), "App:CreateM2MClient"), "", "alias"},
		{"alias wrong type", allow(res("App:User:*"), "App:CreateM2MClient"), "IAM:M2MClient", ""},
		{"export group", allow(res("FHIR:Group:g1"), "FHIR:Export"), "minimum scope *", ""},
		// Z3
		{"z3 create bucket root", allow(res("Z3:*"), "Z3:CreateBucket", "Z3:ListBuckets"), "", ""},
		{"z3 create bucket service", allow(res("Z3"), "Z3:CreateBucket"), "", ""},
		{"z3 create bucket one", allow(res("Z3:fruit"), "Z3:CreateBucket"), "service-root", ""},
		{"z3 list objects folder", allow(res("Z3:fruit/apple/"), "Z3:ListObjects"), "", ""},
		{"z3 list objects stars", allow(res("Z3:fruit/apple/*", "Z3:fruit/**", "Z3:fruit"), "Z3:ListObjects"), "", ""},
		{"z3 list objects one object", allow(res("Z3:fruit/apple/one.csv"), "Z3:ListObjects"), "subfolder", ""},
		{"z3 list objects glob file", allow(res("Z3:fruit/apple/*.csv"), "Z3:ListObjects"), "subfolder", ""},
		{"z3 object paths", allow(res("Z3:fruit/apple/**/one.csv", "Z3:*/shared/*"), "Z3:GetObject"), "", ""},
		{"z3 oystehr bucket names", allow(res("Z3:"+z3Project+"-TelemedRecordings/**", "Z3:"+z3Project+"-invoiceable-patients-reports/**",
			"Z3:"+z3Project+"-TelemedRecordings"), "Z3:GetObject", "Z3:ListObjects"), "", ""},
		{"z3 bucket short, upper, underscore", allow(res("Z3:a/x", "Z3:Fruit/x", "Z3:a_b/x", "Z3:fruit-/x"), "Z3:GetObject"), "", ""},
		{"z3 bucket too long", allow(res("Z3:"+strings.Repeat("a", 256)+"/x"), "Z3:GetObject"), "1-255 characters", ""},
		{"z3 bucket dot dot", allow(res("Z3:../x"), "Z3:GetObject"), "two dots", ""},
		{"z3 bucket dot", allow(res("Z3:./x"), "Z3:GetObject"), `cannot be "."`, ""},
		{"z3 bucket internal", allow(res("Z3:_zambda-code/**"), "Z3:GetObject"), "reserved for Ward", ""},
		{"z3 bucket control", allow(res("Z3:a\x00b/**"), "Z3:GetObject"), `has "\x00" at byte 1`, ""},
		{"z3 bucket backslash", allow(res(`Z3:a\b/**`), "Z3:GetObject"), "at byte 1", ""},
		{"z3 bucket space", allow(res("Z3:a b/**"), "Z3:GetObject"), "at byte 1", ""},
		{"z3 bucket pattern", allow(res("Z3:fr*/x"), "Z3:GetObject"), "name or *", ""},
		{"z3 double slash", allow(res("Z3:fruit/a//b"), "Z3:GetObject"), "empty path segment", ""},
		{"z3 bad double star", allow(res("Z3:fruit/a**/b"), "Z3:GetObject"), "whole path segment", ""},
		{"z3 empty bucket", allow(res("Z3:"), "Z3:GetObject"), "empty bucket", ""},
		{"z3 colon form", allow(res("Z3:fruit:apple/one.csv"), "Z3:GetObject"), "", "colon form"},
		{"z3 object action on bucket", allow(res("Z3:fruit"), "Z3:GetObject"), "", "not its objects"},
		{"z3 bucket action on path", allow(res("Z3:fruit/x"), "Z3:DeleteBucket"), "", "matches no bucket"},
		// conditions
		{"condition ok", withCond(allow(res("FHIR:Patient"), "FHIR:Read"), "Patient?general-practitioner=Practitioner/1"), "", ""},
		{"condition bare", withCond(allow(res("FHIR:Patient:*"), "FHIR:Read", "FHIR:Search"), "general-practitioner=Practitioner/1"), "", ""},
		{"condition object", Rule{Resource: List("FHIR:Patient"), Action: List("FHIR:Read"), Effect: Allow,
			Condition: Conditions{Items: []Condition{{Object: []byte(`{"a":1}`)}}}}, "", ""},
		{"condition other type", withCond(allow(res("FHIR:Patient"), "FHIR:Read"), "Observation?subject=Patient/1"), "searches Observation", ""},
		{"condition no parameter", withCond(allow(res("FHIR:Patient"), "FHIR:Read"), "Patient?"), "no search parameter", ""},
		{"condition on deny", withCond(deny(res("FHIR:Patient"), "FHIR:Read"), "a=b"), "only Allow rules", ""},
		{"condition on id", withCond(allow(res("FHIR:Patient:1"), "FHIR:Read"), "a=b"), "exactly one FHIR type", ""},
		{"condition on all fhir", withCond(allow(res("FHIR:*"), "FHIR:Read"), "a=b"), "exactly one FHIR type", ""},
		{"condition on two types", withCond(allow(res("FHIR:Patient", "FHIR:Encounter"), "FHIR:Read"), "a=b"), "exactly one FHIR type", ""},
		{"condition on zambda", withCond(allow(res("Zambda:Function"), "Zambda:InvokeFunction"), "a=b"), "exactly one FHIR type", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warnings, err := Validate(Document{Rule: []Rule{tt.rule}})
			if tt.want == "" && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if tt.want != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error = %v, want one containing %q", err, tt.want)
				}
				if ve.Problems[0].RuleIndex != 0 {
					t.Errorf("problem names rule %d", ve.Problems[0].RuleIndex)
				}
			}
			found := tt.warn == ""
			for _, w := range warnings {
				found = found || strings.Contains(w.Message, tt.warn)
			}
			if !found {
				t.Errorf("warnings %v, want one containing %q", warnings, tt.warn)
			}
		})
	}
}

func withCond(r Rule, q ...string) Rule {
	for _, s := range q {
		r.Condition.Items = append(r.Condition.Items, Condition{Query: s})
	}
	return r
}

func TestDependencyWarning(t *testing.T) {
	doc := Document{Rule: []Rule{
		allow(res("FHIR:Patient:*"), "FHIR:Search"),
		allow(res("FHIR:Patient:1", "FHIR:Encounter"), "FHIR:History"),
		allow(res("FHIR:Patient"), "FHIR:Read"),
	}}
	warnings, err := Validate(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || warnings[0].RuleIndex != 1 || !strings.Contains(warnings[0].Message, "FHIR:Encounter") {
		t.Errorf("warnings = %v, want one for rule 1 on FHIR:Encounter", warnings)
	}
}
