package subscription

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"resourceType": "Subscription", "id": "s1", "status": "requested", "criteria": "Patient?family=Test",
			"channel": map[string]any{"type": "rest-hook", "endpoint": "https://hooks.example/x", "payload": "application/fhir+json",
				"header": []any{"X-Subscription-Auth: s3cret"}}}
	}
	ok := base()
	ok["extension"] = []any{
		map[string]any{"url": TriggerExt, "valueString": "create"},
		map[string]any{"url": MethodExt, "valueCode": "PUT"},
		map[string]any{"url": SecretExt, "valueString": "whsec"},
	}
	ok["end"] = "2030-01-01T00:00:00Z"
	sb, err := parse(ok)
	if err != nil {
		t.Fatal(err)
	}
	if sb.Type != "Patient" || !sb.Triggers["create"] || sb.Triggers["update"] || sb.Method != "PUT" || sb.Secret != "whsec" ||
		sb.Headers[0] != [2]string{"X-Subscription-Auth", "s3cret"} || sb.End.Year() != 2030 {
		t.Fatalf("parsed %+v", sb)
	}
	if sb, _ := parse(base()); !sb.Triggers["create"] || !sb.Triggers["update"] || sb.Triggers["delete"] || sb.Method != "POST" {
		t.Fatalf("defaults: %+v", sb)
	}
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		msg  string
	}{
		{"no criteria", func(m map[string]any) { delete(m, "criteria") }, "criteria must be a search"},
		{"unknown type", func(m map[string]any) { m["criteria"] = "Nope?x=1" }, "criteria must be a search"},
		{"unknown param", func(m map[string]any) { m["criteria"] = "Patient?nosuch=1" }, "criteria"},
		{"websocket", func(m map[string]any) { m["channel"].(map[string]any)["type"] = "websocket" }, "rest-hook"},
		{"bad endpoint", func(m map[string]any) { m["channel"].(map[string]any)["endpoint"] = "ftp://x" }, "http(s) URL"},
		{"empty lambda", func(m map[string]any) { m["channel"].(map[string]any)["endpoint"] = LambdaPrefix }, "name a zambda"},
		{"bad header", func(m map[string]any) { m["channel"].(map[string]any)["header"] = []any{"no colon"} }, "Name: value"},
		{"bad trigger", func(m map[string]any) {
			m["extension"] = []any{map[string]any{"url": TriggerExt, "valueString": "read"}}
		}, "create, update or delete"},
		{"bad end", func(m map[string]any) { m["end"] = "tomorrow" }, "instant"},
	} {
		m := base()
		tc.edit(m)
		if _, err := parse(m); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.msg)
		}
	}
}

// TestSign checks the Standard Webhooks signature as a receiver would.
func TestSign(t *testing.T) {
	req, _ := http.NewRequest("POST", "http://x", nil)
	at := time.Unix(1_800_000_000, 0)
	body := []byte(`{"resourceType":"Patient"}`)
	sign(req, "whsec", "42", at, body)
	m := hmac.New(sha256.New, []byte("whsec"))
	m.Write([]byte("42.1800000000." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	if req.Header.Get("webhook-id") != "42" || req.Header.Get("webhook-timestamp") != "1800000000" || req.Header.Get("webhook-signature") != want {
		t.Fatalf("headers: %v", req.Header)
	}
}

func TestBackoff(t *testing.T) {
	s := &Service{cfg: Config{RetryBase: time.Second, RetryMax: time.Hour}}
	for attempts, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 40: time.Hour} {
		for i := 0; i < 20; i++ {
			if d := s.backoff(attempts); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempts, d, want/2, want)
			}
		}
	}
}

// An idle loop's wait grows from Poll to IdlePoll, so that a replica
// that serves nothing barely reads the database.
func TestIdleWait(t *testing.T) {
	c := Config{}
	c.defaults()
	if c.IdlePoll != 10*c.Poll {
		t.Fatalf("default IdlePoll %s, want 10 x Poll %s", c.IdlePoll, c.Poll)
	}
	for _, tc := range []struct {
		empty int
		want  time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{4, time.Second},
		{60, time.Second}, // no overflow past the cap
		{-1, 100 * time.Millisecond},
	} {
		if got := c.idleWait(tc.empty); got != tc.want {
			t.Errorf("idleWait(%d) = %s, want %s", tc.empty, got, tc.want)
		}
	}
	short := Config{Poll: 10 * time.Millisecond, IdlePoll: 15 * time.Millisecond}
	short.defaults()
	if got := short.idleWait(5); got != 15*time.Millisecond {
		t.Errorf("IdlePoll given: idleWait(5) = %s, want 15ms", got)
	}
}
