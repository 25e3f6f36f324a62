package store_test

import (
	"context"
	"testing"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// DeveloperProjects lists exactly the projects an account belongs to: not
// another developer's, not those it was removed from.
func TestDeveloperProjects(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := storetest.Open(t, b)
			ctx := context.Background()
			for _, id := range []string{"p1", "p2", "p3"} {
				mkProject(t, s, id)
			}
			for _, d := range []string{"d1", "d2"} {
				if err := s.CreateDeveloperAccount(ctx, d, d+"@x.org", d, t0); err != nil {
					t.Fatal(err)
				}
			}
			for _, m := range []struct{ project, dev string }{{"p2", "d1"}, {"p1", "d1"}, {"p3", "d2"}} {
				if err := s.AddDeveloper(ctx, store.Developer{ProjectID: m.project, ID: m.dev, PractitionerID: "pr-" + m.project, CreatedAt: t0}); err != nil {
					t.Fatal(err)
				}
			}
			ids := func(dev string) []string {
				ps, err := s.DeveloperProjects(ctx, dev)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, p := range ps {
					out = append(out, p.ID+"="+p.Name)
				}
				return out
			}
			if got := ids("d1"); len(got) != 2 || got[0] != "p1=P p1" || got[1] != "p2=P p2" {
				t.Errorf("d1's projects = %v", got)
			}
			if got := ids("d2"); len(got) != 1 || got[0] != "p3=P p3" {
				t.Errorf("d2's projects = %v", got)
			}
			if err := s.RemoveDeveloper(ctx, "p2", "d1"); err != nil {
				t.Fatal(err)
			}
			if got := ids("d1"); len(got) != 1 || got[0] != "p1=P p1" {
				t.Errorf("d1's projects after removal = %v", got)
			}
			if got := ids("nobody"); len(got) != 0 {
				t.Errorf("unknown developer's projects = %v", got)
			}
		})
	}
}
