package zambda

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/fault"
)

// TestParseSchedule: the SDK's retry policy names, EventBridge's as
// aliases, and a 400 naming the field for anything unknown or out of range.
func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // the schedule as stored and answered, when valid
		err      string // part of the 400's message, when not
	}{
		{name: "no policy", in: `{"expression":"rate(5 minutes)"}`, want: `{"expression":"rate(5 minutes)"}`},
		{name: "SDK names", in: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetry":2,"maximumEventAge":3600}}`,
			want: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetry":2,"maximumEventAge":3600}}`},
		{name: "EventBridge aliases", in: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetryAttempts":2,"maximumEventAgeInSeconds":3600}}`,
			want: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetry":2,"maximumEventAge":3600}}`},
		{name: "one of each", in: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetry":0,"maximumEventAgeInSeconds":60}}`,
			want: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetry":0,"maximumEventAge":60}}`},
		{name: "bounds", in: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetry":185,"maximumEventAge":86400}}`,
			want: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetry":185,"maximumEventAge":86400}}`},
		{name: "empty policy", in: `{"expression":"rate(5 minutes)","retryPolicy":{}}`, want: `{"expression":"rate(5 minutes)","retryPolicy":{}}`},
		{name: "null policy", in: `{"expression":"rate(5 minutes)","retryPolicy":null}`, want: `{"expression":"rate(5 minutes)"}`},
		{name: "null setting", in: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetry":null}}`, want: `{"expression":"rate(5 minutes)","retryPolicy":{}}`},
		{name: "start and end", in: `{"expression":"cron(0 9 * * ? *)","start":"2025-01-01T00:00:00Z","end":"2026-01-01T00:00:00Z"}`,
			want: `{"expression":"cron(0 9 * * ? *)","start":"2025-01-01T00:00:00Z","end":"2026-01-01T00:00:00Z"}`},

		{name: "unknown schedule field", in: `{"expression":"rate(5 minutes)","timezone":"UTC"}`, err: `schedule: unknown field "timezone"`},
		{name: "unknown policy field", in: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetries":2}}`, err: `schedule.retryPolicy: unknown field "maximumRetries"`},
		{name: "name and alias", in: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetry":2,"maximumRetryAttempts":2}}`, err: "maximumRetry and maximumRetryAttempts are the same setting"},
		{name: "too many retries", in: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetry":186}}`, err: "schedule.retryPolicy.maximumRetry must be a whole number from 0 to 185, not 186"},
		{name: "negative retries", in: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetryAttempts":-1}}`, err: "schedule.retryPolicy.maximumRetryAttempts must be a whole number from 0 to 185, not -1"},
		{name: "fractional retries", in: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetry":1.5}}`, err: "maximumRetry must be a whole number"},
		{name: "retries as a string", in: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumRetry":"2"}}`, err: "maximumRetry must be a whole number"},
		{name: "event age too short", in: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumEventAge":59}}`, err: "schedule.retryPolicy.maximumEventAge must be a whole number from 60 to 86400, not 59"},
		{name: "event age too long", in: `{"expression":"rate(5 minutes)","retryPolicy":{"maximumEventAgeInSeconds":86401}}`, err: "maximumEventAgeInSeconds must be a whole number from 60 to 86400"},
		{name: "policy not an object", in: `{"expression":"rate(5 minutes)","retryPolicy":3}`, err: "schedule.retryPolicy must be an object"},
		{name: "schedule not an object", in: `"rate(5 minutes)"`, err: "schedule must be an object"},
		{name: "bad expression", in: `{"expression":"every day"}`, err: "schedule.expression"},
		{name: "expression not a string", in: `{"expression":5}`, err: "schedule.expression must be a string"},
		{name: "bad start", in: `{"expression":"rate(5 minutes)","start":"tomorrow"}`, err: "schedule.start must be a date and time"},
		{name: "end before start", in: `{"expression":"rate(5 minutes)","start":"2026-01-01T00:00:00Z","end":"2025-01-01T00:00:00Z"}`, err: "schedule.end must be after schedule.start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := parseSchedule(json.RawMessage(tc.in))
			if tc.err != "" {
				if !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want a 400 saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(sc)
			if string(got) != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestStoredRetryPolicy: rows stored under EventBridge's names, before the
// SDK's were read, still drive retries and are answered in the SDK's.
func TestStoredRetryPolicy(t *testing.T) {
	var sc Schedule
	if err := json.Unmarshal([]byte(`{"expression":"rate(1 minute)","retryPolicy":{"maximumRetryAttempts":3,"maximumEventAgeInSeconds":120}}`), &sc); err != nil {
		t.Fatal(err)
	}
	if l := limits(sc); l.retries != 3 || l.maxAge.Seconds() != 120 {
		t.Errorf("limits: %+v", l)
	}
	got, _ := json.Marshal(sc)
	if want := `{"expression":"rate(1 minute)","retryPolicy":{"maximumRetry":3,"maximumEventAge":120}}`; string(got) != want {
		t.Errorf("answered as %s, want %s", got, want)
	}
	// Values stored before the API checked them are clamped.
	json.Unmarshal([]byte(`{"expression":"rate(1 minute)","retryPolicy":{"maximumRetryAttempts":1000,"maximumEventAgeInSeconds":1}}`), &sc)
	if l := limits(sc); l.retries != 185 || l.maxAge.Seconds() != 60 {
		t.Errorf("clamped limits: %+v", l)
	}
}
