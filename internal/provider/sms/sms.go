// Package sms sends transactional SMS through a project's provider: local
// (the default: nothing leaves Ward) or Twilio. Every send is recorded as a
// FHIR Communication, whichever provider carries it.
package sms

import (
	"context"
	"errors"
)

// Message is one SMS part to one number.
type Message struct {
	To   string // E.164, e.g. +15551234567
	Body string // at most MaxPart characters
	// StatusCallback is where the provider reports delivery ("" for none).
	StatusCallback string
}

// Sent is a provider's receipt for one part.
type Sent struct {
	ID string // the provider's message id (Twilio's SID)
	// Delivered is true when the provider has finished with the part (the
	// local provider); otherwise a status callback says how it ended.
	Delivered bool
}

// Sender is one provider. Errors: ErrRefused when the provider declined
// the message for good (bad number, bad credentials); others are transient
// failures that outlived the provider's retries.
type Sender interface {
	Send(ctx context.Context, m Message) (Sent, error)
}

// ErrRefused marks a message the provider will not take as sent.
var ErrRefused = errors.New("sms provider refused the message")
