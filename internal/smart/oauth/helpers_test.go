package oauth

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/seal/sealtest"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/tokens"
)

const testURL = "http://ward.test"

// testServer is an authorization server on a fresh SQLite store, its
// endpoints served by httptest without the rest of Ward's routes.
type testServer struct {
	*httptest.Server
	admin iam.AdminCredentials
	st    *store.Store
	iam   *iam.Service
	oauth *Server
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t, storetest.Backends()[0])
	sealer := sealtest.Setup(t, st)
	keys, err := tokens.LoadKeys(ctx, st, sealer, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := tokens.LoadRevocations(ctx, st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	svc := iam.New(st, testURL+"/invite/", time.Now, iam.Deps{})
	admin, _, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	o, err := New(Config{PublicURL: testURL, TokenTTL: time.Hour}, Deps{Log: log, Store: st, IAM: svc, Keys: keys, Revoked: revoked,
		Issuer:   auth.NewIssuer(keys.Ring, testURL, testURL, time.Now),
		Verifier: auth.NewVerifier(keys.Ring, testURL, []string{testURL}, revoked, time.Now), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	// Errors the handlers return are the server's to answer: here only
	// their status, as package server maps them.
	handle := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				status, msg := fault.Public(err)
				http.Error(w, msg, status)
			}
		})
	}
	noProject := func(string) {}
	handle("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) error { return o.Token(w, r, noProject) })
	handle("POST /oauth/introspect", func(w http.ResponseWriter, r *http.Request) error { return o.Introspect(w, r, noProject) })
	handle("POST /oauth/revoke", func(w http.ResponseWriter, r *http.Request) error { return o.Revoke(w, r, noProject) })
	handle("/oauth/authorize", o.Authorize)
	handle("/oauth/apps", o.Apps)
	ts := &testServer{Server: httptest.NewServer(mux), admin: admin, st: st, iam: svc, oauth: o}
	t.Cleanup(ts.Close)
	return ts
}

func ptr[T any](v T) *T { return &v }
