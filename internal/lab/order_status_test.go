package lab

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestResultsCompleteOrder: a final (or corrected) result marks the
// ServiceRequest it answers completed, in the report's transaction; a
// preliminary one leaves it active; an order that was revoked stays
// revoked; a refused message changes no order; a resent message does not
// write the order again.
func TestResultsCompleteOrder(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{})
			ctx := context.Background()
			rt := f.route(f.admin, "127.0.0.1:1")
			status := func(sr string) (string, int64) {
				t.Helper()
				r, err := f.fsvc.Read(ctx, f.admin, "ServiceRequest", sr)
				if err != nil {
					t.Fatal(err)
				}
				var m struct{ Status string }
				_ = json.Unmarshal(r.Content, &m)
				return m.Status, r.VersionID
			}
			// msg is an ORU whose OBRs answer the orders with the
			// given OBR-25 result statuses.
			msg := func(ctrl string, obrs ...[2]string) string {
				s := withSecret(oru(rt.RouteGUID, "", ctrl, "X"), rt.ResultSecret)
				head := s[:strings.Index(s, "OBR|")]
				for i, o := range obrs {
					head += "OBR|" + string(rune('1'+i)) + "|" + o[0] + "||GLU^Glucose^L|||20261207093000||||||||||||||||||" + o[1] + "\r" +
						"OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|||||" + o[1] + "\r"
				}
				return head
			}
			for _, tc := range []struct {
				name     string
				from     string // the order's status before
				results  []string
				want     string
				versions int64 // versions the order gains
			}{
				{"final completes", "active", []string{"F"}, "completed", 1},
				{"corrected completes", "active", []string{"C"}, "completed", 1},
				{"preliminary stays active", "active", []string{"P"}, "active", 0},
				{"partial stays active", "active", []string{"A"}, "active", 0},
				{"preliminary then final in one message", "active", []string{"P", "F"}, "completed", 1},
				{"two finals: one write", "active", []string{"F", "F"}, "completed", 1},
				{"revoked stays revoked", "revoked", []string{"F"}, "revoked", 0},
				{"completed stays completed", "completed", []string{"P"}, "completed", 0},
			} {
				t.Run(tc.name, func(t *testing.T) {
					sr := f.order(f.admin)
					if tc.from != "active" {
						r, _ := f.fsvc.Read(ctx, f.admin, "ServiceRequest", sr)
						body := strings.Replace(string(r.Content), `"status":"active"`, `"status":"`+tc.from+`"`, 1)
						if _, _, err := f.fsvc.Update(ctx, f.admin, "ServiceRequest", sr, []byte(body), ""); err != nil {
							t.Fatal(err)
						}
					}
					_, v0 := status(sr)
					var obrs [][2]string
					for _, r := range tc.results {
						obrs = append(obrs, [2]string{sr, r})
					}
					ctrl := "S-" + sr
					if out := f.svc.Ingest(ctx, []byte(msg(ctrl, obrs...))); out.Code != AckAccept {
						t.Fatalf("ingest: %+v", out)
					}
					got, v := status(sr)
					if got != tc.want || v-v0 != tc.versions {
						t.Fatalf("order %s at +%d versions, want %s at +%d", got, v-v0, tc.want, tc.versions)
					}
					// Sent again: a duplicate, nothing written.
					if out := f.svc.Ingest(ctx, []byte(msg(ctrl, obrs...))); !out.Duplicate {
						t.Fatalf("resend: %+v", out)
					}
					if _, v2 := status(sr); v2 != v {
						t.Fatalf("resend wrote the order again: version %d -> %d", v, v2)
					}
				})
			}
			// A message refused for a bad OBX leaves its order active:
			// the status change is in the report's transaction.
			sr := f.order(f.admin)
			bad := strings.Replace(msg("S-bad", [2]string{sr, "F"}), "||95|", "||NaN|", 1)
			if out := f.svc.Ingest(ctx, []byte(bad)); out.Code != AckReject {
				t.Fatalf("bad message: %+v", out)
			}
			// A final result whose order is unknown (another project's)
			// is refused before anything is written.
			other := f.order(f.other)
			if out := f.svc.Ingest(ctx, []byte(msg("S-other", [2]string{sr, "F"}, [2]string{other, "F"}))); out.Code != AckReject {
				t.Fatalf("another project's order: %+v", out)
			}
			if s, _ := status(sr); s != "active" {
				t.Fatalf("refused messages changed the order: %s", s)
			}
			r, err := f.fsvc.Read(ctx, f.other, "ServiceRequest", other)
			if err != nil || !strings.Contains(string(r.Content), `"status":"active"`) {
				t.Fatalf("another project's order: %s %v", r.Content, err)
			}
		})
	}
}

// TestCompleteOrderStale: an order edited between the read and the
// transaction is not overwritten; the message is answered AE (send again)
// and stored whole the next time.
func TestCompleteOrderStale(t *testing.T) {
	f := newFixture(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN}, Config{})
	ctx := context.Background()
	sr := f.order(f.admin)
	cur, err := f.st.GetResource(ctx, f.admin.ProjectID, "ServiceRequest", sr)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(cur.Content, &m)
	put, ok := completeOrder(cur, m, "F")
	if !ok {
		t.Fatal("a final result did not complete an active order")
	}
	// Someone edits the order after Ward read it.
	edited := strings.Replace(string(cur.Content), `"intent":"order"`, `"intent":"order","priority":"stat"`, 1)
	if _, _, err := f.fsvc.Update(ctx, f.admin, "ServiceRequest", sr, []byte(edited), ""); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.putAll(ctx, store.LabResultKey{ProjectID: f.admin.ProjectID, RouteGUID: "r", ControlID: "c", ReportID: "x"}, []resultPut{put}); err == nil {
		t.Fatal("a stale order was overwritten")
	}
	r, _ := f.fsvc.Read(ctx, f.admin, "ServiceRequest", sr)
	if !strings.Contains(string(r.Content), `"priority":"stat"`) || !strings.Contains(string(r.Content), `"status":"active"`) {
		t.Fatalf("order after a stale write: %s", r.Content)
	}
}

// TestConcurrentFinalResults: final results of one order arriving at
// once are all accepted (one completes the order, the others find it
// completed when they read it again) and the order is written once.
func TestConcurrentFinalResults(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{})
			ctx := context.Background()
			rt := f.route(f.admin, "127.0.0.1:1")
			sr := f.order(f.admin)
			before, _ := f.fsvc.Read(ctx, f.admin, "ServiceRequest", sr)
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					msg := withSecret(oru(rt.RouteGUID, "", "CC"+strconv.Itoa(i), sr), rt.ResultSecret)
					if out := f.svc.Ingest(ctx, []byte(msg)); out.Code != AckAccept {
						t.Errorf("message %d: %+v", i, out)
					}
				})
			}
			wg.Wait()
			after, _ := f.fsvc.Read(ctx, f.admin, "ServiceRequest", sr)
			if !strings.Contains(string(after.Content), `"status":"completed"`) || after.VersionID != before.VersionID+1 {
				t.Fatalf("order at version %d (from %d): %s", after.VersionID, before.VersionID, after.Content)
			}
		})
	}
}
