package zambda

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/seal/sealtest"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/z3"
	"github.com/wardhealth/ward/internal/z3/blob"
	"github.com/wardhealth/ward/internal/zambda/runtime"
)

// fakeClock is a settable clock, so cron ticks come due when a test says.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// invokerFunc makes a function an Invoker: tests run no workers.
type invokerFunc func(ctx context.Context, fn runtime.Function, inv runtime.Invocation) (runtime.Result, error)

func (f invokerFunc) Invoke(ctx context.Context, fn runtime.Function, inv runtime.Invocation) (runtime.Result, error) {
	return f(ctx, fn, inv)
}

// testEnv is what replicas of the service share: one store with its
// master key, code blobs, IAM and clock, and a project.
type testEnv struct {
	st      *store.Store
	sealer  *seal.Sealer
	iam     *iam.Service
	blobs   blob.Backend
	ring    *auth.KeyRing // nil: no execution-role tokens
	clock   *fakeClock
	log     *slog.Logger
	project string
}

// newTestEnv sets up a store on b with one project. withKeys adds a signing
// key, for execution-role tokens.
func newTestEnv(t *testing.T, b storetest.Backend, withKeys bool) *testEnv {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t, b)
	clock := &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	e := &testEnv{st: st, sealer: sealtest.Setup(t, st), clock: clock, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e.iam = iam.New(st, "http://ward.test/invite/", clock.now, iam.Deps{})
	admin, _, err := e.iam.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.project = admin.ProjectID
	if e.blobs, err = blob.NewFS(filepath.Join(t.TempDir(), "blobs")); err != nil {
		t.Fatal(err)
	}
	if withKeys {
		k, err := auth.GenerateKey(clock.now())
		if err != nil {
			t.Fatal(err)
		}
		if e.ring, err = auth.NewKeyRing([]auth.Key{k}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// replica builds one server's zambda service (its own Z3 service and
// replica id) over the shared store.
func (e *testEnv) replica(t *testing.T, id string, run Invoker) *testService {
	t.Helper()
	z3Svc, err := z3.New(context.Background(), z3.Config{PublicURL: "http://ward.test"}, e.st, e.sealer, e.blobs, e.clock.now, e.log)
	if err != nil {
		t.Fatal(err)
	}
	var issuer *auth.Issuer
	if e.ring != nil {
		issuer = auth.NewIssuer(func() *auth.KeyRing { return e.ring }, "http://ward.test", "http://ward.test", e.clock.now)
	}
	s := New(Config{WorkDir: t.TempDir(), ReplicaID: id}, e.st, e.iam, z3Svc, issuer, run, e.sealer, e.clock.now, e.log)
	t.Cleanup(s.Flush) // log writes end before the store closes
	return &testService{Service: s, env: e, project: e.project, clock: e.clock}
}

// testService is a Service on a fresh store with one project.
type testService struct {
	*Service
	env     *testEnv
	project string
	clock   *fakeClock
}

// newTestService is one replica on SQLite.
func newTestService(t *testing.T, run Invoker) *testService {
	t.Helper()
	return newTestEnv(t, storetest.Backends()[0], false).replica(t, "", run)
}
