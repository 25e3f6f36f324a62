package policy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

type req struct {
	action, resource string
	allowed          bool
}

func checkDecisions(t *testing.T, s *Set, reqs []req) {
	t.Helper()
	for _, r := range reqs {
		if d := s.Decide(r.action, r.resource); d.Allowed != r.allowed {
			t.Errorf("Decide(%s, %s) = %v, want %v (%+v)", r.action, r.resource, d.Allowed, r.allowed, d)
		}
	}
}

func inline(rules ...Rule) Source { return Source{Kind: "inline", Doc: Document{Rule: rules}} }

func TestDecideWildcardSegments(t *testing.T) {
	tests := []struct {
		pattern string
		reqs    []req
	}{
		{"*", []req{{"FHIR:Read", "FHIR:Patient:1", true}, {"FHIR:Read", "FHIR:Patient:*", true}, {"Zambda:InvokeFunction", "Zambda:Function:f", false}}},
		{"FHIR", []req{{"FHIR:Read", "FHIR:Encounter:1", true}, {"Zambda:InvokeFunction", "Zambda:Function:f", false}}},
		{"FHIR:*", []req{{"FHIR:Read", "FHIR:Encounter:1", true}, {"FHIR:Read", "FHIR:Patient:*", true}}},
		{"FHIR:Patient", []req{{"FHIR:Read", "FHIR:Patient:1", true}, {"FHIR:Read", "FHIR:Patient:*", true}, {"FHIR:Read", "FHIR:Encounter:1", false}}},
		{"FHIR:Patient:*", []req{{"FHIR:Read", "FHIR:Patient:1", true}, {"FHIR:Read", "FHIR:Patient:*", true}}},
		// A request's "*" (a type-level action) only matches a pattern "*".
		{"FHIR:Patient:1", []req{{"FHIR:Read", "FHIR:Patient:1", true}, {"FHIR:Read", "FHIR:Patient:2", false}, {"FHIR:Read", "FHIR:Patient:*", false}, {"FHIR:Read", "FHIR:Patient:10", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			s := Compile(inline(allow(res(tt.pattern), "FHIR:Read")))
			checkDecisions(t, s, tt.reqs)
		})
	}
}

func TestDecideActions(t *testing.T) {
	s := Compile(inline(
		allow(res("IAM:M2MClient:*"), "App:ListAllM2MClients"),
		allow(res("App:*"), "App:CreateUser"),
		allow(res("Zambda:*"), "Zambda:*"),
		allow(res("Project:Settings"), "Project:*"),
	))
	checkDecisions(t, s, []req{
		{"IAM:ListAllM2MClients", "IAM:M2MClient:*", true}, // granted by its alias
		{"App:ListAllM2MClients", "IAM:M2MClient:*", true}, // asked by its alias
		{"IAM:CreateM2MClient", "IAM:M2MClient:*", false},
		{"App:CreateUser", "App:User:*", true},
		{"App:CreateUser", "App:Application:*", true},
		{"App:GetUser", "App:User:u1", false},
		{"Zambda:InvokeFunction", "Zambda:Function:f", true},
		{"Zambda:GetSecret", "Zambda:Secret:s", true},
		{"Project:GetProjectInfo", "Project:Settings", true},
		{"Project:ListAllUsers", "Project:Settings", true},
		{"FHIR:Read", "FHIR:Patient:1", false},                 // default deny
		{"Nope:Read", "FHIR:Patient:1", false},                 // unknown action
		{"Zambda:InvokeFunction", "FHIR:Patient:1", false},     // resource of another service
		{"Zambda:InvokeFunction", "Zambda", true},              // no type: matched by "Zambda:*"
		{"Zambda:InvokeFunction", "Zambda:Function", true},     // type level
		{"Project:GetProjectInfo", "Project:Settings:x", true}, // an id on Project:Settings still matches the type grant
	})
	// An Allow that pairs an action with a resource it cannot apply to is
	// invalid, and Compile leaves the whole rule out.
	s = Compile(inline(allow(res("FHIR:Patient"), "FHIR:Read", "Zambda:*")))
	checkDecisions(t, s, []req{{"FHIR:Read", "FHIR:Patient:1", false}})
	// App:CreateUser granted on App:Application:* matches requests on either type.
	s = Compile(inline(allow(res("App:Application:*"), "App:CreateUser")))
	checkDecisions(t, s, []req{{"App:CreateUser", "App:User:*", true}, {"App:CreateUser", "App:Application:*", true}, {"App:GetApplication", "App:Application:a", false}})
}

func TestDecideDenyWins(t *testing.T) {
	roleA := Source{Kind: "role", ID: "a", Name: "Clinician", Doc: Document{Rule: []Rule{allow(res("FHIR:*"), "FHIR:*")}}}
	roleB := Source{Kind: "role", ID: "b", Name: "Readers", Doc: Document{Rule: []Rule{allow(res("FHIR:Patient:p1"), "FHIR:Read")}}}
	own := inline(allow(res("Z3:*"), "*"), deny(res("FHIR:Patient:p1"), "FHIR:Read", "FHIR:Update"))
	s := Compile(roleA, roleB, own)
	d := s.Decide("FHIR:Read", "FHIR:Patient:p1")
	if d.Allowed || d.Effect != Deny || d.Source == nil || d.Source.Kind != "inline" || d.RuleIndex != 1 {
		t.Errorf("deny across sources: %+v", d)
	}
	d = s.Decide("FHIR:Read", "FHIR:Patient:p2")
	if !d.Allowed || d.Source.ID != "a" || d.RuleIndex != 0 {
		t.Errorf("allow: %+v", d)
	}
	if d.Source != &s.Sources()[0] {
		t.Error("Decision.Source must point into the Set")
	}
	checkDecisions(t, s, []req{{"FHIR:Update", "FHIR:Patient:p1", false}, {"FHIR:Delete", "FHIR:Patient:p1", true}, {"FHIR:Read", "FHIR:Patient:*", true}})
	// A wildcard Deny beats a specific Allow too.
	s = Compile(roleB, inline(deny(res("FHIR"), "*")))
	checkDecisions(t, s, []req{{"FHIR:Read", "FHIR:Patient:p1", false}})
}

func TestDecideZ3(t *testing.T) {
	s := Compile(inline(
		allow(res("Z3:fruit/apple/*"), "Z3:GetObject"),
		allow(res("Z3:fruit/pear/**"), "Z3:GetObject", "Z3:ListObjects"),
		allow(res("Z3:fruit/**/one.csv"), "Z3:PutObject"),
		allow(res("Z3:*/shared/*.pdf"), "Z3:GetObject"),
		allow(res("Z3:fruit"), "Z3:DeleteBucket", "Z3:ListObjects"),
		allow(res("Z3:*"), "Z3:ListBuckets"),
		allow(res("Z3:veg:docs/a.txt"), "Z3:DeleteObject"), // colon form
		deny(res("Z3:fruit/pear/secret/**"), "Z3:GetObject"),
	))
	checkDecisions(t, s, []req{
		{"Z3:GetObject", "Z3:fruit/apple/a.csv", true},
		{"Z3:GetObject", "Z3:fruit/apple/x/a.csv", false}, // * is one segment
		{"Z3:GetObject", "Z3:fruit/pear/x/y/z.csv", true}, // ** is any depth
		{"Z3:GetObject", "Z3:fruit/pear/secret/k.pem", false},
		{"Z3:GetObject", "Z3:fruit/pear/secret/a/k.pem", false},
		{"Z3:GetObject", "Z3:other/apple/a.csv", false},
		{"Z3:GetObject", "Z3:fruit", false},        // the bucket is not an object
		{"Z3:PutObject", "Z3:fruit/one.csv", true}, // ** matches zero segments
		{"Z3:PutObject", "Z3:fruit/a/b/one.csv", true},
		{"Z3:PutObject", "Z3:fruit/a/b/two.csv", false},
		{"Z3:GetObject", "Z3:any-bucket/shared/r.pdf", true},
		{"Z3:GetObject", "Z3:any-bucket/shared/r.txt", false},
		{"Z3:ListObjects", "Z3:fruit/", true},
		{"Z3:ListObjects", "Z3:fruit/pear/", true},
		{"Z3:ListObjects", "Z3:fruit/apple/", false},
		{"Z3:DeleteBucket", "Z3:fruit", true},
		{"Z3:DeleteBucket", "Z3:veg", false},
		{"Z3:ListBuckets", "Z3:*", true},
		{"Z3:CreateBucket", "Z3:*", false},
		{"Z3:DeleteObject", "Z3:veg/docs/a.txt", true},
	})
	s = Compile(inline(allow(res("*"), "Z3:*"), deny(res("Z3:b-1"), "Z3:DeleteBucket")))
	checkDecisions(t, s, []req{{"Z3:CreateBucket", "Z3:*", true}, {"Z3:GetObject", "Z3:b-1/x", true}, {"Z3:DeleteBucket", "Z3:b-1", false}, {"Z3:DeleteBucket", "Z3:b-2", true}})
}

const z3Project = "0b6f5a4e-2d36-4c1f-9a59-0b8f1c1e2a10"

// Oystehr's bucket names ("<projectId>-TelemedRecordings"): long, mixed
// case, and matched exactly, so a rule on one spelling never reaches
// another bucket whose name differs only in case.
func TestDecideZ3OystehrBuckets(t *testing.T) {
	tele, inv := z3Project+"-TelemedRecordings", z3Project+"-invoiceable-patients-reports"
	s := Compile(inline(
		allow(res("Z3:"+tele+"/**", "Z3:"+inv+"/**"), "Z3:GetObject", "Z3:PutObject", "Z3:ListObjects"),
		deny(res("Z3:"+inv+"/**"), "Z3:GetObject"),
		allow(res("Z3:"+tele), "Z3:DeleteBucket"),
	))
	checkDecisions(t, s, []req{
		{"Z3:GetObject", "Z3:" + tele + "/visit/1.webm", true},
		{"Z3:PutObject", "Z3:" + tele + "/visit/1.webm", true},
		{"Z3:ListObjects", "Z3:" + tele + "/", true},
		{"Z3:DeleteBucket", "Z3:" + tele, true},
		{"Z3:PutObject", "Z3:" + inv + "/2026/report.csv", true},
		{"Z3:GetObject", "Z3:" + inv + "/2026/report.csv", false}, // denied
		{"Z3:GetObject", "Z3:" + z3Project + "-telemedrecordings/visit/1.webm", false},
		{"Z3:DeleteBucket", "Z3:" + z3Project + "-telemedrecordings", false},
		{"Z3:GetObject", "Z3:" + z3Project + "-TelemedRecordings2/visit/1.webm", false},
	})
}

func TestDecideConditions(t *testing.T) {
	gp := withCond(allow(res("FHIR:Patient"), "FHIR:Read", "FHIR:Search"), "general-practitioner=Practitioner/1")
	org := withCond(allow(res("FHIR:Patient:*"), "FHIR:Read"), "Patient?organization=Organization/9", "general-practitioner=Practitioner/1")
	s := Compile(Source{Kind: "role", ID: "r", Doc: Document{Rule: []Rule{gp}}}, inline(org))
	d := s.Decide("FHIR:Read", "FHIR:Patient:5")
	want := "Patient?general-practitioner=Practitioner/1 | Patient?organization=Organization/9"
	if !d.Allowed || joinConditions(d.Conditions) != want || d.Source.ID != "r" {
		t.Errorf("conditional: %+v, want conditions %s", d, want)
	}
	if d := s.Decide("FHIR:Search", "FHIR:Patient:*"); !d.Allowed || len(d.Conditions) != 1 {
		t.Errorf("conditional search: %+v", d)
	}
	if d := s.Decide("FHIR:Read", "FHIR:Encounter:1"); d.Allowed {
		t.Errorf("other type: %+v", d)
	}
	// An unconditional Allow makes the conditions moot.
	s2 := Compile(inline(gp, allow(res("FHIR:Patient:5"), "FHIR:Read")))
	if d := s2.Decide("FHIR:Read", "FHIR:Patient:5"); !d.Allowed || d.Conditions != nil || d.RuleIndex != 1 {
		t.Errorf("unconditional wins: %+v", d)
	}
	if d := s2.Decide("FHIR:Read", "FHIR:Patient:6"); !d.Allowed || d.Conditions == nil {
		t.Errorf("other ids stay conditional: %+v", d)
	}
	// A Deny still wins.
	s3 := Compile(inline(gp, deny(res("FHIR:Patient:5"), "FHIR:Read")))
	if d := s3.Decide("FHIR:Read", "FHIR:Patient:5"); d.Allowed {
		t.Errorf("deny over conditional: %+v", d)
	}
	// History under an unconditional grant, Read conditional: History inherits Read's conditions.
	s4 := Compile(inline(gp, allow(res("FHIR:Patient"), "FHIR:History")))
	if d := s4.Decide("FHIR:History", "FHIR:Patient:5"); !d.Allowed || len(d.Conditions) != 1 || d.DependencyConditions != nil {
		t.Errorf("history with conditional read: %+v", d)
	}
	s5 := Compile(inline(gp, withCond(allow(res("FHIR:Patient"), "FHIR:History"), "name=x")))
	if d := s5.Decide("FHIR:History", "FHIR:Patient:5"); !d.Allowed || len(d.Conditions) != 1 || len(d.DependencyConditions) != 1 {
		t.Errorf("history and read under different conditions: %+v", d)
	}
}

func TestDecideSkipsInvalid(t *testing.T) {
	s := Compile(inline(
		allow(res("FHIR:*:1"), "FHIR:Read"), // invalid Allow: skipped
		allow(res("FHIR:Patient"), "FHIR:Read"),
		deny(res("FHIR:Patient:7", "FHIR:*:1"), "FHIR:Read"), // invalid Deny: its valid parts still deny
	))
	checkDecisions(t, s, []req{{"FHIR:Read", "FHIR:Patient:1", true}, {"FHIR:Read", "FHIR:Patient:7", false}})
}

func TestExplain(t *testing.T) {
	s := Compile(Source{Kind: "role", ID: "r1", Name: "Auditor", Doc: Document{Rule: []Rule{allow(res("FHIR:Patient"), "FHIR:History")}}},
		inline(deny(res("FHIR:Patient:9"), "FHIR:*")))
	e := s.Explain("FHIR:History", "FHIR:Patient:1")
	if e.Allowed || len(e.Warnings) != 1 || !strings.Contains(e.Warnings[0], `FHIR:History is granted by role "Auditor" rule 0 but has no effect without FHIR:Read`) {
		t.Errorf("history explanation: %+v", e)
	}
	e = s.Explain("FHIR:Read", "FHIR:Patient:9")
	b, _ := json.Marshal(e)
	want := `{"allowed":false,"decidingRule":{"source":{"kind":"inline","id":"","name":""},"index":0,"rule":{"resource":["FHIR:Patient:9"],"action":["FHIR:*"],"effect":"Deny"}},"warnings":["denied explicitly by the inline policy rule 0"]}`
	if string(b) != want {
		t.Errorf("explanation JSON:\n got %s\nwant %s", b, want)
	}
	if e := s.Explain("FHIR:Reed", "FHIR:Patient:1"); e.Allowed || !strings.Contains(e.Warnings[0], "unknown action") {
		t.Errorf("unknown action: %+v", e)
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	s, reqs := benchSet(50)
	for _, r := range reqs {
		if n := testing.AllocsPerRun(100, func() { s.Decide(r.action, r.resource) }); n != 0 {
			t.Errorf("Decide(%s, %s) allocates %.0f times", r.action, r.resource, n)
		}
	}
}

func TestDeniedIDs(t *testing.T) {
	doc, err := Parse([]byte(`{"rule":[
		{"resource":"FHIR:Patient:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow"},
		{"resource":["FHIR:Patient:b","FHIR:Patient:a"],"action":"FHIR:Read","effect":"Deny"},
		{"resource":"FHIR:Observation:c","action":"FHIR:Read","effect":"Deny"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := Compile(Source{Kind: "inline", Doc: doc})
	if got := s.DeniedIDs("FHIR:Read", "FHIR:Patient"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("DeniedIDs = %v", got)
	}
	if got := s.DeniedIDs("FHIR:Search", "FHIR:Patient"); got != nil {
		t.Fatalf("DeniedIDs for search = %v", got)
	}
}
