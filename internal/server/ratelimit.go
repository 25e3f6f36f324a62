package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
)

// rateLimit counts the request against its principal's limit (the
// project's setting, else the server's default) once the principal is
// known, and sets the RateLimit and RateLimit-Policy headers
// (draft-ietf-httpapi-ratelimit-headers). Over the limit it returns a 429
// fault, whose Retry-After is the window's end. Public routes are not
// counted: the sign-in throttle (iam) guards the credential checks.
func (s *Server) rateLimit(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if s.limiter == nil {
		return nil
	}
	limit := s.cfg.RateLimit
	setting, err := s.authorizerOf(r.Context(), p.ProjectID)
	if err != nil {
		return err
	}
	switch {
	case setting.rateLimit > 0:
		limit = setting.rateLimit
	case setting.rateLimit < 0:
		limit = 0
	}
	if limit <= 0 {
		return nil
	}
	// The project is part of the key: a developer's count in one project
	// is not another's.
	d := s.limiter.Take(p.ProjectID+"/"+string(p.Kind)+"/"+p.ID, limit)
	reset := int((d.Reset + time.Second - 1) / time.Second)
	h := w.Header()
	h.Set("RateLimit-Policy", `"principal";q=`+strconv.Itoa(d.Limit)+`;w=`+strconv.Itoa(int(d.Window/time.Second)))
	h.Set("RateLimit", `"principal";r=`+strconv.Itoa(d.Remaining)+`;t=`+strconv.Itoa(reset))
	if !d.Allowed {
		return fault.TooMany(d.Reset, "rate limit exceeded: %d requests per %s for this principal; retry in %d s", d.Limit, d.Window, reset)
	}
	return nil
}
