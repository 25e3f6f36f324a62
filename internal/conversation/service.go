// Package conversation is Ward's chat: a conversation is an Encounter
// (created by conversation.create, with Oystehr's virtual service
// extension), each message a Communication that is part of it, and live
// delivery goes through a Provider (Ward's own: an event stream).
package conversation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/store"
)

// Limits of the SDK's contract: a message is at most 1600 characters;
// attributes are bounded by Ward (Twilio's are 16 KB).
const (
	MaxMessageChars     = 1600
	MaxAttributesBytes  = 4096
	attributesExtension = "https://extensions.fhir.ward.health/conversation-message-attributes"
)

// Service runs conversations.
type Service struct {
	fhir *fhir.Service
	prov Provider
	// local is the stream side of Ward's provider; nil when another
	// provider delivers.
	local *Local
	now   func() time.Time
	batch batcher
}

// New returns a Service delivering through prov.
func New(f *fhir.Service, prov Provider, now func() time.Time) *Service {
	local, _ := prov.(*Local)
	return &Service{fhir: f, prov: prov, local: local, now: now}
}

// Caller is the principal and its FHIR profile ("Practitioner/1").
type Caller struct {
	P       auth.Principal
	Profile string
}

// Create stores the Encounter of body {"encounter": {...}} as the caller
// (FHIR:Create), then records the conversation on it (FHIR:Update), as
// Oystehr does; its id is the conversation id. It returns the Encounter.
func (s *Service) Create(ctx context.Context, c Caller, body []byte) (json.RawMessage, error) {
	var in struct {
		Encounter json.RawMessage `json:"encounter"`
	}
	if err := strictDecode(body, &in); err != nil {
		return nil, err
	}
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if len(in.Encounter) == 0 || json.Unmarshal(in.Encounter, &head) != nil || head.ResourceType != "Encounter" {
		return nil, fault.Invalid("encounter must be a FHIR Encounter resource")
	}
	created, _, err := s.fhir.Create(ctx, c.P, "Encounter", in.Encounter, "")
	if err != nil {
		return nil, err
	}
	enc, err := decodeObject(created.Content)
	if err != nil {
		return nil, err
	}
	addr, err := s.prov.Open(ctx, c.P.ProjectID, created.ID)
	if err != nil {
		return nil, fmt.Errorf("open conversation: %w", err)
	}
	addExtension(enc, s.prov.Kind(), addr)
	out, err := s.updateEncounter(ctx, c.P, created, enc)
	if err != nil {
		return nil, err
	}
	return out.Content, nil
}

func (s *Service) updateEncounter(ctx context.Context, p auth.Principal, cur fhir.Resource, enc map[string]any) (fhir.Resource, error) {
	b, err := json.Marshal(enc)
	if err != nil {
		return fhir.Resource{}, err
	}
	// If-Match: a concurrent change of the members fails instead of
	// being overwritten.
	r, _, err := s.fhir.Update(ctx, p, "Encounter", cur.ID, b, `W/"`+strconv.FormatInt(cur.VersionID, 10)+`"`)
	return r, err
}

// ParticipantChange is the body of addParticipant / removeParticipant.
type ParticipantChange struct {
	EncounterReference   string        `json:"encounterReference"`
	Participants         []Participant `json:"participants"`
	ParticipantReference string        `json:"participantReference"`
}

// Participant is one added participant.
type Participant struct {
	ParticipantReference string `json:"participantReference"`
	Channel              string `json:"channel"`
	PhoneNumber          string `json:"phoneNumber,omitempty"`
}

// conversation reads the Encounter of conv (as p, or as Ward when p is
// zero) and checks it is that conversation. Errors: NotFound.
func (s *Service) conversation(ctx context.Context, p *auth.Principal, projectID, conv string) (fhir.Resource, map[string]any, error) {
	var r fhir.Resource
	var err error
	if p != nil {
		r, err = s.fhir.Read(ctx, *p, "Encounter", conv)
	} else {
		var sr store.Resource
		sr, err = s.fhir.Store().GetResource(ctx, projectID, "Encounter", conv)
		r = fhir.Resource{ID: sr.ID, VersionID: sr.VersionID, Content: sr.Content, Deleted: sr.Deleted}
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && r.Deleted) {
		return fhir.Resource{}, nil, fault.NotFound("no conversation %q", conv)
	}
	if err != nil {
		return fhir.Resource{}, nil, err
	}
	enc, err := decodeObject(r.Content)
	if err != nil {
		return fhir.Resource{}, nil, err
	}
	if conversationID(enc) != conv {
		return fhir.Resource{}, nil, fault.NotFound("no conversation %q", conv)
	}
	return r, enc, nil
}

func checkEncounterRef(ref, conv string) error {
	id, ok := encounterID(ref)
	if !ok {
		return fault.Invalid("encounterReference must be Encounter/<id>")
	}
	if id != conv {
		return fault.Invalid("encounterReference %s is not conversation %s", ref, conv)
	}
	return nil
}

// AddParticipant adds chat members; each must be a participant of the
// Encounter. The caller reads and updates the Encounter (FHIR:Read,
// FHIR:Update).
func (s *Service) AddParticipant(ctx context.Context, c Caller, conv string, body []byte) error {
	var in ParticipantChange
	if err := strictDecode(body, &in); err != nil {
		return err
	}
	if err := checkEncounterRef(in.EncounterReference, conv); err != nil {
		return err
	}
	if len(in.Participants) == 0 || len(in.Participants) > 50 {
		return fault.Invalid("participants must list 1 to 50 participants")
	}
	cur, enc, err := s.conversation(ctx, &c.P, c.P.ProjectID, conv)
	if err != nil {
		return err
	}
	list, inEncounter := members(enc), participants(enc)
	for _, p := range in.Participants {
		if err := checkProfileRef(p.ParticipantReference); err != nil {
			return fault.Invalid("%s", err.Error())
		}
		switch p.Channel {
		case "chat":
		case "sms":
			return fault.NotSupported("the sms channel needs an SMS provider, which this conversation provider (%s) does not have", s.prov.Kind())
		default:
			return fault.Invalid("channel must be chat or sms")
		}
		if !slices.Contains(inEncounter, p.ParticipantReference) {
			return fault.Invalid("%s is not in Encounter.participant", p.ParticipantReference)
		}
		if !slices.Contains(list, p.ParticipantReference) {
			list = append(list, p.ParticipantReference)
		}
	}
	setMembers(enc, list)
	if _, err := s.updateEncounter(ctx, c.P, cur, enc); err != nil {
		return err
	}
	return s.prov.Members(ctx, c.P.ProjectID, conv, list)
}

// RemoveParticipant removes a chat member: its streams close at once. The
// caller must be able to read the participant's resource (FHIR:Read).
func (s *Service) RemoveParticipant(ctx context.Context, c Caller, conv string, body []byte) error {
	var in ParticipantChange
	if err := strictDecode(body, &in); err != nil {
		return err
	}
	if err := checkEncounterRef(in.EncounterReference, conv); err != nil {
		return err
	}
	ref := in.ParticipantReference
	if err := checkProfileRef(ref); err != nil {
		return fault.Invalid("%s", err.Error())
	}
	typ, id, _ := cutRef(ref)
	if _, err := s.fhir.Read(ctx, c.P, typ, id); err != nil {
		return err
	}
	cur, enc, err := s.conversation(ctx, nil, c.P.ProjectID, conv)
	if err != nil {
		return err
	}
	if !slices.Contains(members(enc), ref) {
		return fault.NotFound("%s is not in conversation %s", ref, conv)
	}
	// The members as this write leaves them (SystemUpdate re-reads the
	// Encounter), so a concurrent add is not undone in the live state.
	var list []string
	if _, err := s.fhir.SystemUpdate(ctx, c.P.ProjectID, "Encounter", cur.ID, func(m map[string]any) error {
		if conversationID(m) != conv {
			return fault.Conflict("conversation %s changed meanwhile", conv)
		}
		list = slices.DeleteFunc(members(m), func(r string) bool { return r == ref })
		setMembers(m, list)
		return nil
	}); err != nil {
		return err
	}
	return s.prov.Members(ctx, c.P.ProjectID, conv, list)
}

// MessageBody is the body of conversation.message.
type MessageBody struct {
	Message    string          `json:"message"`
	Attributes json.RawMessage `json:"attributes,omitempty"`
}

// ParseMessage reads and checks a message body (outside input).
func ParseMessage(body []byte) (MessageBody, map[string]any, error) {
	var in MessageBody
	if err := strictDecode(body, &in); err != nil {
		return MessageBody{}, nil, err
	}
	n := utf8.RuneCountInString(in.Message)
	switch {
	case n == 0 || !utf8.ValidString(in.Message):
		return MessageBody{}, nil, fault.Invalid("message must be 1 to %d characters of text", MaxMessageChars)
	case n > MaxMessageChars:
		return MessageBody{}, nil, fault.Invalid("message is %d characters; the limit is %d", n, MaxMessageChars)
	case len(in.Attributes) > MaxAttributesBytes:
		return MessageBody{}, nil, fault.Invalid("attributes are %d bytes; the limit is %d", len(in.Attributes), MaxAttributesBytes)
	}
	var attrs map[string]any
	if len(in.Attributes) > 0 && !bytes.Equal(in.Attributes, []byte("null")) {
		if err := json.Unmarshal(in.Attributes, &attrs); err != nil || attrs == nil {
			return MessageBody{}, nil, fault.Invalid("attributes must be a JSON object")
		}
	}
	return in, attrs, nil
}

// Message posts a message as the caller: a Communication part of the
// Encounter, from the caller's profile to the other members, numbered in
// its conversation, then live. Only Messaging:ConversationSendMessage is
// needed, so Ward writes it. Concurrent messages share a transaction
// (writer.go).
func (s *Service) Message(ctx context.Context, c Caller, conv string, body []byte) (Message, error) {
	p, err := s.newPending(ctx, c, conv, body)
	if err != nil {
		return Message{}, err
	}
	s.write(p)
	if p.err != nil {
		return Message{}, p.err
	}
	return p.msg, nil
}

// Token returns a live-channel token for the caller.
func (s *Service) Token(ctx context.Context, c Caller) (string, time.Time, error) {
	if c.Profile == "" {
		return "", time.Time{}, fault.Invalid("this principal has no profile resource to chat as")
	}
	kind, id := string(c.P.Kind), c.P.ID
	return s.prov.Token(ctx, Identity{ProjectID: c.P.ProjectID, Profile: c.Profile, PrincipalKind: kind, PrincipalID: id})
}

// Open verifies a stream token and subscribes its holder to conv, if a
// member. Errors: Unauthorized (token), NotFound (no such conversation in
// the token's project), Forbidden (not a member), NotSupported (another
// provider delivers).
func (s *Service) Open(ctx context.Context, token, conv string) (*Sub, error) {
	if s.local == nil {
		return nil, fault.NotSupported("live delivery is by the %s provider", s.prov.Kind())
	}
	id, err := s.local.VerifyToken(ctx, token)
	if err != nil {
		return nil, fault.Unauthorized("invalid conversation token")
	}
	// Subscribe before reading the members: a removal committed after the
	// read reaches the subscription and closes it.
	sub := s.local.hub.subscribe(id.ProjectID, conv, id.Profile)
	if sub == nil {
		return nil, fault.Unavailable("this server is shutting down: reconnect")
	}
	_, enc, err := s.conversation(ctx, nil, id.ProjectID, conv)
	if err != nil {
		s.local.hub.Unsubscribe(sub)
		return nil, err
	}
	if !slices.Contains(members(enc), id.Profile) {
		s.local.hub.Unsubscribe(sub)
		return nil, fault.Forbidden("%s is not a member of conversation %s", id.Profile, conv)
	}
	// The stream lasts as long as its token.
	sub.expire = time.AfterFunc(time.Until(id.ExpiresAt), func() { s.local.hub.Unsubscribe(sub) })
	return sub, nil
}

// Close ends a stream.
func (s *Service) Close(sub *Sub) {
	if sub.expire != nil {
		sub.expire.Stop()
	}
	s.local.hub.Unsubscribe(sub)
}

// fromCommunication turns a stored message back into its live form.
func fromCommunication(id string, content []byte) (Message, error) {
	var c struct {
		Sent      string                       `json:"sent"`
		Sender    struct{ Reference string }   `json:"sender"`
		Recipient []struct{ Reference string } `json:"recipient"`
		Payload   []struct {
			ContentString string `json:"contentString"`
		} `json:"payload"`
		Extension []struct {
			URL         string `json:"url"`
			ValueString string `json:"valueString"`
		} `json:"extension"`
	}
	if err := json.Unmarshal(content, &c); err != nil {
		return Message{}, fmt.Errorf("communication %s: %w", id, err)
	}
	m := Message{ID: id, Author: c.Sender.Reference, Sent: c.Sent}
	// Its audience: the members when it was written (the sender, if one).
	m.audience = []string{}
	if c.Sender.Reference != "" {
		m.audience = append(m.audience, c.Sender.Reference)
	}
	for _, r := range c.Recipient {
		m.audience = append(m.audience, r.Reference)
	}
	if len(c.Payload) > 0 {
		m.Body = c.Payload[0].ContentString
	}
	for _, e := range c.Extension {
		if e.URL == attributesExtension {
			_ = json.Unmarshal([]byte(e.ValueString), &m.Attributes)
		}
	}
	return m, nil
}

func strictDecode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fault.Invalid("the body is not valid JSON for this request: %s", jsonMsg(err))
	}
	if dec.More() {
		return fault.Invalid("the body has data after the JSON object")
	}
	return nil
}

func jsonMsg(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%s must be %s", te.Field, te.Type)
	}
	return "unexpected end"
}

func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode stored resource: %w", err)
	}
	return m, nil
}

func cutRef(ref string) (typ, id string, ok bool) {
	for i := 0; i < len(ref); i++ {
		if ref[i] == '/' {
			return ref[:i], ref[i+1:], true
		}
	}
	return "", "", false
}
