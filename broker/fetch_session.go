package broker

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Fetch sessions (KIP-227). A full fetch with epoch 0 creates a session; the
// client then sends incremental fetches (epoch 1, 2, ...) naming only changed
// partitions, and the broker answers only partitions with news. Epoch -1
// (FINAL_EPOCH) closes a session, or asks for a sessionless full fetch.

// fetchSessionEvictIdle is how long a session must be unused before a new
// session may evict it regardless of size (Kafka's
// min.incremental.fetch.session.eviction.ms is 120 s).
const fetchSessionEvictIdle = 120 * time.Second

// sessKey names one partition of a session (by topic ID for v13+ fetches,
// by name before).
type sessKey struct {
	topic string
	id    [16]byte
	part  int32
}

// sessPart is one partition of a session: the client's fetch position and
// what the last response told the client, to decide what is news.
type sessPart struct {
	key               sessKey
	fetchOffset       int64
	maxBytes          int32
	currentEpoch      int32
	lastFetchedEpoch  int32
	sentHW, sentStart int64
}

// fetchSession is one cached session. mu guards every field but id; it is
// held while a fetch of the session builds its response, so concurrent use of
// one session (a misbehaving client) is serialized.
type fetchSession struct {
	id int32

	mu       sync.Mutex
	epoch    int32 // the epoch the next incremental request must carry
	parts    map[sessKey]*sessPart
	order    []sessKey // response order; partitions that returned data move to the end
	lastUsed time.Time
}

// fetchSessionCache holds sessions up to a slot limit. mu guards sessions.
type fetchSessionCache struct {
	slots    int
	mu       sync.Mutex
	sessions map[int32]*fetchSession
}

func newFetchSessionCache(slots int) *fetchSessionCache {
	return &fetchSessionCache{slots: slots, sessions: map[int32]*fetchSession{}}
}

func (c *fetchSessionCache) get(id int32) *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions[id]
}

func (c *fetchSessionCache) remove(id int32) {
	c.mu.Lock()
	delete(c.sessions, id)
	c.mu.Unlock()
}

// create makes a new session for size partitions, evicting an idle or smaller
// session when the cache is full, as Kafka does; nil when there is no room.
func (c *fetchSessionCache) create(size int, now time.Time) *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.slots <= 0 {
		return nil
	}
	if len(c.sessions) >= c.slots {
		var victim *fetchSession
		victimSize := 0
		for _, s := range c.sessions {
			s.mu.Lock()
			idle, n := now.Sub(s.lastUsed), len(s.parts)
			s.mu.Unlock()
			if idle >= fetchSessionEvictIdle {
				victim = s
				break
			}
			if n < size && (victim == nil || n < victimSize) {
				victim, victimSize = s, n
			}
		}
		if victim == nil {
			return nil
		}
		delete(c.sessions, victim.id)
	}
	var id int32
	for id == 0 || c.sessions[id] != nil {
		id = rand.Int32() // ids are positive; 0 means "no session"
	}
	s := &fetchSession{id: id, epoch: 1, parts: map[sessKey]*sessPart{}, lastUsed: now}
	c.sessions[id] = s
	return s
}
