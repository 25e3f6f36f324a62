package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

func TestLabRoutes(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b)
			t0 := time.UnixMilli(1_800_000_000_000).UTC()
			r := store.LabRoute{ProjectID: "p1", RouteGUID: "r1", LabGUID: "lab", AccountNumber: "acct",
				MLLPAddress: "127.0.0.1:2575", SecretHash: "h", Details: []byte(`{"primaryName":"x"}`), CreatedAt: t0}
			if err := st.CreateLabRoute(ctx, r); err != nil {
				t.Fatal(err)
			}
			// The guid is unique across projects: results find their route by it.
			other := r
			other.ProjectID = "p2"
			if err := st.CreateLabRoute(ctx, other); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("same guid in another project: %v, want ErrConflict", err)
			}
			got, err := st.GetLabRoute(ctx, "p1", "r1")
			if err != nil || got.MLLPAddress != r.MLLPAddress || string(got.Details) != string(r.Details) || !got.CreatedAt.Equal(t0) {
				t.Fatalf("get: %+v, %v", got, err)
			}
			if _, err := st.GetLabRoute(ctx, "p2", "r1"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("another project's route: %v, want ErrNotFound", err)
			}
			if f, err := st.FindLabRoute(ctx, "r1"); err != nil || f.ProjectID != "p1" {
				t.Fatalf("find: %+v, %v", f, err)
			}
			r2 := r
			r2.RouteGUID, r2.CreatedAt = "r2", t0.Add(time.Second)
			if err := st.CreateLabRoute(ctx, r2); err != nil {
				t.Fatal(err)
			}
			list, err := st.ListLabRoutes(ctx, "p1")
			if err != nil || len(list) != 2 || list[0].RouteGUID != "r1" || list[1].RouteGUID != "r2" {
				t.Fatalf("list: %+v, %v", list, err)
			}
			if list, _ := st.ListLabRoutes(ctx, "p2"); len(list) != 0 {
				t.Fatalf("p2 sees %d routes", len(list))
			}
			if err := st.DeleteLabRoute(ctx, "p2", "r1"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("delete from another project: %v", err)
			}
			if err := st.DeleteLabRoute(ctx, "p1", "r1"); err != nil {
				t.Fatal(err)
			}
			if _, err := st.FindLabRoute(ctx, "r1"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("deleted route found: %v", err)
			}
		})
	}
}

func TestLabOrders(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b)
			t0 := time.UnixMilli(1_800_000_000_000).UTC()
			for i := 0; i < 2; i++ {
				if s, err := st.BeginLabOrder(ctx, "p1", "c1", "r1", t0); err != nil || s != store.LabOrderSending {
					t.Fatalf("begin %d: %q, %v", i, s, err)
				}
			}
			if err := st.AcceptLabOrder(ctx, "p1", "c1", t0); err != nil {
				t.Fatal(err)
			}
			if s, err := st.BeginLabOrder(ctx, "p1", "c1", "r1", t0); err != nil || s != store.LabOrderAccepted {
				t.Fatalf("begin after accept: %q, %v", s, err)
			}
			// Another project's order of the same control id is its own.
			if s, err := st.BeginLabOrder(ctx, "p2", "c1", "r9", t0); err != nil || s != store.LabOrderSending {
				t.Fatalf("p2: %q, %v", s, err)
			}
			if err := st.AcceptLabOrder(ctx, "p1", "nope", t0); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("accept unknown: %v", err)
			}
		})
	}
}

// TestLookupLabResult: one query finds the route, whether its project
// holds the message (its key, or a legacy report id), and its order;
// another project's rows at the same keys and ids are never read.
func TestLookupLabResult(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b)
			t0 := time.UnixMilli(1_800_000_000_000).UTC()
			mkProject(t, st, "p1")
			mkProject(t, st, "p2")
			if err := st.CreateLabRoute(ctx, store.LabRoute{ProjectID: "p1", RouteGUID: "r1", LabGUID: "lab", SecretHash: "h", Details: []byte(`{}`), CreatedAt: t0}); err != nil {
				t.Fatal(err)
			}
			create := func(project, typ, id, content string) {
				t.Helper()
				r := store.Resource{ProjectID: project, Type: typ, ID: id, VersionID: 1, LastUpdated: t0, Method: "PUT", Content: []byte(content)}
				if err := st.CreateResource(ctx, r, nil); err != nil {
					t.Fatal(err)
				}
			}
			record := func(keys ...store.LabResultKey) error {
				return st.WithTx(ctx, func(tx *store.Tx) error { return tx.InsertLabResultKeys(ctx, keys) })
			}
			// p2 holds a report, an order and a key at the ids and control
			// id p1's lookups name.
			create("p2", "DiagnosticReport", "dr1", `{"resourceType":"DiagnosticReport"}`)
			create("p2", "ServiceRequest", "sr1", `{"resourceType":"ServiceRequest","status":"p2"}`)
			if err := record(store.LabResultKey{ProjectID: "p2", RouteGUID: "r1", ControlID: "c1", ReportID: "dr1"}); err != nil {
				t.Fatal(err)
			}
			l, err := st.LookupLabResult(ctx, "r1", "c1", "dr1", "sr1")
			if err != nil || l.Route.ProjectID != "p1" || l.Route.SecretHash != "h" || !l.Route.CreatedAt.Equal(t0) || l.Stored || l.OrderFound {
				t.Fatalf("p1 before its own: %+v, %v", l, err)
			}
			create("p1", "ServiceRequest", "sr1", `{"resourceType":"ServiceRequest","status":"active"}`)
			l, err = st.LookupLabResult(ctx, "r1", "c1", "dr1", "sr1")
			if err != nil || l.Stored || !l.OrderFound || l.Order.ProjectID != "p1" || l.Order.Type != "ServiceRequest" || l.Order.ID != "sr1" ||
				l.Order.VersionID != 1 || l.Order.Deleted || !l.Order.LastUpdated.Equal(t0) || string(l.Order.Content) != `{"resourceType":"ServiceRequest","status":"active"}` {
				t.Fatalf("with the order: %+v, %v", l, err)
			}
			// Stored by its key, and by a legacy report id.
			if err := record(store.LabResultKey{ProjectID: "p1", RouteGUID: "r1", ControlID: "c1", ReportID: "x"},
				store.LabResultKey{ProjectID: "p1", RouteGUID: "r1", ControlID: "c2", ReportID: "y"}); err != nil {
				t.Fatal(err)
			}
			for _, ctrl := range []string{"c1", "c2"} {
				if l, err := st.LookupLabResult(ctx, "r1", ctrl, "nope", "nope"); err != nil || !l.Stored || l.OrderFound {
					t.Fatalf("%s recorded: %+v, %v", ctrl, l, err)
				}
			}
			create("p1", "DiagnosticReport", "dr1", `{"resourceType":"DiagnosticReport"}`)
			if l, err := st.LookupLabResult(ctx, "r1", "c3", "dr1", ""); err != nil || !l.Stored {
				t.Fatalf("legacy report: %+v, %v", l, err)
			}
			if l, err := st.LookupLabResult(ctx, "r1", "c3", "dr2", ""); err != nil || l.Stored {
				t.Fatalf("c3 unrecorded: %+v, %v", l, err)
			}
			// A key recorded twice fails the whole transaction.
			err = record(store.LabResultKey{ProjectID: "p1", RouteGUID: "r1", ControlID: "c3", ReportID: "z"},
				store.LabResultKey{ProjectID: "p1", RouteGUID: "r1", ControlID: "c2", ReportID: "z"})
			if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("recorded twice: %v, want ErrConflict", err)
			}
			if l, err := st.LookupLabResult(ctx, "r1", "c3", "dr2", ""); err != nil || l.Stored {
				t.Fatalf("c3 after the failed transaction: %+v, %v", l, err)
			}
			if _, err := st.LookupLabResult(ctx, "r9", "c1", "dr1", "sr1"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("unknown route: %v, want ErrNotFound", err)
			}
		})
	}
}
