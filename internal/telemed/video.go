// Package telemed is the video meetings of the Telemed service: a meeting
// is an Encounter whose virtual-service extension names a room on a video
// provider (LiveKit by default) behind the small Video interface, so that
// another provider (Amazon Chime, say) can be added without touching the
// endpoints.
package telemed

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Video is one video provider.
type Video interface {
	// Name is the provider's code in the Encounter's virtual-service
	// extension (channelType), e.g. "livekit-video-meetings".
	Name() string
	// URL is what clients connect to (LiveKit: its ws(s):// URL).
	URL() string
	// CreateRoom creates (or finds) the room. Errors wrap ErrProvider.
	CreateRoom(ctx context.Context, room string) error
	// JoinToken is a credential that lets identity join room, and only
	// that room, until ttl has passed.
	JoinToken(room, identity, name string, ttl time.Duration) (string, error)
	// VerifyWebhook authenticates a provider's notification and returns
	// the event it carries. Errors wrap ErrBadSignature when the request
	// is not the provider's.
	VerifyWebhook(r *http.Request) (Event, error)
}

// Event is a provider notification about a room.
type Event struct {
	Kind string // EventRoomStarted, EventRoomFinished, or the provider's own name
	Room string
	At   time.Time
	// RoomCreated is when the room began (zero if the provider does not say).
	RoomCreated time.Time
}

// Event kinds Ward acts on.
const (
	EventRoomStarted       = "room_started"
	EventParticipantJoined = "participant_joined"
	EventRoomFinished      = "room_finished"
)

var (
	// ErrProvider is a failed call to the video provider.
	ErrProvider = errors.New("video provider")
	// ErrBadSignature is a webhook that is not signed by the provider.
	ErrBadSignature = errors.New("webhook signature")
)
