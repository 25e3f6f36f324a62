package runtime

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind classifies a failed invocation. A Kind is itself an error, so
// errors.Is(err, runtime.KindTimeout) (or ErrTimeout) tells failures apart.
type Kind int

const (
	KindHandler   Kind = iota + 1 // the handler threw, rejected, or called back with an error
	KindInit                      // loading the function failed (/init/error, no handler export, no bootstrap)
	KindCrash                     // the process exited without answering
	KindTimeout                   // the deadline passed; the process group was killed
	KindOOM                       // the memory limit was hit
	KindTooLarge                  // the response is over Config.MaxOutputBytes
	KindBusy                      // for Config.QueueWait, the function's concurrency limit stayed full, or no worker could start (its project's Config.ProjectWorkers, or the server's Config.MaxWorkers, all in use)
	KindNoRuntime                 // the runtime is unknown or not installed here
)

// Sentinels for errors.Is, one per Kind.
var (
	ErrHandler   error = KindHandler
	ErrInit      error = KindInit
	ErrCrash     error = KindCrash
	ErrTimeout   error = KindTimeout
	ErrOOM       error = KindOOM
	ErrTooLarge  error = KindTooLarge
	ErrBusy      error = KindBusy
	ErrNoRuntime error = KindNoRuntime
)

// ErrClosed is returned by Invoke once Close has been called.
var ErrClosed = errors.New("zambda runtime is shut down")

var kindNames = [...]string{"", "handler error", "init error", "crash", "timeout", "out of memory", "response too large", "busy", "no runtime"}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind %d", int(k))
}

func (k Kind) Error() string { return "zambda " + k.String() }

// Error is a failed invocation. Message is meant for the function's author:
// it says what happened and what to change.
type Error struct {
	Kind      Kind
	Message   string
	ErrorType string // handler and init errors: the error's type as the function reported it (e.g. "TypeError")
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, KindX) and errors.Is(err, ErrX) match.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// IsKind reports whether err is an *Error of kind k.
func IsKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

func newError(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// fmtDuration prints whole seconds as "3 s", anything else rounded to ms.
func fmtDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d s", int(d/time.Second))
	}
	return d.Round(time.Millisecond).String()
}

// fmtBytes prints a limit as MiB when it is a whole number of them.
func fmtBytes(n int) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// clip bounds text that came from the worker.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
