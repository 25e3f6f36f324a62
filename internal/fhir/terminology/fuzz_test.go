package terminology

import (
	"context"
	"testing"
)

// FuzzParseCodeSystem: a parsed CodeSystem finds each of its codes, and walking its hierarchy
// (subsumption, is-a) ends even when repeated codes make it loop.
func FuzzParseCodeSystem(f *testing.F) {
	f.Add([]byte(colors))
	f.Add([]byte(`{"resourceType":"CodeSystem","url":"u","concept":[{"code":"a","concept":[{"code":"b","concept":[{"code":"a"}]}]}]}`))
	f.Add([]byte(`{"concept":[{"code":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := ParseCodeSystem(data)
		if err != nil {
			return
		}
		for i, c := range cs.Concepts {
			if k, ok := cs.Lookup(c.Code); !ok || k.Code != c.Code {
				t.Fatalf("code %q not found", c.Code)
			}
			for j := range cs.Concepts {
				cs.ancestor(i, j)
			}
			if d := cs.descendants(i, map[int]bool{}, nil); len(d) > len(cs.Concepts) {
				t.Fatalf("%d descendants of %d concepts", len(d), len(cs.Concepts))
			}
			if i > 50 {
				break
			}
		}
	})
}

// FuzzExpandValueSet: any ValueSet expands (or fails) without panicking, and an expansion holds
// no code twice and at most MaxExpansion codes.
func FuzzExpandValueSet(f *testing.F) {
	f.Add([]byte(`{"url":"http://x/vs","compose":{"include":[{"system":"http://example.org/cs/colors","filter":[{"property":"concept","op":"is-a","value":"cool"}]}]}}`))
	f.Add([]byte(`{"url":"http://x/vs","compose":{"include":[{"valueSet":["http://x/vs"]}]}}`))
	f.Add([]byte(`{"url":"http://x/vs","compose":{"include":[{"valueSet":["http://hl7.org/fhir/ValueSet/administrative-gender"]}],"exclude":[{"system":"http://hl7.org/fhir/administrative-gender","concept":[{"code":"male"}]}]}}`))
	f.Add([]byte(`{"url":"http://x/vs","compose":{"include":[{"system":"http://example.org/cs/colors","filter":[{"property":"code","op":"regex","value":"(a*)*b"}]}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		vs, err := ParseValueSet(data)
		if err != nil {
			return
		}
		r := resolver(t)
		r.src.(mapSource).vs[vs.URL] = vs
		codes, err := r.Expand(context.Background(), vs)
		if err != nil {
			return
		}
		seen := map[codeKey]bool{}
		for _, c := range codes {
			if seen[codeKey{c.System, c.Code}] {
				t.Fatalf("%s|%s twice", c.System, c.Code)
			}
			seen[codeKey{c.System, c.Code}] = true
		}
		if len(codes) > MaxExpansion {
			t.Fatalf("%d codes", len(codes))
		}
	})
}
