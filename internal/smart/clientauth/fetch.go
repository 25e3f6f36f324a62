package clientauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/wardhealth/ward/internal/egress"
)

const (
	// defaultJWKSTTL applies when the response has no Cache-Control.
	defaultJWKSTTL = 5 * time.Minute
	// maxJWKSTTL caps max-age, so a removed (compromised) key stops being
	// trusted within the hour whatever the server said.
	maxJWKSTTL = time.Hour
	// minRefetchInterval limits refetches for an unknown kid per URL: an
	// attacker spraying kids under a client's iss must not turn us into a
	// flood against the client's server.
	minRefetchInterval = 10 * time.Second
	// pruneAbove is the number of URLs above which stale entries are swept.
	pruneAbove = 1024
)

// jwksCache fetches JWKS URLs and caches the parsed sets per URL.
type jwksCache struct {
	client  *http.Client
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	group   singleflight.Group // one fetch per URL at a time

	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	keys    *KeySet // nil: nothing cached
	expires time.Time
	fetched time.Time // start of the last fetch, for minRefetchInterval
	failed  error     // of the last fetch, repeated for minRefetchInterval
}

func newJWKSCache(client *http.Client, timeout time.Duration, now func() time.Time, log *slog.Logger) *jwksCache {
	return &jwksCache{client: client, timeout: timeout, now: now, log: log, entries: map[string]*cacheEntry{}}
}

// get returns the set for url, from the cache if it is still fresh;
// fetched reports whether it was fetched just now.
func (c *jwksCache) get(ctx context.Context, url string) (set *KeySet, fetched bool, err error) {
	now := c.now()
	c.mu.Lock()
	e := c.entries[url]
	if e != nil && e.keys != nil && now.Before(e.expires) {
		c.mu.Unlock()
		return e.keys, false, nil
	}
	if e != nil && e.failed != nil && now.Sub(e.fetched) < minRefetchInterval {
		// A broken JWKS URL must not cost a request (and up to the fetch
		// timeout) per assertion that names its client.
		err := e.failed
		c.mu.Unlock()
		return nil, false, err
	}
	c.mu.Unlock()
	set, err = c.fetch(ctx, url)
	return set, true, err
}

// refresh refetches url unless it was fetched within minRefetchInterval;
// then it returns nil, nil.
func (c *jwksCache) refresh(ctx context.Context, url string) (*KeySet, error) {
	now := c.now()
	c.mu.Lock()
	e := c.entry(url)
	if now.Sub(e.fetched) < minRefetchInterval {
		c.mu.Unlock()
		return nil, nil
	}
	// Claim the slot now, so that concurrent misses do not all pass.
	e.fetched = now
	c.mu.Unlock()
	return c.fetch(ctx, url)
}

// entry returns url's entry, creating it; c.mu must be held.
func (c *jwksCache) entry(url string) *cacheEntry {
	e := c.entries[url]
	if e == nil {
		if len(c.entries) >= pruneAbove {
			c.prune()
		}
		e = &cacheEntry{}
		c.entries[url] = e
	}
	return e
}

// prune drops entries that neither hold fresh keys nor throttle a
// refetch; c.mu must be held.
func (c *jwksCache) prune() {
	now := c.now()
	for url, e := range c.entries {
		if !now.Before(e.expires) && now.Sub(e.fetched) >= minRefetchInterval {
			delete(c.entries, url)
		}
	}
}

// fetch gets url, sharing one request among concurrent callers, and
// caches the set as long as Cache-Control allows.
func (c *jwksCache) fetch(ctx context.Context, url string) (*KeySet, error) {
	ch := c.group.DoChan(url, func() (any, error) {
		start := c.now()
		c.mu.Lock()
		c.entry(url).fetched = start
		c.mu.Unlock()
		// The request serves every waiter, so one waiter giving up must not
		// cancel it; the timeout still bounds it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		set, ttl, err := c.download(fctx, url)
		c.mu.Lock()
		defer c.mu.Unlock()
		e := c.entry(url)
		e.failed = err
		if err != nil {
			// Keys cached earlier stay until their own expiry.
			c.log.WarnContext(ctx, "client JWKS fetch failed", "url", url, "error", err)
			return nil, err
		}
		if ttl > 0 {
			e.keys, e.expires = set, start.Add(ttl) // from the start: conservative
		} else {
			e.keys, e.expires = nil, time.Time{}
		}
		return set, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*KeySet), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("clientauth: fetch JWKS: %w", context.Cause(ctx))
	}
}

// download fetches and parses one JWKS. Its errors are rejections whose
// reason names the failure without echoing network details (an error text
// like "dial tcp 10.0.0.7:443" would help probe the internal network).
func (c *jwksCache) download(ctx context.Context, url string) (*KeySet, time.Duration, error) {
	fail := func(why string, cause error) error {
		return &Error{Reason: fmt.Sprintf("could not fetch the client's JWKS from %s: %s", url, why), cause: cause}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, fail("invalid URL", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		// The rule only, not the address: a name's private address is
		// not the caller's business.
		if denied := (*egress.DeniedError)(nil); errors.As(err, &denied) {
			return nil, 0, fail("its address is refused by the egress policy ("+denied.Rule+")", err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, 0, fail(fmt.Sprintf("no answer within %s", c.timeout), err)
		}
		return nil, 0, fail("request failed", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fail(fmt.Sprintf("HTTP status %d", resp.StatusCode), nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, 0, fail(fmt.Sprintf("no answer within %s", c.timeout), err)
		}
		return nil, 0, fail("reading the response failed", err)
	}
	if len(body) > MaxJWKSSize {
		return nil, 0, fail(fmt.Sprintf("response larger than %d KiB", MaxJWKSSize>>10), nil)
	}
	set, err := ParseJWKS(body)
	if err != nil {
		return nil, 0, fail(err.Error(), err)
	}
	return set, cacheTTL(resp.Header), nil
}

// cacheTTL is how long a response may be cached: not at all under
// no-store or no-cache (we never revalidate), max-age capped at
// maxJWKSTTL, else defaultJWKSTTL.
func cacheTTL(h http.Header) time.Duration {
	ttl := defaultJWKSTTL
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				n, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(val), `"`), 10, 63)
				if errors.Is(err, strconv.ErrRange) {
					n = math.MaxUint64 // RFC 9111 1.2.2: too large is "very long"
				} else if err != nil {
					return 0 // RFC 9111 4.2.1: an invalid max-age means stale
				}
				if n >= uint64(maxJWKSTTL/time.Second) {
					ttl = maxJWKSTTL
				} else {
					ttl = time.Duration(n) * time.Second
				}
			}
		}
	}
	return min(ttl, maxJWKSTTL)
}
