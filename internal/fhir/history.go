package fhir

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// HistoryParams are _count, _offset, _since and _at (values trimmed: the
// SDK pads _count with spaces).
type HistoryParams struct {
	Count, Offset int
	Since, At     time.Time
}

// ParseHistoryParams reads the history query parameters.
func ParseHistoryParams(get func(string) string, defCount, maxCount int) (HistoryParams, error) {
	h := HistoryParams{Count: defCount}
	for _, name := range []string{"_count", "_offset"} {
		v := strings.TrimSpace(get(name))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return h, fault.Invalid("%s must be a whole number, not %q", name, v)
		}
		if name == "_count" {
			h.Count = min(n, maxCount)
		} else {
			h.Offset = n
		}
	}
	for _, name := range []string{"_since", "_at"} {
		v := strings.TrimSpace(get(name))
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return h, fault.Invalid("%s must be an instant such as 2024-01-31T12:00:00Z, not %q", name, v)
		}
		if name == "_since" {
			h.Since = t
		} else {
			h.At = t
		}
	}
	return h, nil
}

// History lists versions newest first: of one resource (FHIR:History and
// FHIR:Read on it), of a type or of the whole project (FHIR:History on the
// type(s); conditions are not applied to history lists, so a conditional
// grant does not reach type-level history).
func (s *Service) History(ctx context.Context, p auth.Principal, typ, id string, h HistoryParams) ([]Resource, int, error) {
	if typ != "" {
		if err := checkType(typ); err != nil {
			return nil, 0, err
		}
	}
	switch {
	case id != "":
		if err := s.requireCovered(ctx, p, "FHIR:History", typ, id); err != nil {
			return nil, 0, err
		}
	default:
		target := typ
		if target == "" {
			target = "*"
		}
		a, err := s.decide(ctx, p, "FHIR:History", target, "")
		if err != nil {
			return nil, 0, err
		}
		if a.allowed != nil {
			return nil, 0, fault.Forbidden("access denied: FHIR:History on %s is granted only under conditions, which type-level history cannot apply", resourceName(target, ""))
		}
	}
	rows, total, err := s.store.History(ctx, p.ProjectID, store.HistoryFilter{Type: typ, ID: id, Since: h.Since, At: h.At, Count: h.Count, Offset: h.Offset})
	if err != nil {
		return nil, 0, err
	}
	out := make([]Resource, 0, len(rows))
	for _, r := range rows {
		res := fromStore(r)
		res.Method = r.Method
		out = append(out, res)
	}
	// A Binary version whose securityContext the caller may not read is
	// left out, as from searches (the total still counts it).
	if out, err = s.readableBinaries(ctx, p, out); err != nil {
		return nil, 0, err
	}
	return out, total, nil
}
