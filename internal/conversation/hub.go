package conversation

import (
	"slices"
	"sync"
	"time"
)

// subBuffer is how many events a slow reader may fall behind before its
// stream is closed (it reconnects and pages the history for the gap).
const subBuffer = 256

// Hub fans committed events out to the open streams of one process. It
// keeps, per conversation, the members last committed, so a removed
// member's stream closes at once and never sees a later message.
type Hub struct {
	mu     sync.Mutex
	rooms  map[roomKey]*room
	closed bool // shutting down: no new streams
}

type roomKey struct{ project, conv string }

type room struct {
	members []string
	subs    map[*Sub]struct{}
}

// Event is what a stream receives.
type Event struct {
	Kind    string // "message" or "removed"
	Message Message
}

// Sub is one open stream on one conversation.
type Sub struct {
	key     roomKey
	profile string
	c       chan Event
	done    chan struct{}
	once    sync.Once
	reason  string      // why it closed
	expire  *time.Timer // ends the stream with its token
	// last is the number of the last message the stream has passed
	// (stream.go); only its reader touches it.
	last int64
}

// Events carries the stream's events; Done closes when the stream must end.
func (s *Sub) Events() <-chan Event  { return s.c }
func (s *Sub) Done() <-chan struct{} { return s.done }
func (s *Sub) close(reason string)   { s.once.Do(func() { s.reason = reason; close(s.done) }) }

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{rooms: map[roomKey]*room{}} }

// subscribe registers a stream before its membership is checked, so a
// removal committed meanwhile reaches it (and closes it).
// It returns nil once the hub is closed.
func (h *Hub) subscribe(project, conv, profile string) *Sub {
	s := &Sub{key: roomKey{project, conv}, profile: profile, c: make(chan Event, subBuffer), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	r := h.rooms[s.key]
	if r == nil {
		r = &room{subs: map[*Sub]struct{}{}}
		h.rooms[s.key] = r
	}
	r.subs[s] = struct{}{}
	return s
}

// Unsubscribe ends s and forgets it.
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.close("closed")
	if r := h.rooms[s.key]; r != nil {
		delete(r.subs, s)
		if len(r.subs) == 0 {
			delete(h.rooms, s.key)
		}
	}
}

// members sets a conversation's committed members and removes the streams
// of those no longer in it, each told so.
func (h *Hub) members(project, conv string, list []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[roomKey{project, conv}]
	if r == nil {
		return
	}
	r.members = slices.Clone(list)
	for s := range r.subs {
		if !slices.Contains(list, s.profile) {
			select {
			case s.c <- Event{Kind: "removed", Message: Message{ConversationID: conv}}:
			default:
			}
			s.close("removed from the conversation")
			delete(r.subs, s)
		}
	}
}

// deliver hands m to the conversation's member streams; a stream too far
// behind is closed rather than allowed to block the others.
func (h *Hub) deliver(m Message) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[roomKey{m.ProjectID, m.ConversationID}]
	if r == nil {
		return 0
	}
	n := 0
	for s := range r.subs {
		select {
		case <-s.done:
			continue
		default:
		}
		// A member removed before the message was committed does not get
		// it, even if the removal has not reached this replica yet.
		if m.audience != nil && !slices.Contains(m.audience, s.profile) {
			continue
		}
		select {
		case s.c <- Event{Kind: "message", Message: m}:
			n++
		default:
			s.close("too far behind: reconnect and page the history")
			delete(r.subs, s)
		}
	}
	return n
}

// Close ends every stream and refuses new ones: at shutdown, so that open
// streams do not hold the server past its drain (their clients reconnect
// to another replica and page the history for the gap).
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for k, r := range h.rooms {
		for s := range r.subs {
			s.close("server shutting down")
		}
		delete(h.rooms, k)
	}
}
