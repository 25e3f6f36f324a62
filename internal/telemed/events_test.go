package telemed

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/policy/policytest"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestHandleEvent: the meeting's Encounter follows LiveKit's events in any
// order: a join (or a room started with its Encounter there) starts it, the
// room's end finishes it, a start after the end changes nothing, and
// events of other rooms touch nothing.
func TestHandleEvent(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := storetest.Open(t, b)
			f := fhir.New(st, policytest.AllowAll{}, fhir.Config{}, time.Now)
			s := New(f, Fixed(nil), slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
			p := auth.Principal{ProjectID: "p1", Kind: auth.KindDeveloper, ID: "d"}
			enc := func(id string) {
				m := map[string]any{"resourceType": "Encounter", "id": id, "status": "planned", "class": map[string]any{"code": "VR"}}
				setVirtualService(m, "livekit-video-meetings", RoomName("p1", id))
				b, _ := json.Marshal(m)
				if _, _, err := f.Update(t.Context(), p, "Encounter", id, b, ""); err != nil {
					t.Fatal(err)
				}
			}
			read := func(id string) (string, map[string]any) {
				r, err := f.Read(t.Context(), p, "Encounter", id)
				if err != nil {
					t.Fatal(err)
				}
				var m map[string]any
				_ = json.Unmarshal(r.Content, &m)
				period, _ := m["period"].(map[string]any)
				return m["status"].(string), period
			}
			t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
			ev := func(kind, id string, at time.Time) {
				t.Helper()
				if err := s.HandleEvent(t.Context(), Event{Kind: kind, Room: RoomName("p1", id), At: at}); err != nil {
					t.Fatal(err)
				}
			}
			enc("e1")
			ev(EventParticipantJoined, "e1", t0)
			if st, per := read("e1"); st != "in-progress" || per["start"] != "2026-12-07T10:00:00Z" || per["end"] != nil {
				t.Fatalf("after a join: %s %v", st, per)
			}
			ev(EventParticipantJoined, "e1", t0.Add(time.Minute)) // a second join keeps the start
			ev(EventRoomFinished, "e1", t0.Add(time.Hour))
			ev(EventRoomStarted, "e1", t0.Add(2*time.Hour)) // late
			if st, per := read("e1"); st != "finished" || per["start"] != "2026-12-07T10:00:00Z" || per["end"] != "2026-12-07T11:00:00Z" {
				t.Fatalf("after the end: %s %v", st, per)
			}
			enc("e2")
			ev(EventRoomStarted, "e2", t0)
			if st, per := read("e2"); st != "in-progress" || per["start"] == nil {
				t.Fatalf("room_started: %s %v", st, per)
			}
			// Another project's room of the same id, and a room Ward did not
			// name: nothing.
			enc("e3")
			if err := s.HandleEvent(t.Context(), Event{Kind: EventRoomFinished, Room: RoomName("p2", "e3")}); err != nil {
				t.Fatal(err)
			}
			if err := s.HandleEvent(t.Context(), Event{Kind: EventRoomFinished, Room: "no-underscore"}); err != nil {
				t.Fatal(err)
			}
			if st, _ := read("e3"); st != "planned" {
				t.Fatalf("another project's event changed the Encounter: %s", st)
			}
		})
	}
}

// TestProjectsFor: the server's LiveKit unless the project names its own
// key pair; half a configuration is refused; a project URL never gets the
// server's credentials.
func TestProjectsFor(t *testing.T) {
	server := LiveKitConfig{URL: "ws://server:7880", APIKey: "srv", APISecret: "srv-secret-0123456789abcdef0123456789"}
	cases := []struct {
		name    string
		server  LiveKitConfig
		choice  string
		secrets map[string]string
		url     string
		key     string
		err     error
	}{
		{"unset: server's", server, "", nil, server.URL, "srv", nil},
		{"local: server's", server, "local", nil, server.URL, "srv", nil},
		{"livekit without secrets: server's", server, "livekit", nil, server.URL, "srv", nil},
		{"own key pair on the server's URL", server, "livekit", map[string]string{"LIVEKIT_API_KEY": "own", "LIVEKIT_API_SECRET": "s"}, server.URL, "own", nil},
		{"own server", server, "livekit", map[string]string{"LIVEKIT_URL": "wss://own", "LIVEKIT_API_KEY": "own", "LIVEKIT_API_SECRET": "s"}, "wss://own", "own", nil},
		{"own server without its key", server, "livekit", map[string]string{"LIVEKIT_URL": "wss://own"}, "", "", fault.ErrInvalid},
		{"key without secret", server, "livekit", map[string]string{"LIVEKIT_API_KEY": "own"}, "", "", fault.ErrInvalid},
		{"no server, own pair and URL", LiveKitConfig{}, "livekit", map[string]string{"LIVEKIT_URL": "ws://own", "LIVEKIT_API_KEY": "own", "LIVEKIT_API_SECRET": "s"}, "ws://own", "own", nil},
		{"no server, nothing", LiveKitConfig{}, "", nil, "", "", fault.ErrUnavailable},
		{"bad own URL", server, "livekit", map[string]string{"LIVEKIT_URL": "file:///etc", "LIVEKIT_API_KEY": "own", "LIVEKIT_API_SECRET": "s"}, "", "", fault.ErrInvalid},
		{"unknown provider", server, "chime", nil, "", "", fault.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &Projects{Server: c.server, HTTP: http.DefaultClient,
				Choice: func(context.Context, string) (string, error) { return c.choice, nil },
				Secret: func(_ context.Context, _, name string) (string, bool, error) {
					v, ok := c.secrets[name]
					return v, ok, nil
				}}
			v, err := p.For(t.Context(), "p1")
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lk := v.(*LiveKit)
			if lk.URL() != c.url || lk.cfg.APIKey != c.key {
				t.Fatalf("url %s key %s, want %s %s", lk.URL(), lk.cfg.APIKey, c.url, c.key)
			}
		})
	}
}

// TestVerifyWebhookPerProject: a webhook is verified with the key of the
// project its room belongs to.
func TestVerifyWebhookPerProject(t *testing.T) {
	const srvKey, srvSecret = "srv", "srv-secret-0123456789abcdef0123456789"
	const ownKey, ownSecret = "own", "own-secret-0123456789abcdef0123456789"
	p := &Projects{Server: LiveKitConfig{URL: "ws://server:7880", APIKey: srvKey, APISecret: srvSecret}, HTTP: http.DefaultClient,
		Choice: func(_ context.Context, project string) (string, error) {
			switch project {
			case "own":
				return "livekit", nil
			case "other":
				return "", nil
			}
			return "", fault.NotFound("no project %s", project)
		},
		Secret: func(_ context.Context, project, name string) (string, bool, error) {
			v, ok := map[string]string{"LIVEKIT_API_KEY": ownKey, "LIVEKIT_API_SECRET": ownSecret}[name]
			return v, ok && project == "own", nil
		}}
	s := New(nil, p.For, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	body := func(room string) []byte { return []byte(`{"event":"room_finished","room":{"name":"` + room + `"}}`) }
	cases := []struct {
		name, room, key, secret string
		ok                      bool
	}{
		{"own project, own key", "own_e1", ownKey, ownSecret, true},
		{"own project, server's key", "own_e1", srvKey, srvSecret, false},
		{"server's project, server's key", "other_e1", srvKey, srvSecret, true},
		{"server's project, a project's key", "other_e1", ownKey, ownSecret, false},
		{"unknown project", "nope_e1", srvKey, srvSecret, false},
		{"room Ward did not name", "plainroom", srvKey, srvSecret, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := body(c.room)
			ev, err := s.VerifyWebhook(signed(t, c.key, c.secret, b, b))
			if c.ok && (err != nil || ev.Room != c.room) {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
		})
	}
}
