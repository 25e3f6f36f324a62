package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// ricZip builds (or takes from its cache) the zip of testdata/ric: a
// provided.al2023 function whose bootstrap runs AWS's Node.js runtime
// interface client, aws-lambda-ric, on Node.js 22. Building needs cmake,
// autotools and a C++ compiler (build.sh installs them as root): in CI a
// failure fails the test; elsewhere the test skips, saying why.
func ricZip(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", "testdata/ric/build.sh")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("build the aws-lambda-ric zambda: %v\n%s", err, stderr.String())
		}
		t.Skipf("cannot build the aws-lambda-ric zambda (not CI, so skipping): %v\n%s", err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Log(s)
	}
	return strings.TrimSpace(string(out))
}

// execute runs a zambda through POST /v1/zambda/{id}/execute and returns
// the HTTP status, the answer's output and the headers it names.
func (w *ward) execute(t *testing.T, token, id, payload string) (int, map[string]any, map[string]string) {
	t.Helper()
	r := w.executeTimed(t, token, id, payload)
	if r.status == 0 {
		t.FailNow()
	}
	b := r.body
	var out struct {
		Status  int               `json:"status"`
		Output  map[string]any    `json:"output"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("execute %s: %d %s", id, r.status, b)
	}
	if out.Status != r.status {
		t.Errorf("execute: HTTP %d, but the answer says status %d", r.status, out.Status)
	}
	return r.status, out.Output, out.Headers
}

// TestAWSLambdaRIC: aws-lambda-ric 4.x, AWS's own runtime interface client
// for Node.js, runs as the bootstrap of a provided.al2023 zambda: it finds
// the environment it requires, gets the event over Ward's Runtime API, and
// its answers and errors come back as Ward's execute answers.
func TestAWSLambdaRIC(t *testing.T) {
	zip := ricZip(t)
	stream := regexp.MustCompile(`^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$`)
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWard(t, b)
			tok := w.token(t, w.Admin)
			// A generous timeout: a cold start maps a 120 MB Node binary
			// on a machine shared with other tests.
			id := w.deployZambda(t, tok, `{"name":"ric","runtime":"provided.al2023","memorySize":256,"timeoutInSeconds":25}`, zip)

			st, out, _ := w.execute(t, tok, id, `{"hello":"ric","n":[1,2]}`)
			if st != 200 {
				t.Fatalf("execute: %d %v", st, out)
			}
			echo, _ := json.Marshal(out["echo"])
			if string(echo) != `{"hello":"ric","n":[1,2]}` {
				t.Errorf("echo = %s", echo)
			}
			if v, _ := out["node"].(string); !strings.HasPrefix(v, "v22.") {
				t.Errorf("node %q: not the Node.js 22 in the zip", v)
			}
			env, _ := out["env"].(map[string]any)
			ctx, _ := out["context"].(map[string]any)
			for k, want := range map[string]any{
				"AWS_LAMBDA_FUNCTION_NAME":  "ric",
				"AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/ric",
				"AWS_REGION":                "local",
				"AWS_EXECUTION_ENV":         nil, // not for provided runtimes, as on Lambda
				"_HANDLER":                  "index.handler",
			} {
				if env[k] != want {
					t.Errorf("env %s = %v, want %v", k, env[k], want)
				}
			}
			if s, _ := env["AWS_LAMBDA_LOG_STREAM_NAME"].(string); !stream.MatchString(s) || ctx["logStreamName"] != s {
				t.Errorf("log stream: env %q, context %v", s, ctx["logStreamName"])
			}
			// aws-lambda-ric copies Lambda-Runtime-Trace-Id there.
			if s, _ := env["_X_AMZN_TRACE_ID"].(string); !strings.HasPrefix(s, "Root=1-") {
				t.Errorf("_X_AMZN_TRACE_ID = %q", s)
			}
			arn, _ := ctx["invokedFunctionArn"].(string)
			reqID, _ := ctx["awsRequestId"].(string)
			remaining, _ := ctx["remainingMs"].(float64)
			if ctx["functionName"] != "ric" || ctx["logGroupName"] != "/aws/lambda/ric" || ctx["memoryLimitInMB"] != "256" ||
				!strings.HasPrefix(arn, "arn:aws:lambda:local:") || !strings.HasSuffix(arn, ":function:ric") ||
				reqID == "" || remaining <= 0 || remaining > 25000 {
				t.Errorf("context = %v", ctx)
			}

			// A handler's error is Ward's "threw" failure (code 4210); the
			// next invocation runs on a fresh worker.
			st, out, _ = w.execute(t, tok, id, `{"mode":"throw"}`)
			if msg, _ := out["message"].(string); st != 500 || out["code"] != float64(4210) || !strings.Contains(msg, "TypeError: ric says no") {
				t.Errorf("handler error: %d %v", st, out)
			}
			if st, out, _ = w.execute(t, tok, id, `{"after":"throw"}`); st != 200 {
				t.Fatalf("after the error: %d %v", st, out)
			}
			if echo, _ := json.Marshal(out["echo"]); string(echo) != `{"after":"throw"}` {
				t.Errorf("echo after the error = %s", echo)
			}

			// What the handler logged (through aws-lambda-ric's console)
			// is in the function's logs.
			waitFor(t, "the handler's log line", 10*time.Second, func() bool {
				var res struct {
					LogEvents []struct{ Message string } `json:"logEvents"`
				}
				w.api(t, tok, "POST", "/zambda/"+id+"/logStream/search", `{"filter":"ric handler got"}`, &res)
				return len(res.LogEvents) == 2 && strings.Contains(res.LogEvents[0].Message, `{"hello":"ric","n":[1,2]}`)
			})

			// A streamed response (awslambda.streamifyResponse) with an
			// HTTP prelude: its status, headers and body are the answer's.
			streamID := w.deployZambda(t, tok, `{"name":"ric-stream","runtime":"provided.al2023","memorySize":256,"timeoutInSeconds":25}`, zip)
			st, out, hdr := w.execute(t, tok, streamID, `{"hello":"stream"}`)
			if echo, _ := json.Marshal(out); st != 201 || string(echo) != `{"streamed":{"hello":"stream"}}` || hdr["x-ric"] != "streamed" {
				t.Errorf("streamed: %d %s %v", st, echo, hdr)
			}
		})
	}
}
