package probe

import "sync/atomic"

// Defaults of the per-probe budget: a real chain (seven candidates, four
// TLS hosts, a few addresses each) spends a fraction of either.
const (
	DefaultMaxConnectionAttempts = 64
	DefaultMaxDNSQueries         = 64
	// MaxBudgetLimit caps what a module may configure.
	MaxBudgetLimit = 1024
)

// budget bounds what one probe may spend on the network, so that a
// domain a redirect leads to cannot make the probe dial or query
// whatever it publishes. Safe for the concurrent per-address checks.
type budget struct {
	dials, queries atomic.Int64
	maxDials       int64
	maxQueries     int64
}

func newBudget(s *Settings) *budget {
	b := &budget{
		maxDials:   int64(positiveOr(s.MaxConnectionAttempts, DefaultMaxConnectionAttempts)),
		maxQueries: int64(positiveOr(s.MaxDNSQueries, DefaultMaxDNSQueries)),
	}
	return b
}

// dial spends one connection attempt; nil (a side channel the operator
// configured) has no budget.
func (b *budget) dial() *Error {
	if b == nil || b.dials.Add(1) <= b.maxDials {
		return nil
	}
	return failf(ClassBudgetExhausted, "the probe's budget of %d connection attempts is spent", b.maxDials)
}

// query spends one DNS query.
func (b *budget) query() *Error {
	if b == nil || b.queries.Add(1) <= b.maxQueries {
		return nil
	}
	return failf(ClassBudgetExhausted, "the probe's budget of %d DNS queries is spent", b.maxQueries)
}
