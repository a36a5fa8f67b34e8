package server

import (
	"sync"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// probeRecord is one finished probe as the landing page shows it.
type probeRecord struct {
	ID     int64
	Target string
	Module string
	When   time.Time
	Result *probe.Result
}

// history keeps the last result of each mailbox and the most recent
// results in arrival order, bounded by limit.
type history struct {
	mu     sync.Mutex
	limit  int
	nextID int64
	recent []probeRecord
	last   map[string]probeRecord
}

func newHistory(limit int) *history {
	if limit < 1 {
		limit = 1
	}
	return &history{limit: limit, last: map[string]probeRecord{}}
}

func (h *history) add(target, module string, res *probe.Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	rec := probeRecord{ID: h.nextID, Target: target, Module: module, When: time.Now(), Result: res}
	h.recent = append(h.recent, rec)
	if len(h.recent) > h.limit {
		h.recent = append(h.recent[:0:0], h.recent[len(h.recent)-h.limit:]...)
	}
	h.last[target] = rec
}

// lastOf returns the latest record of target.
func (h *history) lastOf(target string) (probeRecord, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.last[target]
	return r, ok
}

// byID finds a recent record.
func (h *history) byID(id int64) (probeRecord, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recent {
		if r.ID == id {
			return r, true
		}
	}
	return probeRecord{}, false
}

// recentFirst lists the recent records, newest first.
func (h *history) recentFirst() []probeRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]probeRecord, len(h.recent))
	for i, r := range h.recent {
		out[len(h.recent)-1-i] = r
	}
	return out
}

// forget drops the last results of targets no longer configured, so a
// reload that removes a mailbox also removes it from the landing page.
func (h *history) forget(keep func(string) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for t := range h.last {
		if !keep(t) {
			delete(h.last, t)
		}
	}
}
