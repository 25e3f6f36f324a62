// Package subscription delivers FHIR Subscriptions (R4 rest-hook, and
// Oystehr's zapehr-lambda: endpoints that run a zambda) without losing
// events.
//
// The FHIR API writes an outbox row with every change, in the change's
// transaction. A matcher turns unmatched outbox rows into delivery rows,
// one per (subscription, event), evaluating each subscription's criteria
// with the FHIR search engine's SQL on the version the event names (a
// delete: the version it deleted), however late it runs (see match.go),
// and marks the rows matched, all in one transaction. Dispatchers lease
// due deliveries in rounds (PostgreSQL: FOR UPDATE SKIP LOCKED, so
// replicas share the work), deliver them, and record every attempt, many
// in a transaction; failures are retried with exponential backoff and jitter, and
// after the last attempt the subscription goes to status "error" with its
// events kept for replay. Delivery is at least once, in order per
// subscription and resource.
//
// Rest-hook endpoints go through the egress policy: one on an address it
// refuses is a 400 when the Subscription is written (when the name
// resolves then), and every delivery is dialled through the policy, so a
// refused address (a name that now resolves to one) is a failed attempt
// naming the rule.
package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// Extensions Ward reads on a Subscription.
const (
	// TriggerExt limits the events: valueString create, update or delete
	// (Oystehr's; repeatable). Without it, create and update trigger.
	TriggerExt    = "http://zapehr.com/fhir/extension/SubscriptionTriggerEvent"
	oldTriggerExt = "http://zapehr.com/fhir/r4/extension/SubscriptionTriggerEvent"
	// MethodExt picks how a resource is sent: valueCode "POST" (the default:
	// the bare resource to the endpoint, as seed 004's handlers expect) or
	// "PUT" (to [endpoint]/[type]/[id], as the R4 spec describes).
	MethodExt = "https://ward.health/fhir/StructureDefinition/subscription-method"
	// SecretExt, valueString, makes Ward sign each delivery the Standard
	// Webhooks way (webhook-id, webhook-timestamp, webhook-signature).
	SecretExt = "https://ward.health/fhir/StructureDefinition/subscription-secret"
	// LambdaPrefix is an endpoint that names a zambda.
	LambdaPrefix = "zapehr-lambda:"
)

// Config is the dispatcher's tunables.
type Config struct {
	MaxAttempts int           // attempts before the subscription goes to error; default 30 (about 24 h with the defaults)
	RetryBase   time.Duration // first retry delay, doubled each time; default 1 s
	RetryMax    time.Duration // longest delay between attempts; default 1 h
	Timeout     time.Duration // one HTTP delivery; default 10 s
	Workers     int           // deliveries in flight per replica; default 32
	Poll        time.Duration // how often idle loops look for work (writes on this replica wake them at once); default 100 ms
	// IdlePoll is the longest an idle loop sleeps: after empty rounds in
	// a row the wait doubles from Poll up to it; default 10 x Poll.
	IdlePoll time.Duration
	// FailureLogEvery is how often a subscription's failed deliveries
	// are logged at most (one line with the count of the others); default 1 min.
	FailureLogEvery time.Duration
	// Lease is how long a claimed delivery stays this replica's: a
	// replica that dies or stalls holding it delays it that long, then
	// another claims it (and the stalled one's result is refused). It
	// must outlast one attempt; default Timeout + 30 s.
	Lease time.Duration
}

func (c *Config) defaults() {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 30
	}
	if c.RetryBase <= 0 {
		c.RetryBase = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Hour
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 32
	}
	if c.Poll <= 0 {
		c.Poll = 100 * time.Millisecond
	}
	if c.IdlePoll < c.Poll {
		c.IdlePoll = 10 * c.Poll
	}
	if c.FailureLogEvery <= 0 {
		c.FailureLogEvery = time.Minute
	}
	if c.Lease <= 0 {
		c.Lease = c.Timeout + 30*time.Second
	}
}

// ZambdaRunner runs a subscription zambda with the resource JSON as its
// event body; the zambda service implements it.
type ZambdaRunner interface {
	RunSubscription(ctx context.Context, projectID, zambdaID string, body []byte) (status int, err error)
}

// Service is the subscription machinery.
type Service struct {
	cfg     Config
	fhir    *fhir.Service
	st      *store.Store
	egress  *egress.Policy
	client  *http.Client // dials through egress
	zambdas ZambdaRunner
	now     func() time.Time
	log     *slog.Logger
	matchC  chan struct{} // a write committed: match now
	sendC   chan struct{} // deliveries were queued: send now
	rec     *recorder     // finished attempts, written in shared transactions
	stats   Stats
	fails   failureLog
}

// New builds the service and registers its checks on Subscription writes.
// Rest-hook endpoints are checked and dialled through pol (nil: the
// default egress policy, public addresses only).
func New(cfg Config, fhirSvc *fhir.Service, zambdas ZambdaRunner, pol *egress.Policy, now func() time.Time, log *slog.Logger) *Service {
	cfg.defaults()
	client := pol.HTTPClient(cfg.Timeout)
	t := client.Transport.(*http.Transport)
	t.MaxIdleConnsPerHost, t.ResponseHeaderTimeout = cfg.Workers, cfg.Timeout
	s := &Service{cfg: cfg, fhir: fhirSvc, st: fhirSvc.Store(), zambdas: zambdas, now: now, log: log, egress: pol,
		client: client, matchC: make(chan struct{}, 1), sendC: make(chan struct{}, 1), rec: newRecorder(fhirSvc.Store()),
		fails: failureLog{period: cfg.FailureLogEvery}}
	fhirSvc.OnPrecheck("Subscription", s.checkEndpoint)
	fhirSvc.OnWrite("Subscription", s.checkWrite)
	fhirSvc.OnCommit(func() { kick(s.matchC) })
	return s
}

// Stats returns the live delivery counters (metrics).
func (s *Service) Stats() *Stats { return &s.stats }

// sub is a parsed Subscription.
type sub struct {
	ID       string
	Status   string
	Raw      string // the criteria as written: subscriptions that share it are matched once
	Criteria *search.Query
	Type     string
	Triggers map[string]bool
	End      time.Time
	Endpoint string
	Payload  string
	Headers  [][2]string
	Method   string
	Secret   string
}

func str(m map[string]any, k string) string { v, _ := m[k].(string); return v }

// parse reads the fields Ward acts on; a problem is a 400 naming the element.
func parse(m map[string]any) (sub, error) {
	sb := sub{ID: str(m, "id"), Status: str(m, "status"), Triggers: map[string]bool{}, Method: "POST"}
	crit := str(m, "criteria")
	typ, q, _ := strings.Cut(crit, "?")
	if crit == "" || !search.IsResourceType(typ) {
		return sb, fault.Invalid("Subscription.criteria must be a search such as Patient?family=Smith, not %q", clip(crit))
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		return sb, fault.Invalid("Subscription.criteria %q is not a valid query string", clip(crit))
	}
	if sb.Criteria, err = search.ParseQuery(typ, vals, false); err != nil {
		return sb, fault.Invalid("Subscription.criteria: %v", err)
	}
	sb.Type, sb.Raw = typ, crit
	ch, _ := m["channel"].(map[string]any)
	if ch == nil || str(ch, "type") != "rest-hook" {
		return sb, fault.Invalid("Subscription.channel.type: Ward delivers rest-hook subscriptions only")
	}
	sb.Endpoint, sb.Payload = str(ch, "endpoint"), str(ch, "payload")
	if strings.HasPrefix(sb.Endpoint, LambdaPrefix) {
		if strings.TrimPrefix(sb.Endpoint, LambdaPrefix) == "" {
			return sb, fault.Invalid("Subscription.channel.endpoint: name a zambda after %q", LambdaPrefix)
		}
	} else if u, err := url.Parse(sb.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return sb, fault.Invalid("Subscription.channel.endpoint must be an http(s) URL or %s<zambdaId>, not %q", LambdaPrefix, clip(sb.Endpoint))
	}
	if hs, ok := ch["header"].([]any); ok {
		for _, h := range hs {
			name, value, ok := strings.Cut(fmt.Sprint(h), ":")
			if !ok || strings.TrimSpace(name) == "" {
				return sb, fault.Invalid("Subscription.channel.header entries are \"Name: value\", not %q", clip(fmt.Sprint(h)))
			}
			sb.Headers = append(sb.Headers, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
		}
	}
	if end := str(m, "end"); end != "" {
		t, err := time.Parse(time.RFC3339, end)
		if err != nil {
			return sb, fault.Invalid("Subscription.end must be an instant with a time zone, not %q", end)
		}
		sb.End = t
	}
	exts, _ := m["extension"].([]any)
	exts = append(exts, chExtensions(ch)...)
	for _, e := range exts {
		em, _ := e.(map[string]any)
		switch str(em, "url") {
		case TriggerExt, oldTriggerExt:
			ev := str(em, "valueString")
			if ev == "" {
				ev = str(em, "valueCode")
			}
			if ev != "create" && ev != "update" && ev != "delete" {
				return sb, fault.Invalid("the SubscriptionTriggerEvent extension takes create, update or delete, not %q", clip(ev))
			}
			sb.Triggers[ev] = true
		case MethodExt:
			sb.Method = strings.ToUpper(str(em, "valueCode"))
			if sb.Method != "POST" && sb.Method != "PUT" {
				return sb, fault.Invalid("the subscription-method extension takes POST or PUT, not %q", clip(sb.Method))
			}
		case SecretExt:
			sb.Secret = str(em, "valueString")
		}
	}
	if len(sb.Triggers) == 0 {
		sb.Triggers["create"], sb.Triggers["update"] = true, true
	}
	return sb, nil
}

func chExtensions(ch map[string]any) []any {
	exts, _ := ch["extension"].([]any)
	return exts
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// checkEndpoint refuses a rest-hook endpoint on an address the egress
// policy refuses, naming the rule. It runs before the write's transaction:
// it may wait on DNS. What is not an http(s) URL is left to parse.
func (s *Service) checkEndpoint(ctx context.Context, _ auth.Principal, m map[string]any) error {
	ch, _ := m["channel"].(map[string]any)
	ep := str(ch, "endpoint")
	if ep == "" || strings.HasPrefix(ep, LambdaPrefix) {
		return nil
	}
	var denied *egress.DeniedError
	if err := s.egress.CheckURL(ctx, ep); errors.As(err, &denied) {
		return fault.Invalid("Subscription.channel.endpoint %s is refused: %s", clip(ep), strings.TrimPrefix(denied.Error(), "egress: "))
	}
	return nil
}

// checkWrite runs inside every Subscription write: it validates what Ward
// acts on, moves "requested" to "active" (or "off" past its end), requeues
// failed deliveries when a client resumes an errored subscription, and
// records the writer, whose read access deliveries are checked against.
func (s *Service) checkWrite(ctx context.Context, tx *store.Tx, p auth.Principal, id string, m map[string]any) error {
	m["id"] = id
	sb, err := parse(m)
	if err != nil {
		return err
	}
	if p.Kind == fhir.KindSystem {
		return nil
	}
	switch sb.Status {
	case "requested", "active":
		m["status"] = "active"
		delete(m, "error")
		if !sb.End.IsZero() && !sb.End.After(s.now()) {
			m["status"] = "off"
		}
		if prev, err := tx.GetResource(ctx, p.ProjectID, "Subscription", id); err == nil && !prev.Deleted {
			var old map[string]any
			if json.Unmarshal(prev.Content, &old) == nil && str(old, "status") == "error" {
				if _, err := tx.Replay(ctx, p.ProjectID, id, 0, s.now()); err != nil {
					return err
				}
			}
		}
	case "off", "error":
	default:
		return fault.Invalid("Subscription.status must be requested, active, off or error, not %q", clip(sb.Status))
	}
	return tx.SetSubOwner(ctx, p.ProjectID, id, store.SubOwner{Kind: string(p.Kind), ID: p.ID, ClientID: p.ClientID})
}

// Run matches and delivers until ctx ends, then waits for the deliveries
// in flight to finish.
func (s *Service) Run(ctx context.Context) { s.RunUntil(ctx, context.WithoutCancel(ctx)) }

// RunUntil is Run for a graceful stop: once ctx ends nothing new is
// matched or claimed, and the deliveries in flight get until inflight
// ends to finish. One cut then is released for another attempt (by any
// replica) rather than counted as a failure: the endpoint did not fail.
// It returns when no delivery is in flight.
func (s *Service) RunUntil(ctx, inflight context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.matchLoop(ctx) }()
	go func() { defer wg.Done(); s.deliverLoop(ctx, inflight) }()
	wg.Wait()
}

// kick wakes a loop without blocking (one pending wake-up is enough).
func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// idle waits for a wake-up or the poll interval (other replicas' writes
// and retries that fall due are only seen by polling). After empty rounds
// in a row the wait doubles up to IdlePoll: a replica that serves nothing
// then makes a few reads a second instead of twenty, while this replica's
// own writes still wake it at once. It reports whether the loop goes on
// and whether a wake-up (not the timer) ended the wait.
func (s *Service) idle(ctx context.Context, wake chan struct{}, empty int) (more, woken bool) {
	t := time.NewTimer(s.cfg.idleWait(empty))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, false
	case <-wake:
		return true, true
	case <-t.C:
		return true, false
	}
}

// idleWait is the wait after empty rounds in a row: Poll, doubled each
// round, at most IdlePoll.
func (c Config) idleWait(empty int) time.Duration {
	return min(c.Poll<<min(max(empty, 0), 20), c.IdlePoll)
}

func (s *Service) matchLoop(ctx context.Context) {
	empty := 0 // rounds in a row that found nothing
	for {
		n, err := s.MatchOnce(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "subscription matcher", "err", err)
		}
		if n > 0 {
			kick(s.sendC)
			empty = 0
		}
		if n == 0 || err != nil {
			more, woken := s.idle(ctx, s.matchC, empty)
			if !more {
				return
			}
			if empty++; woken {
				empty = 0
			}
		}
	}
}

func (s *Service) deliverLoop(ctx, inflight context.Context) {
	sem := make(chan struct{}, s.cfg.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	// Claim for a quarter of the workers at once, or for fewer once a poll
	// interval has passed: each claim is a transaction, and claiming for
	// each slot as it freed made claims the fan-out's bottleneck on
	// PostgreSQL (hundreds of commits a second for one or two deliveries
	// each). The poll interval bounds what a delivery waits for that.
	quorum := max(1, cap(sem)/4)
	var last time.Time
	busy := false
	empty := 0 // idle waits in a row that no wake-up ended
	for {
		var batch []store.Delivery
		var rd *round
		if free := cap(sem) - len(sem); free >= quorum || free > 0 && time.Since(last) >= s.cfg.Poll {
			var err error
			last = time.Now()
			// Probe first (one cheap read) only when idle: after a claim
			// that found work, more is likely.
			batch, rd, err = s.claimRound(ctx, free, !busy)
			busy = len(batch) > 0
			if err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "subscription dispatcher", "err", err)
			}
		}
		for _, d := range batch {
			sem <- struct{}{}
			wg.Add(1)
			go func(d store.Delivery) {
				defer wg.Done()
				// The slot frees once the attempt is over, before it is
				// recorded: recording waits for a shared commit, and the
				// lease keeps the delivery from being claimed meanwhile.
				var once sync.Once
				free := func() { once.Do(func() { <-sem; kick(s.sendC) }) } // a free slot: claim more
				defer free()
				s.deliverIn(inflight, d, rd, free)
			}(d)
		}
		if len(batch) == 0 {
			// Waiting for a free slot is not idleness: only empty
			// claims (or none possible) lengthen the wait.
			more, woken := s.idle(ctx, s.sendC, empty)
			if !more {
				return
			}
			if empty++; woken || len(sem) > 0 {
				empty = 0
			}
		} else {
			empty = 0
		}
	}
}

// claim leases up to limit due deliveries of active subscriptions (see
// claimRound).
func (s *Service) claim(ctx context.Context, limit int) ([]store.Delivery, error) {
	ds, _, err := s.claimRound(ctx, limit, true)
	return ds, err
}

// claimRound leases up to limit due deliveries of active subscriptions,
// with the round's reads of their subscriptions for sending them. The
// lease outlasts one attempt, so a replica that dies holding it delays
// those deliveries by at most the lease. With probe, it first checks
// with one cheap read (no transaction) that something is due.
func (s *Service) claimRound(ctx context.Context, limit int, probe bool) ([]store.Delivery, *round, error) {
	rd := newRound(s.st)
	if probe {
		if due, err := s.st.HasDueDeliveries(ctx, s.now()); err != nil || !due {
			return nil, rd, err
		}
	}
	ds, err := s.st.ClaimDeliveries(ctx, s.now(), s.cfg.Lease, limit)
	if err != nil {
		return nil, rd, err
	}
	// The round's subscriptions, one query per project.
	subs := map[string][]string{}
	for _, d := range ds {
		if !slices.Contains(subs[d.ProjectID], d.SubscriptionID) {
			subs[d.ProjectID] = append(subs[d.ProjectID], d.SubscriptionID)
		}
	}
	for p, ids := range subs {
		if err := rd.load(ctx, p, ids); err != nil {
			// Each delivery reads its subscription itself then.
			s.log.WarnContext(ctx, "subscription: read a round's subscriptions", "err", err)
		}
	}
	return ds, rd, err
}

// round is what one claim round read of each subscription it claimed
// deliveries of, shared by those deliveries: a subscription and its owner
// are read once a round, not once a delivery (a write fans out to every
// subscription on it). A delivery thus goes out as its subscription was
// when claimed, moments before; the owner's access is still checked when
// it is sent.
type round struct {
	st       *store.Store
	mu       sync.Mutex
	subs     map[string]*subRead     // project/subscription ->
	versions map[string]*versionRead // project/type/id/version -> (one write fans out to many subscriptions)
}

type versionRead struct {
	mu   sync.Mutex
	res  store.Resource
	err  error
	read bool
}

func newRound(st *store.Store) *round {
	return &round{st: st, subs: map[string]*subRead{}, versions: map[string]*versionRead{}}
}

// version returns one version of a resource, read once a round: its
// content is the same for every subscription, whose owners' access is
// checked each time. A failed read other than ErrNotFound is not kept.
func (rd *round) version(ctx context.Context, projectID, typ, id string, v int64) (store.Resource, error) {
	k := fmt.Sprintf("%s/%s/%s/%d", projectID, typ, id, v)
	rd.mu.Lock()
	r := rd.versions[k]
	if r == nil {
		r = &versionRead{}
		rd.versions[k] = r
	}
	rd.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.read {
		res, err := rd.st.GetVersion(ctx, projectID, typ, id, v)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return res, err
		}
		r.res, r.err, r.read = res, err, true
	}
	return r.res, r.err
}

type subRead struct {
	mu        sync.Mutex // held while reading it, so a round reads each once
	res       store.Resource
	resErr    error
	resRead   bool
	parsed    *parsedSub // res parsed, once a round (nil: not yet)
	owner     store.SubOwner
	ownerErr  error
	ownerRead bool
}

// entry is the round's entry for a subscription, locked.
func (rd *round) entry(projectID, subID string) *subRead {
	k := projectID + "/" + subID
	rd.mu.Lock()
	r := rd.subs[k]
	if r == nil {
		r = &subRead{}
		rd.subs[k] = r
	}
	rd.mu.Unlock()
	r.mu.Lock()
	return r
}

// load reads subscriptions of a project and their owners into the round,
// a query each; one not found there (deleted, or never there) is
// ErrNotFound.
func (rd *round) load(ctx context.Context, projectID string, ids []string) error {
	rs, err := rd.st.GetResources(ctx, projectID, "Subscription", ids)
	if err != nil {
		return err
	}
	found := map[string]store.Resource{}
	for _, r := range rs {
		found[r.ID] = r
	}
	owners, err := rd.st.GetSubOwners(ctx, projectID, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		r := rd.entry(projectID, id)
		if !r.resRead {
			r.res, r.resRead = found[id], true
			if _, ok := found[id]; !ok {
				r.resErr = fmt.Errorf("subscription %s: %w", id, store.ErrNotFound)
			}
		}
		if !r.ownerRead {
			r.owner, r.ownerRead = owners[id], true
			if _, ok := owners[id]; !ok {
				r.ownerErr = fmt.Errorf("owner of subscription %s: %w", id, store.ErrNotFound)
			}
		}
		r.mu.Unlock()
	}
	return nil
}

// parsedSub is a subscription as its deliveries are sent: parsed, or the
// reason they are skipped.
type parsedSub struct {
	sb   sub
	skip string
}

// sub returns the subscription parsed, or a reason to skip its deliveries
// (deleted, never there, no longer valid). It is read and parsed once a
// round: a write fans out to every subscription, and parsing the criteria
// for each delivery was a share of the dispatcher's CPU. A failed read is
// not kept: the next delivery tries again.
func (rd *round) sub(ctx context.Context, projectID, subID string) (sub, string, error) {
	r := rd.entry(projectID, subID)
	defer r.mu.Unlock()
	if r.parsed != nil {
		return r.parsed.sb, r.parsed.skip, nil
	}
	if !r.resRead {
		res, err := rd.st.GetResource(ctx, projectID, "Subscription", subID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return sub{}, "", err
		}
		r.res, r.resErr, r.resRead = res, err, true
	}
	p := &parsedSub{}
	switch {
	case errors.Is(r.resErr, store.ErrNotFound), r.resErr == nil && r.res.Deleted:
		p.skip = "the subscription was deleted"
	case r.resErr != nil:
		return sub{}, "", r.resErr
	default:
		var m map[string]any
		if err := json.Unmarshal(r.res.Content, &m); err != nil {
			return sub{}, "", err
		}
		sb, err := parse(m)
		if err != nil {
			p.skip = "the subscription is no longer valid: " + err.Error()
		}
		p.sb = sb
	}
	r.parsed = p
	return p.sb, p.skip, nil
}

// owner returns the subscription's owner, likewise.
func (rd *round) owner(ctx context.Context, projectID, subID string) (store.SubOwner, error) {
	r := rd.entry(projectID, subID)
	defer r.mu.Unlock()
	if !r.ownerRead {
		o, err := rd.st.GetSubOwner(ctx, projectID, subID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return o, err
		}
		r.owner, r.ownerErr, r.ownerRead = o, err, true
	}
	return r.owner, r.ownerErr
}

// backoff is the delay before attempt n+1: doubling from RetryBase up to
// RetryMax, with full jitter in its upper half so retries of many
// deliveries spread out.
func (s *Service) backoff(attempts int) time.Duration {
	d := s.cfg.RetryBase << min(attempts-1, 30)
	if d <= 0 || d > s.cfg.RetryMax {
		d = s.cfg.RetryMax
	}
	return d/2 + rand.N(d/2+1)
}

// recordTimeout bounds the writes that record an attempt, which run even
// when the attempt itself was cut.
const recordTimeout = 5 * time.Second

// deliver makes one attempt and records it; an attempt cut because ctx
// ended (a shutdown) is released instead.
func (s *Service) deliver(ctx context.Context, d store.Delivery) {
	s.deliverIn(ctx, d, newRound(s.st), func() {})
}

// deliverIn is deliver with the subscription as read in claim round rd;
// it calls sent once the attempt is over, before recording it.
func (s *Service) deliverIn(ctx context.Context, d store.Delivery, rd *round, sent func()) {
	start := s.now()
	code, skip, err := s.send(ctx, d, rd)
	sent()
	// A finished attempt is recorded even if the stop came meanwhile:
	// otherwise it would be sent again once its lease runs out.
	rec, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err != nil && ctx.Err() != nil {
		if rerr := s.st.ReleaseDelivery(rec, d); rerr != nil {
			s.log.WarnContext(rec, "subscription: release a delivery cut by the stop", "err", rerr, "delivery", d.ID)
			return // its lease runs out and it is retried then
		}
		s.log.InfoContext(rec, "subscription: delivery cut by the stop, released for another attempt", "delivery", d.ID, "err", err)
		return
	}
	ctx = rec
	a := store.Attempt{At: start, StatusCode: code, Duration: s.now().Sub(start)}
	status, next := "delivered", s.now()
	switch {
	case skip != "":
		status, a.Error = "skipped", skip
		s.stats.Skipped.Add(1)
	case err != nil:
		a.Error = err.Error()
		status, next = "pending", s.now().Add(s.backoff(d.Attempts+1))
		if d.Attempts+1 >= s.cfg.MaxAttempts {
			status = "failed"
			s.stats.GaveUp.Add(1)
		}
		s.stats.Failed.Add(1)
		s.fails.failed(ctx, s.log, s.now(), d.ProjectID, d.SubscriptionID, d.Attempts+1, code, a.Error)
	default:
		s.stats.Delivered.Add(1)
	}
	if err := s.rec.record(ctx, store.Finish{Delivery: d, Attempt: a, Status: status, Next: next}); err != nil {
		if errors.Is(err, store.ErrLeaseLost) {
			// This replica stalled past its lease and another took the
			// delivery over: the attempt is kept (marked stale), its
			// result is not applied.
			s.log.WarnContext(ctx, "subscription: result refused, the delivery's lease lapsed and another claim holds it",
				"delivery", d.ID, "lease_token", d.LeaseToken, "result", status)
			return
		}
		s.log.WarnContext(ctx, "subscription: record attempt", "err", err, "delivery", d.ID)
		return
	}
	if status != "pending" {
		// The next event of the same resource for this subscription waited
		// for this one: claim it now, not after an idle wait.
		kick(s.sendC)
	}
	if status == "failed" {
		msg := fmt.Sprintf("delivery failed %d times; last error: %s. Pending events are kept: set status to requested to resume.", d.Attempts+1, clip(a.Error))
		_, err := s.fhir.SystemUpdate(ctx, d.ProjectID, "Subscription", d.SubscriptionID, func(m map[string]any) error {
			m["status"], m["error"] = "error", msg
			return nil
		})
		if err != nil {
			s.log.WarnContext(ctx, "subscription: set error status", "err", err, "subscription", d.SubscriptionID)
		}
	}
}

// send delivers d once: the HTTP status (0 if none), a reason to skip it
// for good, or an error to retry.
func (s *Service) send(ctx context.Context, d store.Delivery, rd *round) (int, string, error) {
	sb, skip, err := rd.sub(ctx, d.ProjectID, d.SubscriptionID)
	switch {
	case err != nil:
		return 0, "", err // the database's failure, not the subscription's: retry
	case skip != "":
		return 0, skip, nil
	}
	owner, err := rd.owner(ctx, d.ProjectID, d.SubscriptionID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, "the subscription has no recorded owner", nil
	}
	if err != nil {
		return 0, "", err
	}
	p := auth.Principal{ProjectID: d.ProjectID, Kind: auth.Kind(owner.Kind), ID: owner.ID, ClientID: owner.ClientID}
	var body []byte
	if d.Interaction != "delete" {
		// The owner's read access, checked now: a subscriber never receives
		// what it may not read.
		err := s.fhir.Require(ctx, p, "FHIR:Read", d.Type, d.ResID)
		switch {
		case errors.Is(err, fault.ErrForbidden), errors.Is(err, fault.ErrUnauthorized):
			return 0, "the subscription's owner may not read " + d.Type + "/" + d.ResID, nil
		case err != nil:
			return 0, "", err
		}
		res, err := rd.version(ctx, d.ProjectID, d.Type, d.ResID, d.VersionID)
		switch {
		case errors.Is(err, store.ErrNotFound), err == nil && res.Deleted:
			return 0, "the resource version is gone", nil
		case err != nil:
			return 0, "", err
		}
		body = res.Content
	}
	if strings.HasPrefix(sb.Endpoint, LambdaPrefix) {
		if s.zambdas == nil {
			return 0, "", errors.New("zambda subscriptions are not available on this server")
		}
		if body == nil {
			return 0, "delete events carry no resource for a zambda", nil
		}
		code, err := s.zambdas.RunSubscription(ctx, d.ProjectID, strings.TrimPrefix(sb.Endpoint, LambdaPrefix), body)
		if err == nil && (code < 200 || code > 299) {
			err = fmt.Errorf("the zambda answered %d", code)
		}
		return code, "", err
	}
	return s.post(ctx, d, sb, body)
}

// post sends one rest-hook request.
func (s *Service) post(ctx context.Context, d store.Delivery, sb sub, resource []byte) (int, string, error) {
	method, target, payload := http.MethodPost, sb.Endpoint, []byte(nil)
	if sb.Payload != "" && resource != nil {
		payload = resource
		if sb.Method == "PUT" {
			method, target = http.MethodPut, strings.TrimRight(sb.Endpoint, "/")+"/"+d.Type+"/"+d.ResID
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytesReader(payload))
	if err != nil {
		return 0, "the endpoint is not a valid URL", nil
	}
	if payload != nil {
		ct := sb.Payload
		if ct == "application/json" || ct == "application/fhir+json" {
			req.Header.Set("Content-Type", ct)
		} else {
			req.Header.Set("Content-Type", "application/fhir+json")
		}
	}
	for _, h := range sb.Headers {
		req.Header.Add(h[0], h[1])
	}
	req.Header.Set("X-Ward-Subscription", sb.ID)
	req.Header.Set("X-Ward-Event", d.Interaction+" "+d.Type+"/"+d.ResID+"/_history/"+fmt.Sprint(d.VersionID))
	if sb.Secret != "" {
		sign(req, sb.Secret, fmt.Sprint(d.ID), s.now(), payload)
	}
	res, err := s.client.Do(req)
	if err != nil {
		// A refused dial says which rule refused which address, not "dial
		// tcp ...: " around it; it is retried like any failure (the
		// operator may open the range).
		if denied := (*egress.DeniedError)(nil); errors.As(err, &denied) {
			err = denied
		}
		return 0, "", fmt.Errorf("%s %s: %w", method, target, err)
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, "", fmt.Errorf("%s %s answered %d", method, target, res.StatusCode)
	}
	return res.StatusCode, "", nil
}
