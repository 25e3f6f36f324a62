package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/conversation"
	"github.com/wardhealth/ward/internal/policy"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/tokens"
)

func TestConversationRoutesNameTheirActions(t *testing.T) {
	s := &Server{conv: &conversation.Service{}}
	req := httptest.NewRequest("GET", "/v1/messaging/conversation/c1/message", nil)
	req.SetPathValue("conversationId", "c1")
	public := 0
	for _, rt := range s.conversationRoutes() {
		if rt.public {
			public++
			if !strings.HasSuffix(rt.path, "/stream") {
				t.Errorf("%s %s is public", rt.method, rt.path)
			}
			continue
		}
		a, ok := policy.LookupAction(rt.action)
		if !ok || a.Service != "Messaging" || a.ResourceType != "Conversation" {
			t.Errorf("%s %s: action %q is not a Messaging conversation action", rt.method, rt.path, rt.action)
		}
		if res := rt.resource(req); !strings.HasPrefix(res, "Messaging:Conversation:") {
			t.Errorf("%s %s: resource %q", rt.method, rt.path, res)
		}
	}
	if public != 1 {
		t.Errorf("%d public conversation routes, want the stream only", public)
	}
}

// newConversationServer is a test server with conversations (SQLite).
func newConversationServer(t *testing.T) *testServer {
	t.Helper()
	return newTestServerWith(t, nil, func(st *store.Store, sealer *seal.Sealer, d *Deps) {
		keys, err := tokens.LoadKeys(context.Background(), st, sealer, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		revoked, err := tokens.LoadRevocations(context.Background(), st, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		l := conversation.NewLocal(conversation.LocalConfig{}, conversation.NewHub(), st, st, keys.Ring, testURL, revoked, time.Now,
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		d.Conversations = conversation.New(d.FHIR.Service(), l, time.Now)
	})
}

func TestConversationHTTPHostile(t *testing.T) {
	ts := newConversationServer(t)
	st, out := ts.do(t, "POST", "/v1/messaging/conversation", ts.token, `{"encounter":{"resourceType":"Encounter","status":"in-progress","class":{"code":"VR"}}}`)
	if st != 200 {
		t.Fatalf("create: %d %v", st, out)
	}
	conv := out["encounter"].(map[string]any)["id"].(string)
	_, tokOut := ts.do(t, "GET", "/v1/messaging/conversation/token", ts.token, "")
	convTok, _ := tokOut["token"].(string)
	if convTok == "" {
		t.Fatalf("token: %v", tokOut)
	}
	base := "/v1/messaging/conversation/" + conv
	cases := []struct {
		name, method, path, token, body string
		status                          int
		msg                             string
	}{
		{"malformed body", "POST", base + "/message", ts.token, `{"message":`, 400, "not valid JSON"},
		{"unknown field type", "POST", base + "/message", ts.token, `{"message":42}`, 400, "message must be string"},
		{"too long", "POST", base + "/message", ts.token, `{"message":"` + strings.Repeat("é", 1601) + `"}`, 400, "limit is 1600"},
		{"over the body limit", "POST", base + "/message", ts.token, `{"message":"` + strings.Repeat("a", 70<<10) + `"}`, 413, ""},
		{"no such conversation", "POST", "/v1/messaging/conversation/nope/message", ts.token, `{"message":"hi"}`, 404, "no conversation"},
		{"no token", "POST", base + "/message", "", `{"message":"hi"}`, 401, ""},
		{"conversation token on the API", "POST", base + "/message", convTok, `{"message":"hi"}`, 401, ""},
		{"create without encounter", "POST", "/v1/messaging/conversation", ts.token, `{}`, 400, "FHIR Encounter"},
		{"sms participant", "POST", base + "/participant", ts.token, `{"encounterReference":"Encounter/` + conv + `","participants":[{"participantReference":"Patient/p","channel":"sms"}]}`, 501, "SMS"},
		{"stream without token", "GET", base + "/stream", "", "", 401, "token is required"},
		{"stream with an API token", "GET", base + "/stream", ts.token, "", 401, "invalid conversation token"},
		// The admin client's profile is its Device: a valid token, not a member.
		{"stream of a non-member", "GET", base + "/stream", convTok, "", 403, "not a member"},
		{"stream token in the query", "GET", base + "/stream?token=" + convTok, "", "", 403, "not a member"},
		{"stream of another conversation id", "GET", "/v1/messaging/conversation/nope/stream", convTok, "", 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, out := ts.do(t, c.method, c.path, c.token, c.body)
			if st != c.status {
				t.Fatalf("status %d (%v), want %d", st, out, c.status)
			}
			msg, _ := out["message"].(string)
			if out["code"] != float64(c.status) || !strings.Contains(msg, c.msg) {
				t.Fatalf("body %v, want code %d and a message with %q", out, c.status, c.msg)
			}
		})
	}
	// A message by the admin (no chat membership needed to post) is a
	// Communication from its Device.
	st, out = ts.do(t, "POST", base+"/message", ts.token, `{"message":"hi","attributes":{"a":1}}`)
	if st != 200 || out["id"] == "" {
		t.Fatalf("message: %d %v", st, out)
	}
	st, comm := ts.do(t, "GET", "/fhir/Communication/"+out["id"].(string), ts.token, "")
	b, _ := json.Marshal([]any{comm["encounter"], comm["partOf"]})
	if st != 200 || string(b) != `[{"reference":"Encounter/`+conv+`"},[{"reference":"Encounter/`+conv+`"}]]` {
		t.Fatalf("communication: %d %s", st, b)
	}
	if s, _ := comm["sender"].(map[string]any)["reference"].(string); !strings.HasPrefix(s, "Device/") {
		t.Fatalf("sender %v", comm["sender"])
	}
}
