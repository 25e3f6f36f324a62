package zambda

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/seal/sealtest"
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

// testService is a Service on a fresh SQLite store with one project.
type testService struct {
	*Service
	project string
	clock   *fakeClock
}

func newTestService(t *testing.T, run Invoker) *testService {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t, storetest.Backends()[0])
	sealer := sealtest.Setup(t, st)
	clock := &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	iamSvc := iam.New(st, "http://ward.test/invite/", clock.now, iam.Deps{})
	admin, _, err := iamSvc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewFS(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	z3Svc, err := z3.New(ctx, z3.Config{PublicURL: "http://ward.test"}, st, sealer, blobs, clock.now, log)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{WorkDir: t.TempDir()}, st, iamSvc, z3Svc, nil, run, sealer, clock.now, log)
	t.Cleanup(s.Flush) // log writes end before the store closes
	return &testService{Service: s, project: admin.ProjectID, clock: clock}
}
