package conversation

import (
	"context"
	"time"
)

// Provider is the engine behind conversations. The record (the Encounter,
// its chat members and each message as a Communication) is Ward's FHIR
// data whatever the provider; the provider only carries it live. Ward's
// own (Local) delivers over its event stream; a Twilio Conversations
// provider would create the Twilio conversation in Open, mirror members
// (chat identities and SMS numbers) in Members, relay Post to Twilio and
// mint Twilio access tokens in Token.
type Provider interface {
	// Kind is the channel type code stored in the Encounter's virtual
	// service extension.
	Kind() string
	// Open readies a new conversation and returns its address (Ward: the
	// conversation id itself).
	Open(ctx context.Context, projectID, conversationID string) (string, error)
	// Members is told the chat members after each committed change.
	Members(ctx context.Context, projectID, conversationID string, members []string) error
	// Post carries a committed message to the members.
	Post(ctx context.Context, m Message) error
	// Token returns a credential for id's live channel and its expiry.
	Token(ctx context.Context, id Identity) (string, time.Time, error)
}

// Identity is who a conversation token speaks for.
type Identity struct {
	ProjectID string
	// Profile is the caller's FHIR profile ("Practitioner/1"): members
	// are profiles, as in Encounter.participant.
	Profile string
	// Principal is the IAM principal (kind and id) the token was issued to.
	PrincipalKind, PrincipalID string
	// ExpiresAt is a verified token's expiry (zero when issuing).
	ExpiresAt time.Time
}

// Message is one committed message, as the live channel carries it.
type Message struct {
	ProjectID      string         `json:"-"`
	ConversationID string         `json:"conversationId"`
	ID             string         `json:"id"` // the Communication's id
	Author         string         `json:"author,omitempty"`
	Body           string         `json:"body"`
	Attributes     map[string]any `json:"attributes,omitempty"`
	Sent           string         `json:"sent"`
	// Seq is the message's number in its conversation (1, 2, ...): the
	// stream's event id.
	Seq int64 `json:"seq,omitempty"`
	// audience is the members when it was committed: only their streams
	// get it (nil: whoever is subscribed).
	audience []string
}
