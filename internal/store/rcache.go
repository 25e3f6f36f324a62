package store

import (
	"container/list"
	"fmt"
	"hash/maphash"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// The resource cache: on PostgreSQL each replica keeps the current
// versions of the resources it read lately, so that a read by id usually
// costs no query (one costs ~100-145 µs of PostgreSQL's CPU on 2 cores,
// about what a whole SQLite read costs: bench/RESULTS.md, issue 28).
//
// Why it is correct (docs/replicas.md says the same for operators):
//
//   - It is used only while this replica holds its lease (Listen): the
//     listener is connected and every write acknowledged so far, on any
//     replica, has reached this replica's listener and been applied.
//     Every transaction that updates or deletes a resource row (they all
//     go through PutResource) announces the key in the transaction (NOTIFY
//     on resourceChannel) and, after its commit and before answering,
//     evicts it here and, when another replica may hold a lease, takes a
//     mark (sequence resource_marks) and announces it too. NOTIFY delivers
//     in commit order, so a replica that has heard a mark >= m has applied
//     every eviction committed before m was taken. Replicas record the
//     highest mark heard in their lease row; the writer waits until every
//     other leased replica's mark reaches its own or that lease ran out.
//   - A lease ends on this replica's monotonic clock before it ends in the
//     database (the renewal's start plus 90% of ReplicaLease): a writer
//     that stopped waiting for it because its lease ran out did so after
//     the replica stopped using its cache. When the replica takes a lease
//     again after a lapse (or the first time), it empties the cache after
//     the renewal committed: reads after that see every write committed
//     before it, and writers of later commits see the lease and wait.
//   - A read that misses queries the database and inserts what it read
//     only if nothing invalidated its shard (or emptied the cache) since
//     it took its ticket, before the query: an eviction that overtook the
//     query cannot be undone by a stale insert. An entry never replaces a
//     newer version. There are no entries for resources that do not
//     exist, so a create needs no eviction.
//   - Whether another replica may hold a lease is known without a query:
//     the renewal (every ReplicaLease/3) reads whether another lease is
//     valid, and a replica taking a lease after a lapse first announces
//     itself (a mark) and waits until every leased replica has heard it,
//     so each learns of it before it serves from its cache. A replica
//     whose own lease does not hold knows nothing and always waits.
//   - Inside a transaction reads go to the database (a transaction reads
//     its own writes).

// DefaultResourceCacheBytes is the resource cache's default size.
const DefaultResourceCacheBytes = 64 << 20

// cacheShards spreads the cache's locks; each shard also has its own
// invalidation generation, so an eviction fails concurrent inserts in one
// shard only.
const cacheShards = 64

// rkey names a resource.
type rkey struct{ project, typ, id string }

// rentry is one cached resource.
type rentry struct {
	key  rkey
	r    Resource
	size int64
}

type rshard struct {
	mu      sync.Mutex
	gen     uint64 // bumped by every eviction
	entries map[rkey]*list.Element
	lru     list.List // front: most recently used
	bytes   int64
}

// replicaState is what Listen knows of this replica's lease and the
// others', shared by the Store's copies, with the resource cache (nil
// when turned off).
type replicaState struct {
	base       time.Time
	leaseUntil atomic.Int64 // ns after base on the monotonic clock; 0: none
	// others: another replica may hold a lease (read at each renewal,
	// set when one announces itself).
	others atomic.Bool
	id     atomic.Pointer[string] // this replica's lease id, once listening

	cache *resourceCache
}

func newReplicaState(cacheBytes int64) *replicaState {
	rs := &replicaState{base: time.Now()}
	if cacheBytes > 0 {
		rs.cache = newResourceCache(cacheBytes)
	}
	return rs
}

// leased reports whether this replica's lease holds.
func (rs *replicaState) leased() bool {
	return int64(time.Since(rs.base)) < rs.leaseUntil.Load()
}

func (rs *replicaState) setLease(until time.Time) {
	if until.IsZero() {
		rs.leaseUntil.Store(0)
		return
	}
	rs.leaseUntil.Store(int64(until.Sub(rs.base)))
}

// clear empties the cache (if any).
func (rs *replicaState) clear() {
	if rs.cache != nil {
		rs.cache.clear()
	}
}

// alone reports whether a write may skip waiting for other replicas'
// caches: this replica's lease holds and no other may.
func (rs *replicaState) alone() bool { return rs.leased() && !rs.others.Load() }

type resourceCache struct {
	seed      maphash.Seed
	shardMax  int64
	epoch     atomic.Uint64 // bumped by clear
	shards    [cacheShards]rshard
	hits      atomic.Int64
	misses    atomic.Int64
	evictions atomic.Int64
}

func newResourceCache(max int64) *resourceCache {
	c := &resourceCache{seed: maphash.MakeSeed(), shardMax: max / cacheShards}
	for i := range c.shards {
		c.shards[i].entries = map[rkey]*list.Element{}
	}
	return c
}

func (c *resourceCache) shard(k rkey) *rshard {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(k.project)
	h.WriteByte(0)
	h.WriteString(k.typ)
	h.WriteByte(0)
	h.WriteString(k.id)
	return &c.shards[h.Sum64()%cacheShards]
}

// get returns a copy of k's cached resource.
func (c *resourceCache) get(k rkey) (Resource, bool) {
	sh := c.shard(k)
	sh.mu.Lock()
	el, ok := sh.entries[k]
	if !ok {
		sh.mu.Unlock()
		c.misses.Add(1)
		return Resource{}, false
	}
	sh.lru.MoveToFront(el)
	r := el.Value.(*rentry).r
	sh.mu.Unlock()
	c.hits.Add(1)
	// Callers own what they get: the cached bytes stay the cache's.
	r.Content = append([]byte(nil), r.Content...)
	return r, true
}

// ticket is taken before a read's query: put inserts only if nothing was
// evicted from the key's shard, nor the cache emptied, since.
type ticket struct {
	epoch, gen uint64
}

func (c *resourceCache) ticket(k rkey) ticket {
	sh := c.shard(k)
	sh.mu.Lock()
	g := sh.gen
	sh.mu.Unlock()
	return ticket{epoch: c.epoch.Load(), gen: g}
}

// put caches r (read under ticket t), unless t is stale or a newer
// version is cached.
func (c *resourceCache) put(t ticket, r Resource) {
	k := rkey{r.ProjectID, r.Type, r.ID}
	size := int64(len(r.Content)+len(k.project)+len(k.typ)+len(k.id)) + 160
	if size > c.shardMax {
		return
	}
	r.Content = append([]byte(nil), r.Content...)
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// The epoch is bumped before the shards are emptied (clear), so an
	// insert that saw the old epoch here is emptied after it.
	if sh.gen != t.gen || c.epoch.Load() != t.epoch {
		return
	}
	if el, ok := sh.entries[k]; ok {
		e := el.Value.(*rentry)
		if e.r.VersionID >= r.VersionID {
			return
		}
		sh.bytes += size - e.size
		e.r, e.size = r, size
		sh.lru.MoveToFront(el)
	} else {
		sh.entries[k] = sh.lru.PushFront(&rentry{key: k, r: r, size: size})
		sh.bytes += size
	}
	for sh.bytes > c.shardMax {
		old := sh.lru.Back()
		e := old.Value.(*rentry)
		sh.lru.Remove(old)
		delete(sh.entries, e.key)
		sh.bytes -= e.size
		c.evictions.Add(1)
	}
}

// evict drops k and fails the inserts of reads that started before.
func (c *resourceCache) evict(k rkey) {
	sh := c.shard(k)
	sh.mu.Lock()
	sh.gen++
	if el, ok := sh.entries[k]; ok {
		sh.lru.Remove(el)
		delete(sh.entries, k)
		sh.bytes -= el.Value.(*rentry).size
	}
	sh.mu.Unlock()
}

// clear empties the cache and fails the inserts of reads that started
// before.
func (c *resourceCache) clear() {
	c.epoch.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.entries)
		sh.lru.Init()
		sh.bytes = 0
		sh.mu.Unlock()
	}
}

// ResourceCacheStats counts the resource cache's lookups.
type ResourceCacheStats struct {
	Hits, Misses int64 // reads by id served from the cache, and not
	Evictions    int64 // entries dropped for room
	Entries      int
	Bytes        int64
}

// ResourceCacheStats reports the resource cache's counters (zero when
// there is none: SQLite, or turned off).
func (s *Store) ResourceCacheStats() ResourceCacheStats {
	if s.rs == nil || s.rs.cache == nil {
		return ResourceCacheStats{}
	}
	c := s.rs.cache
	st := ResourceCacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load()}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		st.Entries += len(sh.entries)
		st.Bytes += sh.bytes
		sh.mu.Unlock()
	}
	return st
}

// WritePrometheus writes the counters in the Prometheus text format.
func (st ResourceCacheStats) WritePrometheus(w io.Writer) error {
	_, err := fmt.Fprintf(w, `# HELP ward_resource_cache_hits_total Reads by id served from this replica's resource cache.
# TYPE ward_resource_cache_hits_total counter
ward_resource_cache_hits_total %d
# HELP ward_resource_cache_misses_total Reads by id the resource cache could have served but did not hold.
# TYPE ward_resource_cache_misses_total counter
ward_resource_cache_misses_total %d
# HELP ward_resource_cache_evictions_total Entries dropped from the resource cache for room.
# TYPE ward_resource_cache_evictions_total counter
ward_resource_cache_evictions_total %d
# HELP ward_resource_cache_bytes Bytes the resource cache holds.
# TYPE ward_resource_cache_bytes gauge
ward_resource_cache_bytes %d
`, st.Hits, st.Misses, st.Evictions, st.Bytes)
	return err
}

// cachedResource is GetResource's cache lookup: ok with the resource, or
// a ticket for the insert after the query (use false: do not insert).
func (s *Store) cachedResource(k rkey) (r Resource, ok bool, t ticket, use bool) {
	if s.rs == nil || s.rs.cache == nil || s.InTx() || !s.rs.leased() {
		return Resource{}, false, ticket{}, false
	}
	c := s.rs.cache
	if r, ok := c.get(k); ok {
		return r, true, ticket{}, false
	}
	return Resource{}, false, c.ticket(k), true
}

// evictLocal drops the keys this process's transaction wrote from its
// own cache (after the commit).
func (s *Store) evictLocal(keys []rkey) {
	if s.rs == nil || s.rs.cache == nil {
		return
	}
	for _, k := range keys {
		s.rs.cache.evict(k)
	}
}
