package policy

import (
	"fmt"
	"testing"
)

// benchSet builds a principal with 3 roles and an inline policy holding n
// rules in all: type-level and per-id FHIR grants, zambda functions, Z3
// paths with "**", IAM roles, two broad wildcard rules and one Deny; and a
// request mix of allowed and denied lookups (the denied ones by the Deny,
// by default, by type and by a missing dependency).
func benchSet(n int) (*Set, []req) {
	rules := []Rule{
		deny(res("FHIR:Patient:p1"), "FHIR:*"),
		allow(res("App:*"), "App:*"),
	}
	for i := len(rules); i < n; i++ {
		switch i % 5 {
		case 0:
			rules = append(rules, allow(res("FHIR:"+FHIRResourceTypes[i%len(FHIRResourceTypes)]), "FHIR:Read", "FHIR:Search"))
		case 1:
			rules = append(rules, allow(res(fmt.Sprintf("FHIR:Patient:p%d", i)), "FHIR:Read", "FHIR:Update"))
		case 2:
			rules = append(rules, allow(res(fmt.Sprintf("Zambda:Function:f%d", i)), "Zambda:InvokeFunction"))
		case 3:
			rules = append(rules, allow(res(fmt.Sprintf("Z3:bucket-%d/dir%d/**", i%7, i)), "Z3:GetObject"))
		case 4:
			rules = append(rules, allow(res(fmt.Sprintf("IAM:Role:r%d", i)), "IAM:GetRole", "IAM:UpdateRole"))
		}
	}
	srcs := []Source{{Kind: "role", ID: "r1"}, {Kind: "role", ID: "r2"}, {Kind: "role", ID: "r3"}, {Kind: "inline"}}
	for i, r := range rules {
		srcs[i%4].Doc.Rule = append(srcs[i%4].Doc.Rule, r)
	}
	typ := FHIRResourceTypes[5]
	reqs := []req{
		{"FHIR:Read", "FHIR:Patient:p1", false}, // the Deny
		{"FHIR:Read", "FHIR:Patient:p6", n > 6},
		{"FHIR:Read", "FHIR:Patient:nobody", false},
		{"FHIR:Search", "FHIR:" + typ + ":*", n > 5},
		{"FHIR:History", "FHIR:" + typ + ":x", false}, // no History grant at all
		{"Zambda:InvokeFunction", "Zambda:Function:f2", true},
		{"Zambda:InvokeFunction", "Zambda:Function:other", false},
		{"Z3:GetObject", "Z3:bucket-3/dir3/a/b.pdf", true},
		{"Z3:GetObject", "Z3:bucket-3/elsewhere/b.pdf", false},
		{"App:CreateUser", "App:User:*", true},
		{"IAM:GetRole", "IAM:Role:r4", true},
		{"IAM:DeleteRole", "IAM:Role:r4", false},
	}
	return Compile(srcs...), reqs
}

func TestBenchSetDecisions(t *testing.T) {
	for _, n := range []int{5, 50, 500} {
		s, reqs := benchSet(n)
		checkDecisions(t, s, reqs)
	}
}

func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{5, 50, 500} {
		s, reqs := benchSet(n)
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := reqs[i%len(reqs)]
				s.Decide(r.action, r.resource)
				i++
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{50, 500} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchSet(n)
			}
		})
	}
}
