package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/wardhealth/ward/internal/admit"
	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// fhirGate authenticates FHIR requests (the capability statement is
// public) and hands them to the FHIR handler, which checks each
// interaction's action itself (a batch holds many). Errors are
// OperationOutcomes; writes and denials are audited.
func (s *Server) fhirGate(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.TrimSuffix(r.URL.Path, "/") == s.fhir.Path()+"/metadata" {
		s.fhir.ServeFHIR(w, r, auth.Principal{})
		return
	}
	p, err := s.authenticate(r)
	if err != nil && errors.Is(err, fault.ErrUnauthorized) {
		// A token Ward did not issue may be the project's to validate.
		if tok, ok := bearer(r); ok {
			if fp, handled, ferr := s.foreignPrincipal(r, tok); handled {
				p, err = fp, ferr
			}
		}
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		s.fhir.Fail(w, r, err)
		return
	}
	corsProject(w, r, p.ProjectID)
	countFor(w, p.ProjectID)
	if err := s.rateLimit(w, r, p); err != nil {
		s.fhir.Fail(w, r, err)
		return
	}
	action := "FHIR:" + r.Method
	writes := r.Method != http.MethodGet && !strings.HasSuffix(r.URL.Path, "/_search")
	var pending *store.PendingAudit
	if writes {
		// The write's own transaction records it (one commit, not two).
		pending = &store.PendingAudit{Event: s.auditEvent(r, p, action, r.URL.Path, "allowed", "")}
		r = r.WithContext(store.WithAudit(r.Context(), pending))
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		// Reads take turns (admit); the slot goes back at the answer's
		// first byte, so a slow client never holds one. Writes wait on
		// their commit's fsync, not on the CPU, and POST _search reads
		// a body from the network: neither takes a slot.
		pass := s.reads.Enter(r.Context())
		defer pass.Leave() // a panic must not keep the slot
		s.fhir.ServeFHIR(&leavingWriter{ResponseWriter: w, pass: &pass}, r, p)
		pass.Leave()
	} else {
		s.fhir.ServeFHIR(w, r, p)
	}
	sw, _ := w.(*statusWriter)
	if sw == nil {
		return
	}
	switch {
	case sw.status == http.StatusForbidden:
		s.audit(r, p, action, r.URL.Path, "denied", "")
	case writes && sw.status < 400 && !pending.Written():
		// No transaction ran (a conditional create that found its match,
		// an operation): audit on its own.
		s.audit(r, p, action, r.URL.Path, "allowed", "")
	}
}

// leavingWriter gives an admission slot back before the answer's first
// byte: the answer is computed by then, and writing it may wait on the
// client's socket.
type leavingWriter struct {
	http.ResponseWriter
	pass *admit.Pass
}

func (w *leavingWriter) WriteHeader(code int) {
	w.pass.Leave()
	w.ResponseWriter.WriteHeader(code)
}

func (w *leavingWriter) Write(b []byte) (int, error) {
	w.pass.Leave()
	return w.ResponseWriter.Write(b)
}

func (w *leavingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
