package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/conversation"
	"github.com/wardhealth/ward/internal/fault"
)

// conversationRoutes are the SDK's conversation endpoints (Oystehr's
// Messaging service) and Ward's live stream; nil without conversations.
func (s *Server) conversationRoutes() []route {
	if s.conv == nil {
		return nil
	}
	conv := func(r *http.Request) string { return "Messaging:Conversation:" + r.PathValue("conversationId") }
	return []route{
		{method: "POST", path: "/v1/messaging/conversation", action: "Messaging:CreateConversation", resource: fixed("Messaging:Conversation:*"), handle: s.createConversation},
		{method: "GET", path: "/v1/messaging/conversation/token", action: "Messaging:GetConversationToken", resource: fixed("Messaging:Conversation:*"), handle: s.conversationToken},
		{method: "POST", path: "/v1/messaging/conversation/{conversationId}/participant", action: "Messaging:ConversationAddParticipant", resource: conv, handle: s.addParticipant},
		{method: "DELETE", path: "/v1/messaging/conversation/{conversationId}/participant", action: "Messaging:ConversationRemoveParticipant", resource: conv, handle: s.removeParticipant},
		{method: "POST", path: "/v1/messaging/conversation/{conversationId}/message", action: "Messaging:ConversationSendMessage", resource: conv, handle: s.conversationMessage},
		// The conversation token (getToken) is the credential: it names the
		// holder's profile; membership is checked on open and on every
		// change of the members.
		{method: "GET", path: "/v1/messaging/conversation/{conversationId}/stream", public: true, handle: s.conversationStream},
	}
}

func isConversationStream(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/messaging/conversation/") &&
		strings.HasSuffix(r.URL.Path, "/stream")
}

// caller resolves the principal's profile resource (the identity it
// chats as).
func (s *Server) caller(r *http.Request, p auth.Principal) (conversation.Caller, error) {
	ctx := r.Context()
	var profile string
	switch p.Kind {
	case auth.KindUser:
		u, err := s.iam.GetUser(ctx, p.ProjectID, p.ID)
		if err != nil {
			return conversation.Caller{}, err
		}
		profile = u.Profile
	case auth.KindDeveloper:
		d, err := s.iam.GetDeveloper(ctx, p.ProjectID, p.ID)
		if err != nil {
			return conversation.Caller{}, err
		}
		profile = d.Profile
	case auth.KindM2M:
		m, err := s.iam.Me(ctx, p)
		if err != nil {
			return conversation.Caller{}, err
		}
		profile = m.Profile
	}
	return conversation.Caller{P: p, Profile: profile}, nil
}

func (s *Server) createConversation(w http.ResponseWriter, r *http.Request, c call) error {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return err
	}
	enc, err := s.conv.Create(r.Context(), conversation.Caller{P: c.p}, body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]json.RawMessage{"encounter": enc})
	return nil
}

func (s *Server) conversationToken(w http.ResponseWriter, r *http.Request, c call) error {
	cl, err := s.caller(r, c.p)
	if err != nil {
		return err
	}
	tok, exp, err := s.conv.Token(r.Context(), cl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expiresAt": exp.UTC().Format(time.RFC3339)})
	return nil
}

func (s *Server) addParticipant(w http.ResponseWriter, r *http.Request, c call) error {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return err
	}
	if err := s.conv.AddParticipant(r.Context(), conversation.Caller{P: c.p}, r.PathValue("conversationId"), body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) removeParticipant(w http.ResponseWriter, r *http.Request, c call) error {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return err
	}
	if err := s.conv.RemoveParticipant(r.Context(), conversation.Caller{P: c.p}, r.PathValue("conversationId"), body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) conversationMessage(w http.ResponseWriter, r *http.Request, c call) error {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return err
	}
	cl, err := s.caller(r, c.p)
	if err != nil {
		return err
	}
	m, err := s.conv.Message(r.Context(), cl, r.PathValue("conversationId"), body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": m.ID, "sent": m.Sent})
	return nil
}

// conversationStream is the live channel: Server-Sent Events, one
// "message" event per committed message (id: its number in the
// conversation; a reconnect's Last-Event-ID replays what it missed), a
// "removed" event before the stream ends when the holder is removed. The
// token comes in the Authorization header or, for browsers' EventSource
// (which cannot set headers), the token query parameter.
func (s *Server) conversationStream(w http.ResponseWriter, r *http.Request, _ call) error {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		tok = r.URL.Query().Get("token")
	}
	if tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer`)
		return fault.Unauthorized("a conversation token is required")
	}
	after, resume, err := conversation.ParseLastEventID(r.Header.Get("Last-Event-ID"))
	if err != nil {
		return err
	}
	sub, err := s.conv.Open(r.Context(), tok, r.PathValue("conversationId"))
	if err != nil {
		return err
	}
	defer s.conv.Close(sub)
	missed, more, err := s.conv.Start(r.Context(), sub, after, resume)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A first comment tells the client the subscription is live.
	if _, err := fmt.Fprint(w, ": open\n\n"); err != nil {
		return nil
	}
	// What a reconnect missed, then live; a client further behind than one
	// replay reconnects from the last of these.
	for _, ev := range missed {
		if err := writeEvent(w, ev); err != nil {
			return nil
		}
	}
	if resume && (len(missed) == 0 || missed[len(missed)-1].Message.Seq < sub.Position()) {
		// Past messages the holder was not a member for: an id without
		// an event moves the client's Last-Event-ID on (HTML's SSE
		// rules), so its next reconnect does not ask for them again.
		if _, err := fmt.Fprintf(w, "id: %d\n\n", sub.Position()); err != nil {
			return nil
		}
	}
	_ = rc.Flush()
	if more {
		return nil
	}
	// send writes a live event in the stream's order (with any it missed).
	send := func(ev conversation.Event) error {
		evs, err := s.conv.Order(r.Context(), sub, ev)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := writeEvent(w, ev); err != nil {
				return err
			}
		}
		return nil
	}
	keepalive := time.NewTicker(25 * time.Second)
	defer keepalive.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return nil
		case <-sub.Done():
			// Drain what was queued (a "removed" notice) before ending.
			for {
				select {
				case ev := <-sub.Events():
					_ = send(ev)
				default:
					_ = rc.Flush()
					return nil
				}
			}
		case ev := <-sub.Events():
			err = send(ev)
		case <-keepalive.C:
			_, err = fmt.Fprint(w, ": keepalive\n\n")
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return nil // the client is gone
		}
	}
}

func writeEvent(w http.ResponseWriter, ev conversation.Event) error {
	b, err := json.Marshal(ev.Message)
	if err != nil {
		return err
	}
	if ev.Kind == "message" {
		// The id is the message's number: a reconnect's Last-Event-ID.
		_, err = fmt.Fprintf(w, "id: %d\nevent: message\ndata: %s\n\n", ev.Message.Seq, b)
	} else {
		_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Kind, b)
	}
	return err
}
