package store

import (
	"bytes"
	"testing"
)

// TestResourceCacheRules: the cache's own rules, without a database. A
// read's insert is refused once an eviction of its shard, or a clear,
// came after its ticket (it may have read what the eviction replaced); an
// older version never replaces a newer one; callers get copies; entries
// beyond the byte bound go, least recently used first.
func TestResourceCacheRules(t *testing.T) {
	res := func(id string, v int64, content string) Resource {
		return Resource{ProjectID: "p1", Type: "Patient", ID: id, VersionID: v, Content: []byte(content)}
	}
	k := func(id string) rkey { return rkey{"p1", "Patient", id} }
	cases := []struct {
		name string
		run  func(c *resourceCache)
		want map[string]int64 // id -> cached version; absent: not cached
	}{
		{"a read inserts what it read", func(c *resourceCache) {
			c.put(c.ticket(k("a")), res("a", 1, "{}"))
		}, map[string]int64{"a": 1}},
		{"an eviction after the ticket refuses the insert", func(c *resourceCache) {
			t := c.ticket(k("a"))
			c.evict(k("a")) // a write committed while the read ran
			c.put(t, res("a", 1, "{}"))
		}, nil},
		{"an eviction before the ticket does not", func(c *resourceCache) {
			c.evict(k("a"))
			c.put(c.ticket(k("a")), res("a", 2, "{}"))
		}, map[string]int64{"a": 2}},
		{"a clear after the ticket refuses the insert", func(c *resourceCache) {
			t := c.ticket(k("a"))
			c.clear() // the lease was taken anew
			c.put(t, res("a", 1, "{}"))
		}, nil},
		{"an eviction drops the entry", func(c *resourceCache) {
			c.put(c.ticket(k("a")), res("a", 1, "{}"))
			c.put(c.ticket(k("b")), res("b", 1, "{}"))
			c.evict(k("a"))
		}, map[string]int64{"b": 1}},
		{"an older version never replaces a newer one", func(c *resourceCache) {
			old := c.ticket(k("a"))
			c.put(c.ticket(k("a")), res("a", 3, "{}"))
			c.put(old, res("a", 2, "{}"))
		}, map[string]int64{"a": 3}},
		{"a newer version replaces an older one", func(c *resourceCache) {
			c.put(c.ticket(k("a")), res("a", 2, "{}"))
			c.put(c.ticket(k("a")), res("a", 3, "{}"))
		}, map[string]int64{"a": 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newResourceCache(1 << 20)
			tc.run(c)
			for _, id := range []string{"a", "b"} {
				r, ok := c.get(k(id))
				want, cached := tc.want[id]
				if ok != cached || ok && r.VersionID != want {
					t.Errorf("%s: cached %v version %d; want cached %v version %d", id, ok, r.VersionID, cached, want)
				}
			}
		})
	}

	t.Run("callers get copies", func(t *testing.T) {
		c := newResourceCache(1 << 20)
		r := res("a", 1, `{"a":1}`)
		c.put(c.ticket(k("a")), r)
		r.Content[0] = 'X' // the reader's bytes are its own
		got, _ := c.get(k("a"))
		got.Content[1] = 'X'
		again, _ := c.get(k("a"))
		if !bytes.Equal(again.Content, []byte(`{"a":1}`)) {
			t.Fatalf("cached content changed through callers: %s", again.Content)
		}
	})

	t.Run("bounded by bytes, least recently used out first", func(t *testing.T) {
		c := newResourceCache(cacheShards * 4096) // 4 KiB a shard
		big := string(bytes.Repeat([]byte("x"), 1000))
		// Enough ids that some shard gets more than it holds.
		ids := make([]string, 0, 2000)
		for i := range 2000 {
			id := string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
			ids = append(ids, id)
			c.put(c.ticket(k(id)), res(id, 1, big))
		}
		st := (&Store{rs: &replicaState{cache: c}}).ResourceCacheStats()
		if st.Bytes > cacheShards*4096 || st.Evictions == 0 || st.Entries == 0 {
			t.Fatalf("stats %+v: want at most %d bytes, some evicted, some kept", st, cacheShards*4096)
		}
		// The last id written is the most recently used of its shard.
		if _, ok := c.get(k(ids[len(ids)-1])); !ok {
			t.Fatal("the most recent entry was evicted")
		}
		if _, ok := c.get(k(ids[0])); ok {
			t.Fatal("the oldest entry survived 2,000 inserts into 4 KiB shards")
		}
	})
}

// TestNotifyPayloads: what replicas announce parses back.
func TestNotifyPayloads(t *testing.T) {
	k := rkey{"2c8b1f1e-7c1a-4d8e-9a5e-3f0e6f1d2a3b", "Patient", "a.b-1"}
	if got, ok := parseEvict(evictPayload(k)); !ok || got != k {
		t.Fatalf("eviction: %+v %v", got, ok)
	}
	for _, tc := range []struct {
		p      string
		m      int64
		joiner string
		ok     bool
	}{{"m42", 42, "", true}, {"j7 r1", 7, "r1", true}, {"j7", 0, "", false}, {"m", 0, "", false}, {"x1", 0, "", false}, {"", 0, "", false}} {
		m, j, ok := parseMark(tc.p)
		if m != tc.m || j != tc.joiner || ok != tc.ok {
			t.Errorf("parseMark(%q) = %d %q %v; want %d %q %v", tc.p, m, j, ok, tc.m, tc.joiner, tc.ok)
		}
	}
	if _, ok := parseEvict("m42"); ok {
		t.Fatal("a mark parsed as an eviction")
	}
}
