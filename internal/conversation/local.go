package conversation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/store"
)

// KindLocal is the channel type code of Ward's own provider.
const KindLocal = "ward-chat"

// Announcer carries events between replicas: store.Store on PostgreSQL
// (NOTIFY/LISTEN); on SQLite its methods say there is nothing to do.
type Announcer interface {
	// Announces reports whether there are other processes to tell.
	Announces() bool
	NotifyConversation(ctx context.Context, payloads ...string) error
	ListenConversations(ctx context.Context, listening func(), heard func(payload string)) error
}

// Loader reads a committed resource, for events too large to announce
// whole. store.Store implements it.
type Loader interface {
	GetResource(ctx context.Context, projectID, typ, id string) (store.Resource, error)
}

// Local is Ward's own provider: live delivery through the Hub of every
// replica, each fed by the commits of its own process directly and by
// those of the others through the Announcer.
type Local struct {
	hub      *Hub
	ann      Announcer
	load     Loader
	origin   string // this replica, so it skips its own announcements
	issuer   *auth.Issuer
	verify   *auth.Verifier
	ttl      time.Duration
	log      *slog.Logger
	onListen func()
	// out queues notices for Run's sender, which announces them in
	// batches: one commit for many messages.
	out chan string
}

var _ Provider = (*Local)(nil)

// TokenAudience is the audience of conversation tokens: the API refuses
// them (its audience is the public URL), the stream takes only them.
func TokenAudience(publicURL string) string { return publicURL + "/v1/messaging/conversation" }

// LocalConfig tunes Local.
type LocalConfig struct {
	TokenTTL time.Duration // default 10 minutes
	// Listening, if set, is called each time the replica listener is
	// (re)connected: announcements from then on reach this process.
	Listening func()
}

// NewLocal returns the local provider. ring signs the tokens (Ward's keys),
// revoked is consulted on verify.
func NewLocal(cfg LocalConfig, hub *Hub, ann Announcer, load Loader, ring func() *auth.KeyRing, publicURL string,
	revoked auth.RevocationChecker, now func() time.Time, log *slog.Logger) *Local {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 10 * time.Minute
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	aud := TokenAudience(publicURL)
	return &Local{hub: hub, ann: ann, load: load, origin: hex.EncodeToString(b[:]), ttl: cfg.TokenTTL, log: log, onListen: cfg.Listening, out: make(chan string, 1024),
		issuer: auth.NewIssuer(ring, publicURL, aud, now),
		verify: auth.NewVerifier(ring, publicURL, []string{aud}, revoked, now)}
}

// Hub is the provider's in-process fan-out.
func (l *Local) Hub() *Hub { return l.hub }

func (l *Local) Kind() string { return KindLocal }

func (l *Local) Open(_ context.Context, _, conversationID string) (string, error) {
	return conversationID, nil
}

// notice is an announcement between replicas. Ref names the resource to
// read when the event itself would not fit in one notice.
type notice struct {
	Origin  string   `json:"o"`
	Kind    string   `json:"k"` // "m" message, "p" members
	Project string   `json:"p"`
	Conv    string   `json:"c"`
	Message *Message `json:"m,omitempty"`
	Members []string `json:"mb,omitempty"`
	Ref     string   `json:"r,omitempty"`
	Seq     int64    `json:"s,omitempty"` // a message's number, for Ref
}

func (l *Local) Members(ctx context.Context, projectID, conv string, list []string) error {
	l.hub.members(projectID, conv, list)
	return l.announce(ctx, notice{Kind: "p", Project: projectID, Conv: conv, Members: list}, "Encounter/"+conv)
}

func (l *Local) Post(ctx context.Context, m Message) error {
	l.hub.deliver(m)
	return l.announce(ctx, notice{Kind: "m", Project: m.ProjectID, Conv: m.ConversationID, Message: &m, Members: m.audience, Seq: m.Seq}, "Communication/"+m.ID)
}

// announce tells the other replicas; an event too large for one notice
// goes as a reference they read.
func (l *Local) announce(ctx context.Context, n notice, ref string) error {
	n.Origin = l.origin
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if len(b) > store.MaxConversationNotice {
		n.Message, n.Members, n.Ref = nil, nil, ref
		if b, err = json.Marshal(n); err != nil {
			return err
		}
	}
	if !l.ann.Announces() {
		return nil
	}
	// Queued, not awaited: the message is committed (the history has
	// it); a full queue holds the sender back rather than drop it.
	select {
	case l.out <- string(b):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxBatch bounds the notices announced in one statement.
const maxBatch = 256

// send announces queued notices until ctx ends, as many per statement as
// have queued meanwhile.
func (l *Local) send(ctx context.Context) {
	batch := make([]string, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-l.out:
			batch = append(batch[:0], p)
		}
	more:
		for len(batch) < maxBatch {
			select {
			case p := <-l.out:
				batch = append(batch, p)
			default:
				break more
			}
		}
		if err := l.ann.NotifyConversation(ctx, batch...); err != nil && ctx.Err() == nil {
			// Readers on other replicas miss these live; the history has them.
			l.log.Warn("announce conversation events", "err", err, "count", len(batch))
		}
	}
}

// Run announces this replica's events and applies the other replicas'
// until ctx ends, reconnecting when the listener fails. On SQLite it
// returns at once.
func (l *Local) Run(ctx context.Context) {
	if !l.ann.Announces() {
		return
	}
	done := make(chan struct{})
	go func() { defer close(done); l.send(ctx) }()
	defer func() { <-done }()
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		err := l.ann.ListenConversations(ctx, func() {
			wait = 100 * time.Millisecond
			if l.onListen != nil {
				l.onListen()
			}
		}, func(p string) { l.heard(ctx, p) })
		if errors.Is(err, store.ErrNoListen) || ctx.Err() != nil {
			return
		}
		// Events announced while the listener was down are in the
		// record; clients page the history for the gap.
		l.log.Warn("conversation listener failed", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (l *Local) heard(ctx context.Context, payload string) {
	n, err := parseNotice([]byte(payload))
	if err != nil {
		l.log.Warn("conversation notice ignored", "err", err)
		return
	}
	if n.Origin == l.origin {
		return
	}
	switch n.Kind {
	case "p":
		if n.Ref != "" {
			if n.Members, err = l.loadMembers(ctx, n.Project, n.Conv); err != nil {
				l.log.Warn("conversation members", "err", err)
				return
			}
		}
		l.hub.members(n.Project, n.Conv, n.Members)
	case "m":
		if n.Ref != "" {
			m, err := l.loadMessage(ctx, n.Project, n.Ref)
			if err != nil {
				l.log.Warn("conversation message", "err", err)
				return
			}
			m.Seq = n.Seq
			n.Message = &m
		}
		n.Message.ProjectID = n.Project
		n.Message.ConversationID = n.Conv
		if n.Ref == "" {
			n.Message.audience = n.Members
		}
		l.hub.deliver(*n.Message)
	}
}

// parseNotice reads an announcement (outside input as far as this process
// knows: anyone with database access may NOTIFY).
func parseNotice(b []byte) (notice, error) {
	var n notice
	if err := json.Unmarshal(b, &n); err != nil {
		return notice{}, fmt.Errorf("conversation notice: %w", err)
	}
	switch {
	case n.Project == "" || n.Conv == "":
		return notice{}, errors.New("conversation notice without project or conversation")
	case n.Kind == "m" && n.Message == nil && n.Ref == "":
		return notice{}, errors.New("message notice without message")
	case n.Kind != "m" && n.Kind != "p":
		return notice{}, fmt.Errorf("conversation notice of unknown kind %q", n.Kind)
	}
	return n, nil
}

func (l *Local) loadMembers(ctx context.Context, project, conv string) ([]string, error) {
	r, err := l.load.GetResource(ctx, project, "Encounter", conv)
	if err != nil {
		return nil, err
	}
	var enc map[string]any
	if err := json.Unmarshal(r.Content, &enc); err != nil {
		return nil, err
	}
	return members(enc), nil
}

func (l *Local) loadMessage(ctx context.Context, project, ref string) (Message, error) {
	r, err := l.load.GetResource(ctx, project, "Communication", ref[len("Communication/"):])
	if err != nil {
		return Message{}, err
	}
	return fromCommunication(r.ID, r.Content)
}

// Token signs a short-lived token for id's live channel with Ward's keys.
func (l *Local) Token(ctx context.Context, id Identity) (string, time.Time, error) {
	// Every token names its project (developer tokens otherwise carry
	// none), so it is issued as a user's with the real kind in the
	// subject; its audience confines it to the stream.
	tok, p, err := l.issuer.Issue(ctx, auth.Principal{ProjectID: id.ProjectID, Kind: auth.KindUser,
		ID: id.PrincipalKind + ":" + id.PrincipalID, FHIRUser: id.Profile}, l.ttl)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("conversation token: %w", err)
	}
	return tok, p.ExpiresAt, nil
}

// VerifyToken checks a conversation token (signature, expiry, audience,
// revocation) and returns whom it speaks for.
func (l *Local) VerifyToken(ctx context.Context, token string) (Identity, error) {
	p, err := l.verify.Verify(ctx, token)
	if err != nil {
		return Identity{}, err
	}
	kind, id, ok := strings.Cut(p.ID, ":")
	if p.FHIRUser == "" || p.ProjectID == "" || p.Kind != auth.KindUser || !ok {
		return Identity{}, fmt.Errorf("%w: not a conversation token", auth.ErrInvalidToken)
	}
	return Identity{ProjectID: p.ProjectID, Profile: p.FHIRUser, PrincipalKind: kind, PrincipalID: id, ExpiresAt: p.ExpiresAt}, nil
}
