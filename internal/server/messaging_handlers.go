package server

import (
	"context"
	"net/http"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/provider"
)

// MessagingConfig reports one service of messaging.getMessagingConfig,
// under its key in the answer (transactionalSMSConfig, conversationConfig).
type MessagingConfig struct {
	Key  string
	Info func(ctx context.Context, projectID string) (provider.Info, error)
}

func (s *Server) messagingRoutes() []route {
	if s.sms == nil {
		return nil
	}
	return []route{
		{method: "POST", path: "/v1/messaging/transactional-sms/send", action: "Messaging:SendTransactionalSMS",
			resource: fixed("Messaging:TransactionalSMS"), handle: s.sendSMS},
		// Twilio's signature (X-Twilio-Signature, with the project's auth
		// token) is the credential.
		{method: "POST", path: "/v1/messaging/transactional-sms/status/{project}/{id}", public: true, handle: s.smsStatus},
		{method: "GET", path: "/v1/messaging/config", action: "Messaging:GetConfiguration",
			resource: fixed("Messaging:Messaging"), handle: s.messagingConfig},
	}
}

func (s *Server) sendSMS(w http.ResponseWriter, r *http.Request, c call) error {
	var in struct {
		Resource string `json:"resource"`
		Message  string `json:"message"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	id, err := s.sms.Send(r.Context(), c.p, in.Resource, in.Message)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"resourceId": id})
	return nil
}

func (s *Server) smsStatus(w http.ResponseWriter, r *http.Request, _ call) error {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return err
	}
	if err := s.sms.Callback(r.Context(), r.PathValue("project"), r.PathValue("id"), r.Header.Get("X-Twilio-Signature"), body); err != nil {
		return err
	}
	// Twilio wants a 2xx; an empty TwiML answer says nothing more.
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("<Response/>"))
	return nil
}

func (s *Server) messagingConfig(w http.ResponseWriter, r *http.Request, c call) error {
	out := map[string]provider.Info{}
	for _, m := range s.messaging {
		info, err := m.Info(r.Context(), c.p.ProjectID)
		if err != nil {
			return err
		}
		out[m.Key] = info
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
