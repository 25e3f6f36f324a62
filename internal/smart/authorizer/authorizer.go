// Package authorizer validates bearer tokens that Ward did not issue by
// asking a project's authorizer function, as AWS HealthLake asks its IdP
// Lambda: the function gets {datastoreEndpoint, operationName, bearerToken}
// and answers {authPayload: {iss, aud, iat, nbf, exp, isAuthorized, scope,
// sub?, fhirUser?, patient?}, roleId | iamRoleARN}. Decisions are checked
// strictly (fail closed), cached by a hash of the token, and concurrent
// identical tokens share one call.
package authorizer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/wardhealth/ward/internal/smart/scope"
)

// Input is the function's event (the HealthLake shape).
type Input struct {
	DatastoreEndpoint string `json:"datastoreEndpoint"`
	OperationName     string `json:"operationName"`
	BearerToken       string `json:"bearerToken"`
}

// Runner runs the project's authorizer function and returns its raw
// answer; any failure of the run is an error.
type Runner func(ctx context.Context, projectID, zambdaID string, in Input, timeout time.Duration) ([]byte, error)

// Decision is an accepted token: act as RoleID, narrowed by Scopes.
type Decision struct {
	RoleID    string
	Scopes    []string
	Subject   string
	Issuer    string
	FHIRUser  string
	Patient   string
	ExpiresAt time.Time
}

// ErrRejected wraps every refusal; its message is safe to show the client.
var ErrRejected = errors.New("bearer token rejected by the authorizer")

// Config tunes an Authorizer. Zero values take the defaults.
type Config struct {
	Timeout     time.Duration // hard deadline of one call; default 1 s (HealthLake's)
	TTL         time.Duration // longest a positive decision is cached; default 5 min
	NegativeTTL time.Duration // how long a refusal is cached; default 5 s
	MaxEntries  int           // cache bound; default 100,000
	Now         func() time.Time
	Logger      *slog.Logger
	// RoleExists checks the role an answer names (a missing role is a
	// refusal, not an empty policy).
	RoleExists func(ctx context.Context, projectID, roleID string) (bool, error)
}

// Authorizer is safe for concurrent use. Construct with New.
type Authorizer struct {
	cfg   Config
	run   Runner
	group singleflight.Group
	mu    sync.Mutex
	cache map[string]entry
	stats Stats
}

type entry struct {
	d       Decision
	err     error // a cached refusal
	expires time.Time
}

// Stats counts calls and outcomes, for metrics and tests.
type Stats struct {
	Calls, CacheHits, Accepted, Rejected, Failed atomic.Int64
	// CallNanos is the total time spent in calls to the function.
	CallNanos atomic.Int64
}

// New returns an Authorizer that calls run.
func New(run Runner, cfg Config) *Authorizer {
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = 5 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Authorizer{cfg: cfg, run: run, cache: map[string]entry{}}
}

// Stats returns the live counters.
func (a *Authorizer) Stats() *Stats { return &a.stats }

// WritePrometheus writes the counters in the Prometheus text format.
func (st *Stats) WritePrometheus(w io.Writer) error {
	_, err := fmt.Fprintf(w, `# HELP ward_authorizer_decisions_total Foreign-token decisions by outcome.
# TYPE ward_authorizer_decisions_total counter
ward_authorizer_decisions_total{outcome="cached"} %d
ward_authorizer_decisions_total{outcome="accepted"} %d
ward_authorizer_decisions_total{outcome="rejected"} %d
ward_authorizer_decisions_total{outcome="failed"} %d
# HELP ward_authorizer_calls_total Calls to authorizer functions.
# TYPE ward_authorizer_calls_total counter
ward_authorizer_calls_total %d
# HELP ward_authorizer_call_seconds_total Time spent in calls to authorizer functions.
# TYPE ward_authorizer_call_seconds_total counter
ward_authorizer_call_seconds_total %g
`, st.CacheHits.Load(), st.Accepted.Load(), st.Rejected.Load(), st.Failed.Load(), st.Calls.Load(),
		time.Duration(st.CallNanos.Load()).Seconds())
	return err
}

// Decide validates token for a request on the FHIR base fhirBase of the
// project. operation is the HealthLake operation name of the request.
func (a *Authorizer) Decide(ctx context.Context, projectID, zambdaID, fhirBase, operation, token string) (Decision, error) {
	sum := sha256.Sum256([]byte(token))
	key := projectID + "\x00" + zambdaID + "\x00" + fhirBase + "\x00" + hex.EncodeToString(sum[:])
	now := a.cfg.Now()
	a.mu.Lock()
	e, ok := a.cache[key]
	a.mu.Unlock()
	if ok && now.Before(e.expires) {
		a.stats.CacheHits.Add(1)
		return e.d, e.err
	}
	v, err, _ := a.group.Do(key, func() (any, error) {
		// The call outlives a caller that gives up: others may be waiting.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Timeout)
		defer cancel()
		return a.call(cctx, key, projectID, zambdaID, fhirBase, operation, token)
	})
	if err != nil {
		return Decision{}, err
	}
	return v.(Decision), nil
}

func (a *Authorizer) call(ctx context.Context, key, projectID, zambdaID, fhirBase, operation, token string) (Decision, error) {
	a.stats.Calls.Add(1)
	start := time.Now()
	raw, err := a.run(ctx, projectID, zambdaID, Input{DatastoreEndpoint: fhirBase, OperationName: operation, BearerToken: token}, a.cfg.Timeout)
	elapsed := time.Since(start)
	a.stats.CallNanos.Add(int64(elapsed))
	if ctx.Err() != nil { // the runner may report the timeout as a failure of its own: keep both
		err = errors.Join(ctx.Err(), err)
	}
	if err != nil {
		// A failed run is not a decision: nothing is cached.
		a.stats.Failed.Add(1)
		a.cfg.Logger.WarnContext(ctx, "authorizer function failed", "project", projectID, "zambda", zambdaID, "ms", elapsed.Milliseconds(), "err", err)
		// The runner's own timer may fire a moment before the context's:
		// a run that lasted the whole budget timed out either way.
		if errors.Is(err, context.DeadlineExceeded) || elapsed >= a.cfg.Timeout {
			return Decision{}, fmt.Errorf("%w: the authorizer function did not answer within %v", ErrRejected, a.cfg.Timeout)
		}
		return Decision{}, fmt.Errorf("%w: the authorizer function failed", ErrRejected)
	}
	now := a.cfg.Now()
	d, err := a.check(ctx, projectID, fhirBase, raw, now)
	if err != nil {
		a.stats.Rejected.Add(1)
		a.cfg.Logger.InfoContext(ctx, "authorizer refused a token", "project", projectID, "ms", elapsed.Milliseconds(), "reason", err)
		a.put(key, entry{err: err, expires: now.Add(a.cfg.NegativeTTL)})
		return Decision{}, err
	}
	a.stats.Accepted.Add(1)
	a.cfg.Logger.DebugContext(ctx, "authorizer accepted a token", "project", projectID, "ms", elapsed.Milliseconds(), "role", d.RoleID)
	exp := now.Add(a.cfg.TTL)
	if d.ExpiresAt.Before(exp) {
		exp = d.ExpiresAt
	}
	a.put(key, entry{d: d, expires: exp})
	return d, nil
}

func (a *Authorizer) put(key string, e entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= a.cfg.MaxEntries {
		now := a.cfg.Now()
		for k, old := range a.cache {
			if !now.Before(old.expires) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= a.cfg.MaxEntries {
			clear(a.cache) // under attack by many distinct tokens: start over
		}
	}
	a.cache[key] = e
}

// answer is the function's output.
type answer struct {
	AuthPayload *payload `json:"authPayload"`
	RoleID      string   `json:"roleId"`
	IAMRoleARN  string   `json:"iamRoleARN"`
	// An API-Gateway-style answer wraps the real one in body.
	StatusCode *int            `json:"statusCode"`
	Body       json.RawMessage `json:"body"`
}

type payload struct {
	Iss                   string          `json:"iss"`
	Aud                   json.RawMessage `json:"aud"`
	Iat                   json.RawMessage `json:"iat"`
	Nbf                   json.RawMessage `json:"nbf"`
	Exp                   json.RawMessage `json:"exp"`
	IsAuthorized          json.RawMessage `json:"isAuthorized"`
	Scope                 *string         `json:"scope"`
	Sub                   string          `json:"sub"`
	FHIRUser              string          `json:"fhirUser"`
	Patient               string          `json:"patient"`
	LaunchResponsePatient string          `json:"launch_response_patient"`
}

func reject(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

// clockSkew tolerates small differences between Ward's clock and the
// identity provider's in nbf.
const clockSkew = 30 * time.Second

// check turns the function's raw answer into a decision or a refusal.
func (a *Authorizer) check(ctx context.Context, projectID, fhirBase string, raw []byte, now time.Time) (Decision, error) {
	var ans answer
	if err := json.Unmarshal(bytes.TrimSpace(raw), &ans); err != nil {
		return Decision{}, reject("the authorizer's answer is not a JSON object")
	}
	if ans.StatusCode != nil && ans.AuthPayload == nil {
		if *ans.StatusCode != 200 {
			return Decision{}, reject("the authorizer answered status %d", *ans.StatusCode)
		}
		body := []byte(ans.Body)
		var s string
		if json.Unmarshal(body, &s) == nil {
			body = []byte(s)
		}
		ans = answer{}
		if err := json.Unmarshal(body, &ans); err != nil {
			return Decision{}, reject("the authorizer's answer body is not a JSON object")
		}
	}
	p := ans.AuthPayload
	if p == nil {
		return Decision{}, reject("the authorizer's answer has no authPayload")
	}
	if !truthy(p.IsAuthorized) {
		return Decision{}, reject("the token is not authorized (isAuthorized is not true)")
	}
	nbf, err := numericDate(p.Nbf, "nbf")
	if err != nil {
		return Decision{}, err
	}
	exp, err := numericDate(p.Exp, "exp")
	if err != nil {
		return Decision{}, err
	}
	if !now.Before(exp) {
		return Decision{}, reject("the token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if now.Add(clockSkew).Before(nbf) {
		return Decision{}, reject("the token is not valid before %s", nbf.UTC().Format(time.RFC3339))
	}
	if !audienceIs(p.Aud, fhirBase) {
		return Decision{}, reject("the token's aud is not this FHIR base (%s)", fhirBase)
	}
	if p.Scope == nil || strings.TrimSpace(*p.Scope) == "" {
		return Decision{}, reject("the authorizer's answer has no scope")
	}
	set, err := scope.Parse(*p.Scope)
	if err != nil {
		return Decision{}, reject("scope: %v", err)
	}
	if len(set.Resources) == 0 {
		return Decision{}, reject("the scope grants no FHIR access (no patient/, user/ or system/ scope)")
	}
	role := ans.RoleID
	if role == "" {
		role = ans.IAMRoleARN
		if i := strings.LastIndex(role, "role/"); i >= 0 {
			role = role[i+len("role/"):] // an ARN-shaped value holding a role id
		}
	}
	if role == "" {
		return Decision{}, reject("the authorizer's answer names no role (roleId or iamRoleARN)")
	}
	if a.cfg.RoleExists != nil {
		ok, err := a.cfg.RoleExists(ctx, projectID, role)
		if err != nil {
			return Decision{}, fmt.Errorf("%w: could not check the role", ErrRejected)
		}
		if !ok {
			return Decision{}, reject("the authorizer named role %q, which does not exist in this project", role)
		}
	}
	patient := p.Patient
	if patient == "" {
		patient = p.LaunchResponsePatient
	}
	patient = strings.TrimPrefix(patient, "Patient/")
	if set.HasContext("patient") && patient == "" {
		return Decision{}, reject("patient/ scopes need a patient claim (patient or launch_response_patient)")
	}
	return Decision{RoleID: role, Scopes: set.Strings(), Subject: p.Sub, Issuer: p.Iss, FHIRUser: p.FHIRUser, Patient: patient, ExpiresAt: exp}, nil
}

// truthy accepts true and "true" (the HealthLake docs use the string, the
// samples a boolean).
func truthy(raw json.RawMessage) bool {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b
	}
	var s string
	return json.Unmarshal(raw, &s) == nil && strings.EqualFold(strings.TrimSpace(s), "true")
}

// numericDate reads seconds since the epoch, as a number or a numeric
// string.
func numericDate(raw json.RawMessage, name string) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, reject("the authorizer's answer has no %s", name)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return time.Time{}, reject("%s must be a number of seconds", name)
		}
		if f, err = strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil {
			return time.Time{}, reject("%s must be a number of seconds", name)
		}
	}
	if math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, reject("%s is out of range", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// audienceIs accepts aud as a string or an array holding the FHIR base
// (a trailing slash does not matter).
func audienceIs(raw json.RawMessage, base string) bool {
	norm := func(s string) string { return strings.TrimSuffix(s, "/") }
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one != "" && norm(one) == norm(base)
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, s := range many {
			if s != "" && norm(s) == norm(base) {
				return true
			}
		}
	}
	return false
}
