package clientauth

import (
	"context"
	"sync"
	"time"
)

// MemoryReplay is a ReplayGuard in memory, for tests and a single process.
// Replicas behind one token endpoint need a shared store instead, or an
// assertion could be replayed against each of them once.
type MemoryReplay struct {
	now func() time.Time

	mu        sync.Mutex
	seen      map[replayKey]time.Time // until when each jti is remembered
	nextSweep time.Time
}

type replayKey struct{ iss, jti string }

// sweepEvery spaces out the sweeps of expired jtis; entries live at most
// MaxLifetime+Leeway, so the map holds a few minutes of assertions.
const sweepEvery = time.Minute

// NewMemoryReplay returns an empty MemoryReplay on clock now (nil:
// time.Now).
func NewMemoryReplay(now func() time.Time) *MemoryReplay {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplay{now: now, seen: map[replayKey]time.Time{}}
}

// Use implements ReplayGuard.
func (m *MemoryReplay) Use(_ context.Context, iss, jti string, exp time.Time) (bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !now.Before(m.nextSweep) {
		for k, until := range m.seen {
			if !now.Before(until) {
				delete(m.seen, k)
			}
		}
		m.nextSweep = now.Add(sweepEvery)
	}
	k := replayKey{iss, jti}
	if until, ok := m.seen[k]; ok && now.Before(until) {
		return false, nil
	}
	m.seen[k] = exp
	return true, nil
}
