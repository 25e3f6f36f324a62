package iam_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// Replicas starting at once on an empty database make one default project:
// one of them prints credentials, the others find its project.
func TestBootstrapOnce(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := storetest.Open(t, b)
			const replicas = 6
			var wg sync.WaitGroup
			type result struct {
				creds   iam.AdminCredentials
				created bool
				err     error
			}
			results := make([]result, replicas)
			start := make(chan struct{})
			for i := range replicas {
				wg.Add(1)
				go func() {
					defer wg.Done()
					svc := iam.New(st, "http://x/invite/", time.Now, iam.Deps{})
					<-start
					c, created, err := svc.Bootstrap(context.Background())
					results[i] = result{c, created, err}
				}()
			}
			close(start)
			wg.Wait()
			created, project := 0, ""
			for _, r := range results {
				if r.err != nil {
					t.Fatal(r.err)
				}
				if r.created {
					created++
					if r.creds.ClientSecret == "" {
						t.Fatal("the creating replica got no secret")
					}
				}
				if project == "" {
					project = r.creds.ProjectID
				}
				if r.creds.ProjectID != project {
					t.Fatalf("replicas disagree on the project: %s and %s", project, r.creds.ProjectID)
				}
			}
			projects, err := st.ListProjects(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if created != 1 || len(projects) != 1 {
				t.Fatalf("%d replicas created a project, %d projects stored; want 1 and 1", created, len(projects))
			}
		})
	}
}
