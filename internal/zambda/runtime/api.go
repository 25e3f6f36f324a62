package runtime

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// call is one invocation handed to a worker.
type call struct {
	id       string
	payload  []byte
	deadline time.Time
	timeout  time.Duration // the function's, for messages
	answer   chan answer   // buffered 1; the one POST that answers sends here
	answered bool          // guarded by worker.mu
}

// answer is what a worker posted for an invocation (or for its init).
type answer struct {
	isError bool   // /error, /init/error, or a streamed response that failed
	body    []byte // the response, or the error JSON
	tooBig  bool
	errType string // the Lambda-Runtime-Function-Error-Type header
}

const apiPrefix = "/2018-06-01/runtime"

// api is the AWS Lambda Runtime API that one worker talks to. Everything
// the worker sends is untrusted: bodies are capped, request ids must be the
// invocation in flight, and each invocation takes one answer.
func (w *worker) api() http.Handler {
	var readyOnce sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"/invocation/next", func(rw http.ResponseWriter, r *http.Request) {
		readyOnce.Do(func() {
			w.readyAt = time.Now()
			close(w.ready)
		})
		select {
		case c := <-w.jobs:
			h := rw.Header()
			h["Lambda-Runtime-Aws-Request-Id"] = []string{c.id}
			h["Lambda-Runtime-Deadline-Ms"] = []string{strconv.FormatInt(c.deadline.UnixMilli(), 10)}
			h["Lambda-Runtime-Invoked-Function-Arn"] = []string{w.arn}
			h["Lambda-Runtime-Trace-Id"] = []string{traceID()}
			h["Content-Type"] = []string{"application/json"}
			h["Content-Length"] = []string{strconv.Itoa(len(c.payload))}
			_, _ = rw.Write(c.payload)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/response", func(rw http.ResponseWriter, r *http.Request) {
		w.post(rw, r, false)
	})
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/error", func(rw http.ResponseWriter, r *http.Request) {
		w.post(rw, r, true)
	})
	mux.HandleFunc("POST "+apiPrefix+"/init/error", func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxErrorText*4))
		if err != nil {
			apiError(rw, http.StatusBadRequest, "InvalidBody", "could not read the body")
			return
		}
		select {
		case w.initErr <- answer{isError: true, body: body, errType: r.Header.Get("Lambda-Runtime-Function-Error-Type")}:
		default: // one is enough
		}
		rw.WriteHeader(http.StatusAccepted)
	})
	return mux
}

// inFlight is the unanswered invocation with this id, or nil.
func (w *worker) inFlight(id string) *call {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := w.cur; c != nil && c.id == id && !c.answered {
		return c
	}
	return nil
}

// post takes a response or an error for the invocation in flight.
func (w *worker) post(rw http.ResponseWriter, r *http.Request, isError bool) {
	c := w.inFlight(r.PathValue("id"))
	if c == nil {
		apiError(rw, http.StatusBadRequest, "InvalidRequestID", "no invocation with this request id is waiting for an answer")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(w.maxOut)+1))
	if err != nil {
		apiError(rw, http.StatusBadRequest, "InvalidBody", "could not read the body")
		return
	}
	a := answer{isError: isError, body: body, tooBig: len(body) > w.maxOut, errType: r.Header.Get("Lambda-Runtime-Function-Error-Type")}
	if !isError && !a.tooBig && r.Header.Get("Lambda-Runtime-Function-Response-Mode") == "streaming" {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == httpStreamType {
			a.body = fromHTTPStream(a.body)
		}
	}
	// A streamed response that failed midway says so in its trailers.
	if t := r.Trailer.Get("Lambda-Runtime-Function-Error-Type"); t != "" && !a.tooBig {
		a = answer{isError: true, errType: t}
		a.body, _ = base64.StdEncoding.DecodeString(r.Trailer.Get("Lambda-Runtime-Function-Error-Body"))
	}
	w.mu.Lock()
	if w.cur != c || c.answered {
		w.mu.Unlock()
		apiError(rw, http.StatusBadRequest, "InvalidRequestID", "this invocation was already answered")
		return
	}
	c.answered = true
	w.mu.Unlock()
	c.answer <- a
	if a.tooBig {
		apiError(rw, http.StatusRequestEntityTooLarge, "Function.ResponseSizeTooLarge", "the response is larger than "+fmtBytes(w.maxOut))
		return
	}
	rw.WriteHeader(http.StatusAccepted)
}

// httpStreamType is the content type of a streamed response that begins
// with an HTTP prelude (awslambda.HttpResponseStream.from in Node's
// runtime clients): JSON {statusCode, headers, cookies}, 8 NUL bytes, then
// the body.
const httpStreamType = "application/vnd.awslambda.http-integration-response"

// fromHTTPStream turns such a response into the {statusCode, headers,
// body} that a buffered handler returns, as Lambda's function URLs do, so
// the execute answer has the status and headers the function chose (a
// body is text there: bytes that are not UTF-8 become U+FFFD). Anything
// else is kept as it came.
func fromHTTPStream(b []byte) []byte {
	prelude, body, ok := bytes.Cut(b, make([]byte, 8))
	if !ok {
		return b
	}
	var p struct {
		StatusCode *int              `json:"statusCode"`
		Headers    map[string]string `json:"headers,omitempty"`
		Cookies    []string          `json:"cookies,omitempty"`
		Body       string            `json:"body"`
	}
	if json.Unmarshal(prelude, &p) != nil {
		return b
	}
	if p.StatusCode == nil {
		status := http.StatusOK
		p.StatusCode = &status
	}
	p.Body = string(body)
	out, err := json.Marshal(p)
	if err != nil {
		return b
	}
	return out
}

func apiError(rw http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(map[string]string{"errorType": typ, "errorMessage": msg})
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_, _ = rw.Write(b)
}

// errorBody reads a worker's error JSON leniently: aws-lambda-go sends
// stackTrace as [{path,line,label}], Node runtimes send strings (as
// stackTrace or trace), and a broken worker may send anything.
func errorBody(a answer) (typ, msg string) {
	var e struct {
		ErrorMessage any    `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if json.Unmarshal(a.body, &e) == nil {
		switch m := e.ErrorMessage.(type) {
		case string:
			msg = m
		case nil:
		default:
			b, _ := json.Marshal(m)
			msg = string(b)
		}
		typ = e.ErrorType
	} else if len(a.body) > 0 {
		msg = string(a.body)
	}
	if typ == "" {
		typ = a.errType
	}
	if typ == "" {
		typ = "Error"
	}
	if msg == "" {
		msg = "(no message)"
	}
	return clip(typ, 256), clip(msg, maxErrorText)
}

// traceID makes an X-Ray style trace id (aws-lambda-go copies it into
// _X_AMZN_TRACE_ID).
func traceID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "Root=1-" + strconv.FormatInt(time.Now().Unix(), 16) + "-" + hex.EncodeToString(b[:]) + ";Sampled=0"
}
