package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultTwilioURL is Twilio's REST API; --twilio-api-url replaces it (a
// test's loopback stand-in, a regional edge).
const DefaultTwilioURL = "https://api.twilio.com"

// Twilio sends through Twilio's Messages API
// (POST /2010-04-01/Accounts/{AccountSid}/Messages.json).
type Twilio struct {
	BaseURL    string // DefaultTwilioURL unless configured
	AccountSID string
	AuthToken  string
	// From is the sending number; MessagingServiceSID, when set, is used
	// instead (Twilio then picks the number).
	From                string
	MessagingServiceSID string
	Client              *http.Client // the egress policy's client
	// Attempts bounds tries of one part on 429 and 5xx (default 3); Backoff
	// is the first wait, doubled each time (default 200ms), unless the
	// answer's Retry-After says longer (at most 5 s).
	Attempts int
	Backoff  time.Duration
}

var _ Sender = (*Twilio)(nil)

// Send posts one part. Errors: ErrRefused for a 4xx other than 429.
func (t *Twilio) Send(ctx context.Context, m Message) (Sent, error) {
	form := url.Values{"To": {m.To}, "Body": {m.Body}}
	if t.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", t.MessagingServiceSID)
	} else {
		form.Set("From", t.From)
	}
	if m.StatusCallback != "" {
		form.Set("StatusCallback", m.StatusCallback)
	}
	endpoint := strings.TrimRight(t.BaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(t.AccountSID) + "/Messages.json"
	attempts, wait := t.Attempts, t.Backoff
	if attempts <= 0 {
		attempts = 3
	}
	if wait <= 0 {
		wait = 200 * time.Millisecond
	}
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return Sent{}, fmt.Errorf("twilio: %w (after %v)", ctx.Err(), last)
			case <-time.After(wait):
			}
			wait *= 2
		}
		sent, retryAfter, err := t.post(ctx, endpoint, form)
		if err == nil {
			return sent, nil
		}
		last = err
		if retryAfter < 0 {
			return Sent{}, err
		}
		wait = max(wait, min(retryAfter, 5*time.Second))
	}
	return Sent{}, fmt.Errorf("twilio: %d attempts: %w", attempts, last)
}

// post makes one request. retryAfter < 0 means do not retry.
func (t *Twilio) post(ctx context.Context, endpoint string, form url.Values) (Sent, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Sent{}, -1, fmt.Errorf("twilio: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(t.AccountSID, t.AuthToken)
	resp, err := t.Client.Do(req)
	if err != nil {
		return Sent{}, 0, fmt.Errorf("twilio: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var out struct {
		SID     string `json:"sid"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Code    int    `json:"code"`
	}
	_ = json.Unmarshal(body, &out)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if out.SID == "" {
			return Sent{}, -1, fmt.Errorf("twilio: answer %d without a message sid", resp.StatusCode)
		}
		return Sent{ID: out.SID, Delivered: false}, 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return Sent{}, time.Duration(ra) * time.Second, fmt.Errorf("twilio: status %d: %s", resp.StatusCode, out.Message)
	default:
		// Twilio's message (e.g. "The 'To' number is not a valid phone
		// number", code 21211) says why; it holds no secret.
		return Sent{}, -1, fmt.Errorf("%w: twilio status %d, code %d: %s", ErrRefused, resp.StatusCode, out.Code, out.Message)
	}
}

// Local is the development provider: nothing leaves Ward; the message is
// the Communication the service records.
type Local struct{}

var _ Sender = Local{}

// Send accepts every part at once.
func (Local) Send(_ context.Context, m Message) (Sent, error) {
	return Sent{ID: "local", Delivered: true}, nil
}
