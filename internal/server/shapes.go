package server

import (
	"context"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
)

// handler is what a route calls once its gate has let the request in.
type handler = func(w http.ResponseWriter, r *http.Request, c call) error

// Most Project API endpoints are one service call in one of a few shapes:
// these make their handlers from the service method, so that the body's
// decoding, the project, the path's {id} and the answer are written once.

// ofProject answers fn(project) with 200.
func ofProject[Out any](fn func(ctx context.Context, project string) (Out, error)) handler {
	return func(w http.ResponseWriter, r *http.Request, c call) error {
		return reply(w, http.StatusOK)(fn(r.Context(), c.p.ProjectID))
	}
}

// withBody answers fn(project, body) with 200.
func withBody[In, Out any](fn func(ctx context.Context, project string, in In) (Out, error)) handler {
	return func(w http.ResponseWriter, r *http.Request, c call) error {
		var in In
		if err := decodeJSON(r, &in); err != nil {
			return err
		}
		return reply(w, http.StatusOK)(fn(r.Context(), c.p.ProjectID, in))
	}
}

// byID answers fn(project, {id}) with 200.
func byID[Out any](fn func(ctx context.Context, project, id string) (Out, error)) handler {
	return func(w http.ResponseWriter, r *http.Request, c call) error {
		return reply(w, http.StatusOK)(fn(r.Context(), c.p.ProjectID, r.PathValue("id")))
	}
}

// byIDWithBody answers fn(project, {id}, body) with 200.
func byIDWithBody[In, Out any](fn func(ctx context.Context, project, id string, in In) (Out, error)) handler {
	return func(w http.ResponseWriter, r *http.Request, c call) error {
		var in In
		if err := decodeJSON(r, &in); err != nil {
			return err
		}
		return reply(w, http.StatusOK)(fn(r.Context(), c.p.ProjectID, r.PathValue("id"), in))
	}
}

// deleteByID answers fn(project, {id}) with 204.
func deleteByID(fn func(ctx context.Context, project, id string) error) handler {
	return func(w http.ResponseWriter, r *http.Request, c call) error {
		if err := fn(r.Context(), c.p.ProjectID, r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// rotateByID answers fn(project, {id}), a new secret shown once, as {"secret"}.
func rotateByID(fn func(ctx context.Context, project, id string) (string, error)) handler {
	return func(w http.ResponseWriter, r *http.Request, c call) error {
		secret, err := fn(r.Context(), c.p.ProjectID, r.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]string{"secret": secret})
		return nil
	}
}

// reply sends a service call's result: v with status, or its error for
// the gate to map.
func reply(w http.ResponseWriter, status int) func(v any, err error) error {
	return func(v any, err error) error {
		if err != nil {
			return err
		}
		writeJSON(w, status, v)
		return nil
	}
}

// listV2 is what the SDK's listV2 methods send: sort, sortOrder, limit
// (1-100, default 20) and the cursor of the previous page.
type listV2 struct {
	sort       string
	descending bool
	limit      int
	cursor     string // decoded: the key the previous page ended at
}

// parseListV2 reads and checks the listV2 parameters; sorts is the list of
// sort keys the endpoint allows, for the error message.
func parseListV2(r *http.Request, sorts ...string) (listV2, error) {
	l := listV2{sort: query(r, "sort"), limit: 20}
	if l.sort != "" && !slices.Contains(sorts, l.sort) {
		return l, fault.Invalid("sort must be one of %s", strings.Join(sorts, ", "))
	}
	switch strings.ToLower(query(r, "sortOrder")) {
	case "", "asc":
	case "desc":
		l.descending = true
	default:
		return l, fault.Invalid("sortOrder must be asc or desc")
	}
	if v := query(r, "limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return l, fault.Invalid("limit must be a whole number from 1 to 100")
		}
		l.limit = n
	}
	if v := query(r, "cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			return l, fault.Invalid("cursor is not one this server issued")
		}
		l.cursor = string(b)
	}
	return l, nil
}
