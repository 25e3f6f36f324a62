package conversation

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// A stream delivers a conversation's messages in their order (Seq), each
// once: live events arrive per process in commit order but, across
// batches and replicas, not always in number order, so a stream that gets
// a message ahead of ones it has not had reads those from the record
// first (a numbered message is committed only after every lower number
// is). A reconnect names the last number it had (Last-Event-ID) and gets
// what it missed the same way, at most MaxResume at a time.

// MaxResume bounds the messages one (re)connection replays; a client
// further behind gets them in several reconnections (EventSource does
// that by itself) or pages the history.
const MaxResume = 500

// ParseLastEventID reads a Last-Event-ID header (outside input): "" is no
// position.
func ParseLastEventID(v string) (int64, bool, error) {
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || len(v) > 19 || strings.TrimLeft(v, "0123456789") != "" {
		return 0, false, fault.Invalid("Last-Event-ID must be a message number from this stream")
	}
	return n, true, nil
}

// Start fixes sub's position: after the message numbered after when the
// client names one (returning, oldest first, up to MaxResume messages it
// missed; more reports that others remain, so the stream should end after
// these and the client reconnect), else the conversation's latest.
func (s *Service) Start(ctx context.Context, sub *Sub, after int64, resume bool) (evs []Event, more bool, err error) {
	if !resume {
		last, err := s.fhir.Store().ConversationLastSeq(ctx, sub.key.project, sub.key.conv)
		if err != nil {
			return nil, false, err
		}
		sub.last = last
		return nil, false, nil
	}
	sub.last = after
	return s.missed(ctx, sub, MaxResume)
}

// Position is the number of the last message sub has passed, those its
// holder was not a member for included.
func (sub *Sub) Position() int64 { return sub.last }

// Order places a live event in sub's order: nothing for a message it has
// had, else the message preceded by those it missed. An error ends the
// stream (the client reconnects from its last event).
func (s *Service) Order(ctx context.Context, sub *Sub, ev Event) ([]Event, error) {
	seq := ev.Message.Seq
	if ev.Kind != "message" || seq == 0 {
		return []Event{ev}, nil
	}
	if seq <= sub.last {
		return nil, nil
	}
	if gap := seq - sub.last - 1; gap > 0 {
		if gap > MaxResume {
			return nil, errors.New("too far behind: reconnect with Last-Event-ID")
		}
		evs, _, err := s.missed(ctx, sub, int(gap))
		if err != nil {
			return nil, err
		}
		if seq <= sub.last { // the record had it too
			return evs, nil
		}
		sub.last = seq
		return append(evs, ev), nil
	}
	sub.last = seq
	return []Event{ev}, nil
}

// missed reads up to limit messages after sub.last from the record, those
// whose audience had sub's profile, and advances sub.last past them all.
func (s *Service) missed(ctx context.Context, sub *Sub, limit int) ([]Event, bool, error) {
	refs, err := s.fhir.Store().ConversationMessagesAfter(ctx, sub.key.project, sub.key.conv, sub.last, limit+1)
	if err != nil {
		return nil, false, err
	}
	more := len(refs) > limit
	refs = refs[:min(len(refs), limit)]
	var evs []Event
	for _, ref := range refs {
		r, err := s.fhir.Store().GetResource(ctx, sub.key.project, "Communication", ref.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, false, err
		}
		sub.last = ref.Seq
		if err != nil || r.Deleted {
			continue // deleted since: the record no longer has it
		}
		m, err := fromCommunication(r.ID, r.Content)
		if err != nil {
			return nil, false, err
		}
		if !slices.Contains(m.audience, sub.profile) {
			continue
		}
		m.ProjectID, m.ConversationID, m.Seq = sub.key.project, sub.key.conv, ref.Seq
		evs = append(evs, Event{Kind: "message", Message: m})
	}
	return evs, more, nil
}
