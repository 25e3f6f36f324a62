package iam

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestStoreErrorsAreNotClientErrors: an unknown client or invitation link
// is a 401 or 404, but a failing database (here: closed) is an internal
// error, never one of those: an outage must not look like bad credentials.
func TestStoreErrorsAreNotClientErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(ctx context.Context, s *Service) error
		kind error // the answer on a working database
	}{
		{"client credentials", func(ctx context.Context, s *Service) error {
			_, err := s.AuthenticateClient(ctx, "no-such-client", "secret")
			return err
		}, fault.ErrUnauthorized},
		{"developer invitation", func(ctx context.Context, s *Service) error {
			_, err := s.AcceptInvitation(ctx, "no-such-link", "a long enough password")
			return err
		}, fault.ErrNotFound},
		{"user invitation", func(ctx context.Context, s *Service) error {
			_, err := s.AcceptUserInvitation(ctx, "no-such-link", "a long enough password")
			return err
		}, fault.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, b := range storetest.Backends() {
				st := storetest.Open(t, b)
				s := New(st, "http://x/invite/", time.Now, Deps{})
				if err := tc.call(t.Context(), s); !errors.Is(err, tc.kind) {
					t.Fatalf("%s, working database: %v, want %v", b.Name, err, tc.kind)
				}
				st.Close()
				err := tc.call(t.Context(), s)
				if err == nil || errors.Is(err, fault.ErrUnauthorized) || errors.Is(err, fault.ErrNotFound) {
					t.Fatalf("%s, closed database: %v, want an internal error", b.Name, err)
				}
			}
		})
	}
}

// TestBestEffortFailuresLogged: work that fails after the caller's change
// committed (telling other replicas of a policy change) is reported to the
// logger the service was given, not to the process's default one.
func TestBestEffortFailuresLogged(t *testing.T) {
	var logs bytes.Buffer
	st := storetest.Open(t, storetest.Backends()[0])
	s := New(st, "http://x/invite/", time.Now, Deps{Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	st.Close()
	s.changed(t.Context(), "some-project")
	if !strings.Contains(logs.String(), `"msg":"log project change"`) || !strings.Contains(logs.String(), `"project":"some-project"`) {
		t.Fatalf("log = %q, want the failed change log", logs.String())
	}
}
