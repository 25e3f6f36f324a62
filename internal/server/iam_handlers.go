package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store"
)

func (s *Server) updateProject(w http.ResponseWriter, r *http.Request, c call) error {
	var in iam.ProjectUpdate
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	var zid string
	if json.Unmarshal(in.AuthorizerZambdaID, &zid) == nil && zid != "" {
		// Store the function's id, whichever of id or name was given.
		if s.zambda == nil {
			return fault.Invalid("authorizerZambdaId: zambdas are not enabled on this server")
		}
		f, err := s.zambda.Get(r.Context(), c.p.ProjectID, zid)
		if err != nil {
			return fault.Invalid("authorizerZambdaId: %v", err)
		}
		in.AuthorizerZambdaID, _ = json.Marshal(f.ID)
	}
	p, err := s.iam.UpdateProject(r.Context(), c.p.ProjectID, in)
	if err != nil {
		return err
	}
	s.authorizers.forget(c.p.ProjectID)
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) version(w http.ResponseWriter, r *http.Request, _ call) error {
	writeJSON(w, http.StatusOK, map[string]string{"api": "project", "version": s.cfg.Version, "environment": "production"})
	return nil
}

// readyTimeout bounds /readyz's check: a database that takes longer is
// not ready to serve, and a probe must not pile up behind it.
const readyTimeout = 2 * time.Second

// readiness is /readyz: 200 when requests can be served (the database
// answers, is migrated, its writer commits), else 503 with Retry-After so
// that a load balancer or Kubernetes sends traffic elsewhere. /healthz
// stays liveness: the process answers (restarting it would not bring the
// database back). From the start of a shutdown it is 503 at once, while
// requests are still served, so that load balancers drain the replica.
func (s *Server) readiness(w http.ResponseWriter, r *http.Request, _ call) error {
	if s.draining() {
		return fault.Unavailable("not ready: shutting down")
	}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			// The fault's message is all writeError logs: the cause here.
			s.log.WarnContext(r.Context(), "not ready", "err", err)
			if errors.Is(err, store.ErrDiskFull) {
				// Still 503, what probes act on; the message names the cause.
				return fault.Wrap(fault.ErrUnavailable, err, "not ready: disk full: writes fail until space is freed on the server")
			}
			return fault.Wrap(fault.ErrUnavailable, err, "not ready: the database is unavailable or not migrated")
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) health(w http.ResponseWriter, r *http.Request, _ call) error {
	out := map[string]string{"status": "ok"}
	switch m := s.cfg.ZambdaSandbox; m {
	case "":
	case "bwrap":
		out["zambdaSandbox"] = m
	case "off":
		out["zambdaSandbox"] = m
		out["warning"] = "zambdas run without a sandbox (--zambda-sandbox=off): trusted code only"
	default:
		out["zambdaSandbox"] = m
		out["warning"] = "zambdas are refused: the sandbox cannot run on this host (see the start-up log)"
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
