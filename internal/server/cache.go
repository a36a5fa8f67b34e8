package server

import (
	"sync"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// resultCache keeps the last result of each min_interval mailbox. Each
// entry has a one-slot lock that a waiting scrape can give up on when its
// deadline passes.
type resultCache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	lock chan struct{}
	// res and when are guarded by lock.
	res  *probe.Result
	when time.Time
}

func newResultCache() *resultCache {
	return &resultCache{entries: map[string]*cacheEntry{}}
}

func (c *resultCache) entry(name string) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[name]
	if !ok {
		e = &cacheEntry{lock: make(chan struct{}, 1)}
		c.entries[name] = e
	}
	return e
}

// clear drops every cached result (the configuration changed).
func (c *resultCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]*cacheEntry{}
}
