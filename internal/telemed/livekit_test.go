package telemed

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	lkauth "github.com/livekit/protocol/auth"
)

func testLiveKit(t testing.TB) *LiveKit {
	t.Helper()
	lk, err := NewLiveKit(LiveKitConfig{URL: "ws://127.0.0.1:1", APIKey: "key1", APISecret: "secret-of-at-least-32-characters!!", HTTP: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	return lk
}

func TestJoinTokenClaims(t *testing.T) {
	lk := testLiveKit(t)
	tok, err := lk.JoinToken("p1_e1", "Practitioner/7", "Practitioner/7", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v, err := lkauth.ParseAPIToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Verify("another secret of 32 characters or more"); err == nil {
		t.Fatal("the token verifies with another secret")
	}
	claims, grants, err := v.Verify(lk.cfg.APISecret)
	if err != nil {
		t.Fatal(err)
	}
	if v.APIKey() != "key1" || grants.Identity != "Practitioner/7" {
		t.Fatalf("issuer %q identity %q", v.APIKey(), grants.Identity)
	}
	g := grants.Video
	if g == nil || !g.RoomJoin || g.Room != "p1_e1" {
		t.Fatalf("video grant %+v: want a join of room p1_e1 only", g)
	}
	if g.RoomCreate || g.RoomAdmin || g.RoomList || g.RoomRecord || g.Hidden || g.Recorder {
		t.Fatalf("the join token grants more than joining: %+v", g)
	}
	if d := claims.ExpiresAt.Time.Sub(claims.NotBefore.Time); d > time.Hour+time.Minute || d < time.Hour-time.Minute {
		t.Fatalf("lifetime %v, want about an hour", d)
	}
}

// signed is a webhook request as LiveKit sends it: a JWT signed with
// secret whose sha256 claim is shaOf's digest.
func signed(t *testing.T, key, secret string, body, shaOf []byte) *http.Request {
	t.Helper()
	sum := sha256.Sum256(shaOf)
	tok, err := lkauth.NewAccessToken(key, secret).SetValidFor(time.Minute).
		SetSha256(base64.StdEncoding.EncodeToString(sum[:])).ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/v1/telemed/livekit/webhook", bytes.NewReader(body))
	r.Header.Set("Authorization", tok)
	return r
}

func TestVerifyWebhook(t *testing.T) {
	lk := testLiveKit(t)
	body := []byte(`{"event":"room_finished","room":{"sid":"RM_x","name":"p1_e1","creationTime":"1699999000"},"createdAt":"1700000000"}`)
	other := []byte(`{"event":"room_finished","room":{"name":"p2_e9"}}`)
	secret := lk.cfg.APISecret
	cases := []struct {
		name string
		req  func() *http.Request
		ok   bool
	}{
		{"signed", func() *http.Request { return signed(t, "key1", secret, body, body) }, true},
		{"bearer prefix", func() *http.Request {
			r := signed(t, "key1", secret, body, body)
			r.Header.Set("Authorization", "Bearer "+r.Header.Get("Authorization"))
			return r
		}, true},
		{"no header", func() *http.Request {
			r := signed(t, "key1", secret, body, body)
			r.Header.Del("Authorization")
			return r
		}, false},
		{"other secret", func() *http.Request { return signed(t, "key1", "an attacker's secret of 32 characters", body, body) }, false},
		{"other key", func() *http.Request { return signed(t, "key2", secret, body, body) }, false},
		{"body swapped", func() *http.Request { return signed(t, "key1", secret, other, body) }, false},
		{"garbage token", func() *http.Request {
			r := signed(t, "key1", secret, body, body)
			r.Header.Set("Authorization", "not.a.jwt")
			return r
		}, false},
		{"alg none", func() *http.Request {
			r := signed(t, "key1", secret, body, body)
			r.Header.Set("Authorization", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJrZXkxIn0.")
			return r
		}, false},
		{"too large", func() *http.Request {
			big := append(bytes.Repeat([]byte(" "), MaxWebhookBytes), body...)
			return signed(t, "key1", secret, big, big)
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := lk.VerifyWebhook(c.req())
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				if ev.Kind != EventRoomFinished || ev.Room != "p1_e1" || !ev.At.Equal(time.Unix(1700000000, 0)) || !ev.RoomCreated.Equal(time.Unix(1699999000, 0)) {
					t.Fatalf("event %+v", ev)
				}
				return
			}
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("err %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestNewLiveKitRefuses(t *testing.T) {
	for _, c := range []LiveKitConfig{
		{URL: "ws://x", APIKey: "k", HTTP: http.DefaultClient},
		{URL: "ftp://x", APIKey: "k", APISecret: "s", HTTP: http.DefaultClient},
		{URL: "ws://x", APIKey: "k", APISecret: "s"},
	} {
		if _, err := NewLiveKit(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// FuzzVerifyWebhook: whatever the body and header, an unsigned request is
// never accepted, and nothing panics.
func FuzzVerifyWebhook(f *testing.F) {
	f.Add([]byte(`{"event":"room_finished","room":{"name":"a_b"}}`), "eyJhbGciOiJIUzI1NiJ9.e30.x")
	f.Add([]byte(`{`), "")
	lk := testLiveKit(f)
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		r.Header.Set("Authorization", header)
		if _, err := lk.VerifyWebhook(r); err == nil {
			t.Fatalf("accepted an unsigned webhook: %q %q", header, body)
		}
	})
}

// FuzzParseLiveKitEvent: the body parser never panics.
func FuzzParseLiveKitEvent(f *testing.F) {
	f.Add([]byte(`{"event":"room_finished","room":{"name":"a_b"},"createdAt":"5"}`))
	f.Fuzz(func(t *testing.T, body []byte) { _, _ = parseLiveKitEvent(body) })
}
