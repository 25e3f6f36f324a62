package search

import (
	"net/url"
	"strings"
	"testing"
)

// shape renders a filter tree compactly: (and a b), (not x), name:mod~op=value.
func shape(n *FilterNode) string {
	if n.Op != "" {
		parts := []string{n.Op}
		for _, k := range n.Kids {
			parts = append(parts, shape(k))
		}
		return "(" + strings.Join(parts, " ") + ")"
	}
	c := n.Clause
	s := c.Param.Name
	if c.Modifier != "" {
		s += ":" + c.Modifier
	}
	if n.Negate {
		s = "!" + s
	}
	v := c.Values[0]
	if v.Op != "" {
		s += "~" + v.Op
	}
	return s + "=" + c.encodeCond(v)
}

func TestParseFilter(t *testing.T) {
	for _, tt := range []struct{ typ, in, want string }{
		{"Patient", `name eq "peter"`, `name~eq=peter`},
		{"Patient", `name co pet`, `name:contains=pet`},
		{"Patient", `name sw pet and gender eq male`, `(and name=pet gender=male)`},
		{"Patient", `name ew ter or gender ne male and birthdate ge 2000-01-01`, `(or name~ew=ter (and !gender=male birthdate=ge2000-01-01))`},
		{"Patient", `not (gender eq male) and (birthdate lt 1990 or birthdate gt 2010)`, `(and (not gender=male) (or birthdate=lt1990 birthdate=gt2010))`},
		{"Patient", `name eq "a, b $c"`, `name~eq=a\, b \$c`},
		{"Patient", `gender pr true`, `gender:missing=false`},
		{"Patient", `gender PR false`, `gender:missing=true`},
		{"Observation", `code eq http://loinc.org|8867-4 and value-quantity gt 5.4|http://unitsofmeasure.org|mg`, `(and code=http://loinc.org|8867-4 value-quantity=gt5.4|http://unitsofmeasure.org|mg)`},
		{"Observation", `code in http://x.test/vs and subject re Patient/1`, `(and code:in=http://x.test/vs subject=Patient/1)`},
		{"Observation", `code ni http://x.test/vs`, `code:not-in=http://x.test/vs`},
		{"ValueSet", `url sw http://x.test/`, `url:below=http://x.test/`},
	} {
		n, err := ParseFilter(tt.typ, tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if got := shape(n); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{``, "empty"},
		{`name eq "peter`, "unterminated"},
		{`shoe eq 9`, `unknown search parameter "shoe"`},
		{`name gt x`, `operator "gt" does not apply to a string`},
		{`birthdate co 2000`, `operator "co" does not apply to a date`},
		{`name eq`, "parameter operator value"},
		{`name eq x y`, `unexpected "y"`},
		{`not gender eq male`, "followed by a parenthesis"},
		{`(name eq x`, "missing )"},
		{`general-practitioner.name eq x`, "chains"},
		{`name[use eq official] eq x`, "filters or chains"},
		{`gender pr maybe`, "true or false"},
		{`birthdate po 2000`, `operator "po"`},
		{`birthdate eq not-a-date`, "birthdate eq not-a-date"},
		{strings.Repeat("gender eq male or ", 70) + "gender eq male", "more than 64"},
	} {
		if _, err := ParseFilter("Patient", tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.in, err, tt.want)
		}
	}
	// Through ParseQuery: the error names _filter, and Encode keeps the text.
	if _, err := ParseQuery("Patient", url.Values{"_filter": {"shoe eq 9"}}, false); err == nil || !strings.Contains(err.Error(), "_filter") {
		t.Errorf("bad _filter: %v", err)
	}
	q, err := ParseQuery("Patient", url.Values{"_filter": {`name co "x y"`}, "gender": {"male"}}, false)
	if err != nil || len(q.Filters) != 1 || !strings.Contains(q.Encode(), "_filter=name+co+%22x+y%22") {
		t.Errorf("encode: %v %s", err, q.Encode())
	}
}
