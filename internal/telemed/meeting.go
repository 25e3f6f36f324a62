package telemed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/store"
)

// Oystehr's extension URLs (the SDK's types name them).
const (
	OtherParticipantsURL = "https://extensions.fhir.oystehr.com/encounter-other-participants"
	VirtualServiceURL    = "https://extensions.fhir.oystehr.com/encounter-virtual-service-pre-release"
	channelTypeSystem    = "https://fhir.zapehr.com/virtual-service-type"
)

// TokenTTL is how long a join token lets its holder (re)join.
const TokenTTL = 2 * time.Hour

// Service creates and joins meetings.
type Service struct {
	fhir   *fhir.Service
	videos VideoFor
	log    *slog.Logger
	now    func() time.Time
}

// New builds the service; videos picks each project's provider (Fixed(nil):
// none, every call is a 503 saying so).
func New(f *fhir.Service, videos VideoFor, log *slog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{fhir: f, videos: videos, log: log, now: now}
}

// RoomName is the provider room of an Encounter: the project is part of
// it, so a webhook names its tenant and rooms of two projects never meet.
// Ids are [A-Za-z0-9-.], so "_" separates them unambiguously.
func RoomName(projectID, encounterID string) string { return projectID + "_" + encounterID }

// SplitRoom is RoomName's inverse; ok is false for a room Ward did not name.
func SplitRoom(room string) (projectID, encounterID string, ok bool) {
	projectID, encounterID, ok = strings.Cut(room, "_")
	if !ok || projectID == "" || encounterID == "" || strings.Contains(encounterID, "_") {
		return "", "", false
	}
	return projectID, encounterID, true
}

// CreateMeeting stores the Encounter with its video meeting and creates
// the room. The room comes first and the Encounter is written once (at an
// id chosen here), so a failed room leaves no Encounter without a meeting,
// and a failed write leaves only an empty room the provider closes.
// The caller needs FHIR:Create and FHIR:Update on the Encounter (the SDK's
// contract) besides Telemed:CreateMeeting, which the route checks.
func (s *Service) CreateMeeting(ctx context.Context, p auth.Principal, body []byte) (json.RawMessage, error) {
	video, err := s.videos(ctx, p.ProjectID)
	if err != nil {
		return nil, err
	}
	var in struct {
		Encounter map[string]any `json:"encounter"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fault.Invalid("the body must be {\"encounter\": {...}}: %v", err)
	}
	enc := in.Encounter
	if enc == nil {
		return nil, fault.Invalid("the body must be {\"encounter\": {...}}: encounter is missing")
	}
	if rt, _ := enc["resourceType"].(string); rt != "Encounter" {
		return nil, fault.Invalid("encounter.resourceType must be \"Encounter\"")
	}
	if err := s.fhir.Require(ctx, p, "FHIR:Create", "Encounter", ""); err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	enc["id"] = id.String()
	room := RoomName(p.ProjectID, id.String())
	setVirtualService(enc, video.Name(), room)
	content, err := json.Marshal(enc)
	if err != nil {
		return nil, err
	}
	if err := video.CreateRoom(ctx, room); err != nil {
		return nil, fault.Wrap(fault.ErrUnavailable, err, "the video provider did not create the room")
	}
	res, _, err := s.fhir.Update(ctx, p, "Encounter", id.String(), content, "")
	if err != nil {
		return nil, err
	}
	return res.Content, nil
}

// setVirtualService replaces any virtual-service extension with this
// meeting's.
func setVirtualService(enc map[string]any, channel, room string) {
	exts, _ := enc["extension"].([]any)
	kept := exts[:0:0]
	for _, e := range exts {
		if m, ok := e.(map[string]any); ok && m["url"] == VirtualServiceURL {
			continue
		}
		kept = append(kept, e)
	}
	kept = append(kept, map[string]any{
		"url": VirtualServiceURL,
		"extension": []any{
			map[string]any{"url": "channelType", "valueCoding": map[string]any{
				"system": channelTypeSystem, "code": channel, "display": "LiveKit Video Meetings"}},
			map[string]any{"url": "addressString", "valueString": room},
		},
	})
	enc["extension"] = kept
}

// Join is what the SDK's joinMeeting returns, plus LiveKit's url and token
// (its response type lets other fields through).
type Join struct {
	Meeting  JoinMeeting  `json:"Meeting"`
	Attendee JoinAttendee `json:"Attendee"`
	URL      string       `json:"url"`
	Token    string       `json:"token"`
	Provider string       `json:"provider"`
}

// JoinMeeting names the room.
type JoinMeeting struct {
	MeetingID string `json:"MeetingId"`
}

// JoinAttendee names who joins.
type JoinAttendee struct {
	AttendeeID     string `json:"AttendeeId"`
	ExternalUserID string `json:"ExternalUserId"`
}

// JoinMeeting issues a token for the Encounter's room. The route has
// checked Telemed:JoinMeeting (or, anonymous, Telemed:AddAnonymousToMeeting);
// a user (someone with a FHIR profile) must moreover be a participant of
// the Encounter. An anonymous guest gets a fresh identity of its own.
func (s *Service) JoinMeeting(ctx context.Context, p auth.Principal, encounterID string, anonymous bool) (Join, error) {
	video, err := s.videos(ctx, p.ProjectID)
	if err != nil {
		return Join{}, err
	}
	stored, err := s.fhir.Store().GetResource(ctx, p.ProjectID, "Encounter", encounterID)
	if errors.Is(err, store.ErrNotFound) || err == nil && stored.Deleted {
		return Join{}, fault.NotFound("Encounter/%s is not known", encounterID)
	}
	if err != nil {
		return Join{}, err
	}
	var enc map[string]any
	if err := json.Unmarshal(stored.Content, &enc); err != nil {
		return Join{}, fmt.Errorf("stored Encounter/%s: %w", encounterID, err)
	}
	room := meetingRoom(enc)
	if room == "" {
		return Join{}, fault.NotFound("Encounter/%s has no video meeting", encounterID)
	}
	if pid, eid, ok := SplitRoom(room); !ok || pid != p.ProjectID || eid != encounterID {
		// A client wrote another room into the extension: never hand out
		// a token for a room that is not this Encounter's.
		return Join{}, fault.Conflict("Encounter/%s names a video meeting that is not its own", encounterID)
	}
	if status, _ := enc["status"].(string); status == "finished" || status == "cancelled" {
		return Join{}, fault.Conflict("the meeting of Encounter/%s has ended", encounterID)
	}
	var identity string
	switch {
	case anonymous:
		identity = "anonymous-" + uuid.NewString()
	case p.Kind == auth.KindUser:
		if p.FHIRUser == "" || !participants(enc)[p.FHIRUser] {
			return Join{}, fault.Forbidden("the caller is not a participant of Encounter/%s", encounterID)
		}
		identity = p.FHIRUser
	case p.FHIRUser != "":
		identity = p.FHIRUser
	default:
		identity = string(p.Kind) + "/" + p.ID
	}
	tok, err := video.JoinToken(room, identity, identity, TokenTTL)
	if err != nil {
		return Join{}, err
	}
	return Join{
		Meeting:  JoinMeeting{MeetingID: room},
		Attendee: JoinAttendee{AttendeeID: identity, ExternalUserID: identity},
		URL:      video.URL(), Token: tok, Provider: video.Name(),
	}, nil
}

// meetingRoom is the addressString of the virtual-service extension.
func meetingRoom(enc map[string]any) string {
	exts, _ := enc["extension"].([]any)
	for _, e := range exts {
		m, _ := e.(map[string]any)
		if m == nil || m["url"] != VirtualServiceURL {
			continue
		}
		subs, _ := m["extension"].([]any)
		for _, sub := range subs {
			sm, _ := sub.(map[string]any)
			if sm != nil && sm["url"] == "addressString" {
				room, _ := sm["valueString"].(string)
				return room
			}
		}
	}
	return ""
}

// participants are the references in the Encounter's participant list,
// its subject, and the other-participants extension (at any depth).
func participants(enc map[string]any) map[string]bool {
	out := map[string]bool{}
	add := func(v any) {
		if m, ok := v.(map[string]any); ok {
			if ref, ok := m["reference"].(string); ok && ref != "" {
				out[ref] = true
			}
		}
	}
	add(enc["subject"])
	parts, _ := enc["participant"].([]any)
	for _, pt := range parts {
		if m, ok := pt.(map[string]any); ok {
			add(m["individual"])
		}
	}
	var walk func(exts []any)
	walk = func(exts []any) {
		for _, e := range exts {
			m, _ := e.(map[string]any)
			if m == nil {
				continue
			}
			add(m["valueReference"])
			sub, _ := m["extension"].([]any)
			walk(sub)
		}
	}
	exts, _ := enc["extension"].([]any)
	for _, e := range exts {
		if m, ok := e.(map[string]any); ok && m["url"] == OtherParticipantsURL {
			sub, _ := m["extension"].([]any)
			walk(sub)
		}
	}
	return out
}

// HandleEvent applies a verified provider event. The meeting starts when
// its room does with the Encounter there (room_started: LiveKit opened the
// room) or when someone joins (participant_joined: Ward creates the room
// with the meeting, before the Encounter is stored, so that room_started
// finds none): status in-progress, period.start the room's creation or the
// join. A finished room finishes it (status finished, period.end the
// event's time, period.start the room's creation unless the Encounter has
// them). A start that arrives after the end changes nothing. Events of
// rooms Ward did not name, or of Encounters gone since, are ignored.
func (s *Service) HandleEvent(ctx context.Context, ev Event) error {
	start := ev.Kind == EventRoomStarted || ev.Kind == EventParticipantJoined
	if ev.Kind != EventRoomFinished && !start {
		return nil
	}
	projectID, encounterID, ok := SplitRoom(ev.Room)
	if !ok {
		s.log.InfoContext(ctx, "telemed: webhook for a room Ward did not name", "room", ev.Room)
		return nil
	}
	// A deleted Encounter stays deleted (SystemUpdate would write a new
	// version over the deletion).
	if cur, err := s.fhir.Store().GetResource(ctx, projectID, "Encounter", encounterID); errors.Is(err, store.ErrNotFound) || err == nil && cur.Deleted {
		s.log.InfoContext(ctx, "telemed: room event without its Encounter", "room", ev.Room, "event", ev.Kind)
		return nil
	} else if err != nil {
		return err
	}
	at := ev.At
	if at.IsZero() {
		at = s.now()
	}
	started := ev.RoomCreated
	if ev.Kind == EventParticipantJoined || started.IsZero() && start {
		started = at
	}
	_, err := s.fhir.SystemUpdate(ctx, projectID, "Encounter", encounterID, func(m map[string]any) error {
		if meetingRoom(m) != ev.Room {
			return errNotThisMeeting
		}
		status, _ := m["status"].(string)
		period, _ := m["period"].(map[string]any)
		if period == nil {
			period = map[string]any{}
		}
		if start {
			if status == "finished" || status == "cancelled" || status == "in-progress" && period["start"] != nil {
				return errNothingToDo
			}
			m["status"] = "in-progress"
		} else {
			m["status"] = "finished"
			if _, ok := period["end"]; !ok {
				period["end"] = at.UTC().Format(time.RFC3339)
			}
		}
		if _, ok := period["start"]; !ok && !started.IsZero() {
			period["start"] = started.UTC().Format(time.RFC3339)
		}
		m["period"] = period
		return nil
	})
	switch {
	case errors.Is(err, errNothingToDo):
		return nil
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, errNotThisMeeting):
		s.log.InfoContext(ctx, "telemed: room event without its Encounter", "room", ev.Room, "event", ev.Kind)
		return nil
	}
	return err
}

var (
	errNotThisMeeting = errors.New("the Encounter no longer names this meeting")
	errNothingToDo    = errors.New("the Encounter is already past this event")
)

// VerifyWebhook authenticates a provider notification with the key of the
// project whose room it names (rooms are named per project), so one
// project's provider cannot speak for another's meetings. Errors wrap
// ErrBadSignature for requests not the provider's, a room Ward did not
// name, or a project without a provider (which a 401 does not tell apart).
func (s *Service) VerifyWebhook(r *http.Request) (Event, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxWebhookBytes+1))
	if err != nil {
		return Event{}, fault.Invalid("webhook: %v", err)
	}
	if len(body) > MaxWebhookBytes {
		return Event{}, fmt.Errorf("%w: body over %d bytes", ErrBadSignature, MaxWebhookBytes)
	}
	// Unverified: only to pick whose key verifies it.
	peek, err := parseLiveKitEvent(body)
	if err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	projectID, _, ok := SplitRoom(peek.Room)
	if !ok {
		return Event{}, fmt.Errorf("%w: room %q is not one of Ward's", ErrBadSignature, peek.Room)
	}
	video, err := s.videos(r.Context(), projectID)
	if err != nil {
		if errors.Is(err, fault.ErrUnavailable) || errors.Is(err, fault.ErrInvalid) || errors.Is(err, fault.ErrNotFound) || errors.Is(err, store.ErrNotFound) {
			return Event{}, fmt.Errorf("%w: the room's project has no video provider", ErrBadSignature)
		}
		return Event{}, err
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	ev, err := video.VerifyWebhook(r2)
	if err != nil && !errors.Is(err, ErrBadSignature) {
		return Event{}, fault.Invalid("webhook: %v", err)
	}
	return ev, err
}
