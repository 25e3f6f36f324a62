package server

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/telemed"
)

// telemedRoutes are the SDK's telemed.createMeeting and joinMeeting, and
// the video provider's webhook (its signature is the credential).
func (s *Server) telemedRoutes() []route {
	if s.telemed == nil {
		return nil
	}
	return []route{
		{method: "POST", path: "/v1/telemed/v2/meeting", action: "Telemed:CreateMeeting", resource: fixed("Telemed:Meeting:*"), handle: s.createMeeting},
		{method: "GET", path: "/v1/telemed/v2/meeting/{id}/join", authz: joinAuthz, handle: s.joinMeeting},
		{method: "POST", path: "/v1/telemed/livekit/webhook", public: true, handle: s.telemedWebhook},
	}
}

// joinAuthz: a guest token (anonymous=true) needs AddAnonymousToMeeting,
// joining as oneself JoinMeeting, both on the Encounter's meeting.
func joinAuthz(r *http.Request) (string, string, error) {
	anon, err := anonymousParam(r)
	if err != nil {
		return "", "", err
	}
	res := "Telemed:Meeting:" + r.PathValue("id")
	if anon {
		return "Telemed:AddAnonymousToMeeting", res, nil
	}
	return "Telemed:JoinMeeting", res, nil
}

func anonymousParam(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("anonymous")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fault.Invalid("anonymous must be true or false, not %q", v)
	}
	return b, nil
}

func (s *Server) createMeeting(w http.ResponseWriter, r *http.Request, c call) error {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return err
	}
	enc, err := s.telemed.CreateMeeting(r.Context(), c.p, body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"encounter": enc})
	return nil
}

func (s *Server) joinMeeting(w http.ResponseWriter, r *http.Request, c call) error {
	anon, err := anonymousParam(r)
	if err != nil {
		return err
	}
	j, err := s.telemed.JoinMeeting(r.Context(), c.p, r.PathValue("id"), anon)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) telemedWebhook(w http.ResponseWriter, r *http.Request, _ call) error {
	ev, err := s.telemed.VerifyWebhook(r)
	if errors.Is(err, telemed.ErrBadSignature) {
		return fault.Wrap(fault.ErrUnauthorized, err, "the webhook is not signed by the video provider")
	}
	if err != nil {
		return err
	}
	if err := s.telemed.HandleEvent(r.Context(), ev); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
