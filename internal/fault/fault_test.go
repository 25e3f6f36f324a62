package fault

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestPublic(t *testing.T) {
	secret := errors.New("pq: password authentication failed for user admin")
	cases := []struct {
		err    error
		status int
		msg    string
	}{
		{Invalid("name is required"), http.StatusBadRequest, "name is required"},
		{fmt.Errorf("create role: %w", Conflict("role %q exists", "x")), http.StatusConflict, `role "x" exists`},
		{Wrap(ErrUnavailable, secret, "database unavailable"), http.StatusServiceUnavailable, "database unavailable"},
		{secret, http.StatusInternalServerError, "internal server error"},
		{Forbidden("missing IAM:GetRole on IAM:Role:1"), http.StatusForbidden, "missing IAM:GetRole on IAM:Role:1"},
	}
	for _, c := range cases {
		status, msg := Public(c.err)
		if status != c.status || msg != c.msg {
			t.Errorf("Public(%v) = %d %q, want %d %q", c.err, status, msg, c.status, c.msg)
		}
	}
	if !errors.Is(Wrap(ErrUnavailable, secret, "x"), secret) {
		t.Error("Wrap loses its cause")
	}
}
