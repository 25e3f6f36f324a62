package lab

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store/storetest"
)

func mustQuery(t testing.TB, typ string) *search.Query {
	t.Helper()
	q, err := search.ParseQuery(typ, url.Values{}, false)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func item1(lab, version, code, name, loinc, cpt string, aoe bool) string {
	s := `{"resourceType":"ActivityDefinition","status":"active","kind":"ServiceRequest","publisher":"Lab ` + lab + `",
		"identifier":[{"system":"urn:ward:lab:` + lab + `","value":"` + code + `"}],"version":"` + version + `","title":"` + name + `",
		"code":{"coding":[{"system":"urn:ward:lab:` + lab + `","code":"` + code + `"},{"system":"http://loinc.org","code":"` + loinc + `"}]},
		"extension":[{"url":"urn:ward:lab:cpt","valueCoding":{"system":"http://www.ama-assn.org/go/cpt","code":"` + cpt + `"}}`
	if aoe {
		s += `,{"url":"urn:ward:lab:aoe","valueReference":{"reference":"#aoe"}}],
		"contained":[{"resourceType":"Questionnaire","id":"aoe","status":"active","item":[{"linkId":"fasting","text":"Fasting?","type":"boolean"}]}]}`
	} else {
		s += `]}`
	}
	return s
}

func TestOrderableItems(t *testing.T) {
	f := newFixture(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN}, Config{})
	for _, it := range []string{
		item1("lab-1", "1", "GLU", "Glucose (old)", "2345-7", "82947", false),
		item1("lab-1", "2", "GLU", "Glucose", "2345-7", "82947", true),
		item1("lab-1", "2", "CBC", "Complete blood count", "58410-2", "85025", false),
		item1("lab-1", "2", "LIP", "Lipid panel", "57698-3", "80061", false),
		item1("lab-2", "7", "GLU", "Glucose, serum", "2345-7", "82947", false),
	} {
		f.create(f.admin, "ActivityDefinition", it)
	}
	// Another project's compendium is not seen.
	f.create(f.other, "ActivityDefinition", item1("lab-1", "9", "XXX", "Secret test", "1-1", "1", false))
	ctx := context.Background()
	tests := []struct {
		query string
		want  []string // lab|code in order
		next  bool
	}{
		{"", []string{"lab-1|CBC", "lab-1|GLU", "lab-2|GLU", "lab-1|LIP"}, false},
		{"labIds=lab-1", []string{"lab-1|CBC", "lab-1|GLU", "lab-1|LIP"}, false},
		{"itemCodes=GLU", []string{"lab-1|GLU", "lab-2|GLU"}, false},
		{"labIds=lab-2&itemCodes=GLU", []string{"lab-2|GLU"}, false},
		{"itemNames=lipid", []string{"lab-1|LIP"}, false},
		{"itemLoincs=58410-2,57698-3", []string{"lab-1|CBC", "lab-1|LIP"}, false},
		{"itemCptCodes=82947&labIds=lab-1", []string{"lab-1|GLU"}, false},
		{"limit=2", []string{"lab-1|CBC", "lab-1|GLU"}, true},
		{"limit=2&cursor=2", []string{"lab-2|GLU", "lab-1|LIP"}, false},
		{"sort=itemCodes&sortOrder=desc&labIds=lab-1", []string{"lab-1|LIP", "lab-1|GLU", "lab-1|CBC"}, false},
		{"itemCodes=XXX", nil, false},
	}
	for _, tt := range tests {
		v, _ := url.ParseQuery(tt.query)
		page, err := f.svc.OrderableItems(ctx, f.admin.ProjectID, v)
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		var got []string
		for _, it := range page.OrderableItems {
			got = append(got, it.Lab.LabGUID+"|"+it.Item.ItemCode)
			if it.Lab.LabGUID == "lab-1" && it.Lab.CompendiumVersion != "2" {
				t.Errorf("%s: an old compendium version %q is listed", tt.query, it.Lab.CompendiumVersion)
			}
		}
		if len(got) != len(tt.want) || (page.Metadata.NextCursor != nil) != tt.next {
			t.Errorf("%s: got %v (next %v), want %v (next %v)", tt.query, got, page.Metadata.NextCursor, tt.want, tt.next)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: got %v, want %v", tt.query, got, tt.want)
				break
			}
		}
	}
	for _, bad := range []string{"limit=0", "limit=x", "cursor=-1"} {
		v, _ := url.ParseQuery(bad)
		if _, err := f.svc.OrderableItems(ctx, f.admin.ProjectID, v); !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("%s: %v, want a 400", bad, err)
		}
	}
	q, err := f.svc.Questionnaire(ctx, f.admin.ProjectID, "lab-1", "2", "GLU")
	if err != nil || !strings.Contains(string(q), `"resourceType":"Questionnaire"`) || !strings.Contains(string(q), "Fasting?") {
		t.Fatalf("questionnaire: %s %v", q, err)
	}
	for _, c := range [][3]string{{"lab-1", "1", "GLU"}, {"lab-1", "2", "CBC"}, {"lab-9", "2", "GLU"}} {
		if _, err := f.svc.Questionnaire(ctx, f.admin.ProjectID, c[0], c[1], c[2]); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("%v: %v, want a 404", c, err)
		}
	}
	if _, err := f.svc.Questionnaire(ctx, f.other.ProjectID, "lab-1", "2", "GLU"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("another project's questionnaire: %v, want a 404", err)
	}
}
