package lab

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestIngestConcurrent: many senders at once, each message sent twice at
// the same moment, so that copies meet in one batch, in two batches, or
// one after the other. Every send is accepted, exactly one of each pair
// stores the message, and what is stored is whole: each report with its
// two Observations, based on the order.
func TestIngestConcurrent(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{})
			ctx := context.Background()
			rt := f.route(f.admin, "127.0.0.1:1")
			sr := f.order(f.admin)
			const messages = 40
			var wg sync.WaitGroup
			var mu sync.Mutex
			stored := map[string]int{}
			for i := range 2 * messages {
				wg.Go(func() {
					ctrl := "B" + string(rune('a'+i/2%26)) + string(rune('a'+i/2/26))
					out := f.svc.Ingest(ctx, []byte(strings.Replace(benchORU(rt, sr, 0), "|B0|", "|"+ctrl+"|", 1)))
					if out.Code != AckAccept || out.ControlID != ctrl {
						t.Errorf("%s: %s %s", ctrl, out.Code, out.Text)
						return
					}
					if !out.Duplicate {
						mu.Lock()
						stored[ctrl]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(stored) != messages {
				t.Errorf("%d messages stored, want %d", len(stored), messages)
			}
			for ctrl, n := range stored {
				if n != 1 {
					t.Errorf("%s stored %d times", ctrl, n)
				}
			}
			reports, _, err := f.st.Search(ctx, store.SearchRequest{ProjectID: f.admin.ProjectID, Query: mustQuery(t, "DiagnosticReport"), Count: 1000, Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if len(reports) != messages {
				t.Fatalf("%d reports, want %d", len(reports), messages)
			}
			obs, _, err := f.st.Search(ctx, store.SearchRequest{ProjectID: f.admin.ProjectID, Query: mustQuery(t, "Observation"), Count: 1000, Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if len(obs) != 2*messages {
				t.Fatalf("%d observations, want %d", len(obs), 2*messages)
			}
			for _, r := range reports {
				var dr struct {
					BasedOn []struct{ Reference string }
					Result  []struct{ Reference string }
				}
				if err := json.Unmarshal(r.Content, &dr); err != nil {
					t.Fatal(err)
				}
				if len(dr.BasedOn) != 1 || dr.BasedOn[0].Reference != "ServiceRequest/"+sr || len(dr.Result) != 2 {
					t.Fatalf("report %s", r.Content)
				}
				for _, ref := range dr.Result {
					if _, err := f.st.GetResource(ctx, f.admin.ProjectID, "Observation", strings.TrimPrefix(ref.Reference, "Observation/")); err != nil {
						t.Errorf("report %s: %s: %v", r.ID, ref.Reference, err)
					}
				}
			}
		})
	}
}

// TestBatchFallback: a batch in which one message's id is taken is
// written again message by message: the others are stored, that one alone
// fails with ErrConflict and leaves nothing behind.
func TestBatchFallback(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{})
			ctx := context.Background()
			pid := f.admin.ProjectID
			obs := func(id string) fhir.SystemPut {
				return fhir.SystemPut{Type: "Observation", ID: id, Body: []byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"}}`)}
			}
			write := func(ids ...string) *resultWrite {
				w := &resultWrite{ctx: ctx}
				for _, id := range ids {
					r, idx, err := f.fsvc.PrepareSystemPut(pid, obs(id))
					if err != nil {
						t.Fatal(err)
					}
					w.rs, w.index = append(w.rs, r), append(w.index, idx)
				}
				return w
			}
			if errs := f.svc.batch.flush([]*resultWrite{write("taken")}); errs[0] != nil {
				t.Fatal(errs[0])
			}
			errs := f.svc.batch.flush([]*resultWrite{write("a1", "a2"), write("b1", "taken"), write("c1")})
			if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], store.ErrConflict) {
				t.Fatalf("errs %v, want nil, ErrConflict, nil", errs)
			}
			for id, want := range map[string]bool{"a1": true, "a2": true, "c1": true, "b1": false} {
				_, err := f.st.GetResource(ctx, pid, "Observation", id)
				if got := err == nil; got != want {
					t.Errorf("Observation/%s stored %v, want %v (%v)", id, got, want, err)
				}
			}
		})
	}
}
