package runtime

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func goInfo(t *testing.T, p *Pool, fn Function) (pid int, dataLimit uint64) {
	t.Helper()
	var out struct {
		Pid       int
		DataLimit uint64
	}
	res := mustInvoke(t, p, fn, `{"mode":"info"}`)
	if err := json.Unmarshal(res.Payload, &out); err != nil || out.Pid == 0 {
		t.Fatalf("info: %s %v", res.Payload, err)
	}
	return lastPid(t, p, fn), out.DataLimit
}

func TestGoProvided(t *testing.T) {
	t.Setenv("WARD_CANARY", "must-not-leak")
	p := newPool(t, Config{})
	fn := goFn(t, "go")
	fn.Env = map[string]string{"GIVEN": "yes"}

	res := mustInvoke(t, p, fn, `{"mode":"echo","x":1}`)
	if string(res.Payload) != `{"echo":{"mode":"echo","x":1}}` || !res.Cold || res.InitDuration <= 0 {
		t.Fatalf("echo: %s cold %v init %v", res.Payload, res.Cold, res.InitDuration)
	}
	if res = mustInvoke(t, p, fn, `{"mode":"echo"}`); res.Cold {
		t.Fatal("the second call was cold")
	}

	// The memory limit is in place before the program's first instruction.
	if _, limit := goInfo(t, p, fn); limit != uint64(128+64)<<20 {
		t.Errorf("RLIMIT_DATA at start = %d, want %d", limit, (128+64)<<20)
	}

	res = mustInvoke(t, p, fn, `{"mode":"log"}`)
	if len(res.Logs) != 2 || !logged(res.Logs, "stdout", "go line one") || !logged(res.Logs, "stderr", "go line two") {
		t.Errorf("logs = %+v", res.Logs)
	}

	res, err := p.Invoke(t.Context(), fn, Invocation{RequestID: "req-go-env", Payload: []byte(`{"mode":"env"}`), Deadline: time.Now().Add(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Env         []string
		RequestID   string
		RemainingMs int64
	}
	if err := json.Unmarshal(res.Payload, &env); err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(env.Env, "\n")
	if strings.Contains(joined, "WARD_CANARY") || !strings.Contains(joined, "GIVEN=yes") || !strings.Contains(joined, "GOMEMLIMIT=115MiB") {
		t.Errorf("env = %v", env.Env)
	}
	if env.RequestID != "req-go-env" || env.RemainingMs < 1000 || env.RemainingMs > 3000 {
		t.Errorf("lambda context: %+v", env)
	}

	for _, tc := range []struct {
		mode    string
		timeout time.Duration
		kind    Kind
		msg     string
	}{
		{"error", 0, KindHandler, "zambda go failed with errorString: go says no"},
		{"panic", 0, KindHandler, "go panics"},
		{"exit", 0, KindCrash, "exited with code 3 before answering"},
		{"hang", time.Second, KindTimeout, "timed out after 1 s"},
		{"oom", 0, KindOOM, "ran out of memory (memorySize 128 MB)"},
		{"big", 0, KindTooLarge, "larger than the 6 MiB limit"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			before, _ := goInfo(t, p, fn)
			fn := fn
			if tc.timeout > 0 {
				fn.Timeout = tc.timeout
			}
			res, err := invoke(t, p, fn, `{"mode":"`+tc.mode+`"}`)
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v with %q (logs %v)", err, tc.kind, tc.msg, res.Logs)
			}
			if after, _ := goInfo(t, p, fn); after == before {
				t.Errorf("the worker was not replaced after %s", tc.mode)
			}
		})
	}
}

func TestProvidedStartErrors(t *testing.T) {
	p := newPool(t, Config{})
	dir := t.TempDir()
	notExec := t.TempDir()
	if err := os.WriteFile(filepath.Join(notExec, "bootstrap"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exits := t.TempDir()
	if err := os.WriteFile(filepath.Join(exits, "bootstrap"), []byte("#!/bin/sh\necho starting; echo broken >&2; exit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir string
		kind      Kind
		msg       string
	}{
		{"no bootstrap", dir, KindInit, "needs an executable file named bootstrap at the zip's root"},
		{"not executable", notExec, KindInit, "permission denied"},
		{"exits at once", exits, KindCrash, "exited with code 7 while loading"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := Function{Key: tc.name, Name: "p", Runtime: "provided", CodeDir: tc.dir, Timeout: 5 * time.Second}
			res, err := invoke(t, p, fn, `{}`)
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v with %q", err, tc.kind, tc.msg)
			}
			if tc.kind == KindCrash && (!logged(res.Logs, "stdout", "starting") || !logged(res.Logs, "stderr", "broken")) {
				t.Errorf("the crash's output is not in the logs: %+v", res.Logs)
			}
		})
	}
}

func TestNoRuntime(t *testing.T) {
	p := newPool(t, Config{})
	p.cfg.NodePath = "" // as on a host without Node
	for _, tc := range []struct{ runtime, msg string }{
		{"nodejs20.x", "needs Node.js, which is not installed"},
		{"nodejs22.x", "needs Node.js, which is not installed"},
		{"python3.12", `runtime "python3.12" is not supported`},
	} {
		_, err := invoke(t, p, Function{Key: tc.runtime, Name: "n", Runtime: tc.runtime, CodeDir: t.TempDir(), Timeout: time.Second}, `{}`)
		if !errors.Is(err, ErrNoRuntime) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v", tc.runtime, err)
		}
	}
}
