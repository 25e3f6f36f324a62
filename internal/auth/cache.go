package auth

import (
	"sync"
	"time"
)

// cacheShards spreads lock contention; a power of two so the shard is a
// byte of the (uniform) SHA-256 key.
const cacheShards = 16

// tokenCache maps SHA-256(token) to the principal it verified to. Keying by
// hash keeps raw tokens out of memory dumps and bounds the key size.
type tokenCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu  sync.RWMutex
	max int
	m   map[[32]byte]cacheEntry
}

type cacheEntry struct {
	p   Principal
	kid string // the signing key, re-checked against the ring on a hit
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{}
	per := max((size+cacheShards-1)/cacheShards, 1)
	for i := range c.shards {
		c.shards[i].max = per
		c.shards[i].m = make(map[[32]byte]cacheEntry)
	}
	return c
}

func (c *tokenCache) shard(key *[32]byte) *cacheShard { return &c.shards[key[0]%cacheShards] }

func (c *tokenCache) get(key *[32]byte) (cacheEntry, bool) {
	s := c.shard(key)
	s.mu.RLock()
	e, ok := s.m[*key]
	s.mu.RUnlock()
	return e, ok
}

func (c *tokenCache) remove(key *[32]byte) {
	s := c.shard(key)
	s.mu.Lock()
	delete(s.m, *key)
	s.mu.Unlock()
}

// put stores an entry; Verify hands out copies of its Scopes, never the
// cached slice. A full shard first drops expired entries; if live
// entries still fill it, it drops arbitrary ones (map order) down to 7/8
// of its size. Dropping in batches makes the O(n) sweep rare; evicting a
// live entry only costs one more RSA verification later.
func (c *tokenCache) put(key *[32]byte, e cacheEntry, now time.Time) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*key]; !ok && len(s.m) >= s.max {
		for k, old := range s.m {
			if !now.Before(old.p.ExpiresAt.Add(Leeway)) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= s.max {
			target := s.max - max(s.max/8, 1)
			for k := range s.m {
				if len(s.m) <= target {
					break
				}
				delete(s.m, k)
			}
		}
	}
	s.m[*key] = e
}

func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
