package iam

import (
	"context"
	"fmt"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/store"
)

// FullAccess is the inline policy of a project's first admin client.
var fullAccess = []byte(`{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)

// AdminCredentials is what a new project's admin client authenticates with.
type AdminCredentials struct {
	ProjectID    string `json:"projectId"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

// CreateProject makes a project with one full-access admin M2M client and
// returns its credentials (shown once; only the secret's hash is kept).
func (s *Service) CreateProject(ctx context.Context, name string) (AdminCredentials, error) {
	p, c, creds, err := s.newProject(name)
	if err != nil {
		return AdminCredentials{}, err
	}
	err = s.store.WithTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateProject(ctx, p); err != nil {
			return err
		}
		return tx.CreateM2M(ctx, c)
	})
	if err != nil {
		return AdminCredentials{}, fmt.Errorf("create project: %w", err)
	}
	return creds, nil
}

// newProject makes the rows of a new project and its admin client.
func (s *Service) newProject(name string) (store.Project, store.M2MClient, AdminCredentials, error) {
	secret, err := auth.NewSecret()
	if err != nil {
		return store.Project{}, store.M2MClient{}, AdminCredentials{}, err
	}
	now := s.now()
	p := store.Project{ID: newID(), Name: name, CreatedAt: now}
	c := store.M2MClient{ProjectID: p.ID, ID: newID(), ClientID: newClientID(), SecretHash: auth.HashSecret(secret),
		Name: "admin", Description: "created with the project; full access", AccessPolicy: fullAccess, CreatedAt: now}
	return p, c, AdminCredentials{ProjectID: p.ID, ClientID: c.ClientID, ClientSecret: secret}, nil
}

// Bootstrap creates the first project when there is none. created is false
// when a project already existed (its credentials were shown at that time).
// Replicas starting at once on one database make one project between
// them: the check and the creation hold the bootstrap lock.
func (s *Service) Bootstrap(ctx context.Context) (creds AdminCredentials, created bool, err error) {
	p, c, fresh, err := s.newProject("Default project")
	if err != nil {
		return AdminCredentials{}, false, err
	}
	err = s.store.WithTx(ctx, func(tx *store.Tx) error {
		if err := tx.LockBootstrap(ctx); err != nil {
			return err
		}
		projects, err := tx.ListProjects(ctx)
		if err != nil {
			return err
		}
		if len(projects) > 0 {
			creds, created = AdminCredentials{ProjectID: projects[0].ID}, false
			return nil
		}
		if err := tx.CreateProject(ctx, p); err != nil {
			return err
		}
		creds, created = fresh, true
		return tx.CreateM2M(ctx, c)
	})
	if err != nil {
		return AdminCredentials{}, false, fmt.Errorf("bootstrap: %w", err)
	}
	return creds, created, nil
}
