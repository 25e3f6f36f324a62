package fhir

import (
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/iam/iamtest"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// fixture is a fresh store on one backend with a project, its full-access
// admin principal, the IAM service and a FHIR service over them.
type fixture struct {
	svc   *Service
	authz *iam.Service
	admin auth.Principal
}

func newFixture(t testing.TB, b storetest.Backend, cfg Config) fixture {
	t.Helper()
	st := storetest.Open(t, b)
	authz := iam.New(st, "http://x/invite/", time.Now, iam.Deps{})
	return fixture{svc: New(st, authz, cfg, time.Now), authz: authz, admin: iamtest.Project(t, authz, st, "test")}
}
