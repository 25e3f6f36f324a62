// Package lab is the SDK's lab service over HL7 version 2: a project's
// routes to labs (where orders go over MLLP, and the secret the lab's
// results carry), the labs' compendia (orderable items, loaded by the
// project as FHIR ActivityDefinitions), order submission (ServiceRequests
// to an ORM^O01, sent and acknowledged) and results (ORU^R01 received by
// Ward's MLLP listener, stored as DiagnosticReports and Observations
// based on the orders). docs/labs.md describes it.
package lab

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/store"
)

// Config is the service's tunables; zero values take the defaults.
type Config struct {
	// AckTimeout is how long a sent order waits for the lab's ACK.
	AckTimeout time.Duration
	// Attempts is how many times an order is sent when no ACK comes.
	Attempts int
	// RetryDelay is the wait before the second attempt (doubling after).
	RetryDelay time.Duration
	// MaxMessage bounds one MLLP frame, both ways.
	MaxMessage int
	// IdleTimeout closes a listener connection that sends nothing.
	IdleTimeout time.Duration
	// MaxConns bounds the listener's connections at once.
	MaxConns int
	// Facility is MSH-3/4 of what Ward sends (its application name).
	Facility string
}

// Defaults.
const (
	DefaultAckTimeout  = 10 * time.Second
	DefaultAttempts    = 3
	DefaultRetryDelay  = 200 * time.Millisecond
	DefaultMaxMessage  = 1 << 20
	DefaultIdleTimeout = 5 * time.Minute
	DefaultMaxConns    = 64
)

// Service runs the lab endpoints and the MLLP listener.
type Service struct {
	cfg    Config
	store  *store.Store
	fhir   *fhir.Service
	egress *egress.Policy
	log    *slog.Logger
	now    func() time.Time
	ackSeq atomic.Uint64 // numbers the ACKs' control ids
	batch  *batcher      // writes results, several messages at once
}

// New builds the service. Orders are dialled through eg (nil: the default
// policy, public addresses only).
func New(cfg Config, st *store.Store, f *fhir.Service, eg *egress.Policy, log *slog.Logger, now func() time.Time) *Service {
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Facility == "" {
		cfg.Facility = "WARD"
	}
	if now == nil {
		now = time.Now
	}
	return &Service{cfg: cfg, store: st, fhir: f, egress: eg, log: log, now: now, batch: newBatcher(st)}
}
