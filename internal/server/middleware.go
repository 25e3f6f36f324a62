package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/reqid"
	"github.com/wardhealth/ward/internal/z3"
)

// requestID returns the id outer gave the request.
func requestID(ctx context.Context) string { return reqid.From(ctx) }

// statusWriter remembers the status for logs and audit, and the project
// of an authenticated request (the dashboard's counts).
type statusWriter struct {
	http.ResponseWriter
	status  int
	project string
}

// countFor names the project a request is counted for, once its caller
// is known. A request Ward answers without knowing the project (401, a
// public route, the console's in-process calls) is not counted.
func countFor(w http.ResponseWriter, projectID string) {
	if sw, ok := w.(*statusWriter); ok {
		sw.project = projectID
	}
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// outer wraps every request: id, deadline, body limit, CORS, panic
// recovery and one log line.
func (s *Server) outer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("x-oystehr-request-id")
		if id == "" || len(id) > 100 {
			id = uuid.NewString()
		}
		w.Header().Set("x-oystehr-request-id", id)
		timeout, transfer := s.cfg.RequestTimeout, strings.HasPrefix(r.URL.Path, z3.SignedPrefix)
		unbounded := transfer
		if s.fhir != nil && !transfer {
			if rest, ok := strings.CutPrefix(r.URL.Path, s.fhir.Path()+"/"); ok {
				// A Binary's content (100 MiB, say) streams through to
				// Z3, whose object limit bounds it.
				transfer, unbounded = fhir.BinaryTransfer(r.Method, rest, r.Header.Get("Content-Type"))
			}
		}
		if transfer || isConversationStream(r) {
			// A live conversation stream lasts until its token expires.
			timeout = s.cfg.TransferTimeout
		}
		ctx, cancel := context.WithTimeout(reqid.With(r.Context(), id), timeout)
		defer cancel()
		r = r.WithContext(ctx)
		if !unbounded {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		// Every answer defaults to no-store: patient data must not stay in a
		// browser's (or a proxy's) cache for the next user of the machine,
		// nor outlive a revoked token. Public documents (discovery, JWKS)
		// set their own.
		w.Header().Set("Cache-Control", "no-store")
		sw := &statusWriter{ResponseWriter: w}
		r, corsOK := s.cors(w, r)
		defer func() {
			if v := recover(); v != nil {
				s.log.ErrorContext(ctx, "panic", "panic", v, "path", logPath(r.URL.Path))
				if sw.status == 0 {
					s.writeError(sw, r, fmt.Errorf("panic: %v", v))
				}
			}
			took := time.Since(start)
			s.access.LogAttrs(ctx, slog.LevelInfo, "request", slog.String("method", r.Method), slog.String("path", logPath(r.URL.Path)),
				slog.Int("status", sw.status), slog.Duration("took", took))
			if s.activity != nil && sw.project != "" {
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				s.activity.Request(sw.project, status, took)
			}
		}()
		if !corsOK {
			// A preflight from an origin no application lists: no CORS
			// headers, so the browser stops there.
			sw.WriteHeader(http.StatusForbidden)
			return
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			sw.WriteHeader(http.StatusNoContent)
			return
		}
		// The mux would clean "a//b" or "a/../b" and redirect; an object
		// path like that is refused instead, with the reason.
		if err := uncleanZ3Path(r.URL); err != nil {
			s.writeError(sw, r, err)
			return
		}
		next.ServeHTTP(sw, r)
	})
}

// uncleanZ3Path checks the bucket name and object path of a /v1/z3 or
// presigned request before the mux sees them: it would clean "..", "." and
// "a//b" and route the result elsewhere (".." to another endpoint, "." to
// the next segment as bucket); such a request is refused instead, with the
// reason. The bucket is read from the escaped path, so an encoded "/"
// ("a%2Fb") is part of the name, as the mux's pattern sees it.
func uncleanZ3Path(u *url.URL) error {
	p := u.EscapedPath()
	var rest string
	check := z3.ValidBucket
	switch {
	case strings.HasPrefix(p, "/v1/z3/"):
		rest = p[len("/v1/z3/"):]
	case strings.HasPrefix(p, z3.SignedPrefix):
		check = z3.ValidSignedBucket // Ward presigns code uploads to "_zambda-code"
		project, after, _ := strings.Cut(p[len(z3.SignedPrefix):], "/")
		if id, err := url.PathUnescape(project); err != nil || id == "" || id == "." || id == ".." {
			return fault.Invalid("a presigned URL starts %s<project id>/<bucket>/", z3.SignedPrefix)
		}
		rest = after
	default:
		return nil
	}
	rawBucket, rawPath, hasPath := strings.Cut(rest, "/")
	if rawBucket == "" && !hasPath {
		return nil // "/v1/z3/": no bucket named, no route either
	}
	bucket, err := url.PathUnescape(rawBucket)
	if err != nil {
		return fault.Invalid("the bucket name in the URL is not valid percent-encoding")
	}
	if err := check(bucket); err != nil {
		return err
	}
	if !hasPath {
		return nil
	}
	objectPath, err := url.PathUnescape(rawPath)
	if err != nil {
		return fault.Invalid("the object path in the URL is not valid percent-encoding")
	}
	_, _, err = z3.CleanPath(objectPath)
	return err
}
