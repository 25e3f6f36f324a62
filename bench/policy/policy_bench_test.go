// Package policy compares Ward's policy decision engine with cedar-go and OPA
// on the same policies and requests, in one benchmark run.
package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	ward "github.com/wardhealth/ward/internal/policy"
)

// rule is one engine-neutral rule: actions ("Svc:Name", "Svc:*" or "*") on
// one resource pattern, where "" segments mean "any".
type rule struct {
	deny         bool
	actions      []string
	svc, typ, id string
}

// request is a concrete request; id "*" is a type-level request.
type request struct {
	action, svc, typ, id string
}

func (r request) resource() string { return r.svc + ":" + r.typ + ":" + r.id }

// policies builds n rules for a principal with 3 roles and an inline policy:
// one Deny, one service-wide wildcard, and a mix of type-level and per-id
// grants. It is the package benchmark's mix without Z3 (glob paths have no
// direct Cedar or Rego equivalent), with zambda secrets in their place.
func policies(n int) []rule {
	rules := []rule{
		{deny: true, actions: []string{"FHIR:*"}, svc: "FHIR", typ: "Patient", id: "p1"},
		{actions: []string{"App:*"}, svc: "App"},
	}
	for i := len(rules); i < n; i++ {
		switch i % 5 {
		case 0:
			rules = append(rules, rule{actions: []string{"FHIR:Read", "FHIR:Search"}, svc: "FHIR", typ: ward.FHIRResourceTypes[i%len(ward.FHIRResourceTypes)]})
		case 1:
			rules = append(rules, rule{actions: []string{"FHIR:Read", "FHIR:Update"}, svc: "FHIR", typ: "Patient", id: fmt.Sprintf("p%d", i)})
		case 2:
			rules = append(rules, rule{actions: []string{"Zambda:InvokeFunction"}, svc: "Zambda", typ: "Function", id: fmt.Sprintf("f%d", i)})
		case 3:
			rules = append(rules, rule{actions: []string{"Zambda:GetSecret"}, svc: "Zambda", typ: "Secret", id: fmt.Sprintf("s%d", i)})
		case 4:
			rules = append(rules, rule{actions: []string{"IAM:GetRole", "IAM:UpdateRole"}, svc: "IAM", typ: "Role", id: fmt.Sprintf("r%d", i)})
		}
	}
	return rules
}

// requests is the mix: allowed and denied (by the Deny, by default, by type).
func requests() []request {
	typ := ward.FHIRResourceTypes[5]
	return []request{
		{"FHIR:Read", "FHIR", "Patient", "p1"},
		{"FHIR:Read", "FHIR", "Patient", "p6"},
		{"FHIR:Read", "FHIR", "Patient", "nobody"},
		{"FHIR:Search", "FHIR", typ, "*"},
		{"FHIR:Update", "FHIR", "Encounter", "x"},
		{"Zambda:InvokeFunction", "Zambda", "Function", "f2"},
		{"Zambda:InvokeFunction", "Zambda", "Function", "other"},
		{"Zambda:GetSecret", "Zambda", "Secret", "s3"},
		{"App:CreateUser", "App", "User", "*"},
		{"IAM:GetRole", "IAM", "Role", "r4"},
		{"IAM:DeleteRole", "IAM", "Role", "r4"},
	}
}

// --- Ward ---

func wardSet(rules []rule) *ward.Set {
	srcs := []ward.Source{{Kind: "role", ID: "r1"}, {Kind: "role", ID: "r2"}, {Kind: "role", ID: "r3"}, {Kind: "inline"}}
	for i, r := range rules {
		res := r.svc
		if r.typ != "" {
			res += ":" + r.typ
		}
		if r.id != "" {
			res += ":" + r.id
		}
		eff := ward.Allow
		if r.deny {
			eff = ward.Deny
		}
		srcs[i%4].Doc.Rule = append(srcs[i%4].Doc.Rule, ward.Rule{Resource: ward.List(res), Action: ward.List(r.actions...), Effect: eff})
	}
	for _, s := range srcs {
		if _, err := ward.Validate(s.Doc); err != nil {
			panic(err)
		}
	}
	return ward.Compile(srcs...)
}

// --- Cedar ---
// Resources are entities Res::"Svc:Type:id" under Type::"Svc:Type" under
// Service::"Svc"; a type-level request is the Type entity itself. Actions
// are Action::"Svc:Name" under the group Action::"Svc:*".

func cedarPolicies(rules []rule) *cedar.PolicySet {
	var b strings.Builder
	for _, r := range rules {
		verb := "permit"
		if r.deny {
			verb = "forbid"
		}
		act := "action"
		if len(r.actions) == 1 && strings.HasSuffix(r.actions[0], ":*") {
			act = fmt.Sprintf(`action in Action::%q`, r.actions[0])
		} else {
			quoted := make([]string, len(r.actions))
			for i, a := range r.actions {
				quoted[i] = fmt.Sprintf("Action::%q", a)
			}
			act = "action in [" + strings.Join(quoted, ", ") + "]"
		}
		var res string
		switch {
		case r.id != "":
			res = fmt.Sprintf(`resource == Res::"%s:%s:%s"`, r.svc, r.typ, r.id)
		case r.typ != "":
			res = fmt.Sprintf(`resource in Type::"%s:%s"`, r.svc, r.typ)
		default:
			res = fmt.Sprintf(`resource in Service::%q`, r.svc)
		}
		fmt.Fprintf(&b, "%s (principal, %s, %s);\n", verb, act, res)
	}
	ps, err := cedar.NewPolicySetFromBytes("ward.cedar", []byte(b.String()))
	if err != nil {
		panic(err)
	}
	return ps
}

func cedarEntities(reqs []request) types.EntityMap {
	m := types.EntityMap{}
	add := func(uid types.EntityUID, parents ...types.EntityUID) {
		m[uid] = types.Entity{UID: uid, Parents: types.NewEntityUIDSet(parents...)}
	}
	for _, r := range reqs {
		svc := types.NewEntityUID("Service", types.String(r.svc))
		typ := types.NewEntityUID("Type", types.String(r.svc+":"+r.typ))
		add(svc)
		add(typ, svc)
		if r.id != "*" {
			add(types.NewEntityUID("Res", types.String(r.resource())), typ)
		}
		group := types.NewEntityUID("Action", types.String(r.svc+":*"))
		add(group)
		add(types.NewEntityUID("Action", types.String(r.action)), group)
	}
	return m
}

func cedarRequest(r request) cedar.Request {
	res := types.NewEntityUID("Res", types.String(r.resource()))
	if r.id == "*" {
		res = types.NewEntityUID("Type", types.String(r.svc+":"+r.typ))
	}
	return cedar.Request{
		Principal: types.NewEntityUID("User", "u"),
		Action:    types.NewEntityUID("Action", types.String(r.action)),
		Resource:  res,
		Context:   types.Record{},
	}
}

// --- OPA ---

const regoModule = `package ward

default allow := false

allow if {
	not deny
	some r in data.rules
	r.effect == "Allow"
	matches(r)
}

deny if {
	some r in data.rules
	r.effect == "Deny"
	matches(r)
}

matches(r) if {
	action_ok(r)
	resource_ok(r)
}

action_ok(r) if { some a in r.actions; a == input.action }
action_ok(r) if { some a in r.actions; a == "*" }
action_ok(r) if { some a in r.actions; a == concat(":", [input.service, "*"]) }

resource_ok(r) if r.service == "*"
resource_ok(r) if { r.service == input.service; r.type == "*" }
resource_ok(r) if { r.service == input.service; r.type == input.type; r.id == "*" }
resource_ok(r) if { r.service == input.service; r.type == input.type; r.id == input.id; input.id != "*" }
`

func opaQuery(rules []rule) rego.PreparedEvalQuery {
	var data []any
	for _, r := range rules {
		eff := "Allow"
		if r.deny {
			eff = "Deny"
		}
		acts := make([]any, len(r.actions))
		for i, a := range r.actions {
			acts[i] = a
		}
		data = append(data, map[string]any{"effect": eff, "actions": acts, "service": or(r.svc), "type": or(r.typ), "id": or(r.id)})
	}
	pq, err := rego.New(
		rego.Query("data.ward.allow"),
		rego.Module("ward.rego", regoModule),
		rego.Store(inmem.NewFromObject(map[string]any{"rules": data})),
	).PrepareForEval(context.Background())
	if err != nil {
		panic(err)
	}
	return pq
}

func or(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

func opaInput(r request) map[string]any {
	return map[string]any{"action": r.action, "service": r.svc, "type": r.typ, "id": r.id}
}

func opaAllowed(pq rego.PreparedEvalQuery, input map[string]any) bool {
	rs, err := pq.Eval(context.Background(), rego.EvalInput(input))
	if err != nil {
		panic(err)
	}
	return rs.Allowed()
}

// --- the benchmark ---

func BenchmarkPolicy(b *testing.B) {
	reqs := requests()
	ents := cedarEntities(reqs)
	for _, n := range []int{5, 50, 500} {
		rules := policies(n)
		set, ps, pq := wardSet(rules), cedarPolicies(rules), opaQuery(rules)
		wardRes := make([]string, len(reqs)) // built once, as a handler holds its resource string
		cedarReqs := make([]cedar.Request, len(reqs))
		opaInputs := make([]map[string]any, len(reqs))
		allowed := 0
		for i, r := range reqs {
			wardRes[i], cedarReqs[i], opaInputs[i] = r.resource(), cedarRequest(r), opaInput(r)
			w := set.Decide(r.action, wardRes[i]).Allowed
			c, _ := cedar.Authorize(ps, ents, cedarReqs[i])
			o := opaAllowed(pq, opaInputs[i])
			if w != (c == cedar.Allow) || w != o {
				b.Fatalf("rules=%d %s on %s: ward %v, cedar %v, opa %v", n, r.action, r.resource(), w, c, o)
			}
			if w {
				allowed++
			}
		}
		if allowed == 0 || allowed == len(reqs) {
			b.Fatalf("rules=%d: the mix must hold allowed and denied requests (%d of %d allowed)", n, allowed, len(reqs))
		}
		b.Run(fmt.Sprintf("engine=ward/rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % len(reqs)
				set.Decide(reqs[k].action, wardRes[k])
				i++
			}
		})
		b.Run(fmt.Sprintf("engine=cedar/rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				cedar.Authorize(ps, ents, cedarReqs[i%len(reqs)])
				i++
			}
		})
		b.Run(fmt.Sprintf("engine=opa/rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				opaAllowed(pq, opaInputs[i%len(reqs)])
				i++
			}
		})
	}
}
