package subscription

import (
	"context"
	"encoding/json"
	"net/url"
	"time"

	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// Matching judges each event on the version it names, not on the
// resource as it is when the matcher gets to it: a matcher that lags
// behind the writes (load, a restart) must deliver a create that matched
// even if a later update made the resource stop matching, and must not
// judge an update on a later version. A delete is judged on the version
// it deleted (the last one before it). An event whose version is still
// current (the common case) is judged on the current index; any other on
// its version's index rows, computed from its JSON in history and put in
// place of the current ones inside a savepoint that is rolled back
// (store.Tx.MatchPast), so both are judged by the same SQL. Chained
// parameters and _has read the other resources as they are when matched.
//
// The work is per batch, not per event and subscription: for each
// project and resource type in the batch, one statement evaluates every
// distinct criteria (subscriptions sharing criteria share the verdict) on
// every event's resource at once.

// matchBatch bounds the events one matcher transaction takes.
const matchBatch = 200

// MatchOnce turns one batch of outbox events into deliveries.
func (s *Service) MatchOnce(ctx context.Context) (int, error) {
	if work, err := s.st.HasUnmatched(ctx); err != nil || !work {
		return 0, err
	}
	return s.st.MatchOutbox(ctx, matchBatch, func(tx *store.Tx, events []store.OutboxEvent) ([]store.Delivery, error) {
		return s.matchEvents(ctx, tx, events, s.now())
	})
}

// matchEvents turns events into deliveries, in event order and, per
// event, in subscription order.
func (s *Service) matchEvents(ctx context.Context, tx *store.Tx, events []store.OutboxEvent, now time.Time) ([]store.Delivery, error) {
	type group struct{ project, typ string }
	subs := map[string][]sub{} // project -> active subscriptions
	var order []group
	members := map[group][]int{} // indexes into events
	for i, e := range events {
		if _, ok := subs[e.ProjectID]; !ok {
			list, err := s.active(ctx, tx, e.ProjectID, now)
			if err != nil {
				return nil, err
			}
			subs[e.ProjectID] = list
		}
		g := group{e.ProjectID, e.Type}
		if _, ok := members[g]; !ok {
			order = append(order, g)
		}
		members[g] = append(members[g], i)
	}
	hits := make([]map[string]bool, len(events)) // per event: criteria -> matched
	for _, g := range order {
		if err := s.judge(ctx, tx, g.project, g.typ, subs[g.project], events, members[g], hits, now); err != nil {
			return nil, err
		}
	}
	var out []store.Delivery
	for i, e := range events {
		for _, sb := range subs[e.ProjectID] {
			if sb.Type != e.Type || !sb.Triggers[e.Interaction] || !hits[i][sb.Raw] {
				continue
			}
			out = append(out, store.Delivery{ProjectID: e.ProjectID, SubscriptionID: sb.ID, EventSeq: e.Seq, Type: e.Type, ResID: e.ID,
				VersionID: e.VersionID, Interaction: e.Interaction, NextAttemptAt: now, CreatedAt: now})
		}
	}
	return out, nil
}

// judged is the version an event is judged on: its own, or for a delete
// the one it deleted.
func judged(e store.OutboxEvent) int64 {
	if e.Interaction == "delete" {
		return e.VersionID - 1
	}
	return e.VersionID
}

// judge fills hits for the events at idx (all of one project and type):
// which criteria of the type's subscriptions each event's version matches.
func (s *Service) judge(ctx context.Context, tx *store.Tx, projectID, typ string, subs []sub, events []store.OutboxEvent, idx []int, hits []map[string]bool, now time.Time) error {
	var queries []*search.Query
	qi := map[string]int{} // criteria -> index in queries
	always := map[string]bool{}
	for _, sb := range subs {
		if sb.Type != typ {
			continue
		}
		if len(sb.Criteria.Clauses) == 0 && len(sb.Criteria.Filters) == 0 {
			always[sb.Raw] = true
		} else if _, ok := qi[sb.Raw]; !ok {
			qi[sb.Raw] = len(queries)
			queries = append(queries, sb.Criteria)
		}
	}
	if len(always) == 0 && len(queries) == 0 {
		return nil
	}
	// Only events some subscription triggers on are judged.
	wanted := func(e store.OutboxEvent) bool {
		for _, sb := range subs {
			if sb.Type == typ && sb.Triggers[e.Interaction] {
				return true
			}
		}
		return false
	}
	var ids []string
	seen := map[string]bool{}
	var todo []int
	for _, i := range idx {
		e := events[i]
		if !wanted(e) {
			continue
		}
		hits[i] = map[string]bool{}
		for raw := range always {
			hits[i][raw] = true
		}
		if len(queries) == 0 {
			continue
		}
		todo = append(todo, i)
		if !seen[e.ID] {
			seen[e.ID] = true
			ids = append(ids, e.ID)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	set := func(i int, match []bool) {
		for raw, q := range qi {
			if q < len(match) && match[q] {
				hits[i][raw] = true
			}
		}
	}
	current, err := tx.MatchCurrent(ctx, projectID, typ, queries, ids, now)
	if err != nil {
		return err
	}
	past := map[store.VersionKey][]int{} // versions no longer current -> events judged on them
	var keys []store.VersionKey
	for _, i := range todo {
		e := events[i]
		v, ok := current[e.ID]
		if ok && !v.Deleted && v.VersionID == judged(e) {
			set(i, v.Match)
			continue
		}
		k := store.VersionKey{ID: e.ID, VersionID: judged(e)}
		if _, ok := past[k]; !ok {
			keys = append(keys, k)
		}
		past[k] = append(past[k], i)
	}
	if len(keys) == 0 {
		return nil
	}
	return s.judgePast(ctx, tx, projectID, typ, queries, keys, func(k store.VersionKey, match []bool) {
		for _, i := range past[k] {
			set(i, match)
		}
	}, now)
}

// judgePast evaluates queries on past versions, in layers that hold one
// version per resource (a resource's versions cannot stand in together).
// A version missing from history, deleted or unreadable matches nothing.
func (s *Service) judgePast(ctx context.Context, tx *store.Tx, projectID, typ string, queries []*search.Query, keys []store.VersionKey,
	found func(store.VersionKey, []bool), now time.Time) error {
	rs, err := tx.PastVersions(ctx, projectID, typ, keys)
	if err != nil {
		return err
	}
	var layers [][]store.PastVersion
	for _, r := range rs {
		if r.Deleted {
			continue
		}
		rows, err := fhir.IndexRows(typ, r.Content)
		if err != nil {
			// It was indexed when written, so this cannot happen; should
			// it, failing the batch would hold back every later event.
			s.log.WarnContext(ctx, "subscription: index a past version", "err", err, "resource", typ+"/"+r.ID, "version", r.VersionID)
			continue
		}
		v := store.PastVersion{ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated, Index: rows}
		placed := false
		for l := range layers {
			if !hasID(layers[l], r.ID) {
				layers[l] = append(layers[l], v)
				placed = true
				break
			}
		}
		if !placed {
			layers = append(layers, []store.PastVersion{v})
		}
	}
	for _, layer := range layers {
		got, err := tx.MatchPast(ctx, projectID, typ, queries, layer, now)
		if err != nil {
			return err
		}
		for _, v := range layer {
			found(store.VersionKey{ID: v.ID, VersionID: v.VersionID}, got[v.ID])
		}
	}
	return nil
}

func hasID(vs []store.PastVersion, id string) bool {
	for _, v := range vs {
		if v.ID == id {
			return true
		}
	}
	return false
}

// active loads the project's active subscriptions.
func (s *Service) active(ctx context.Context, tx *store.Tx, projectID string, now time.Time) ([]sub, error) {
	q, err := search.ParseQuery("Subscription", url.Values{"status": {"active"}}, false)
	if err != nil {
		return nil, err
	}
	rows, _, err := tx.Search(ctx, store.SearchRequest{ProjectID: projectID, Query: q, Count: 10000, Now: now})
	if err != nil {
		return nil, err
	}
	var out []sub
	for _, r := range rows {
		var m map[string]any
		if json.Unmarshal(r.Content, &m) != nil {
			continue
		}
		sb, err := parse(m)
		if err != nil || !sb.End.IsZero() && !sb.End.After(now) {
			continue
		}
		out = append(out, sb)
	}
	return out, nil
}
