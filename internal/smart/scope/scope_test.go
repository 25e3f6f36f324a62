package scope

import (
	"errors"
	"strings"
	"testing"
)

func TestParseResource(t *testing.T) {
	tests := []struct {
		in      string
		ok      bool
		ctx     string
		typ     string
		perms   string
		v1      bool
		filter  string
		wantErr string
	}{
		{in: "patient/Observation.rs", ok: true, ctx: "patient", typ: "Observation", perms: "rs"},
		{in: "user/*.cruds", ok: true, ctx: "user", typ: "*", perms: "cruds"},
		{in: "system/*.rs", ok: true, ctx: "system", typ: "*", perms: "rs"},
		{in: "patient/Patient.c", ok: true, ctx: "patient", typ: "Patient", perms: "c"},
		{in: "user/Encounter.u", ok: true, ctx: "user", typ: "Encounter", perms: "u"},
		{in: "user/Encounter.d", ok: true, ctx: "user", typ: "Encounter", perms: "d"},
		{in: "patient/*.read", ok: true, ctx: "patient", typ: "*", perms: "rs", v1: true},
		{in: "user/Patient.write", ok: true, ctx: "user", typ: "Patient", perms: "cud", v1: true},
		{in: "system/*.*", ok: true, ctx: "system", typ: "*", perms: "cruds", v1: true},
		{in: "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", ok: true,
			ctx: "patient", typ: "Observation", perms: "rs", filter: "category=http%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fobservation-category%7Claboratory"},
		{in: "openid"}, {in: "fhirUser"}, {in: "launch/patient"}, {in: "offline_access"}, {in: "launch"},
		{in: "patient/Observation.sr", ok: true, wantErr: "cruds order"},
		{in: "patient/Observation.rr", ok: true, wantErr: "cruds order"},
		{in: "patient/Observation.x", ok: true, wantErr: "not a permission letter"},
		{in: "patient/Observation.", ok: true, wantErr: "no permissions"},
		{in: "patient/Observation", ok: true, wantErr: "context/Type.permissions"},
		{in: "patient/observation.rs", ok: true, wantErr: "FHIR type name"},
		{in: "patient/*.rs?code=1", ok: true, wantErr: "needs a resource type"},
		{in: "patient/Observation.read?code=1", ok: true, wantErr: "v1 scopes"},
		{in: "patient/Observation.rs?_has=x", ok: true, wantErr: "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, ok, err := ParseResource(tt.in)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return
			}
			if r.Context != tt.ctx || r.Type != tt.typ || r.Perms.String() != tt.perms || r.V1 != tt.v1 {
				t.Errorf("got %+v (perms %s)", r, r.Perms)
			}
			if got := r.Filter.Encode(); got != tt.filter {
				t.Errorf("filter = %q, want %q", got, tt.filter)
			}
		})
	}
}

func TestCovering(t *testing.T) {
	set, err := Parse("openid fhirUser patient/Observation.rs user/Patient.read system/*.c patient/Condition.s?clinical-status=active")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		typ  string
		p    Perm
		want []string
	}{
		{"Observation", Read, []string{"patient/Observation.rs"}},
		{"Observation", Search, []string{"patient/Observation.rs"}},
		{"Observation", Update, nil},
		{"Observation", Create, []string{"system/*.c"}},
		{"Patient", Search, []string{"user/Patient.read"}},
		{"Patient", Delete, nil},
		{"Condition", Search, []string{"patient/Condition.s?clinical-status=active"}},
		{"Condition", Read, nil},
		{"Encounter", Read, nil},
	}
	for _, tt := range tests {
		var got []string
		for _, r := range set.Covering(tt.typ, tt.p) {
			got = append(got, r.Raw)
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("Covering(%s, %s) = %v, want %v", tt.typ, tt.p, got, tt.want)
		}
	}
	if !set.Has("openid") || set.Has("launch") || !set.HasContext("patient") || set.HasContext("nope") {
		t.Error("Has/HasContext wrong")
	}
	if got := strings.Join(set.Strings(), " "); got != "patient/Observation.rs user/Patient.read system/*.c patient/Condition.s?clinical-status=active openid fhirUser" {
		t.Errorf("Strings = %q", got)
	}
}

func TestParseTooMany(t *testing.T) {
	if _, err := Parse(strings.Repeat("openid ", maxScopes+1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"patient/Observation.rs", "user/*.cruds openid", "system/*.read", "patient/Observation.rs?code=a|b&x=1", "launch/patient"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		set, err := Parse(s)
		if err != nil {
			return
		}
		// What parsed must parse again to the same thing.
		again, err := Parse(strings.Join(set.Strings(), " "))
		if err != nil {
			t.Fatalf("reparse of %q: %v", s, err)
		}
		if len(again.Resources) != len(set.Resources) || len(again.Other) != len(set.Other) {
			t.Fatalf("reparse of %q differs", s)
		}
		for _, r := range set.Resources {
			if r.Perms == 0 || r.Perms&^All != 0 {
				t.Fatalf("%q: perms %b", r.Raw, r.Perms)
			}
		}
	})
}
