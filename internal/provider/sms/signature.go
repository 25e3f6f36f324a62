package sms

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// Signature computes X-Twilio-Signature as Twilio documents it: the full
// URL, then each POST parameter's name and value sorted by name (and value), HMAC-SHA1
// with the account's auth token, base64.
func Signature(authToken, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		vals := append([]string(nil), form[k]...)
		sort.Strings(vals)
		for _, v := range slices.Compact(vals) { // a repeated value counts once, as Twilio's libraries do
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether sig is form's signature at fullURL,
// comparing in constant time. An empty token or signature never verifies.
func VerifySignature(authToken, fullURL string, form url.Values, sig string) bool {
	if authToken == "" || sig == "" {
		return false
	}
	return hmac.Equal([]byte(Signature(authToken, fullURL, form)), []byte(sig))
}

// Callback is a Twilio message status callback.
type Callback struct {
	MessageSID string
	Status     string // queued, sending, sent, delivered, undelivered, failed, ...
	ErrorCode  string
}

// callbackStatuses are the MessageStatus values Twilio sends.
var callbackStatuses = map[string]bool{"accepted": true, "scheduled": true, "queued": true, "sending": true, "sent": true,
	"delivered": true, "undelivered": true, "failed": true, "read": true, "canceled": true, "receiving": true, "received": true}

// ParseCallback reads a status callback's form body. Errors name the
// missing or bad field.
func ParseCallback(body []byte) (Callback, url.Values, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return Callback{}, nil, fmt.Errorf("status callback: %w", err)
	}
	c := Callback{MessageSID: form.Get("MessageSid"), Status: form.Get("MessageStatus"), ErrorCode: form.Get("ErrorCode")}
	if c.MessageSID == "" {
		c.MessageSID = form.Get("SmsSid")
	}
	if c.Status == "" {
		c.Status = form.Get("SmsStatus")
	}
	if c.MessageSID == "" || len(c.MessageSID) > 64 {
		return Callback{}, nil, fmt.Errorf("status callback: MessageSid missing or too long")
	}
	if !callbackStatuses[c.Status] {
		return Callback{}, nil, fmt.Errorf("status callback: unknown MessageStatus %q", c.Status)
	}
	return c, form, nil
}

// Final maps a callback status to the Communication status it settles:
// "completed", StatusFailed or "" (still under way).
func (c Callback) Final() string {
	switch c.Status {
	case "delivered", "read", "sent":
		return "completed"
	case "undelivered", "failed", "canceled":
		return StatusFailed
	}
	return ""
}
