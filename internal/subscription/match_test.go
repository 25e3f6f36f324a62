package subscription

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// write runs one step of a scenario: "create p Lag" (a Patient named p with
// that family name), "update p Other", "delete p", "observe o p" (an
// Observation o about Patient p), "reobserve o p", or "match" (run the
// matcher until the outbox is empty). Resources are named so tests read
// as stories; ids maps names to the ids the server gave.
func (d *dispatch) write(step string, ids map[string]string) {
	d.t.Helper()
	f := strings.Fields(step)
	ctx := d.t.Context()
	patient := func(id, family string) string {
		if id != "" {
			return fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":%q}]}`, id, family)
		}
		return fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":%q}]}`, family)
	}
	observation := func(id, subject string) string {
		s := fmt.Sprintf(`"status":"final","code":{"text":"x"},"subject":{"reference":"Patient/%s"}`, ids[subject])
		if id != "" {
			return fmt.Sprintf(`{"resourceType":"Observation","id":%q,%s}`, id, s)
		}
		return `{"resourceType":"Observation",` + s + `}`
	}
	var err error
	switch f[0] {
	case "match":
		d.match()
	case "create":
		ids[f[1]] = d.create("Patient", patient("", f[2]))
	case "update":
		_, _, err = d.fs.Update(ctx, d.f.admin, "Patient", ids[f[1]], []byte(patient(ids[f[1]], f[2])), "")
	case "delete":
		typ := "Patient"
		if strings.HasPrefix(f[1], "o") {
			typ = "Observation"
		}
		err = d.fs.Delete(ctx, d.f.admin, typ, ids[f[1]])
	case "observe":
		ids[f[1]] = d.create("Observation", observation("", f[2]))
	case "reobserve":
		_, _, err = d.fs.Update(ctx, d.f.admin, "Observation", ids[f[1]], []byte(observation(ids[f[1]], f[2])), "")
	default:
		d.t.Fatalf("unknown step %q", step)
	}
	if err != nil {
		d.t.Fatalf("%s: %v", step, err)
	}
}

// delivered lists a subscription's deliveries oldest first, as
// "interaction name vN".
func (d *dispatch) delivered(subID string, ids map[string]string) []string {
	d.t.Helper()
	ds, err := d.f.st.Deliveries(d.t.Context(), d.f.admin.ProjectID, subID, 100)
	if err != nil {
		d.t.Fatal(err)
	}
	names := map[string]string{}
	for n, id := range ids {
		names[id] = n
	}
	var out []string
	for i := len(ds) - 1; i >= 0; i-- { // newest first
		out = append(out, fmt.Sprintf("%s %s v%d", ds[i].Interaction, names[ds[i].ResID], ds[i].VersionID))
	}
	return out
}

// TestMatchVersions: criteria are evaluated against the version each
// event names, however late the matcher runs, and a delete is delivered
// only when the version it deleted matched. The scenarios write several
// versions before matching once, as a matcher lagging behind (load, a
// restart) would see them; a match after each write must give the same.
func TestMatchVersions(t *testing.T) {
	all := []string{"create", "update", "delete"}
	for _, tc := range []struct {
		name     string
		criteria string
		triggers []string
		steps    []string
		want     []string
	}{
		{"a create that matched survives an update away", "Patient?family=Lag", nil,
			[]string{"create p Lag", "update p Other"}, []string{"create p v1"}},
		{"an update is judged on its own version", "Patient?family=Lag", nil,
			[]string{"create p Other", "update p Lag", "update p Other", "update p Lag"}, []string{"update p v2", "update p v4"}},
		{"a create that matched survives its delete", "Patient?family=Lag", all,
			[]string{"create p Lag", "delete p"}, []string{"create p v1", "delete p v2"}},
		{"the delete of what never matched is not delivered", "Patient?family=Lag", []string{"delete"},
			[]string{"create p Other", "create q Lag", "delete p", "delete q"}, []string{"delete q v2"}},
		{"a delete after an update away is not delivered", "Patient?family=Lag", all,
			[]string{"create p Lag", "update p Other", "delete p"}, []string{"create p v1"}},
		{"a delete after an update in is delivered", "Patient?family=Lag", []string{"delete"},
			[]string{"create p Other", "update p Lag", "delete p"}, []string{"delete p v3"}},
		{"versions of several resources in one batch", "Patient?family=Lag", all,
			[]string{"create p Lag", "create q Other", "update p Other", "update q Lag", "update p Lag", "delete q"},
			[]string{"create p v1", "update q v2", "update p v3", "delete q v3"}},
		{"a chain is evaluated from the event's version", "Observation?subject:Patient.family=Lag", nil,
			[]string{"create p Lag", "create q Other", "observe o p", "reobserve o q", "reobserve o p"},
			[]string{"create o v1", "update o v3"}},
		{"no criteria beyond the type", "Patient", all,
			[]string{"create p Lag", "update p Other", "delete p"}, []string{"create p v1", "update p v2", "delete p v3"}},
	} {
		for _, b := range storetest.Backends() {
			for _, lag := range []bool{true, false} {
				name := tc.name + "/" + b.Name + "/matched at the end"
				if !lag {
					name = tc.name + "/" + b.Name + "/matched after each write"
				}
				t.Run(name, func(t *testing.T) {
					d := newDispatch(t, b)
					sub := d.subscribe(tc.criteria, tc.triggers...)
					ids := map[string]string{}
					for _, s := range tc.steps {
						d.write(s, ids)
						if !lag {
							d.write("match", ids)
						}
					}
					d.write("match", ids)
					if got := d.delivered(sub, ids); strings.Join(got, ", ") != strings.Join(tc.want, ", ") {
						t.Fatalf("deliveries %q, want %q", got, tc.want)
					}
				})
			}
		}
	}
}

// TestFanOut: one write fans out to every subscription on its criteria,
// and deliveries finished together are recorded together (the recorder's
// shared transactions): each delivered once, with one attempt.
func TestFanOut(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			d := newDispatch(t, b)
			const subs, writes = 12, 5
			var ids []string
			for range subs {
				ids = append(ids, d.subscribe("Patient?family=Fan"))
			}
			d.subscribe("Patient?family=Other")
			for range writes {
				d.create("Patient", `{"resourceType":"Patient","name":[{"family":"Fan"}]}`)
			}
			d.match()
			ds, rd, err := d.svc.claimRound(t.Context(), subs*writes+10, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != subs*writes {
				t.Fatalf("claimed %d deliveries, want %d", len(ds), subs*writes)
			}
			var wg sync.WaitGroup
			for _, x := range ds {
				wg.Add(1)
				go func() { defer wg.Done(); d.svc.deliverIn(t.Context(), x, rd, func() {}) }()
			}
			wg.Wait()
			var delivered []int64
			for _, sub := range ids {
				for _, x := range d.delivered(sub, nil) {
					if !strings.HasPrefix(x, "create ") {
						t.Fatalf("subscription %s: delivery %s", sub, x)
					}
				}
				got, err := d.f.st.Deliveries(t.Context(), d.f.admin.ProjectID, sub, 100)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != writes {
					t.Fatalf("subscription %s has %d deliveries, want %d", sub, len(got), writes)
				}
				for _, x := range got {
					if x.Status != "delivered" || x.Attempts != 1 {
						t.Fatalf("delivery %d: %s after %d attempts, want delivered after 1", x.ID, x.Status, x.Attempts)
					}
					delivered = append(delivered, x.ID)
				}
			}
			as, err := d.f.st.Attempts(t.Context(), delivered)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range delivered {
				if len(as[id]) != 1 || as[id][0].StatusCode != 200 {
					t.Fatalf("delivery %d: attempts %+v, want one answered 200", id, as[id])
				}
			}
			if n := d.runner.calls(); n != subs*writes {
				t.Fatalf("the zambda ran %d times, want %d", n, subs*writes)
			}
		})
	}
}
