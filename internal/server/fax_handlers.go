package server

import (
	"net/http"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/provider/fax"
)

// faxRoutes are the SDK's fax.* (faxApiUrl = <public>/fax/v1). Ward's own
// Fax:* actions (the seed has none; catalog/extensions.txt).
func (s *Server) faxRoutes() []route {
	if s.fax == nil {
		return nil
	}
	const b = "/fax/v1"
	return []route{
		{method: "POST", path: b + "/onboard", action: "Fax:Onboard", resource: fixed("Fax:Number"), handle: s.faxOnboard},
		{method: "POST", path: b + "/offboard", action: "Fax:Offboard", resource: fixed("Fax:Number"), handle: s.faxOffboard},
		{method: "GET", path: b + "/config", action: "Fax:GetConfiguration", resource: fixed("Fax:Configuration"), handle: s.faxConfig},
		{method: "POST", path: b + "/send", action: "Fax:Send", resource: fixed("Fax:Fax"), handle: s.faxSend},
		// Phaxio's signature (X-Phaxio-Signature, with the project's
		// callback token) is the credential.
		{method: "POST", path: b + "/phaxio/callback/{project}/{id}", public: true, handle: s.phaxioCallback},
	}
}

func (s *Server) faxOnboard(w http.ResponseWriter, r *http.Request, c call) error {
	n, err := s.fax.Onboard(r.Context(), c.p.ProjectID)
	return answer(w, map[string]string{"faxNumber": n}, err)
}

func (s *Server) faxOffboard(w http.ResponseWriter, r *http.Request, c call) error {
	return done(w, s.fax.Offboard(r.Context(), c.p.ProjectID))
}

func (s *Server) faxConfig(w http.ResponseWriter, r *http.Request, c call) error {
	out, err := s.fax.Configuration(r.Context(), c.p.ProjectID)
	return answer(w, out, err)
}

func (s *Server) faxSend(w http.ResponseWriter, r *http.Request, c call) error {
	var in fax.SendInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	comm, err := s.fax.Send(r.Context(), c.p, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"communicationResource": comm})
	return nil
}

func (s *Server) phaxioCallback(w http.ResponseWriter, r *http.Request, _ call) error {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return err
	}
	if err := s.fax.PhaxioCallback(r.Context(), r.PathValue("project"), r.PathValue("id"), r.Header.Get("Content-Type"),
		r.Header.Get("X-Phaxio-Signature"), body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
