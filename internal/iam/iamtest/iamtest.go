// Package iamtest makes projects for other packages' tests.
package iamtest

import (
	"context"
	"testing"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store"
)

// Project creates a project named name and returns its full-access admin
// client as a principal (ClientID set too).
func Project(t testing.TB, authz *iam.Service, st *store.Store, name string) auth.Principal {
	t.Helper()
	ctx := context.Background()
	creds, err := authz.CreateProject(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.GetM2MByClientID(ctx, creds.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	return auth.Principal{ProjectID: creds.ProjectID, Kind: auth.KindM2M, ID: c.ID, ClientID: creds.ClientID}
}
