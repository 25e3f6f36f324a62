package telemed

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	lkauth "github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/utils/protojson"
	"github.com/twitchtv/twirp"
)

// LiveKitConfig is one LiveKit deployment.
type LiveKitConfig struct {
	URL       string // ws(s)://host:port that clients and Ward reach
	APIKey    string
	APISecret string
	// HTTP makes Ward's calls to the room service; it should be the egress
	// policy's client (the URL is operator configuration, but every
	// outbound request goes through the one policy).
	HTTP *http.Client
	// EmptyTimeout closes a room nobody joined (0: the LiveKit server's
	// room.empty_timeout).
	EmptyTimeout time.Duration
}

// LiveKit is the Video provider backed by a LiveKit server's Twirp room
// service and its access tokens.
type LiveKit struct {
	cfg   LiveKitConfig
	rooms livekit.RoomService
}

var _ Video = (*LiveKit)(nil)

// MaxWebhookBytes bounds a webhook body (LiveKit's are a few KiB).
const MaxWebhookBytes = 1 << 20

// NewLiveKit checks cfg and builds the provider.
func NewLiveKit(cfg LiveKitConfig) (*LiveKit, error) {
	if cfg.URL == "" || cfg.APIKey == "" || cfg.APISecret == "" {
		return nil, fmt.Errorf("livekit: url, api key and api secret are all required")
	}
	if cfg.HTTP == nil {
		return nil, fmt.Errorf("livekit: no HTTP client (the egress policy's)")
	}
	base := cfg.URL
	switch {
	case strings.HasPrefix(base, "wss://"):
		base = "https://" + strings.TrimPrefix(base, "wss://")
	case strings.HasPrefix(base, "ws://"):
		base = "http://" + strings.TrimPrefix(base, "ws://")
	case strings.HasPrefix(base, "https://"), strings.HasPrefix(base, "http://"):
	default:
		return nil, fmt.Errorf("livekit: url %q is not ws://, wss://, http:// or https://", cfg.URL)
	}
	return &LiveKit{cfg: cfg, rooms: livekit.NewRoomServiceProtobufClient(strings.TrimRight(base, "/"), cfg.HTTP)}, nil
}

// Name implements Video.
func (l *LiveKit) Name() string { return "livekit-video-meetings" }

// URL implements Video.
func (l *LiveKit) URL() string { return l.cfg.URL }

// CreateRoom implements Video: LiveKit's CreateRoom returns the existing
// room of that name, so a retry is harmless.
func (l *LiveKit) CreateRoom(ctx context.Context, room string) error {
	tok, err := lkauth.NewAccessToken(l.cfg.APIKey, l.cfg.APISecret).
		SetVideoGrant(&lkauth.VideoGrant{RoomCreate: true}).SetValidFor(time.Minute).ToJWT()
	if err != nil {
		return fmt.Errorf("%w: signing: %w", ErrProvider, err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok)
	ctx, err = twirp.WithHTTPRequestHeaders(ctx, h)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProvider, err)
	}
	req := &livekit.CreateRoomRequest{Name: room}
	if l.cfg.EmptyTimeout > 0 {
		req.EmptyTimeout = uint32(l.cfg.EmptyTimeout / time.Second)
	}
	if _, err := l.rooms.CreateRoom(ctx, req); err != nil {
		return fmt.Errorf("%w: creating room: %w", ErrProvider, err)
	}
	return nil
}

// JoinToken implements Video: a LiveKit access token whose only grant is
// joining this room (publish and subscribe).
func (l *LiveKit) JoinToken(room, identity, name string, ttl time.Duration) (string, error) {
	tok, err := lkauth.NewAccessToken(l.cfg.APIKey, l.cfg.APISecret).
		SetIdentity(identity).SetName(name).SetValidFor(ttl).
		SetVideoGrant(&lkauth.VideoGrant{RoomJoin: true, Room: room}).ToJWT()
	if err != nil {
		return "", fmt.Errorf("%w: signing: %w", ErrProvider, err)
	}
	return tok, nil
}

// VerifyWebhook implements Video. LiveKit signs a webhook with a JWT in
// Authorization (HS256 with the API secret, issuer the API key) whose
// sha256 claim is the base64 SHA-256 of the body. This is
// webhook.Receive, with the body bounded and our own key only.
func (l *LiveKit) VerifyWebhook(r *http.Request) (Event, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxWebhookBytes+1))
	if err != nil {
		return Event{}, fmt.Errorf("reading webhook: %w", err)
	}
	if len(body) > MaxWebhookBytes {
		return Event{}, fmt.Errorf("%w: body over %d bytes", ErrBadSignature, MaxWebhookBytes)
	}
	raw := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if raw == "" {
		return Event{}, fmt.Errorf("%w: no Authorization header", ErrBadSignature)
	}
	v, err := lkauth.ParseAPIToken(raw)
	if err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	if subtle.ConstantTimeCompare([]byte(v.APIKey()), []byte(l.cfg.APIKey)) != 1 {
		return Event{}, fmt.Errorf("%w: unknown api key", ErrBadSignature)
	}
	_, claims, err := v.Verify(l.cfg.APISecret)
	if err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	sum := sha256.Sum256(body)
	if subtle.ConstantTimeCompare([]byte(claims.Sha256), []byte(base64.StdEncoding.EncodeToString(sum[:]))) != 1 {
		return Event{}, fmt.Errorf("%w: body does not match its checksum", ErrBadSignature)
	}
	return parseLiveKitEvent(body)
}

// parseLiveKitEvent reads a (verified) webhook body.
func parseLiveKitEvent(body []byte) (Event, error) {
	var ev livekit.WebhookEvent
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &ev); err != nil {
		return Event{}, fmt.Errorf("webhook body: %w", err)
	}
	e := Event{Kind: ev.GetEvent(), Room: ev.GetRoom().GetName()}
	if ev.GetCreatedAt() > 0 {
		e.At = time.Unix(ev.GetCreatedAt(), 0).UTC()
	}
	if c := ev.GetRoom().GetCreationTime(); c > 0 {
		e.RoomCreated = time.Unix(c, 0).UTC()
	}
	return e, nil
}
