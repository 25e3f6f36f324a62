package lab

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/store/storetest"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/stored_results.golden")

// storedSample is an ORU^R01 that exercises every element a result can
// have: two orders, a final and a preliminary report, numbers with and
// without units, a coded value, text with HL7 escapes, characters JSON
// escapes (<, >, &, quotes, U+2028), an unknown coding system, abnormal flags
// and reference ranges.
func storedSample(route, secret, a, b string) string {
	return withSecret(oru(route, "", "G1", a), secret) +
		"OBX|3|NM|718-7^Hemoglobin^LN||-0.50||||||F\r" +
		"OBX|4|TX|x-1^Note <b>&amp;</b>^99ZZ||\"quoted\" \\F\\ a\u2028b ü||||||F|||20261207094500\r" +
		"OBR|2|" + b + "||CBC^Blood count^L|||20261207093000||||||||||||||||||P\r" +
		"OBX|1|CWE|x^Positive^L||POS^Positive^L|||A|||P\r" +
		"OBX|2|SN|2-2^^LN||12|10*3/uL|4-11|H|||R\r"
}

// TestStoredResults: the stored JSON of a sample message is the one
// testdata/stored_results.golden holds, which main's code wrote (before the
// resources were built without the encode/decode round trip): byte for
// byte, once ids, the route's GUID and timestamps are replaced by
// placeholders in order of appearance. Run with -update to rewrite it.
func TestStoredResults(t *testing.T) {
	f := newFixture(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN}, Config{})
	ctx := context.Background()
	rt := f.route(f.admin, "127.0.0.1:1")
	a, b := f.order(f.admin), f.order(f.admin)
	out := f.svc.Ingest(ctx, []byte(storedSample(rt.RouteGUID, rt.ResultSecret, a, b)))
	if out.Code != AckAccept || len(out.Reports) != 2 {
		t.Fatalf("ingest: %+v", out)
	}
	var got []string
	add := func(typ, id string) {
		r, err := f.st.GetResource(ctx, f.admin.ProjectID, typ, id)
		if err != nil {
			t.Fatalf("%s/%s: %v", typ, id, err)
		}
		got = append(got, string(r.Content))
	}
	for _, id := range out.Reports {
		r, err := f.st.GetResource(ctx, f.admin.ProjectID, "DiagnosticReport", id)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(r.Content))
		var dr struct{ Result []struct{ Reference string } }
		if err := json.Unmarshal(r.Content, &dr); err != nil {
			t.Fatal(err)
		}
		for _, ref := range dr.Result {
			add("Observation", strings.TrimPrefix(ref.Reference, "Observation/"))
		}
	}
	add("ServiceRequest", a) // completed by the final report, with the rest
	add("ServiceRequest", b) // left active by the preliminary one
	text := placeholders(strings.Join(got, "\n") + "\n")
	const golden = "testdata/stored_results.golden"
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if text != string(want) {
		t.Errorf("stored resources differ from %s:\n got: %s\nwant: %s", golden, text, want)
	}
}

var (
	idPattern   = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|hl7-[0-9a-f]{32}`)
	timePattern = regexp.MustCompile(`"lastUpdated":"[^"]*"`)
)

// placeholders replaces each id by "id-N" (N by first appearance) and
// each meta.lastUpdated by a constant.
func placeholders(s string) string {
	seen := map[string]string{}
	s = idPattern.ReplaceAllStringFunc(s, func(id string) string {
		if p, ok := seen[id]; ok {
			return p
		}
		seen[id] = "id-" + string(rune('A'+len(seen)))
		return seen[id]
	})
	return timePattern.ReplaceAllString(s, `"lastUpdated":"T"`)
}

// TestLegacyDuplicate: a message stored before Ward kept result keys (its
// first report at the id derived from the route and control id) is still
// recognised when sent again, and nothing more is stored.
func TestLegacyDuplicate(t *testing.T) {
	f := newFixture(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN}, Config{})
	ctx := context.Background()
	rt := f.route(f.admin, "127.0.0.1:1")
	sr := f.order(f.admin)
	old := `{"resourceType":"DiagnosticReport","status":"final","code":{"text":"Glucose"}}`
	legacy := derivedID(rt.RouteGUID, "L1", 1)
	if err := f.fsvc.SystemPutAll(ctx, f.admin.ProjectID, []fhir.SystemPut{{Type: "DiagnosticReport", ID: legacy, Body: []byte(old)}}); err != nil {
		t.Fatal(err)
	}
	msg := withSecret(oru(rt.RouteGUID, "", "L1", sr), rt.ResultSecret)
	if out := f.svc.Ingest(ctx, []byte(msg)); out.Code != AckAccept || !out.Duplicate {
		t.Fatalf("legacy message sent again: %+v", out)
	}
	if n := f.count(t, f.admin.ProjectID, "DiagnosticReport"); n != 1 {
		t.Fatalf("%d reports, want the legacy one alone", n)
	}
	// A new message is stored once, and is a duplicate the second time.
	msg2 := withSecret(oru(rt.RouteGUID, "", "L2", sr), rt.ResultSecret)
	for i, want := range []bool{false, true} {
		if out := f.svc.Ingest(ctx, []byte(msg2)); out.Code != AckAccept || out.Duplicate != want {
			t.Fatalf("send %d: %+v, want duplicate %v", i, out, want)
		}
	}
	if n := f.count(t, f.admin.ProjectID, "DiagnosticReport"); n != 2 {
		t.Fatalf("%d reports, want 2", n)
	}
}
