package fault

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
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
		{fmt.Errorf("read: %w", unavailableErr{}), http.StatusServiceUnavailable, "the database is unavailable; retry shortly"},
		{Forbidden("missing IAM:GetRole on IAM:Role:1"), http.StatusForbidden, "missing IAM:GetRole on IAM:Role:1"},
		{fmt.Errorf("login: %w", TooMany(90*time.Second, "too many attempts")), http.StatusTooManyRequests, "too many attempts"},
		{fmt.Errorf("commit: %w", diskFullErr{}), http.StatusInsufficientStorage, diskFullMessage},
		{Wrap(ErrDiskFull, secret, "disk full: upload not stored"), http.StatusInsufficientStorage, "disk full: upload not stored"},
		{fmt.Errorf("code dir: %w", &os.PathError{Op: "write", Path: "/data/x", Err: syscall.ENOSPC}), http.StatusInsufficientStorage, diskFullMessage},
		{&os.PathError{Op: "write", Path: "/data/x", Err: syscall.EIO}, http.StatusInternalServerError, "internal server error"},
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

func TestRetryAfter(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{TooMany(90*time.Second, "x"), 90},
		{fmt.Errorf("wrapped: %w", TooMany(1500*time.Millisecond, "x")), 2},
		{TooMany(0, "x"), 1},
		{Invalid("x"), 0},
		{fmt.Errorf("read: %w", unavailableErr{}), 1},
		{Unavailable("x"), 1},
		{diskFullErr{}, 0},
		{DiskFull("x"), 0},
		{errors.New("x"), 0},
	}
	for _, c := range cases {
		if got := RetryAfter(c.err); got != c.want {
			t.Errorf("RetryAfter(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	if !errors.Is(TooMany(time.Second, "x"), ErrTooMany) {
		t.Error("TooMany is not ErrTooMany")
	}
}

// unavailableErr is an error from a lower layer (the store) that says it
// is a passing unavailability.
type unavailableErr struct{}

func (unavailableErr) Error() string     { return "connection refused" }
func (unavailableErr) Unavailable() bool { return true }

// diskFullErr is an error from a lower layer (the store) that says the
// disk is full.
type diskFullErr struct{}

func (diskFullErr) Error() string  { return "database or disk is full (13)" }
func (diskFullErr) DiskFull() bool { return true }
