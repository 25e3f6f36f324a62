package runtime

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// apiWorker is a worker with no process, to drive its Runtime API directly.
func apiWorker() *worker {
	return &worker{name: "t", maxOut: 16, arn: "arn:aws:lambda:local:000000000000:function:t",
		ready: make(chan struct{}), jobs: make(chan *call), initErr: make(chan answer, 1)}
}

func do(h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestRuntimeAPIRejectsGarbage(t *testing.T) {
	w := apiWorker()
	h := w.api()
	c := &call{id: "req-1", answer: make(chan answer, 1)}
	w.cur = c
	const inv = apiPrefix + "/invocation/"
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"unknown id", "POST", inv + "req-2/response", "{}", 400},
		{"escaped id", "POST", inv + "req%2D1x/response", "{}", 400},
		{"path traversal", "POST", inv + "../../init/error", "{}", 307}, // ServeMux cleans the path: never a 202
		{"unknown route", "POST", apiPrefix + "/invocation/req-1/other", "{}", 404},
		{"wrong method", "GET", inv + "req-1/response", "", 405},
		{"no id", "POST", inv + "/response", "{}", 307},
	} {
		if rec := do(h, tc.method, tc.path, tc.body); rec.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.status)
		}
	}
	select {
	case a := <-c.answer:
		t.Fatalf("garbage answered the invocation: %+v", a)
	default:
	}

	// Over MaxOutputBytes: refused, and the invocation learns it.
	if rec := do(h, "POST", inv+"req-1/response", strings.Repeat("x", 1<<20)); rec.Code != 413 || !strings.Contains(rec.Body.String(), "16 bytes") {
		t.Fatalf("too large: %d %s", rec.Code, rec.Body)
	}
	if a := <-c.answer; !a.tooBig || len(a.body) > 17 {
		t.Fatalf("answer = %+v", a)
	}
	// One answer per invocation.
	if rec := do(h, "POST", inv+"req-1/response", "{}"); rec.Code != 400 {
		t.Fatalf("second answer: %d", rec.Code)
	}

	c = &call{id: "req-3", answer: make(chan answer, 1)}
	w.cur = c
	if rec := do(h, "POST", inv+"req-3/error", "not json", "Lambda-Runtime-Function-Error-Type", "Custom.Type"); rec.Code != 202 {
		t.Fatalf("error post: %d", rec.Code)
	}
	if typ, msg := errorBody(<-c.answer); typ != "Custom.Type" || msg != "not json" {
		t.Fatalf("error = %q %q", typ, msg)
	}

	if rec := do(h, "POST", apiPrefix+"/init/error", strings.Repeat("y", 1<<20)); rec.Code != 202 {
		t.Fatalf("init error: %d", rec.Code)
	}
	if a := <-w.initErr; len(a.body) > maxErrorText*4 {
		t.Fatalf("init error body not capped: %d", len(a.body))
	}
}

func TestRuntimeAPINext(t *testing.T) {
	w := apiWorker()
	h := w.api()
	deadline := time.UnixMilli(1893456000123)
	rec := make(chan *httptest.ResponseRecorder)
	go func() { rec <- do(h, "GET", apiPrefix+"/invocation/next", "") }()
	w.jobs <- &call{id: "req-9", payload: []byte(`{"a":1}`), deadline: deadline}
	r := <-rec
	<-w.ready // the first /next marks the worker ready
	if r.Code != 200 || r.Body.String() != `{"a":1}` {
		t.Fatalf("next: %d %s", r.Code, r.Body)
	}
	for k, want := range map[string]string{
		"Lambda-Runtime-Aws-Request-Id":       "req-9",
		"Lambda-Runtime-Deadline-Ms":          "1893456000123",
		"Lambda-Runtime-Invoked-Function-Arn": w.arn,
	} {
		if got := r.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(r.Header().Get("Lambda-Runtime-Trace-Id"), "Root=1-") {
		t.Errorf("trace id %q", r.Header().Get("Lambda-Runtime-Trace-Id"))
	}
	// A /next whose client has gone returns without taking a job.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("GET", apiPrefix+"/invocation/next", nil).WithContext(ctx)
	h.ServeHTTP(httptest.NewRecorder(), req)
}

func TestErrorBody(t *testing.T) {
	for _, tc := range []struct {
		name, body, header, typ, msg string
	}{
		{"aws-lambda-go", `{"errorMessage":"go says no","errorType":"errorString","stackTrace":[{"path":"a.go","line":3,"label":"f"}]}`, "", "errorString", "go says no"},
		{"node ric", `{"errorType":"TypeError","errorMessage":"x is not a function","trace":["TypeError: x","  at y"]}`, "", "TypeError", "x is not a function"},
		{"message not a string", `{"errorMessage":{"code":7},"errorType":"E"}`, "", "E", `{"code":7}`},
		{"empty", ``, "Hdr.Type", "Hdr.Type", "(no message)"},
		{"null", `null`, "", "Error", "(no message)"},
		{"huge", `{"errorMessage":"` + strings.Repeat("m", 10000) + `"}`, "", "Error", strings.Repeat("m", maxErrorText) + "…"},
	} {
		typ, msg := errorBody(answer{isError: true, body: []byte(tc.body), errType: tc.header})
		if typ != tc.typ || msg != tc.msg {
			t.Errorf("%s: %q %q, want %q %q", tc.name, typ, msg, tc.typ, tc.msg)
		}
	}
}

// TestRuntimeAPIStreaming: responses streamed as aws-lambda-ric streams
// them (awslambda.streamifyResponse): chunked, failures in trailers, and
// an HTTP prelude (HttpResponseStream.from) turned into a handler result.
func TestRuntimeAPIStreaming(t *testing.T) {
	const prelude = `{"statusCode":201,"headers":{"x-a":"b"},"cookies":["c=1"]}` + "\x00\x00\x00\x00\x00\x00\x00\x00"
	for _, tc := range []struct {
		name, contentType, mode, body string
		trailer                       map[string]string
		isError                       bool
		want                          string // the answer's body
	}{
		{"plain", "application/octet-stream", "streaming", `{"a":1}`, nil, false, `{"a":1}`},
		{"http prelude", httpStreamType, "streaming", prelude + `{"ok":true}`, nil, false,
			`{"statusCode":201,"headers":{"x-a":"b"},"cookies":["c=1"],"body":"{\"ok\":true}"}`},
		{"http prelude, no status", httpStreamType + "; charset=utf-8", "streaming", "{}\x00\x00\x00\x00\x00\x00\x00\x00hi", nil, false,
			`{"statusCode":200,"body":"hi"}`},
		{"http type, not streamed", httpStreamType, "", prelude + "x", nil, false, prelude + "x"},
		{"http type, no delimiter", httpStreamType, "streaming", `{"a":1}`, nil, false, `{"a":1}`},
		{"http type, bad prelude", httpStreamType, "streaming", "nope\x00\x00\x00\x00\x00\x00\x00\x00x", nil, false, "nope\x00\x00\x00\x00\x00\x00\x00\x00x"},
		{"failed midway", httpStreamType, "streaming", prelude + "partial", map[string]string{
			"Lambda-Runtime-Function-Error-Type": "RangeError",
			"Lambda-Runtime-Function-Error-Body": base64.StdEncoding.EncodeToString([]byte(`{"errorType":"RangeError","errorMessage":"mid-stream"}`)),
		}, true, `{"errorType":"RangeError","errorMessage":"mid-stream"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := apiWorker()
			w.maxOut = 1 << 10
			h := w.api()
			c := &call{id: "req-s", answer: make(chan answer, 1)}
			w.cur = c
			r := httptest.NewRequest("POST", apiPrefix+"/invocation/req-s/response", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.contentType)
			if tc.mode != "" {
				r.Header.Set("Lambda-Runtime-Function-Response-Mode", tc.mode)
			}
			if tc.trailer != nil {
				r.Trailer = http.Header{}
				for k, v := range tc.trailer {
					r.Trailer.Set(k, v)
				}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != 202 {
				t.Fatalf("post: %d %s", rec.Code, rec.Body)
			}
			if a := <-c.answer; a.isError != tc.isError || string(a.body) != tc.want {
				t.Errorf("answer: error %v body %q, want %v %q", a.isError, a.body, tc.isError, tc.want)
			}
		})
	}
}
