// Package zambda is Ward's serverless functions: their configuration, code
// (zips uploaded through Z3), invocation with the Oystehr event shape,
// execution roles, secrets, logs and cron triggers. Worker processes are
// the runtime package's business.
package zambda

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/z3"
	"github.com/wardhealth/ward/internal/zambda/runtime"
)

// CodeBucket is the internal Z3 bucket holding every project's code zips.
const CodeBucket = "_zambda-code"

// Runtimes Ward runs, and the ones the contract names that it does not.
var (
	supportedRuntimes = []string{"nodejs20.x", "nodejs22.x", "provided.al2023", "provided"}
	knownRuntimes     = []string{"python3.13", "python3.12", "java21", "dotnet8", "ruby3.3"}
	triggers          = []string{"http_auth", "http_open", "subscription", "cron"}
)

// Limits from the contract: memory in MB, timeouts in seconds.
const (
	minMemory, maxMemory, defaultMemory = 128, 10240, 1024
	defaultTimeout, maxTimeout          = 27, 900
	maxHTTPTimeout                      = 27
)

// Config is the service's tunables.
type Config struct {
	WorkDir   string // unpacked code and scratch space of workers
	ReplicaID string // names this server in cron claims and log streams
	// CronLease is how long a claimed cron tick stays this replica's
	// without renewal (renewed every third of it while the run goes on):
	// a replica that dies or stalls mid-run has its tick taken over and
	// retried that long after its last renewal. Default 30 s.
	CronLease time.Duration
	// Activity counts each invocation for the console's dashboard
	// (*activity.Recorder); nil: not counted.
	Activity interface {
		Invocation(projectID string, failed bool)
	}
}

// Invoker runs one invocation; *runtime.Pool is the real one.
type Invoker interface {
	Invoke(ctx context.Context, fn runtime.Function, inv runtime.Invocation) (runtime.Result, error)
}

// Service is the zambda API.
type Service struct {
	cfg    Config
	st     *store.Store
	iam    *iam.Service
	z3     *z3.Service
	issuer *auth.Issuer
	run    Invoker
	sealer *seal.Sealer
	now    func() time.Time
	log    *slog.Logger
	seq    atomic.Int64 // log line sequence, unique within this replica
	code   *codeCache
	logsWG sync.WaitGroup // log writes in flight
}

// Flush waits for the log writes of finished invocations (for shutdown).
func (s *Service) Flush() { s.logsWG.Wait() }

// New builds the service and registers for code uploads with Z3.
func New(cfg Config, st *store.Store, iamSvc *iam.Service, z3Svc *z3.Service, issuer *auth.Issuer, run Invoker,
	sealer *seal.Sealer, now func() time.Time, log *slog.Logger) *Service {
	if cfg.CronLease <= 0 {
		cfg.CronLease = 30 * time.Second
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	}
	s := &Service{cfg: cfg, st: st, iam: iamSvc, z3: z3Svc, issuer: issuer, run: run, sealer: sealer, now: now, log: log}
	s.seq.Store(now().UnixNano())
	s.code = newCodeCache(cfg.WorkDir)
	z3Svc.OnUpload(CodeBucket, s.codeUploaded)
	return s
}

// FileInfo describes the active code zip.
type FileInfo struct {
	Name         string    `json:"name"`
	Size         int64     `json:"size"`
	LastModified time.Time `json:"lastModified"`
	Checksum     string    `json:"checksum"`
}

// Function is the wire shape (the SDK's ZambdaFunction).
type Function struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	Runtime          string    `json:"runtime"`
	Status           string    `json:"status"`
	StatusReason     string    `json:"statusReason,omitempty"`
	TriggerMethod    string    `json:"triggerMethod"`
	Schedule         *Schedule `json:"schedule,omitempty"`
	FileInfo         *FileInfo `json:"fileInfo,omitempty"`
	MemorySize       int       `json:"memorySize"`
	TimeoutInSeconds int       `json:"timeoutInSeconds"`
	ExecutionRoleID  *string   `json:"executionRoleId"`
}

func out(z store.Zambda) Function {
	f := Function{ID: z.ID, Name: z.Name, Runtime: z.Runtime, Status: z.Status, StatusReason: z.StatusReason,
		TriggerMethod: z.TriggerMethod, MemorySize: z.MemorySize, TimeoutInSeconds: z.TimeoutSeconds}
	if z.Schedule != nil {
		var sc Schedule
		if json.Unmarshal(z.Schedule, &sc) == nil {
			f.Schedule = &sc
		}
	}
	if z.FileChecksum != "" {
		f.FileInfo = &FileInfo{Name: z.FileName, Size: z.FileSize, LastModified: z.FileModified, Checksum: z.FileChecksum}
	}
	if z.ExecutionRoleID != "" {
		id := z.ExecutionRoleID
		f.ExecutionRoleID = &id
	}
	return f
}

// Input creates or (absent fields left alone) updates a function.
// ExecutionRoleID distinguishes absent from null (null removes the role).
type Input struct {
	Name             *string         `json:"name"`
	Runtime          *string         `json:"runtime"`
	TriggerMethod    *string         `json:"triggerMethod"`
	Schedule         json.RawMessage `json:"schedule"`
	MemorySize       *int            `json:"memorySize"`
	TimeoutInSeconds *int            `json:"timeoutInSeconds"`
	ExecutionRoleID  json.RawMessage `json:"executionRoleId"`
}

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// apply merges in into z and checks the result.
func (s *Service) apply(ctx context.Context, z *store.Zambda, in Input) error {
	if in.Name != nil {
		if err := ValidName("zambda", *in.Name); err != nil {
			return err
		}
		z.Name = *in.Name
	}
	if in.Runtime != nil {
		switch {
		case oneOf(*in.Runtime, supportedRuntimes):
		case oneOf(*in.Runtime, knownRuntimes):
			return fault.Invalid("runtime %q is not available in Ward; use one of %s", *in.Runtime, strings.Join(supportedRuntimes, ", "))
		default:
			return fault.Invalid("unknown runtime %q; use one of %s", clip(*in.Runtime), strings.Join(supportedRuntimes, ", "))
		}
		z.Runtime = *in.Runtime
	}
	if in.TriggerMethod != nil {
		if !oneOf(*in.TriggerMethod, triggers) {
			return fault.Invalid("triggerMethod must be one of %s, not %q", strings.Join(triggers, ", "), clip(*in.TriggerMethod))
		}
		z.TriggerMethod = *in.TriggerMethod
	}
	if in.MemorySize != nil {
		if *in.MemorySize < minMemory || *in.MemorySize > maxMemory {
			return fault.Invalid("memorySize must be %d-%d (MB), not %d", minMemory, maxMemory, *in.MemorySize)
		}
		z.MemorySize = *in.MemorySize
	}
	if in.TimeoutInSeconds != nil {
		if *in.TimeoutInSeconds < 1 || *in.TimeoutInSeconds > maxTimeout {
			return fault.Invalid("timeoutInSeconds must be 1-%d, not %d", maxTimeout, *in.TimeoutInSeconds)
		}
		z.TimeoutSeconds = *in.TimeoutInSeconds
	}
	if (z.TriggerMethod == "http_auth" || z.TriggerMethod == "http_open") && z.TimeoutSeconds > maxHTTPTimeout {
		if in.TimeoutInSeconds == nil {
			z.TimeoutSeconds = maxHTTPTimeout
		} else {
			return fault.Invalid("timeoutInSeconds is at most %d for %s zambdas (an HTTP caller waits for the answer), not %d", maxHTTPTimeout, z.TriggerMethod, z.TimeoutSeconds)
		}
	}
	if len(in.Schedule) > 0 && string(in.Schedule) != "null" {
		sc, err := parseSchedule(in.Schedule)
		if err != nil {
			return err
		}
		z.Schedule, _ = json.Marshal(sc)
	} else if string(in.Schedule) == "null" {
		z.Schedule = nil
	}
	if z.TriggerMethod == "cron" && z.Schedule == nil {
		return fault.Invalid(`a cron zambda needs a schedule, e.g. {"expression": "rate(5 minutes)"}`)
	}
	if len(in.ExecutionRoleID) > 0 {
		var role *string
		if err := json.Unmarshal(in.ExecutionRoleID, &role); err != nil {
			return fault.Invalid("executionRoleId must be a role id or null")
		}
		if role == nil || *role == "" {
			z.ExecutionRoleID = ""
		} else {
			if _, err := s.iam.GetRole(ctx, z.ProjectID, *role); err != nil {
				return fault.Invalid("executionRoleId: no role %q in this project", clip(*role))
			}
			z.ExecutionRoleID = *role
		}
	}
	return nil
}

func notFound(err error, idOrName string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fault.NotFound("no zambda %q", clip(idOrName))
	}
	return err
}

// Create adds a function in status Draft (it has no code yet).
func (s *Service) Create(ctx context.Context, projectID string, in Input) (Function, error) {
	if in.Name == nil || in.Runtime == nil {
		return Function{}, fault.Invalid("a zambda needs a name and a runtime")
	}
	now := s.now()
	z := store.Zambda{ProjectID: projectID, ID: uuid.NewString(), TriggerMethod: "http_auth", MemorySize: defaultMemory,
		TimeoutSeconds: defaultTimeout, Status: "Draft", CreatedAt: now, UpdatedAt: now}
	if err := s.apply(ctx, &z, in); err != nil {
		return Function{}, err
	}
	if err := s.st.CreateZambda(ctx, z); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Function{}, fault.Conflict("a zambda named %q already exists in this project", z.Name)
		}
		return Function{}, err
	}
	return out(z), nil
}

// Get returns a function by id or name.
func (s *Service) Get(ctx context.Context, projectID, idOrName string) (Function, error) {
	z, err := s.st.GetZambda(ctx, projectID, idOrName)
	if err != nil {
		return Function{}, notFound(err, idOrName)
	}
	return out(z), nil
}

// List returns the project's functions.
func (s *Service) List(ctx context.Context, projectID string) ([]Function, error) {
	zs, err := s.st.ListZambdas(ctx, projectID, "")
	if err != nil {
		return nil, err
	}
	list := make([]Function, 0, len(zs))
	for _, z := range zs {
		list = append(list, out(z))
	}
	return list, nil
}

// Update changes a function's configuration.
func (s *Service) Update(ctx context.Context, projectID, idOrName string, in Input) (Function, error) {
	z, err := s.st.GetZambda(ctx, projectID, idOrName)
	if err != nil {
		return Function{}, notFound(err, idOrName)
	}
	if err := s.apply(ctx, &z, in); err != nil {
		return Function{}, err
	}
	z.UpdatedAt = s.now()
	if err := s.st.UpdateZambda(ctx, z); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Function{}, fault.Conflict("a zambda named %q already exists in this project", z.Name)
		}
		return Function{}, notFound(err, idOrName)
	}
	return out(z), nil
}

// Delete removes a function and its code.
func (s *Service) Delete(ctx context.Context, projectID, idOrName string) error {
	z, err := s.st.GetZambda(ctx, projectID, idOrName)
	if err != nil {
		return notFound(err, idOrName)
	}
	if err := s.st.DeleteZambda(ctx, projectID, z.ID); err != nil {
		return notFound(err, idOrName)
	}
	_, _ = s.z3.DeleteFolder(ctx, projectID, CodeBucket, z.ID+"/", func(string) error { return nil })
	return nil
}

// UploadURL returns a presigned Z3 URL for the function's next code zip.
func (s *Service) UploadURL(ctx context.Context, projectID, idOrName, filename string) (string, error) {
	z, err := s.st.GetZambda(ctx, projectID, idOrName)
	if err != nil {
		return "", notFound(err, idOrName)
	}
	if filename == "" {
		filename = z.Name + ".zip"
	}
	if len(filename) > 255 || strings.ContainsAny(filename, "/\\\x00") {
		return "", fault.Invalid("filename must be a plain file name of at most 255 bytes")
	}
	z.UploadName, z.UpdatedAt = filename, s.now()
	if err := s.st.UpdateZambda(ctx, z); err != nil {
		return "", err
	}
	u, _, err := s.z3.Presign(ctx, projectID, CodeBucket, z.ID+"/"+uuid.NewString()+".zip", z3.Upload)
	return u, err
}

func clipErr(err error) string {
	msg := err.Error()
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	return msg
}
