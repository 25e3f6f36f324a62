// Package fax sends faxes (the SDK's fax.*) through a project's provider:
// local (the default: nothing leaves Ward, the fax is recorded as sent) or
// Phaxio. A project onboards a number first; every send is a FHIR
// Communication, created as the caller before anything leaves Ward, that
// holds the document and the delivery status.
package fax

import (
	"context"
	"errors"
)

// Document is the media of a fax: its bytes (read only for providers that
// need them) and what the record says of it.
type Document struct {
	Name        string // a file name, for the provider's upload
	ContentType string
	Size        int64
	Bytes       []byte // nil for the local provider
}

// Fax is one fax to send.
type Fax struct {
	To       string // E.164
	From     string // the project's onboarded number
	Quality  string // standard, fine, superfine
	Document Document
	// CallbackURL is where the provider reports delivery ("" for none).
	CallbackURL string
}

// Sent is a provider's receipt.
type Sent struct {
	ID string // the provider's fax id
	// Status is the provider's word for where the fax is ("queued",
	// "success"); Delivered is true when it is done.
	Status    string
	Delivered bool
}

// Provider is one fax service. Errors: ErrRefused when the provider
// declined for good (bad number, bad credentials); others are transient.
type Provider interface {
	// Provision gets the project a number (E.164).
	Provision(ctx context.Context) (string, error)
	// Release gives a number back.
	Release(ctx context.Context, number string) error
	Send(ctx context.Context, f Fax) (Sent, error)
	// NeedsBytes is true when Send uploads the document.
	NeedsBytes() bool
}

// ErrRefused marks a request the provider will not take.
var ErrRefused = errors.New("fax provider refused the request")
