package runtime

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// logStream is Lambda's log stream name format.
var logStream = regexp.MustCompile(`^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$`)

// envMap runs env and checks it names no variable twice.
func envMap(t *testing.T, fn Function) map[string]string {
	t.Helper()
	vars, err := env(fn, fn.CodeDir, "/work/scratch-1/fn-2", "/work")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := m[k]; dup {
			t.Errorf("%s is set twice: %v", k, vars)
		}
		m[k] = v
	}
	return m
}

func TestEnv(t *testing.T) {
	const unset = "(unset)"
	for _, tc := range []struct {
		name    string
		runtime string
		given   map[string]string
		want    map[string]string
	}{
		{"node", "nodejs20.x", nil, map[string]string{
			"AWS_EXECUTION_ENV": "AWS_Lambda_nodejs20.x", "LAMBDA_RUNTIME_DIR": "/work", "GOMEMLIMIT": unset,
		}},
		{"node 22", "nodejs22.x", nil, map[string]string{"AWS_EXECUTION_ENV": "AWS_Lambda_nodejs22.x"}},
		{"provided", "provided.al2023", nil, map[string]string{
			// Not set for OS-only runtimes, as on Lambda.
			"AWS_EXECUTION_ENV": unset, "LAMBDA_RUNTIME_DIR": "/code", "GOMEMLIMIT": "230MiB",
		}},
		{"provided (al2)", "provided", nil, map[string]string{"AWS_EXECUTION_ENV": unset}},
		{"the function names its own region", "provided.al2023",
			map[string]string{"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "TZ": "Europe/Paris"},
			map[string]string{"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "TZ": "Europe/Paris"}},
		{"the runtime's own cannot be replaced", "nodejs20.x",
			map[string]string{"AWS_EXECUTION_ENV": "x", "AWS_LAMBDA_LOG_GROUP_NAME": "x", "AWS_LAMBDA_LOG_STREAM_NAME": "x",
				"LAMBDA_RUNTIME_DIR": "x", "LAMBDA_TASK_ROOT": "x", "_HANDLER": "x"},
			map[string]string{"AWS_EXECUTION_ENV": "AWS_Lambda_nodejs20.x", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
				"LAMBDA_RUNTIME_DIR": "/work", "LAMBDA_TASK_ROOT": "/code", "_HANDLER": "index.index"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := Function{Key: "k", Name: "fn", Runtime: tc.runtime, CodeDir: "/code", MemoryMB: 256, Timeout: 7 * time.Second, Env: tc.given}
			got := envMap(t, fn)
			// What every function gets (aws-lambda-ric refuses to start
			// without the log group and stream).
			want := map[string]string{
				// AWS_LAMBDA_RUNTIME_API comes from the sandbox, which owns the network.
				"AWS_LAMBDA_RUNTIME_API": unset, "AWS_LAMBDA_FUNCTION_NAME": "fn",
				"AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
				"AWS_LAMBDA_FUNCTION_TIMEOUT": "7", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
				"AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn", "AWS_REGION": "local", "AWS_DEFAULT_REGION": "local",
				"LAMBDA_TASK_ROOT": "/code", "_HANDLER": "index.index", "TZ": "UTC", "LANG": "C.UTF-8",
				"HOME": "/work/scratch-1/fn-2", "TMPDIR": "/work/scratch-1/fn-2", "PATH": "/usr/local/bin:/usr/bin:/bin",
				// No AWS credentials to give, and the trace id is per invocation.
				"AWS_ACCESS_KEY_ID": unset, "AWS_SECRET_ACCESS_KEY": unset, "AWS_SESSION_TOKEN": unset, "_X_AMZN_TRACE_ID": unset,
			}
			for k, v := range tc.want {
				want[k] = v
			}
			for k, v := range want {
				if g, ok := got[k]; v == unset && ok {
					t.Errorf("%s=%q is set", k, g)
				} else if v != unset && g != v {
					t.Errorf("%s=%q, want %q", k, g, v)
				}
			}
			if s := got["AWS_LAMBDA_LOG_STREAM_NAME"]; !logStream.MatchString(s) {
				t.Errorf("AWS_LAMBDA_LOG_STREAM_NAME=%q is not in Lambda's format", s)
			}
		})
	}

	// Each worker (execution environment) has its own log stream.
	fn := Function{Name: "fn", Runtime: "provided.al2023", CodeDir: "/code", MemoryMB: 128}
	if a, b := envMap(t, fn)["AWS_LAMBDA_LOG_STREAM_NAME"], envMap(t, fn)["AWS_LAMBDA_LOG_STREAM_NAME"]; a == b {
		t.Errorf("two workers share the log stream %s", a)
	}
}
