package iam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/policy"
	"github.com/wardhealth/ward/internal/store"
)

// Policies decides requests against each principal's current effective
// policy, compiled once and cached until an IAM change in the project (here
// or, through SyncPolicies, on another replica). It is the part of IAM the
// FHIR service needs, so it is built first and shared: the Service embeds
// it and the FHIR service decides through it.
type Policies struct {
	store *store.Store
	log   *slog.Logger
	cache *policyCache
	// epochs are the policy epochs last seen by SyncPolicies.
	epochMu sync.Mutex
	epochs  map[string]int64
}

// NewPolicies returns the policy decisions of the principals in st.
// log hears of failures the caller is not told of; nil discards them.
func NewPolicies(st *store.Store, log *slog.Logger) *Policies {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Policies{store: st, log: log, cache: newPolicyCache()}
}

// policyCache keeps each principal's compiled policy. Any IAM change in a
// project bumps that project's generation, so the next request recompiles.
type policyCache struct {
	mu      sync.RWMutex
	gen     map[string]uint64 // project id -> generation
	all     uint64            // bumped by invalidateAll, part of every generation
	entries map[cacheKey]cacheEntry
	changes atomic.Uint64 // every invalidation, of any project
}

type cacheKey struct{ project, kind, id string }

type cacheEntry struct {
	gen uint64
	set *policy.Set
}

func newPolicyCache() *policyCache {
	return &policyCache{gen: map[string]uint64{}, entries: map[cacheKey]cacheEntry{}}
}

// generation is the project's: it grows with every invalidation.
func (c *policyCache) generation(project string) uint64 { return c.all + c.gen[project] }

func (c *policyCache) get(k cacheKey) (*policy.Set, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	g := c.generation(k.project)
	e, ok := c.entries[k]
	return e.set, g, ok && e.gen == g
}

func (c *policyCache) put(k cacheKey, gen uint64, set *policy.Set) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.generation(k.project) == gen { // a change raced the load: do not cache stale
		c.entries[k] = cacheEntry{gen: gen, set: set}
	}
}

// invalidate drops every cached policy of the project.
func (c *policyCache) invalidate(project string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen[project]++
	c.changes.Add(1)
	for k := range c.entries {
		if k.project == project {
			delete(c.entries, k)
		}
	}
}

// invalidateAll drops every cached policy.
func (c *policyCache) invalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all++
	c.changes.Add(1)
	clear(c.entries)
}

// write runs fn and logs the project's change in one transaction (other
// replicas see the change and its announcement together, package
// replica), then drops the project's compiled policies here.
func (s *Service) write(ctx context.Context, projectID string, fn func(tx *store.Tx) error) error {
	err := s.store.WithTx(ctx, func(tx *store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		_, err := tx.RecordChange(ctx, store.Change{Kind: store.ChangeProject, ProjectID: projectID})
		return err
	})
	if err == nil {
		s.cache.invalidate(projectID)
	}
	return err
}

// changed is write's afterthought for a change committed already (a new
// principal, which nothing cached yet): it drops the project's compiled
// policies here and logs the change, before the caller answers its
// client, so other replicas' next request sees it.
func (s *Service) changed(ctx context.Context, projectID string) {
	s.cache.invalidate(projectID)
	if _, err := s.store.RecordChange(context.WithoutCancel(ctx), store.Change{Kind: store.ChangeProject, ProjectID: projectID}); err != nil {
		// The change itself is committed; other replicas learn of it with
		// the next change that is logged, or when they reload everything.
		s.log.WarnContext(ctx, "log project change", "err", err, "project", projectID)
	}
}

// Invalidate drops the project's cached policies and settings: another
// process changed its access policies, principals or settings.
func (s *Service) Invalidate(projectID string) { s.cache.invalidate(projectID) }

// InvalidateAll drops every cached policy and setting (this replica may
// have missed changes).
func (s *Service) InvalidateAll() { s.cache.invalidateAll() }

// Changes grows with every change of any project, applied here: caches
// over all projects (the CORS origins) reload when it moved.
func (s *Service) Changes() uint64 { return s.cache.changes.Load() }

// Generation grows with every change to the project's policies,
// principals or settings, here or (once applied) elsewhere: a cache of
// anything derived from them keeps the generation it was built at and is
// stale when it differs.
func (s *Service) Generation(projectID string) uint64 {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return s.cache.generation(projectID)
}

// PolicySet returns the principal's current effective policy: inline policy
// merged with every role's, compiled once and cached until a change.
func (s *Policies) PolicySet(ctx context.Context, p auth.Principal) (*policy.Set, error) {
	k := cacheKey{p.ProjectID, string(p.Kind), p.ID}
	if set, _, ok := s.cache.get(k); ok {
		return set, nil
	}
	_, gen, _ := s.cache.get(k)
	if p.Kind == auth.KindRole {
		// A foreign token accepted by the project's authorizer acts as
		// exactly one role: no inline policy, no holder row.
		set, err := s.compile(ctx, p.ProjectID, nil, []string{p.ID})
		if err != nil {
			return nil, err
		}
		s.cache.put(k, gen, set)
		return set, nil
	}
	inline, err := s.inlinePolicy(ctx, p)
	if err != nil {
		return nil, err
	}
	roleIDs, err := s.store.RolesOf(ctx, p.ProjectID, holderOf(p.Kind, p.ID))
	if err != nil {
		return nil, err
	}
	set, err := s.compile(ctx, p.ProjectID, inline, roleIDs)
	if err != nil {
		return nil, err
	}
	s.cache.put(k, gen, set)
	return set, nil
}

func (s *Policies) inlinePolicy(ctx context.Context, p auth.Principal) ([]byte, error) {
	switch p.Kind {
	case auth.KindM2M:
		c, err := s.store.GetM2M(ctx, p.ProjectID, p.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fault.Unauthorized("the client of this token no longer exists")
		}
		if err != nil {
			return nil, err
		}
		return c.AccessPolicy, nil
	case auth.KindDeveloper:
		d, err := s.store.GetDeveloper(ctx, p.ProjectID, p.ID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && d.InvitationHash != "") {
			return nil, fault.Forbidden("this developer is not a member of project %s", p.ProjectID)
		}
		if err != nil {
			return nil, err
		}
		return d.AccessPolicy, nil
	case auth.KindUser:
		u, err := s.store.GetUser(ctx, p.ProjectID, p.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fault.Unauthorized("the user of this token no longer exists")
		}
		if err != nil {
			return nil, err
		}
		return u.AccessPolicy, nil
	}
	return nil, fault.Forbidden("principal kind %q has no policy in this project", p.Kind)
}

// compile builds a Set from an inline policy and role ids.
func (s *Policies) compile(ctx context.Context, projectID string, inline []byte, roleIDs []string) (*policy.Set, error) {
	var sources []policy.Source
	if inline != nil {
		doc, err := policy.Parse(inline)
		if err != nil {
			return nil, fmt.Errorf("stored inline policy: %w", err)
		}
		sources = append(sources, policy.Source{Kind: "inline", Doc: doc})
	}
	roles, err := s.store.RolesByID(ctx, projectID, roleIDs)
	if err != nil {
		return nil, err
	}
	for _, r := range roles {
		doc, err := policy.Parse(r.AccessPolicy)
		if err != nil {
			return nil, fmt.Errorf("stored policy of role %s: %w", r.ID, err)
		}
		sources = append(sources, policy.Source{Kind: "role", ID: r.ID, Name: r.Name, Doc: doc})
	}
	return policy.Compile(sources...), nil
}

// Authorize allows the request or returns a Forbidden fault naming the
// missing action and resource. The returned decision carries any FHIR
// conditions the caller must apply.
func (s *Policies) Authorize(ctx context.Context, p auth.Principal, action, resource string) (policy.Decision, error) {
	set, err := s.PolicySet(ctx, p)
	if err != nil {
		return policy.Decision{}, err
	}
	d := set.Decide(action, resource)
	if !d.Allowed {
		return d, fault.Forbidden("access denied: this principal is not allowed %s on %s", action, resource)
	}
	return d, nil
}

// holderOf is the store key of a principal.
func holderOf(kind auth.Kind, id string) store.Holder {
	return store.Holder{Kind: string(kind), ID: id}
}
