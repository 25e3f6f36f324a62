package lab

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

func (f *fixture) count(t testing.TB, projectID, typ string) int {
	t.Helper()
	rows, _, err := f.st.Search(context.Background(), store.SearchRequest{ProjectID: projectID, Query: mustQuery(t, typ), Count: 1000, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

// A message of two orders is two reports, each based on its own order.
func TestResultsSeveralOrders(t *testing.T) {
	f := newFixture(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN}, Config{})
	rt := f.route(f.admin, "127.0.0.1:1")
	a, b := f.order(f.admin), f.order(f.admin)
	msg := withSecret(oru(rt.RouteGUID, "", "M2", a), rt.ResultSecret) +
		"OBR|2|" + b + "||CBC^Blood count^L|||20261207093000||||||||||||||||||P\r" +
		"OBX|1|CWE|x^Positive^L||POS^Positive^L||||||P\r"
	out := f.svc.Ingest(context.Background(), []byte(msg))
	if out.Code != AckAccept || len(out.Reports) != 2 {
		t.Fatalf("ingest: %+v", out)
	}
	for i, sr := range []string{a, b} {
		r, err := f.fsvc.Read(context.Background(), f.admin, "DiagnosticReport", out.Reports[i])
		if err != nil || !strings.Contains(string(r.Content), `"ServiceRequest/`+sr+`"`) {
			t.Fatalf("report %d: %s %v", i, r.Content, err)
		}
	}
	r, _ := f.fsvc.Read(context.Background(), f.admin, "DiagnosticReport", out.Reports[1])
	if !strings.Contains(string(r.Content), `"status":"preliminary"`) || !strings.Contains(string(r.Content), `"result":[{"reference":"Observation/`) {
		t.Fatalf("second report: %s", r.Content)
	}
	if n := f.count(t, f.admin.ProjectID, "Observation"); n != 3 {
		t.Fatalf("%d observations, want 3", n)
	}
}

// FuzzIngest: whatever arrives, the answer is AA, AE or AR, and a message
// not accepted leaves nothing behind (all of a message or none of it).
func FuzzIngest(f *testing.F) {
	fx := newFixture(f, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN}, Config{})
	rt := fx.route(fx.admin, "127.0.0.1:1")
	sr := fx.order(fx.admin)
	good := withSecret(oru(rt.RouteGUID, "", "F1", sr), rt.ResultSecret)
	f.Add([]byte(good))
	f.Add([]byte(strings.Replace(good, "95.5", "x", 1)))
	f.Add([]byte(good + "OBR|2|" + sr + "||X^Y^L\rOBX|1|NM|a^b||1e400\r"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		before := fx.count(t, fx.admin.ProjectID, "Observation") + fx.count(t, fx.admin.ProjectID, "DiagnosticReport")
		out := fx.svc.Ingest(context.Background(), msg)
		after := fx.count(t, fx.admin.ProjectID, "Observation") + fx.count(t, fx.admin.ProjectID, "DiagnosticReport")
		switch out.Code {
		case AckAccept:
		case AckError, AckReject:
			if after != before {
				t.Fatalf("%s (%s) but %d resources were stored", out.Code, out.Text, after-before)
			}
		default:
			t.Fatalf("answer %q", out.Code)
		}
	})
}
