// Package fault names the errors that reach API clients. Capabilities wrap
// them with a message that is safe to show; the server maps each kind to one
// HTTP status in one place. Any other error is internal: logged, never sent.
package fault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"time"
)

// The kinds. Test with errors.Is.
var (
	ErrInvalid      = errors.New("invalid request")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrPrecondition = errors.New("precondition failed")
	ErrTooLarge     = errors.New("too large")
	ErrUnavailable  = errors.New("unavailable")
	ErrNotSupported = errors.New("not supported")
	ErrTooMany      = errors.New("too many requests")
	// ErrDiskFull: the server's disk is full, so nothing more can be
	// stored until space is freed; reads still work.
	ErrDiskFull = errors.New("disk full")
)

// Error is a client-safe message of one kind, optionally wrapping a cause
// that is for logs only.
type Error struct {
	kind  error
	msg   string
	cause error
}

func (e *Error) Error() string { return e.msg }

// Unwrap exposes the kind and the cause to errors.Is / errors.As.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func newf(kind error, format string, args ...any) error {
	return &Error{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func Invalid(format string, args ...any) error      { return newf(ErrInvalid, format, args...) }
func Unauthorized(format string, args ...any) error { return newf(ErrUnauthorized, format, args...) }
func Forbidden(format string, args ...any) error    { return newf(ErrForbidden, format, args...) }
func NotFound(format string, args ...any) error     { return newf(ErrNotFound, format, args...) }
func Conflict(format string, args ...any) error     { return newf(ErrConflict, format, args...) }
func TooLarge(format string, args ...any) error     { return newf(ErrTooLarge, format, args...) }
func NotSupported(format string, args ...any) error { return newf(ErrNotSupported, format, args...) }
func Unavailable(format string, args ...any) error  { return newf(ErrUnavailable, format, args...) }
func DiskFull(format string, args ...any) error     { return newf(ErrDiskFull, format, args...) }

// TooMany refuses a request over a rate limit; retryAfter is how long the
// client should wait (see RetryAfter).
func TooMany(retryAfter time.Duration, format string, args ...any) error {
	return &tooMany{err: &Error{kind: ErrTooMany, msg: fmt.Sprintf(format, args...)}, after: retryAfter}
}

type tooMany struct {
	err   *Error
	after time.Duration
}

func (e *tooMany) Error() string { return e.err.Error() }
func (e *tooMany) Unwrap() error { return e.err }

// RetryAfter is the wait a TooMany error asks for, in whole seconds rounded
// up (at least 1), for a Retry-After header; 1 for any other error that is
// a 503 (a database coming back is worth a quick retry); 0 for the rest.
func RetryAfter(err error) int {
	var t *tooMany
	if !errors.As(err, &t) {
		if status, _ := Public(err); status == http.StatusServiceUnavailable {
			return 1
		}
		return 0
	}
	secs := int((t.after + time.Second - 1) / time.Second)
	return max(secs, 1)
}

// Wrap gives cause a client-safe message of a kind; cause stays in logs.
func Wrap(kind error, cause error, format string, args ...any) error {
	return &Error{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

var statuses = []struct {
	kind   error
	status int
}{
	{ErrInvalid, http.StatusBadRequest},
	{ErrUnauthorized, http.StatusUnauthorized},
	{ErrForbidden, http.StatusForbidden},
	{ErrNotFound, http.StatusNotFound},
	{ErrConflict, http.StatusConflict},
	{ErrPrecondition, http.StatusPreconditionFailed},
	{ErrTooLarge, http.StatusRequestEntityTooLarge},
	{ErrUnavailable, http.StatusServiceUnavailable},
	{ErrNotSupported, http.StatusNotImplemented},
	{ErrTooMany, http.StatusTooManyRequests},
	// 507, not 503: no retry in the next second helps (the SDK retries
	// 503 after 100 ms), an operator must free space; the status says so.
	{ErrDiskFull, http.StatusInsufficientStorage},
}

// diskFullMessage is what a client hears of a full disk, whichever layer
// found it.
const diskFullMessage = "disk full: the server cannot store more data until space is freed; reads still work"

// Public returns the HTTP status and client-safe message for err. Errors that
// are not a *Error are internal: 500 and a generic message, except those
// that say they are a passing unavailability (a method Unavailable() bool:
// the store's, when the database is unreachable), which are a 503 the
// client may retry, and those that say the disk is full (a method
// DiskFull() bool: the store's; or ENOSPC, EDQUOT), which are a 507.
func Public(err error) (status int, msg string) {
	var fe *Error
	if errors.As(err, &fe) {
		for _, s := range statuses {
			if errors.Is(fe.kind, s.kind) {
				return s.status, fe.msg
			}
		}
	}
	var d interface{ DiskFull() bool }
	if errors.As(err, &d) && d.DiskFull() {
		return http.StatusInsufficientStorage, diskFullMessage
	}
	// A file the server writes (a function's code unpacked, a temporary
	// file) on a full disk: the same cause, whichever layer met it.
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return http.StatusInsufficientStorage, diskFullMessage
	}
	var u interface{ Unavailable() bool }
	if errors.As(err, &u) && u.Unavailable() {
		return http.StatusServiceUnavailable, "the database is unavailable; retry shortly"
	}
	return http.StatusInternalServerError, "internal server error"
}

// StatusClientGone is the access log's status for a request whose client
// went away before the answer (nginx's 499): neither a server error nor an
// answer anyone read.
const StatusClientGone = 499

// ClientGone reports whether err ended the request because its client went
// away: the request's context was canceled with no other cause (net/http
// cancels it when the connection closes; a shutdown's cut and deadlines
// have causes or errors of their own).
func ClientGone(ctx context.Context, err error) bool {
	return errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled) &&
		context.Cause(ctx) == context.Canceled
}
