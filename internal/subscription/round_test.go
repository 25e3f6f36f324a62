package subscription

import (
	"encoding/json"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestRoundSub: a claim round parses each subscription once and its
// deliveries go out as it was then (a change shows in the next round);
// a deleted or unknown subscription is a reason to skip, not an error.
func TestRoundSub(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			d := newDispatch(t, b)
			ctx := t.Context()
			project := d.f.admin.ProjectID
			kept := d.subscribe("Patient?family=Kept")
			gone := d.subscribe("Patient?family=Gone")
			if err := d.fs.Delete(ctx, d.f.admin, "Subscription", gone); err != nil {
				t.Fatal(err)
			}
			rd := newRound(d.f.st)
			for _, tc := range []struct {
				name, id, endpoint, skip string
			}{
				{"active", kept, LambdaPrefix + "handler", ""},
				{"deleted", gone, "", "the subscription was deleted"},
				{"never there", "nope", "", "the subscription was deleted"},
			} {
				sb, skip, err := rd.sub(ctx, project, tc.id)
				if err != nil || skip != tc.skip || skip == "" && (sb.Endpoint != tc.endpoint || sb.ID != tc.id) {
					t.Fatalf("%s: sub %+v, skip %q, err %v; want endpoint %q, skip %q", tc.name, sb, skip, err, tc.endpoint, tc.skip)
				}
			}

			m := d.subStatus(kept)
			m["channel"].(map[string]any)["endpoint"] = LambdaPrefix + "other"
			body, _ := json.Marshal(m)
			if _, _, err := d.fs.Update(ctx, d.f.admin, "Subscription", kept, body, ""); err != nil {
				t.Fatal(err)
			}
			if sb, _, err := rd.sub(ctx, project, kept); err != nil || sb.Endpoint != LambdaPrefix+"handler" {
				t.Fatalf("same round after the edit: %q, %v; want the endpoint as first read", sb.Endpoint, err)
			}
			if sb, _, err := newRound(d.f.st).sub(ctx, project, kept); err != nil || sb.Endpoint != LambdaPrefix+"other" {
				t.Fatalf("next round: %q, %v; want the edited endpoint", sb.Endpoint, err)
			}
		})
	}
}
