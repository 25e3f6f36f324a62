package server

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/lab"
	"github.com/wardhealth/ward/internal/policy"
)

// Every lab endpoint names a catalog action of the Lab service, on a Lab
// resource of that action's type.
func TestLabRoutesNameCatalogActions(t *testing.T) {
	s := &Server{lab: &lab.Service{}}
	routes := s.labRoutes()
	if len(routes) != 7 {
		t.Fatalf("%d lab routes, want the SDK's 7", len(routes))
	}
	for _, rt := range routes {
		a, ok := policy.LookupAction(rt.action)
		if !ok || a.Service != "Lab" || rt.public || rt.resource == nil {
			t.Errorf("%s %s: action %q (known %v), public %v", rt.method, rt.path, rt.action, ok, rt.public)
			continue
		}
		if !strings.HasPrefix(rt.path, "/lab/v1/") {
			t.Errorf("%s %s: not under labApiUrl", rt.method, rt.path)
		}
		r := httptest.NewRequest(rt.method, "http://x"+rt.path, nil)
		r.SetPathValue("id", "g1")
		if res := rt.resource(r); !strings.HasPrefix(res, "Lab:"+a.ResourceType+":") {
			t.Errorf("%s %s: resource %q is not a Lab:%s", rt.method, rt.path, res, a.ResourceType)
		}
	}
}
