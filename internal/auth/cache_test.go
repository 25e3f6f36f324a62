package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestCacheSkipsRSAButNotChecks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.issue(t, m2m(), time.Hour)

	for i := range 3 {
		if _, err := f.verifier.Verify(ctx, tok); err != nil {
			t.Fatalf("verify %d: %v", i, err)
		}
	}
	if n := f.verifier.sigChecks.Load(); n != 1 {
		t.Fatalf("%d RSA verifications for 3 calls, want 1", n)
	}
	if f.revoked.calls != 3 {
		t.Fatalf("%d revocation checks for 3 calls, want 3", f.revoked.calls)
	}

	// Revocation applies to the cached token at once.
	f.revoked.revoke(jtiOf(t, f, tok))
	_, err := f.verifier.Verify(ctx, tok)
	wantReason(t, err, "token revoked")

	// Expiry applies to cached tokens too (at the same leeway).
	tok2 := f.issue(t, m2m(), time.Hour)
	if _, err := f.verifier.Verify(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(time.Hour + Leeway - time.Second)
	if _, err := f.verifier.Verify(ctx, tok2); err != nil {
		t.Fatalf("inside leeway: %v", err)
	}
	f.clock.advance(time.Second)
	_, err = f.verifier.Verify(ctx, tok2)
	wantReason(t, err, "token expired")
	if n := f.verifier.sigChecks.Load(); n != 3 {
		// tok (1), tok2 (1), tok2 re-parsed after its entry expired (1).
		t.Fatalf("%d RSA verifications, want 3", n)
	}
}

// jtiOf returns the jti of a token by verifying it.
func jtiOf(t *testing.T, f *fixture, tok string) string {
	t.Helper()
	p, err := f.verifier.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return p.TokenID
}

// A key dropped from the ring (e.g. after a compromise) stops cached tokens
// too: the cache saves the RSA work, never a trust decision.
func TestCacheRechecksKeyRing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.issue(t, m2m(), time.Hour)
	if _, err := f.verifier.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.setRing(t, time.Hour, newKey(t, t0))
	_, err := f.verifier.Verify(ctx, tok)
	wantReason(t, err, "unknown signing key")
	if n := f.verifier.cache.len(); n != 0 {
		t.Fatalf("%d cache entries left, want the stale one dropped", n)
	}
}

func TestCacheReturnsCopies(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.issue(t, m2m(), time.Hour)
	p1, err := f.verifier.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	// Edit what a miss returned, then what a hit returned.
	for i := range 3 {
		if p1.Scopes[0] != "system/*.rs" {
			t.Fatalf("call %d: a caller's edit reached the cache: %v", i, p1.Scopes)
		}
		p1.Scopes[0] = "system/*.cruds"
		if p1, err = f.verifier.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCacheBounded(t *testing.T) {
	c := newTokenCache(64)
	live := cacheEntry{p: Principal{ExpiresAt: t0.Add(time.Hour)}}
	for i := range 10_000 {
		k := sha256.Sum256(fmt.Appendf(nil, "token-%d", i))
		c.put(&k, live, t0)
		if n := c.len(); n > 64 {
			t.Fatalf("%d entries after %d puts, bound is 64", n, i+1)
		}
	}
	// Expired entries go first: a full shard holding expired entries drops
	// those, not its live ones, to make room.
	const per = 8
	c = newTokenCache(cacheShards * per)
	expired := cacheEntry{p: Principal{ExpiresAt: t0.Add(-time.Hour)}}
	var liveKeys [][32]byte
	liveIn := map[*cacheShard]int{}
	for i := 0; c.len() < cacheShards*per; i++ {
		k := sha256.Sum256(fmt.Appendf(nil, "old-%d", i))
		s := c.shard(&k)
		if s.len() == per {
			continue // a put would already evict
		}
		e := expired
		if liveIn[s] < 2 {
			e = live
			liveIn[s]++
			liveKeys = append(liveKeys, k)
		}
		c.put(&k, e, t0)
	}
	done := map[*cacheShard]bool{}
	for i := 0; len(done) < cacheShards; i++ {
		k := sha256.Sum256(fmt.Appendf(nil, "new-%d", i))
		if s := c.shard(&k); !done[s] {
			done[s] = true
			c.put(&k, live, t0)
		}
	}
	for _, k := range liveKeys {
		if _, ok := c.get(&k); !ok {
			t.Fatal("a live entry was evicted while expired ones could go")
		}
	}
	if n := c.len(); n != len(liveKeys)+cacheShards {
		t.Fatalf("%d entries, want the %d live and %d new ones", n, len(liveKeys), cacheShards)
	}
}

func (s *cacheShard) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

func TestVerifyConcurrent(t *testing.T) {
	f := newFixture(t)
	toks := make([]string, 8)
	for i := range toks {
		toks[i] = f.issue(t, m2m(), time.Hour)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := f.verifier.Verify(context.Background(), toks[(g+i)%len(toks)]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := f.verifier.sigChecks.Load(); n > 16*int64(len(toks)) {
		t.Fatalf("%d RSA verifications for %d distinct tokens", n, len(toks))
	}
}
