// Package fhir is Ward's FHIR R4 REST capability: validation, versions,
// history, search, batch and transaction, each interaction checked against
// the caller's access policy.
package fhir

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/schema"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/policy"
	"github.com/wardhealth/ward/internal/store"
)

// Authorizer decides one action on one resource for a principal.
// iam.Service implements it.
type Authorizer interface {
	Authorize(ctx context.Context, p auth.Principal, action, resource string) (policy.Decision, error)
	// PolicySet is the principal's compiled policy (for the ids its Deny
	// rules hide from searches).
	PolicySet(ctx context.Context, p auth.Principal) (*policy.Set, error)
}

// Config holds the FHIR API's limits.
type Config struct {
	DefaultCount int // _count when absent
	MaxCount     int // largest _count honoured
	// TotalLimit bounds the count behind Bundle.total when _total is
	// absent or estimate: up to it the total is exact, past it left out
	// (_total=accurate counts every match). 0: DefaultTotalLimit.
	TotalLimit int
	// MaxResponseBytes bounds a search response (0: no limit); Oystehr's is 6 MB.
	MaxResponseBytes int
	// Binaries holds the contents of Binary resources larger than
	// InlineBinaryBytes (DefaultInlineBinaryBytes when 0); nil: such
	// contents are refused.
	Binaries          BinaryStore
	InlineBinaryBytes int
}

// Service is the FHIR capability.
type Service struct {
	store *store.Store
	authz Authorizer
	cfg   Config
	now   func() time.Time
	hooks map[string]WriteHook
	// prechecks run before a write's transaction (OnPrecheck).
	prechecks map[string]Precheck
	// committed, if set, runs after every committed write (to wake the
	// subscription matcher instead of waiting for its next poll).
	committed func()
	// indexed holds, by indexJobs name, whether every resource has the
	// rows that job writes (BackfillIndex); shared by the copies bound to a
	// transaction, never changed after New.
	indexed map[string]*atomic.Bool
	// termCache keeps parsed terminology resources (termcache.go); shared by copies.
	termCache *termCache
}

// indexJobs are the one-time jobs that give resources written before Ward
// indexed some parameters their rows (fhir_jobs, added by the migration
// that began to index them), in the order they run.
var indexJobs = []indexJob{
	{name: "search-index-0019", what: "composite search parameters and Location near",
		tables: []string{"fhir_idx_composite", "fhir_idx_number"},
		params: func() []string {
			var params []string
			for _, typ := range search.ResourceTypes() {
				for _, p := range search.Params(typ) {
					if (p.Composite() || p.IsNear()) && !slices.Contains(params, p.Name) {
						params = append(params, p.Name)
					}
				}
			}
			return params
		},
		types: func() []string {
			return slices.Compact(slices.Sorted(slices.Values(append(search.CompositeTypes(), "Location"))))
		}},
	{name: "search-index-0020", what: "identifier types (:of-type)",
		tables: []string{"fhir_idx_token"},
		params: func() []string {
			var params []string
			for _, typ := range search.ResourceTypes() {
				for _, p := range search.Params(typ) {
					if p.Type == "token" && !slices.Contains(params, p.Name+search.OfTypeSuffix) {
						params = append(params, p.Name+search.OfTypeSuffix)
					}
				}
			}
			return params
		},
		types: search.ResourceTypes},
	{name: "search-index-0021", what: "narratives (_text)",
		tables: []string{"fhir_idx_string"},
		params: func() []string { return []string{search.TextParam.Name} },
		types:  search.ResourceTypes},
	{name: "search-index-0023", what: "the texts of codes (:text)",
		tables: []string{"fhir_idx_token"},
		params: func() []string {
			var params []string
			for _, typ := range search.ResourceTypes() {
				for _, p := range search.Params(typ) {
					if p.Type == "token" && !slices.Contains(params, p.Name) {
						params = append(params, p.Name)
					}
				}
			}
			return params
		},
		types: search.ResourceTypes},
	{name: binaryContextJob, what: "Binary security contexts",
		tables: []string{"fhir_idx_reference"},
		params: func() []string { return []string{search.SecurityContextParam} },
		types:  func() []string { return []string{"Binary"} }},
}

// binaryContextJob indexes Binary.securityContext (binaryContexts).
const binaryContextJob = "search-index-0045"

// indexJob is one of indexJobs.
type indexJob struct {
	name, what string
	tables     []string
	params     func() []string // the rows it writes, by parameter name
	types      func() []string // the resource types that may have them
}

// jobFor names the job a search on c waits for, "" for none.
func jobFor(c *search.Clause) string {
	switch {
	case c.Param == nil:
		return ""
	case c.Param.Type == "composite" || c.Param.IsNear():
		return "search-index-0019"
	case c.Modifier == "of-type":
		return "search-index-0020"
	case c.Param == search.TextParam:
		return "search-index-0021"
	case c.Modifier == "text":
		return "search-index-0023"
	case c.Param.Name == search.SecurityContextParam && c.Param.Base == "Binary":
		return binaryContextJob
	}
	return ""
}

// BackfillIndex runs indexJobs, once each (a no-op afterwards); until a
// job is done, searches on its parameters are refused as unavailable rather
// than answered in part. It returns how many resources the jobs indexed.
func (s *Service) BackfillIndex(ctx context.Context) (int, error) {
	total := 0
	for _, j := range indexJobs {
		params := j.params()
		n, err := s.store.Backfill(ctx, store.IndexBackfill{
			Job: j.name, Tables: j.tables, Params: params, Types: j.types(),
			Rows: func(typ string, content []byte) ([]store.IndexRow, error) {
				m, err := decode(content)
				if err != nil {
					return nil, err
				}
				rows, err := index(typ, m)
				if err != nil {
					return nil, err
				}
				return slices.DeleteFunc(rows, func(r store.IndexRow) bool { return !slices.Contains(params, r.Param) }), nil
			},
		})
		total += n
		if err != nil {
			return total, err
		}
		s.indexed[j.name].Store(true)
	}
	return total, nil
}

// backfilled is nil once searches on the parameters of job are answered
// in full.
func (s *Service) backfilled(ctx context.Context, job string) error {
	flag := s.indexed[job]
	if flag.Load() {
		return nil
	}
	done, err := s.store.JobDone(ctx, job)
	if err != nil {
		return err
	}
	if !done {
		for _, j := range indexJobs {
			if j.name == job {
				return fault.Unavailable("%s are being indexed; try again shortly", j.what)
			}
		}
	}
	flag.Store(true)
	return nil
}

// OnCommit registers fn to run after each committed write; it must not
// block. Call before serving.
func (s *Service) OnCommit(fn func()) { s.committed = fn }

// WriteHook checks or adjusts a resource of one type before each write
// (create, update, patch, bundle entries), inside the write's transaction;
// an error refuses the write. Subscriptions use it to validate criteria and
// set their status.
type WriteHook func(ctx context.Context, tx *store.Tx, p auth.Principal, id string, m map[string]any) error

// OnWrite registers the hook for typ. Call before serving.
func (s *Service) OnWrite(typ string, h WriteHook) {
	if s.hooks == nil {
		s.hooks = map[string]WriteHook{}
	}
	s.hooks[typ] = h
}

// Precheck checks a resource of one type before its write's transaction
// begins (create, update, patch, batch entries; a transaction bundle's
// entries within the bundle's transaction), for checks that wait on the
// network: a DNS lookup must not hold the database writer, which every
// other write waits for. An error refuses the write. Ward's own writes
// (KindSystem) skip it.
type Precheck func(ctx context.Context, p auth.Principal, m map[string]any) error

// OnPrecheck registers the precheck for typ. Call before serving.
func (s *Service) OnPrecheck(typ string, h Precheck) {
	if s.prechecks == nil {
		s.prechecks = map[string]Precheck{}
	}
	s.prechecks[typ] = h
}

// Store is the service's store, for capabilities built on FHIR data.
func (s *Service) Store() *store.Store { return s.store }

// DefaultTotalLimit is Config.TotalLimit's default: the count of a
// default search stops there, so a page costs about the same whether a
// thousand or a million resources match (docs/search.md).
const DefaultTotalLimit = 1000

// New returns a Service.
func New(st *store.Store, authz Authorizer, cfg Config, now func() time.Time) *Service {
	if cfg.DefaultCount <= 0 {
		cfg.DefaultCount = 20
	}
	if cfg.MaxCount <= 0 {
		cfg.MaxCount = 1000
	}
	if cfg.TotalLimit <= 0 {
		cfg.TotalLimit = DefaultTotalLimit
	}
	if cfg.InlineBinaryBytes <= 0 {
		cfg.InlineBinaryBytes = DefaultInlineBinaryBytes
	}
	indexed := map[string]*atomic.Bool{}
	for _, j := range indexJobs {
		indexed[j.name] = new(atomic.Bool)
	}
	return &Service{store: st, authz: authz, cfg: cfg, now: now, indexed: indexed, termCache: newTermCache()}
}

// Resource is a decoded resource plus its stored version data.
type Resource struct {
	Type        string
	ID          string
	VersionID   int64
	LastUpdated time.Time
	Deleted     bool
	Method      string // history entries: the interaction that made the version
	Content     []byte
}

func fromStore(r store.Resource) Resource {
	return Resource{Type: r.Type, ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated, Deleted: r.Deleted, Content: r.Content}
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// checkType refuses unknown resource types with a FHIR-style message.
func checkType(typ string) error {
	if !schema.IsResourceType(typ) {
		return fault.NotFound("unknown resource type %q", typ)
	}
	return nil
}

func checkID(id string) error {
	if !idPattern.MatchString(id) {
		return fault.Invalid("invalid resource id %q: use 1-64 letters, digits, '-' and '.'", id)
	}
	return nil
}

// decode reads a resource body into a map, keeping numbers as written.
func decode(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fault.Invalid("the body is not a JSON object: %s", jsonErr(err))
	}
	if dec.More() {
		return nil, fault.Invalid("the body has data after the JSON object")
	}
	return m, nil
}

func jsonErr(err error) string {
	if err == nil {
		return "null"
	}
	var syn *json.SyntaxError
	if ok := asSyntax(err, &syn); ok {
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	}
	return "invalid JSON"
}

func asSyntax(err error, target **json.SyntaxError) bool {
	se, ok := err.(*json.SyntaxError)
	if ok {
		*target = se
	}
	return ok
}

// validate checks a resource against the R4 definitions. Every resource
// body that comes in (create, update, patch result, bundle entry) passes
// here, and what is written is the map it returns: without the empty
// objects and arrays the schema drops (lenient reading, as HAPI and
// Oystehr do).
func validate(body []byte, wantType string) (map[string]any, error) {
	m, _, err := validateIssues(body, wantType)
	return m, err
}

// validateIssues is validate that also returns every schema issue, the
// warnings included, in document order ($validate reports them all). With
// errors, err is an *InvalidResource holding them.
func validateIssues(body []byte, wantType string) (map[string]any, []schema.Issue, error) {
	if err := checkJSONText(body); err != nil {
		return nil, nil, err
	}
	m, err := decode(body)
	if err != nil {
		return nil, nil, err
	}
	typ, issues := schema.ValidateDecoded(body, m)
	if typ == "Binary" {
		stripBinaryBlob(m)
	}
	if wantType != "" && typ != wantType {
		return nil, nil, fault.Invalid("resourceType %q does not match the URL's %s", typ, wantType)
	}
	var errs []schema.Issue
	for _, is := range issues {
		if is.Severity == "error" {
			errs = append(errs, is)
		}
	}
	if len(errs) > 0 {
		return nil, issues, &InvalidResource{Issues: errs}
	}
	return m, issues, nil
}

// InvalidResource is a 400 whose OperationOutcome lists every problem.
type InvalidResource struct{ Issues []schema.Issue }

func (e *InvalidResource) Error() string {
	if len(e.Issues) == 1 {
		return e.Issues[0].Expression + ": " + e.Issues[0].Message
	}
	return fmt.Sprintf("%s: %s (and %d more problems)", e.Issues[0].Expression, e.Issues[0].Message, len(e.Issues)-1)
}

func (e *InvalidResource) Unwrap() error { return fault.ErrInvalid }

// IndexRows computes the index rows of a stored version from its JSON, as
// a write of it computes them (the subscription matcher judges past
// versions on them).
func IndexRows(typ string, content []byte) ([]store.IndexRow, error) {
	m, err := decode(content)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", typ, err)
	}
	return index(typ, m)
}

// index turns the values the index stores (search.IndexValues) into
// store rows.
func index(typ string, m map[string]any) ([]store.IndexRow, error) {
	vals, err := search.IndexValues(typ, m)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", typ, err)
	}
	rows := make([]store.IndexRow, 0, len(vals))
	for _, v := range vals {
		if v.Type == "composite" {
			r := store.IndexRow{Param: v.Param, Kind: v.Type}
			for _, c := range v.Components {
				cr, ok := indexRow(c)
				if !ok {
					break
				}
				r.Components = append(r.Components, cr)
			}
			if len(r.Components) == len(v.Components) {
				rows = append(rows, r)
			}
			continue
		}
		if r, ok := indexRow(v); ok {
			rows = append(rows, r)
		}
		for _, t := range v.OfType {
			rows = append(rows, store.IndexRow{Param: v.Param + search.OfTypeSuffix, Kind: "token", Code: t + "|" + v.Code})
		}
	}
	return rows, nil
}

// indexRow is the store's row for one non-composite value.
func indexRow(v search.Value) (store.IndexRow, bool) {
	r := store.IndexRow{Param: v.Param, Kind: v.Type}
	switch v.Type {
	case "string":
		r.Value, r.Exact = v.String, v.Exact
	case "token":
		// The display is only searched by :text, as a string: stored
		// normalised, so SQL's LIKE on it is case- and accent-blind.
		r.System, r.Code, r.Display = v.System, v.Code, search.NormalizeString(v.Display)
	case "reference":
		r.RefType, r.RefID, r.URL = v.RefType, v.RefID, v.RefURL
		if v.RefID == "" && v.Code != "" {
			// Reference.identifier, for :identifier searches.
			r.URL = "identifier:" + v.System + "|" + v.Code
		}
	case "date":
		r.Low, r.High = v.Low, v.High
	case "number", "quantity":
		r.Number, r.System, r.Code = v.Number, v.System, v.Unit
	case "uri":
		r.URI = v.URI
	default:
		return store.IndexRow{}, false
	}
	return r, true
}

// stamp sets id and meta.versionId/lastUpdated, keeping other meta.
func stamp(m map[string]any, id string, version int64, at time.Time) {
	m["id"] = id
	meta, _ := m["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	meta["versionId"] = fmt.Sprint(version)
	meta["lastUpdated"] = at.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	m["meta"] = meta
}

// newID is a time-ordered UUID in version 4's form: consecutive creates
// sort together in every index keyed by id, so a group of writes touches a
// few index pages instead of one page per index per write; and it passes
// the version-4 checks that apps written for Oystehr (whose ids are random
// v4 UUIDs) apply to ids. It is a version 7 UUID (48 bits of milliseconds,
// 12 bits that keep ids made in one millisecond in order, 62 random bits)
// with the version nibble set to 4: RFC 4122's variant bits and every
// ordering bit stay as they were.
func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	id[6] = id[6]&0x0f | 0x40
	return id.String()
}

// resourceName is the policy resource of one instance or a whole type.
func resourceName(typ, id string) string {
	if id == "" {
		id = "*"
	}
	return "FHIR:" + typ + ":" + id
}

// marshal encodes a decoded resource (json.Number values keep their text).
func marshal(m map[string]any) ([]byte, error) { return json.Marshal(m) }
