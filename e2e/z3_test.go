package e2e

import (
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestZ3WithSDK runs e2e/z3.test.mjs (the real @oystehr/sdk z3 client)
// against a server on each backend.
func TestZ3WithSDK(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWard(t, b)
			nodeTest(t, "z3.test.mjs", map[string]string{
				"WARD_URL":             w.URL,
				"WARD_A_CLIENT_ID":     w.Admin.ClientID,
				"WARD_A_CLIENT_SECRET": w.Admin.ClientSecret,
				"WARD_PROJECT_ID":      w.Admin.ProjectID,
			})
		})
	}
}

// TestZ3OnS3 runs the same SDK suite with the bytes in an S3-compatible
// store: gofakes3, a Go S3 server, started here on loopback.
func TestZ3OnS3(t *testing.T) {
	mem := s3mem.New()
	if err := mem.CreateBucket("ward-objects"); err != nil {
		t.Fatal(err)
	}
	s3 := httptest.NewServer(gofakes3.New(mem).Server())
	defer s3.Close()
	t.Setenv("WARD_Z3_S3_ACCESS_KEY", "ward")
	t.Setenv("WARD_Z3_S3_SECRET_KEY", "not-a-real-secret")
	w := startWardWith(t, storetest.Backends()[0], "--z3-backend", "s3://ward-objects/z3?endpoint="+s3.URL+"&region=us-east-1&path-style=true")
	nodeTest(t, "z3.test.mjs", map[string]string{
		"WARD_URL":             w.URL,
		"WARD_A_CLIENT_ID":     w.Admin.ClientID,
		"WARD_A_CLIENT_SECRET": w.Admin.ClientSecret,
		"WARD_PROJECT_ID":      w.Admin.ProjectID,
	})
	// The bytes went to S3, not to the data directory.
	n := 0
	objs, err := mem.ListBucket("ward-objects", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	n = len(objs.Contents)
	if n == 0 {
		t.Error("no object reached the S3 store")
	}
	if matches, _ := filepath.Glob(filepath.Join(w.DataDir, "z3", "*", "*")); len(matches) > 0 {
		t.Errorf("objects in the data directory with the S3 backend: %v", matches)
	}
}
