package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/schema"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// ErrGone is a read of a deleted resource (410).
var ErrGone = errors.New("gone")

// Read returns the current version. Errors: NotFound, Gone, Forbidden.
func (s *Service) Read(ctx context.Context, p auth.Principal, typ, id string) (Resource, error) {
	if err := checkType(typ); err != nil {
		return Resource{}, err
	}
	if err := s.requireCovered(ctx, p, "FHIR:Read", typ, id); err != nil {
		return Resource{}, err
	}
	r, err := s.current(ctx, p.ProjectID, typ, id)
	if err == nil {
		err = s.binaryReadable(ctx, p, r)
	}
	return r, err
}

// current returns the current version, unchecked: callers decide first.
func (s *Service) current(ctx context.Context, projectID, typ, id string) (Resource, error) {
	r, err := s.store.GetResource(ctx, projectID, typ, id)
	if errors.Is(err, store.ErrNotFound) {
		return Resource{}, fault.NotFound("%s/%s is not known", typ, id)
	}
	if err != nil {
		return Resource{}, err
	}
	if r.Deleted {
		return fromStore(r), fault.Wrap(fault.ErrNotFound, ErrGone, "%s/%s was deleted", typ, id)
	}
	return fromStore(r), nil
}

// VRead returns one version.
func (s *Service) VRead(ctx context.Context, p auth.Principal, typ, id, vid string) (Resource, error) {
	if err := checkType(typ); err != nil {
		return Resource{}, err
	}
	if err := s.requireCovered(ctx, p, "FHIR:Read", typ, id); err != nil {
		return Resource{}, err
	}
	v, err := strconv.ParseInt(vid, 10, 64)
	if err != nil || v < 1 {
		return Resource{}, fault.NotFound("%s/%s has no version %q", typ, id, vid)
	}
	r, err := s.store.GetVersion(ctx, p.ProjectID, typ, id, v)
	if errors.Is(err, store.ErrNotFound) {
		return Resource{}, fault.NotFound("%s/%s has no version %d", typ, id, v)
	}
	if err != nil {
		return Resource{}, err
	}
	if r.Deleted {
		return fromStore(r), fault.Wrap(fault.ErrNotFound, ErrGone, "version %d of %s/%s is a deletion", v, typ, id)
	}
	return fromStore(r), s.binaryReadable(ctx, p, fromStore(r))
}

// Create stores a new resource with a server-assigned id. With ifNoneExist
// (a search query) an existing single match is returned instead (created
// false); several matches are a 412.
func (s *Service) Create(ctx context.Context, p auth.Principal, typ string, body []byte, ifNoneExist string) (Resource, bool, error) {
	if err := checkType(typ); err != nil {
		return Resource{}, false, err
	}
	a, err := s.decide(ctx, p, "FHIR:Create", typ, "")
	if err != nil {
		return Resource{}, false, err
	}
	m, err := validate(body, typ)
	if err != nil {
		return Resource{}, false, err
	}
	if ifNoneExist != "" {
		found, err := s.conditionalMatches(ctx, p, typ, ifNoneExist)
		if err != nil {
			return Resource{}, false, err
		}
		switch len(found) {
		case 0:
		case 1:
			return found[0], false, nil
		default:
			return Resource{}, false, fault.Wrap(fault.ErrPrecondition, nil, "If-None-Exist matched %d resources; it must match at most one", len(found))
		}
	}
	r, err := s.write(ctx, p, typ, newID(), m, "POST", 0, false, a)
	return r, err == nil, err
}

// conditionalMatches runs a conditional interaction's search as the caller.
func (s *Service) conditionalMatches(ctx context.Context, p auth.Principal, typ, query string) ([]Resource, error) {
	vals, err := url.ParseQuery(strings.TrimPrefix(query, typ+"?"))
	if err != nil {
		return nil, fault.Invalid("the condition %q is not a valid search", query)
	}
	q, err := search.ParseQuery(typ, vals, false)
	if err != nil {
		return nil, searchErr(err)
	}
	q.Count = 2
	page, err := s.search(ctx, p, q, false)
	if err != nil {
		return nil, err
	}
	return page.Matches, nil
}

// Update replaces a resource, creating it at that id if it does not exist.
// ifMatch is the version the client expects ("" for none): a mismatch is 412.
func (s *Service) Update(ctx context.Context, p auth.Principal, typ, id string, body []byte, ifMatch string) (Resource, bool, error) {
	if err := checkType(typ); err != nil {
		return Resource{}, false, err
	}
	if err := checkID(id); err != nil {
		return Resource{}, false, err
	}
	m, err := validate(body, typ)
	if err != nil {
		return Resource{}, false, err
	}
	if bid, _ := m["id"].(string); bid != id {
		return Resource{}, false, fault.Invalid("the resource's id %q does not match the URL's %q", bid, id)
	}
	expect, err := parseIfMatch(ifMatch)
	if err != nil {
		return Resource{}, false, err
	}
	cur, err := s.store.GetResource(ctx, p.ProjectID, typ, id)
	exists := err == nil && !cur.Deleted
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Resource{}, false, err
	}
	var a access
	if exists {
		if err := s.requireCovered(ctx, p, "FHIR:Update", typ, id); err != nil {
			return Resource{}, false, err
		}
		if a, err = s.decide(ctx, p, "FHIR:Update", typ, id); err != nil {
			return Resource{}, false, err
		}
	} else if a, err = s.decide(ctx, p, "FHIR:Create", typ, ""); err != nil {
		return Resource{}, false, err
	}
	// Whether it created is the write's finding: a concurrent PUT may
	// have created the resource since the read above.
	r, created, err := s.writeCreated(ctx, p, typ, id, m, "PUT", expect, true, a)
	return r, created, err
}

func parseIfMatch(h string) (int64, error) {
	if h == "" {
		return 0, nil
	}
	v := strings.TrimPrefix(strings.TrimSpace(h), "W/")
	v = strings.Trim(v, `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, fault.Invalid(`If-Match must be a version ETag such as W/"3"`)
	}
	return n, nil
}

// Delete marks a resource deleted (history kept). Deleting a missing or
// already deleted resource succeeds.
func (s *Service) Delete(ctx context.Context, p auth.Principal, typ, id string) error {
	if err := checkType(typ); err != nil {
		return err
	}
	if err := s.requireCovered(ctx, p, "FHIR:Delete", typ, id); err != nil {
		return err
	}
	return s.store.WithTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.GetResourceForUpdate(ctx, p.ProjectID, typ, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil || cur.Deleted {
			return err
		}
		return tx.PutResource(ctx, store.Resource{ProjectID: p.ProjectID, Type: typ, ID: id, VersionID: cur.VersionID + 1,
			LastUpdated: s.now(), Deleted: true, Method: "DELETE", Content: cur.Content}, nil)
	})
}

// write stores a new version of m in one transaction: checking the expected
// version, stamping meta, indexing, and (with a conditional access) checking
// that the new content still falls inside the caller's conditions.
func (s *Service) write(ctx context.Context, p auth.Principal, typ, id string, m map[string]any, method string, expect int64, allowCreate bool, a access) (Resource, error) {
	r, _, err := s.writeCreated(ctx, p, typ, id, m, method, expect, allowCreate, a)
	return r, err
}

// writeCreated is write that also reports whether the resource was new
// (absent or deleted before this version).
func (s *Service) writeCreated(ctx context.Context, p auth.Principal, typ, id string, m map[string]any, method string, expect int64, allowCreate bool, a access) (Resource, bool, error) {
	if typ == "Binary" {
		if err := s.binaryContextAllowed(ctx, p, m); err != nil {
			return Resource{}, false, err
		}
	}
	if pc := s.prechecks[typ]; pc != nil && p.Kind != KindSystem {
		if err := pc(ctx, p, m); err != nil {
			return Resource{}, false, err
		}
	}
	// SQLite has one writer: serialising the JSON and extracting the index
	// rows (FHIRPath over the whole resource) happen here, concurrently, for
	// the version the write will most likely get; the transaction redoes
	// them only if another write got in between.
	pre, err := s.prepare(ctx, p, typ, id, m, method)
	if err != nil {
		return Resource{}, false, err
	}
	var out store.Resource
	var created bool
	for attempt := 1; ; attempt++ {
		err = s.writeOnce(ctx, p, typ, id, m, method, expect, allowCreate, a, pre, &out, &created)
		// A write without If-Match that lost a race to create the resource
		// (both inserted version 1) runs again: it then locks the winner's
		// row and follows it, as it would have had it come later. Inside a
		// bundle's transaction it cannot: PostgreSQL aborted the whole of it.
		if err == nil || expect != 0 || !errors.Is(err, store.ErrConflict) || s.store.InTx() || attempt == writeAttempts {
			break
		}
	}
	if err != nil {
		return Resource{}, false, err
	}
	if s.committed != nil {
		s.committed()
	}
	return fromStore(out), created, nil
}

// writeAttempts bounds write's runs: with the row locked only the first
// writer of a new id can race (once per resource), so two would do.
const writeAttempts = 3

// writeOnce is one transaction of write, its result in out.
func (s *Service) writeOnce(ctx context.Context, p auth.Principal, typ, id string, m map[string]any, method string, expect int64, allowCreate bool, a access, pre preparedWrite, out *store.Resource, created *bool) error {
	if method == "POST" && expect == 0 && pre.version == 1 && a.allowed == nil {
		// A plain create reads nothing and checks nothing inside its
		// transaction: the store writes it in one go (on PostgreSQL one
		// statement, without BEGIN and COMMIT).
		*created = true
		*out = store.Resource{ProjectID: p.ProjectID, Type: typ, ID: id, VersionID: 1, LastUpdated: pre.at, Method: method, Content: pre.content}
		if err := s.store.CreateResource(ctx, *out, pre.rows); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fault.Wrap(fault.ErrConflict, err, "%s/%s was changed concurrently; retry", typ, id)
			}
			return err
		}
		return nil
	}
	// Replayable: everything it sets outside tx (out) is set again by a
	// later run.
	return s.store.WithReplayableTx(ctx, func(tx *store.Tx) error {
		version := int64(1)
		var cur store.Resource
		err := store.ErrNotFound
		// A POST's id is new (time-ordered random): its INSERT proves it.
		// Other writes lock the row (PostgreSQL): concurrent writers of one
		// resource then take turns rather than fail on a stale version.
		if method != "POST" {
			cur, err = tx.GetResourceForUpdate(ctx, p.ProjectID, typ, id)
		}
		*created = err != nil || cur.Deleted
		switch {
		case err == nil:
			version = cur.VersionID + 1
		case errors.Is(err, store.ErrNotFound):
			if !allowCreate && method != "POST" {
				return fault.NotFound("%s/%s is not known", typ, id)
			}
		default:
			return err
		}
		if expect != 0 && (err != nil || cur.VersionID != expect) {
			return fault.Wrap(fault.ErrPrecondition, nil, "version conflict: If-Match names version %d but %s/%s is at version %d", expect, typ, id, version-1)
		}
		w := pre
		if w.version != version {
			if hook := s.hooks[typ]; hook != nil {
				if err := hook(ctx, tx, p, id, m); err != nil {
					return err
				}
			}
			if w, err = prepared(typ, id, m, version, s.now()); err != nil {
				return err
			}
		}
		*out = store.Resource{ProjectID: p.ProjectID, Type: typ, ID: id, VersionID: version, LastUpdated: w.at, Method: method, Content: w.content}
		if err := tx.PutResource(ctx, *out, w.rows); err != nil {
			switch {
			case errors.Is(err, store.ErrConflict) && expect != 0:
				// The version If-Match named was replaced meanwhile.
				return fault.Wrap(fault.ErrPrecondition, err, "version conflict: If-Match names version %d but %s/%s was changed concurrently", expect, typ, id)
			case errors.Is(err, store.ErrConflict):
				return fault.Wrap(fault.ErrConflict, err, "%s/%s was changed concurrently; retry", typ, id)
			}
			return err
		}
		if a.allowed != nil {
			// The new content must still be inside the caller's conditions.
			matched, _, err := tx.Search(ctx, store.SearchRequest{ProjectID: p.ProjectID, Query: &search.Query{ResourceType: typ},
				Allowed: a.allowed, IDs: []string{id}, Count: 1, Now: w.at})
			if err != nil {
				return err
			}
			if len(matched) == 0 {
				return fault.Forbidden("access denied: the resource would fall outside the conditions of the policy that allows this write")
			}
		}
		return nil
	})
}

// preparedWrite is a version's stored form: content and index rows.
type preparedWrite struct {
	version int64 // 0: nothing prepared
	at      time.Time
	content []byte
	rows    []store.IndexRow
}

func prepared(typ, id string, m map[string]any, version int64, at time.Time) (preparedWrite, error) {
	stamp(m, id, version, at)
	content, err := json.Marshal(m)
	if err != nil {
		return preparedWrite{}, err
	}
	rows, err := index(typ, m)
	if err != nil {
		return preparedWrite{}, err
	}
	return preparedWrite{version: version, at: at, content: content, rows: rows}, nil
}

// prepare builds the write outside the transaction for the version it
// will probably get: 1 for a POST, the current one plus one otherwise.
// Types with a write hook (which may change the resource inside the
// transaction) are prepared inside it.
func (s *Service) prepare(ctx context.Context, p auth.Principal, typ, id string, m map[string]any, method string) (preparedWrite, error) {
	if s.hooks[typ] != nil {
		return preparedWrite{}, nil
	}
	version := int64(1)
	if method != "POST" {
		cur, err := s.store.GetResource(ctx, p.ProjectID, typ, id)
		switch {
		case err == nil:
			version = cur.VersionID + 1
		case !errors.Is(err, store.ErrNotFound):
			return preparedWrite{}, err
		}
	}
	return prepared(typ, id, m, version, s.now())
}

// KindSystem marks Ward's own writes (SystemUpdate): no policy applies and
// hooks know not to treat Ward as the author.
const KindSystem auth.Kind = "system"

// SystemUpdate lets Ward itself change a stored resource (a Subscription's
// status, say): mutate edits the current content, which is then validated
// and written as a new version, without a caller's policy.
func (s *Service) SystemUpdate(ctx context.Context, projectID, typ, id string, mutate func(m map[string]any) error) (Resource, error) {
	cur, err := s.store.GetResource(ctx, projectID, typ, id)
	if err != nil {
		return Resource{}, err
	}
	m, err := decode(cur.Content)
	if err != nil {
		return Resource{}, err
	}
	if err := mutate(m); err != nil {
		return Resource{}, err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return Resource{}, err
	}
	if m, err = validate(body, typ); err != nil {
		return Resource{}, err
	}
	return s.write(ctx, auth.Principal{ProjectID: projectID, Kind: KindSystem}, typ, id, m, "PUT", cur.VersionID, false, access{})
}

// SystemCreate stores a new resource of the type its resourceType names,
// without a caller's policy: for resources Ward creates on its own behalf
// (a user's profile on invitation).
func (s *Service) SystemCreate(ctx context.Context, projectID string, body []byte) (Resource, error) {
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(body, &head); err != nil || head.ResourceType == "" {
		return Resource{}, fault.Invalid("the resource must be a JSON object with a resourceType")
	}
	if err := checkType(head.ResourceType); err != nil {
		return Resource{}, err
	}
	m, err := validate(body, head.ResourceType)
	if err != nil {
		return Resource{}, err
	}
	return s.write(ctx, auth.Principal{ProjectID: projectID, Kind: KindSystem}, head.ResourceType, newID(), m, "POST", 0, false, access{})
}

// ErrHooked is PrepareSystemCreate's answer for a type whose writes run a
// hook inside their transaction: write those one at a time.
var ErrHooked = errors.New("fhir: this type's writes run a hook")

// PrepareSystemCreate validates a resource Ward creates on its own behalf
// and returns its stored form (version 1 at a new id, stamped now) and
// index rows, for a caller that writes many in one transaction
// (store.Tx.CreateResources) and then calls Committed. Errors: Invalid,
// ErrHooked.
func (s *Service) PrepareSystemCreate(projectID string, body []byte) (store.Resource, []store.IndexRow, error) {
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(body, &head); err != nil || head.ResourceType == "" {
		return store.Resource{}, nil, fault.Invalid("the resource must be a JSON object with a resourceType")
	}
	if err := checkType(head.ResourceType); err != nil {
		return store.Resource{}, nil, err
	}
	if s.hooks[head.ResourceType] != nil || head.ResourceType == "Binary" {
		return store.Resource{}, nil, ErrHooked
	}
	m, err := validate(body, head.ResourceType)
	if err != nil {
		return store.Resource{}, nil, err
	}
	id := newID()
	w, err := prepared(head.ResourceType, id, m, 1, s.now())
	if err != nil {
		return store.Resource{}, nil, err
	}
	return store.Resource{ProjectID: projectID, Type: head.ResourceType, ID: id, VersionID: 1, LastUpdated: w.at, Method: "POST", Content: w.content}, w.rows, nil
}

// PrepareSystemPut validates a resource Ward writes on its own behalf at
// a given id and returns its stored form as version 1 (stamped now, Method
// PUT, so the outbox calls it a create) and its index rows, for a caller
// that writes many at once (store.Tx.CreateResources, which fails with
// ErrConflict should the id be taken) and then calls Committed. Errors:
// Invalid, ErrHooked.
func (s *Service) PrepareSystemPut(projectID string, put SystemPut) (store.Resource, []store.IndexRow, error) {
	if err := checkType(put.Type); err != nil {
		return store.Resource{}, nil, err
	}
	if s.hooks[put.Type] != nil || put.Type == "Binary" {
		return store.Resource{}, nil, ErrHooked
	}
	m, err := validate(put.Body, put.Type)
	if err != nil {
		return store.Resource{}, nil, fmt.Errorf("%s/%s: %w", put.Type, put.ID, err)
	}
	// A put that replaces version IfVersion writes the next one; store's
	// PutResource refuses it (ErrConflict) should that version be stale.
	version := put.IfVersion + 1
	w, err := prepared(put.Type, put.ID, m, version, s.now())
	if err != nil {
		return store.Resource{}, nil, err
	}
	return store.Resource{ProjectID: projectID, Type: put.Type, ID: put.ID, VersionID: version, LastUpdated: w.at, Method: "PUT", Content: w.content}, w.rows, nil
}

// PrepareSystemResource is PrepareSystemPut of json.Marshal(m), for a
// resource Ward builds itself in decoded form (map[string]any, []any,
// string, json.Number, bool, nil: what decoding with UseNumber gives):
// the same checks, stored JSON and index rows, without encoding m,
// decoding it again and encoding that (a fifth of the CPU of a lab
// result). m must hold nothing else; the validation may drop its empty
// objects and arrays, as it would from a decoded body, but m is not
// stamped. A value the round trip would change or refuse (a string with
// invalid UTF-8 or a control character, a float64, another type) and an
// invalid resource take PrepareSystemPut's own path, so that what is
// stored and the errors are the same. Errors: Invalid, ErrHooked.
func (s *Service) PrepareSystemResource(projectID, typ, id string, m map[string]any, ifVersion int64) (store.Resource, []store.IndexRow, error) {
	if err := checkType(typ); err != nil {
		return store.Resource{}, nil, err
	}
	if s.hooks[typ] != nil || typ == "Binary" {
		return store.Resource{}, nil, ErrHooked
	}
	slow := func() (store.Resource, []store.IndexRow, error) {
		body, err := json.Marshal(m)
		if err != nil {
			return store.Resource{}, nil, fault.Invalid("%s/%s: %v", typ, id, err)
		}
		return s.PrepareSystemPut(projectID, SystemPut{Type: typ, ID: id, Body: body, IfVersion: ifVersion})
	}
	if rt, _ := m["resourceType"].(string); rt != typ || !roundTrips(m, 0) {
		return slow()
	}
	_, issues := schema.ValidateDecoded(nil, m)
	for _, is := range issues {
		if is.Severity == "error" {
			// Its errors as PrepareSystemPut words and orders them.
			return slow()
		}
	}
	// Stamped on a copy: the caller's m stays as it built it (for a
	// fallback that writes it as a body).
	c := maps.Clone(m)
	if meta, ok := c["meta"].(map[string]any); ok {
		c["meta"] = maps.Clone(meta)
	}
	version := ifVersion + 1
	w, err := prepared(typ, id, c, version, s.now())
	if err != nil {
		return store.Resource{}, nil, err
	}
	return store.Resource{ProjectID: projectID, Type: typ, ID: id, VersionID: version, LastUpdated: w.at, Method: "PUT", Content: w.content}, w.rows, nil
}

// roundTrips reports whether v decodes from its JSON encoding (with
// UseNumber) as itself, and that encoding passes checkJSONText: only the
// decoded types, valid UTF-8 without control characters (but tab, line
// feed and carriage return), valid numbers, and no deeper than the
// validator's own bound.
func roundTrips(v any, depth int) bool {
	if depth > 64 {
		return false
	}
	switch x := v.(type) {
	case nil, bool:
		return true
	case string:
		return plainText(x)
	case json.Number:
		return jsonNumber(string(x))
	case map[string]any:
		for k, e := range x {
			if !plainText(k) || !roundTrips(e, depth+1) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range x {
			if !roundTrips(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// plainText: valid UTF-8 with no control character but \t, \n and \r (in
// UTF-8 a byte below 0x20 is always that character).
func plainText(s string) bool {
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	return ascii || utf8.ValidString(s)
}

// jsonNumber reports whether s is a JSON number (RFC 8259's grammar), as
// encoding/json requires of a json.Number it encodes.
func jsonNumber(s string) bool {
	i := 0
	digits := func() bool {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}

// Committed tells the service that writes made outside it (with
// PrepareSystemCreate) have committed: it wakes what reacts to changes.
func (s *Service) Committed() {
	if s.committed != nil {
		s.committed()
	}
}

// FromStore is the API form of a stored resource.
func FromStore(r store.Resource) Resource { return fromStore(r) }

// SystemPut is one resource SystemPutAll writes: its type, id and content.
type SystemPut struct {
	Type, ID string
	Body     []byte
	// IfVersion, when not 0, is the version the write replaces: a
	// resource read before the transaction is not overwritten if it
	// changed meanwhile (ErrPrecondition).
	IfVersion int64
}

// SystemPutAll writes each resource at its id (creating it, or replacing
// the current version), without a caller's policy, in one transaction: for
// what Ward receives on a project's behalf (lab results over HL7 v2), where
// either all of a message is stored or none of it. As for single writes,
// the JSON and index rows are prepared before the transaction (for new
// ids, the usual case), so the single SQLite writer only writes. Each of
// also runs in that transaction after the writes (the caller's own rows
// that go with them).
func (s *Service) SystemPutAll(ctx context.Context, projectID string, puts []SystemPut, also ...func(context.Context, *store.Tx) error) error {
	p := auth.Principal{ProjectID: projectID, Kind: KindSystem}
	ms := make([]map[string]any, len(puts))
	pres := make([]preparedWrite, len(puts))
	for i, put := range puts {
		if err := checkType(put.Type); err != nil {
			return err
		}
		m, err := validate(put.Body, put.Type)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", put.Type, put.ID, err)
		}
		ms[i] = m
		if s.hooks[put.Type] == nil {
			if pres[i], err = prepared(put.Type, put.ID, m, 1, s.now()); err != nil {
				return err
			}
		}
	}
	err := s.store.WithReplayableTx(ctx, func(tx *store.Tx) error {
		txSvc := *s
		txSvc.store = &tx.Store
		for i, put := range puts {
			var out store.Resource
			var created bool
			if err := txSvc.writeOnce(ctx, p, put.Type, put.ID, ms[i], "PUT", put.IfVersion, true, access{}, pres[i], &out, &created); err != nil {
				return err
			}
		}
		for _, f := range also {
			if err := f(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s.committed != nil {
		s.committed()
	}
	return nil
}
