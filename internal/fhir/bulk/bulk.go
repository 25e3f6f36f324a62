// Package bulk is FHIR Bulk Data Access (IG 2.0) $export: asynchronous
// jobs that write what the requesting principal may search, as NDJSON
// files in Z3, at system, Patient and Group level. Jobs live in the
// database, are leased by one replica at a time and checkpoint after each
// file, so a restarted or moved job continues without repeating a line.
package bulk

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/store"
)

// Files keeps output files (Z3's internal bucket in Ward): paths are
// "<job>/<name>"; a put replaces.
type Files interface {
	// PutExport stores r at path in the project's export bucket.
	PutExport(ctx context.Context, projectID, path string, r io.Reader) error
	// OpenExport returns the file's bytes and size. Errors:
	// fault.ErrNotFound.
	OpenExport(ctx context.Context, projectID, path string) (io.ReadCloser, int64, error)
	// DeleteExports removes every file under folder ("<job>/").
	DeleteExports(ctx context.Context, projectID, folder string) error
}

// Config holds the export limits.
type Config struct {
	FileResources int           // resources per output file (default 50,000)
	FileBytes     int           // bytes after which a file ends (default 32 MiB)
	Batch         int           // resources read per query (default 1,000)
	Lease         time.Duration // a claim's lease, renewed at each checkpoint (default 30 s)
	Poll          time.Duration // how often idle replicas look for jobs (default 1 s)
	// Keep is how long a finished job and its files are kept (default
	// 24 h, the manifest's Expires).
	Keep time.Duration
	// MaxRunning bounds a project's running jobs (default 5): more
	// kick-offs are 429 until one ends.
	MaxRunning int
}

func (c *Config) defaults() {
	if c.FileResources <= 0 {
		c.FileResources = 50000
	}
	if c.FileBytes <= 0 {
		c.FileBytes = 32 << 20
	}
	if c.Batch <= 0 {
		c.Batch = 1000
	}
	c.Batch = min(c.Batch, c.FileResources)
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Keep <= 0 {
		c.Keep = 24 * time.Hour
	}
	if c.MaxRunning <= 0 {
		c.MaxRunning = 5
	}
}

// Service runs export jobs and serves their endpoints.
type Service struct {
	cfg   Config
	st    *store.Store
	fhir  *fhir.Service
	files Files
	now   func() time.Time
	log   *slog.Logger
	wake  chan struct{}
}

// New returns the export service.
func New(cfg Config, st *store.Store, fhirSvc *fhir.Service, files Files, now func() time.Time, log *slog.Logger) *Service {
	cfg.defaults()
	if now == nil {
		now = time.Now
	}
	return &Service{cfg: cfg, st: st, fhir: fhirSvc, files: files, now: now, log: log, wake: make(chan struct{}, 1)}
}

// principal is who asked, as a job stores it: the job reads as them.
type principal struct {
	Kind     auth.Kind `json:"kind"`
	ID       string    `json:"id"`
	ClientID string    `json:"clientId,omitempty"`
	Scopes   []string  `json:"scopes,omitempty"`
	Patient  string    `json:"patient,omitempty"`
	FHIRUser string    `json:"fhirUser,omitempty"`
}

func principalOf(p auth.Principal) principal {
	return principal{Kind: p.Kind, ID: p.ID, ClientID: p.ClientID, Scopes: p.Scopes, Patient: p.Patient, FHIRUser: p.FHIRUser}
}

func (pr principal) auth(projectID string) auth.Principal {
	return auth.Principal{ProjectID: projectID, Kind: pr.Kind, ID: pr.ID, ClientID: pr.ClientID, Scopes: pr.Scopes,
		Patient: pr.Patient, FHIRUser: pr.FHIRUser}
}

// owner is p as the store's job owner key: what same compares.
func owner(p auth.Principal) string {
	return string(p.Kind) + "/" + p.ID + "/" + p.Patient
}

// same reports whether p is the principal that started the job (the
// files' access token must be that principal's, IG requiresAccessToken).
func (pr principal) same(p auth.Principal) bool {
	return pr.Kind == p.Kind && pr.ID == p.ID && pr.Patient == p.Patient
}

// cursor is a job's checkpoint: the type it is on (an index into its
// types), the last id written of it and the files written so far.
type cursor struct {
	Type  int    `json:"type"`
	After string `json:"after,omitempty"`
	Files int    `json:"files"`
}

// job is a stored job with its JSON decoded.
type job struct {
	store.ExportJob
	who    principal
	params Params
	cur    cursor
}

func decode(j store.ExportJob) (job, error) {
	out := job{ExportJob: j}
	if err := json.Unmarshal(j.Principal, &out.who); err != nil {
		return job{}, err
	}
	if err := json.Unmarshal(j.Params, &out.params); err != nil {
		return job{}, err
	}
	if len(j.Cursor) > 0 {
		if err := json.Unmarshal(j.Cursor, &out.cur); err != nil {
			return job{}, err
		}
	}
	return out, nil
}

// start records a job for p and wakes this replica's runner.
func (s *Service) start(ctx context.Context, p auth.Principal, request string, params Params) (string, error) {
	who, err := json.Marshal(principalOf(p))
	if err != nil {
		return "", err
	}
	pj, err := json.Marshal(params)
	if err != nil {
		return "", err
	}
	// Counted before the insert: replicas racing may admit one or two
	// more, which only bounds the load less tightly.
	running, err := s.st.RunningExportJobs(ctx, p.ProjectID)
	if err != nil {
		return "", err
	}
	if running >= s.cfg.MaxRunning {
		return "", fault.TooMany(30*time.Second, "this project has %d exports running, the most it may: wait for one to end or cancel one", running)
	}
	now := s.now()
	id := uuid.NewString()
	err = s.st.CreateExportJob(ctx, store.ExportJob{ProjectID: p.ProjectID, ID: id, Principal: who, Owner: owner(p), Request: request,
		Params: pj, TransactionTime: now, CreatedAt: now, Cursor: []byte(`{}`)})
	if err != nil {
		return "", err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return id, nil
}

// lookup returns p's job id; another project's or another principal's job
// is not found, as one that never existed.
func (s *Service) lookup(ctx context.Context, p auth.Principal, id string) (job, error) {
	if _, err := uuid.Parse(id); err != nil {
		return job{}, errNoJob
	}
	sj, err := s.st.GetExportJob(ctx, p.ProjectID, id)
	if errors.Is(err, store.ErrNotFound) {
		return job{}, errNoJob
	}
	if err != nil {
		return job{}, err
	}
	j, err := decode(sj)
	if err != nil {
		return job{}, err
	}
	if !j.who.same(p) {
		return job{}, errNoJob
	}
	return j, nil
}
