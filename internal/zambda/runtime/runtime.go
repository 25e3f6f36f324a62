package runtime

import (
	"log/slog"
	"maps"
	"time"

	"github.com/wardhealth/ward/internal/zambda/sandbox"
)

// Function is what a worker runs. Workers are reused only for the same Key
// and the same settings (Name, Runtime, CodeDir, Handler, MemoryMB, Env):
// an idle worker started with other settings is replaced, so a config
// change takes effect on the next invocation even when the code did not
// change.
type Function struct {
	Key         string            // warm-pool key: function id + code version (e.g. the zip's sha256)
	Name        string            // for messages and AWS_LAMBDA_FUNCTION_NAME
	Runtime     string            // nodejs20.x, nodejs22.x (the host's node), provided.al2023 or provided (CodeDir/bootstrap)
	CodeDir     string            // unpacked code; the worker's working directory and LAMBDA_TASK_ROOT
	Handler     string            // node: "file.export", default "index.index" (falls back to the "handler" export)
	MemoryMB    int               // 128..10240; 0 means 128
	Timeout     time.Duration     // for messages and the default deadline; 0 means 3 s
	Env         map[string]string // the function's own variables, on top of the scrubbed base environment
	Concurrency int               // invocations at once; 0 means 8. Past it, Invoke waits Config.QueueWait, then KindBusy
	Project     string            // the tenant: its workers share a CPU weight and Config.ProjectWorkers
	EphemeralMB int               // size of /tmp in a sandbox; 0 means 512
}

// sameProcess reports whether a worker started for a can serve b.
// Timeout and Concurrency do not shape the process.
func (a Function) sameProcess(b Function) bool {
	return a.Name == b.Name && a.Runtime == b.Runtime && a.CodeDir == b.CodeDir &&
		a.Handler == b.Handler && a.MemoryMB == b.MemoryMB && a.EphemeralMB == b.EphemeralMB && a.Project == b.Project &&
		maps.Equal(a.Env, b.Env)
}

// Invocation is one call.
type Invocation struct {
	RequestID string    // the Lambda request id the function sees; empty or not URL-safe: a random one (see Result.RequestID)
	Payload   []byte    // the event (JSON)
	Deadline  time.Time // zero: now + Function.Timeout. An earlier ctx deadline wins.
}

// LogLine is one line the worker wrote on stdout or stderr.
type LogLine struct {
	Time   time.Time
	Stream string // "stdout" or "stderr"
	Text   string
}

// Result is a finished invocation. On failure, everything but Payload is
// filled in too, so the caller can store the logs of a failed run.
type Result struct {
	RequestID    string        // the id the function saw
	Payload      []byte        // the handler's raw response (JSON for Node)
	Logs         []LogLine     // what the worker wrote during this invocation (and its init, when cold)
	Duration     time.Duration // from handing the event over to the answer
	InitDuration time.Duration // cold starts: from spawning the process to its first /next; 0 when warm
	Cold         bool
	MaxRSSKB     int64 // the process's peak resident memory so far, in KiB (0 if unknown)
}

// Config is the pool's settings.
type Config struct {
	WorkDir        string        // Ward-private directory: the Node bootstrap and per-version scratch dirs (HOME, TMPDIR)
	NodePath       string        // default: "node" on PATH; none found means nodejs runtimes fail with KindNoRuntime
	IdleTimeout    time.Duration // idle workers are killed after this; default 5 min
	MaxOutputBytes int           // response size limit; default 6 MiB
	// QueueWait is how long an invocation waits for a concurrency slot
	// and then for room for a worker (never past its deadline) before it
	// fails with KindBusy; default 2 s.
	QueueWait time.Duration
	// MaxWorkers bounds the worker processes alive at once across every
	// function and project (each is a Node or bootstrap process with its
	// own memory); default 64. At the bound a cold start stops an idle
	// worker (see ProjectWorkers for which), or waits for one.
	MaxWorkers int
	// ProjectWorkers bounds the workers one Function.Project holds at once,
	// so one tenant's flood cannot take the whole server; at the bound a
	// cold start replaces the project's own least recently used idle
	// worker, or waits for one. At MaxWorkers, a project under its fair
	// share (MaxWorkers divided among the projects holding workers) stops
	// an idle worker of the project holding the most; one at or over its
	// share only replaces its own. Default (0): a quarter of MaxWorkers
	// (at least 1); at most MaxWorkers.
	ProjectWorkers int
	Logger         *slog.Logger // default: discard
	// Sandbox starts every worker (see package sandbox). nil: no
	// isolation (sandbox.Direct), for tests and --zambda-sandbox=off.
	Sandbox sandbox.Sandbox
}

const (
	defaultMemoryMB    = 128
	minMemoryMB        = 128
	maxMemoryMB        = 10240
	defaultTimeout     = 3 * time.Second
	defaultConcurrency = 8
	defaultIdleTimeout = 5 * time.Minute
	defaultMaxOutput   = 6 << 20
	defaultQueueWait   = 2 * time.Second
	defaultMaxWorkers  = 64
	maxLogBytes        = 256 << 10 // per invocation, then one "[truncated]" line
	maxLineBytes       = 16 << 10  // longer lines are split, so a line without '\n' cannot grow without bound
	maxErrorText       = 4 << 10   // errorMessage kept from a worker's error body
)

// defaultProjectWorkers is a quarter of the server's workers: one project
// can still run two functions at their default concurrency (8 each) on a
// default server, and at least three other projects always find room
// beside a flooding one. Single-tenant servers raise it up to maxWorkers.
func defaultProjectWorkers(maxWorkers int) int { return max(1, maxWorkers/4) }
