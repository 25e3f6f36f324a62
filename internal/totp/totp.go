// Package totp is RFC 6238 time-based one-time passwords as authenticator
// apps make them: HMAC-SHA1, 6 digits, 30-second steps. It is the few lines
// of RFC 4226 over crypto/hmac rather than a dependency, because Ward needs
// the time step a code matched (to refuse its replay), which the common
// libraries do not return.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

const (
	// Digits is the length of a code.
	Digits = 6
	// Period is how long one code lasts.
	Period = 30 * time.Second
	// Skew is how many steps before and after the current one a code may
	// come from (a clock a little off, a code typed as it turned).
	Skew = 1
	// SecretSize is the secret's length in bytes (160 bits, RFC 4226's
	// recommendation for SHA-1).
	SecretSize = 20
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a fresh random secret.
func NewSecret() ([]byte, error) {
	b := make([]byte, SecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("totp secret: %w", err)
	}
	return b, nil
}

// Key is a secret as people type it into an app: base32, in groups of four.
func Key(secret []byte) string {
	s := b32.EncodeToString(secret)
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// URI is the otpauth:// URI authenticator apps read (Google's Key URI
// format): issuer and account name the entry in the app.
func URI(secret []byte, issuer, account string) string {
	v := url.Values{"secret": {b32.EncodeToString(secret)}, "issuer": {issuer},
		"algorithm": {"SHA1"}, "digits": {fmt.Sprint(Digits)}, "period": {fmt.Sprint(int(Period / time.Second))}}
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	return "otpauth://totp/" + label + "?" + v.Encode()
}

// Step is the time step t falls in.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// Code is the code of step (RFC 4226 §5.3, dynamic truncation).
func Code(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	n := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", Digits, n%1_000_000)
}

// Normalize is a code as typed with spaces and dashes dropped; ok is false
// unless it is then exactly Digits digits.
func Normalize(code string) (string, bool) {
	code = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, code)
	if len(code) != Digits {
		return "", false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return "", false
		}
	}
	return code, true
}

// Match returns the step within Skew of now whose code is code, latest
// first, and false when none is (or code is not a code). Every candidate
// is compared in constant time. The caller refuses a step it has already
// accepted: a code works once.
func Match(secret []byte, code string, now time.Time) (int64, bool) {
	code, ok := Normalize(code)
	if !ok {
		return 0, false
	}
	cur := Step(now)
	found, step := 0, int64(0)
	for s := cur + Skew; s >= cur-Skew; s-- {
		if subtle.ConstantTimeCompare([]byte(Code(secret, s)), []byte(code)) == 1 && found == 0 {
			found, step = 1, s
		}
	}
	return step, found == 1
}
