package policy

import (
	"encoding/json"
	"errors"
	"path"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, its errors are ErrInvalidPolicy, and what it
// accepts marshals and re-parses to an equal document.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"rule":[{"resource":"FHIR:Patient:*","action":["FHIR:Read","FHIR:History"],"effect":"Allow"}]}`))
	f.Add([]byte(`{"rule":[{"resource":["Z3:b-1/**"],"action":"Z3:*","effect":"Deny","condition":[{"a":"<&>"},"x=1"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v is not ErrInvalidPolicy", err)
			}
			return
		}
		if _, err := Validate(doc); err != nil && !errors.Is(err, ErrInvalidPolicy) {
			t.Fatalf("validation error %v is not ErrInvalidPolicy", err)
		}
		out, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(doc, again) {
			t.Fatalf("round trip changed the document:\n%#v\n%#v", doc, again)
		}
		Compile(Source{Kind: "inline", Doc: doc}) // must not panic, valid or not
	})
}

var (
	fuzzResources = []string{"*", "FHIR", "FHIR:*", "FHIR:Patient", "FHIR:Patient:*", "FHIR:Patient:p1", "FHIR:Patient:p2",
		"FHIR:Encounter", "FHIR:Encounter:e1", "FHIR:Group:*", "Zambda:Function:f1", "Zambda:*", "Z3:*", "Z3", "Z3:b-1", "Z3:b-1/a/*",
		"Z3:b-1/**", "Z3:*/a/**/x.pdf", "Z3:b-1/a/", "Z3:b-2:a/x.pdf", "Z3:b-1/*/x.*", "App:User:*", "App:Application:*", "App:*",
		"IAM:M2MClient:*", "Project:Settings", "FHIR:*:p1"}
	fuzzActions = []string{"*", "FHIR:*", "FHIR:Read", "FHIR:History", "FHIR:Search", "FHIR:Create", "FHIR:Export", "Zambda:*",
		"Zambda:InvokeFunction", "Z3:GetObject", "Z3:ListObjects", "Z3:*", "Z3:DeleteBucket", "Z3:ListBuckets", "App:CreateUser",
		"App:CreateM2MClient", "IAM:CreateM2MClient", "Project:GetProjectInfo", "App:*"}
	fuzzConditions = []string{"", "name=x", "Patient?gp=P/1"}
	// Requests are well-typed pairs, as handlers ask them.
	fuzzRequests = [][2]string{
		{"FHIR:Read", "FHIR:Patient:p1"}, {"FHIR:Read", "FHIR:Patient:p3"}, {"FHIR:History", "FHIR:Patient:p1"},
		{"FHIR:History", "FHIR:Encounter:e1"}, {"FHIR:Search", "FHIR:Patient:*"}, {"FHIR:Create", "FHIR:Encounter:*"},
		{"FHIR:Update", "FHIR:Patient:p2"}, {"FHIR:Export", "FHIR:Group:*"}, {"Zambda:InvokeFunction", "Zambda:Function:f1"},
		{"Zambda:InvokeFunction", "Zambda:Function:f2"}, {"Z3:ListBuckets", "Z3:*"}, {"Z3:CreateBucket", "Z3:*"},
		{"Z3:DeleteBucket", "Z3:b-1"}, {"Z3:ListObjects", "Z3:b-1/"}, {"Z3:ListObjects", "Z3:b-1/a/"},
		{"Z3:GetObject", "Z3:b-1/a/x.pdf"}, {"Z3:GetObject", "Z3:b-1/a/b/x.pdf"}, {"Z3:GetObject", "Z3:b-2/a/x.pdf"},
		{"Z3:GetObject", "Z3:b-1/q/x.txt"}, {"App:CreateUser", "App:User:*"}, {"App:CreateUser", "App:Application:*"},
		{"App:CreateM2MClient", "IAM:M2MClient:*"}, {"IAM:CreateM2MClient", "IAM:M2MClient:*"}, {"Project:GetProjectInfo", "Project:Settings"},
	}
)

// fuzzDoc turns bytes into a small valid policy over the vocabulary above.
func fuzzDoc(data []byte) Document {
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	var doc Document
	for n := next()%6 + 1; n > 0; n-- {
		r := Rule{Effect: Allow}
		if next()%4 == 0 {
			r.Effect = Deny
		}
		for k := next()%2 + 1; k > 0; k-- {
			r.Resource.Values = append(r.Resource.Values, fuzzResources[next()%len(fuzzResources)])
		}
		for k := next()%2 + 1; k > 0; k-- {
			r.Action.Values = append(r.Action.Values, fuzzActions[next()%len(fuzzActions)])
		}
		if c := fuzzConditions[next()%len(fuzzConditions)]; c != "" {
			r.Condition.Items = []Condition{{Query: c}}
		}
		// Keep only rules that validate alone, so most inputs exercise Decide.
		if _, err := Validate(Document{Rule: []Rule{r}}); err == nil {
			doc.Rule = append(doc.Rule, r)
		}
	}
	return doc
}

// FuzzDecide: a Set compiled from a validated policy never allows what no
// Allow rule matches (by the slow reference matcher below), never allows
// what a Deny matches, and allows FHIR:History only where FHIR:Read is allowed.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{2, 0, 0, 4, 0, 2, 0, 1, 0, 0, 3, 0, 0})
	f.Add([]byte{5, 1, 1, 7, 12, 0, 1, 0, 3, 1, 21, 0, 0, 11, 0, 3, 0, 0, 16, 9, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		doc := fuzzDoc(data)
		if _, err := Validate(doc); err != nil {
			return
		}
		half := len(doc.Rule) / 2
		s := Compile(Source{Kind: "role", ID: "r", Doc: Document{Rule: doc.Rule[:half]}}, Source{Kind: "inline", Doc: Document{Rule: doc.Rule[half:]}})
		for _, rq := range fuzzRequests {
			d := s.Decide(rq[0], rq[1])
			allowed, denied := refMatch(doc, rq[0], rq[1])
			if d.Allowed && (!allowed || denied) {
				t.Fatalf("Decide(%s, %s) allowed; reference: allow matches %v, deny matches %v\n%+v", rq[0], rq[1], allowed, denied, doc)
			}
			if d.Allowed && d.Source != nil && d.Source.Doc.Rule[d.RuleIndex].Effect != Allow {
				t.Fatalf("allowed by a non-Allow rule: %+v", d)
			}
			if rq[0] == "FHIR:History" && d.Allowed {
				if ra, rd := refMatch(doc, "FHIR:Read", rq[1]); !ra || rd {
					t.Fatalf("History allowed on %s without Read", rq[1])
				}
			}
		}
	})
}

// refMatch reports whether some Allow and some Deny rule of doc match the
// request, by plain string splitting and recursion.
func refMatch(doc Document, action, resource string) (allow, deny bool) {
	canon := action
	if c, ok := Aliases()[action]; ok {
		canon = c
	}
	for _, r := range doc.Rule {
		if !anyOf(r.Action.Values, func(a string) bool { return refAction(a, canon) }) ||
			!anyOf(r.Resource.Values, func(p string) bool { return refResource(p, resource, canon) }) {
			continue
		}
		if r.Effect == Allow {
			allow = true
		} else {
			deny = true
		}
	}
	return allow, deny
}

func anyOf(xs []string, f func(string) bool) bool {
	for _, x := range xs {
		if f(x) {
			return true
		}
	}
	return false
}

func refAction(pattern, canon string) bool {
	if c, ok := Aliases()[pattern]; ok {
		pattern = c
	}
	svc, name, _ := strings.Cut(pattern, ":")
	return pattern == "*" || pattern == canon || name == "*" && strings.HasPrefix(canon, svc+":")
}

func refResource(pattern, resource, canon string) bool {
	if pattern == "*" {
		return true
	}
	if strings.HasPrefix(pattern, "Z3") {
		return strings.HasPrefix(resource, "Z3:") && refZ3(strings.TrimPrefix(strings.TrimPrefix(pattern, "Z3"), ":"), resource[3:])
	}
	ps, rs := strings.Split(pattern, ":"), strings.SplitN(resource, ":", 3)
	if ps[0] != rs[0] {
		return false
	}
	for i := 1; i < 3; i++ {
		if i >= len(ps) || ps[i] == "*" {
			return true
		}
		if i >= len(rs) || rs[i] == "*" {
			return false
		}
		same := ps[i] == rs[i] || i == 1 && canon == "App:CreateUser" && ps[i] != rs[i] && isAppUserType(ps[i]) && isAppUserType(rs[i])
		if !same {
			return false
		}
	}
	return true
}

func isAppUserType(t string) bool { return t == "User" || t == "Application" }

func refZ3(pattern, req string) bool {
	if pattern == "" || pattern == "*" {
		return true
	}
	if req == "*" || req == "" {
		return false
	}
	if b, p, ok := strings.Cut(pattern, ":"); ok {
		pattern = b + "/" + p
	}
	pb, ppath, pHas := strings.Cut(pattern, "/")
	rb, rpath, rHas := strings.Cut(req, "/")
	if !pHas {
		return pb == rb && rpath == ""
	}
	return rHas && (pb == "*" || pb == rb) && refSegs(strings.Split(ppath, "/"), strings.Split(rpath, "/"))
}

func refSegs(p, r []string) bool {
	if len(p) == 0 {
		return len(r) == 0
	}
	if p[0] == "**" && len(p) == 1 {
		return len(r) > 0 // a final ** matches the rest: at least one (possibly empty) segment
	}
	if p[0] == "**" {
		for i := 0; i <= len(r); i++ {
			if refSegs(p[1:], r[i:]) {
				return true
			}
		}
		return false
	}
	if len(r) == 0 {
		return false
	}
	ok, _ := path.Match(p[0], r[0])
	return ok && refSegs(p[1:], r[1:])
}
