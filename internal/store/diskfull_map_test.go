package store

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wardhealth/ward/internal/fault"
)

// TestMapErrDiskFull: the errors a full disk gives on each database become
// ErrDiskFull, which the API answers with 507; others do not.
func TestMapErrDiskFull(t *testing.T) {
	s := &Store{}
	cases := []struct {
		name string
		err  error
		full bool
	}{
		{"postgres disk_full", &pgconn.PgError{Code: "53100", Message: "could not extend file"}, true},
		{"postgres unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"postgres out of memory", &pgconn.PgError{Code: "53200"}, false},
		{"ENOSPC from a file", fmt.Errorf("write: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), true},
		{"EIO", &os.PathError{Op: "write", Path: "x", Err: syscall.EIO}, false},
		{"other", errors.New("boom"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.mapErr(c.err)
			if got := errors.Is(err, ErrDiskFull); got != c.full {
				t.Fatalf("mapErr(%v) is ErrDiskFull: %v, want %v", c.err, got, c.full)
			}
			if status, msg := fault.Public(err); c.full && status != http.StatusInsufficientStorage {
				t.Fatalf("fault.Public(%v) = %d %q, want 507", err, status, msg)
			}
			if !errors.Is(err, c.err) {
				t.Fatalf("mapErr lost the cause %v", c.err)
			}
		})
	}
}
