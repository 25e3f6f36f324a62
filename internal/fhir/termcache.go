package fhir

import "sync"

// termCache keeps parsed CodeSystems and ValueSets by project, id and version. A stored
// version never changes, so an entry is never stale; an update is a new key. Parsing a large
// code system (a CPT extract) costs more than the rest of an $expand.
type termCache struct {
	mu sync.Mutex
	m  map[termKey]any
}

type termKey struct {
	project, typ, id string
	version          int64
}

// termCacheSize bounds the entries: the few large code systems projects query.
const termCacheSize = 32

func newTermCache() *termCache { return &termCache{m: map[termKey]any{}} }

func (c *termCache) get(k termKey) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *termCache) put(k termKey, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= termCacheSize {
		for old := range c.m { // any one: map order is arbitrary
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
}
