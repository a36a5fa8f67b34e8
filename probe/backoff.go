package probe

import (
	"sync"
	"time"
)

// CredentialGuard protects accounts from lockout. A monitor that keeps
// offering a stale password every minute locks the service account out,
// which is worse than no monitor: after the server refused credentials the
// guard withholds them for a while.
type CredentialGuard interface {
	// Blocked reports until when credentials for key are withheld.
	Blocked(key string) (until time.Time, blocked bool)
	// Refused records that the server answered the credentials with 401.
	Refused(key string)
	// Accepted records that the credentials worked.
	Accepted(key string)
}

// Backoff is a CredentialGuard whose back-off starts at Initial after a
// refusal and doubles with every further refusal up to Max. Safe for
// concurrent use.
type Backoff struct {
	initial, max time.Duration
	now          func() time.Time

	mu    sync.Mutex
	state map[string]backoffState
}

type backoffState struct {
	refusals int
	until    time.Time
}

// NewBackoff returns a Backoff; zero durations mean 15 minutes and 4 hours.
func NewBackoff(initial, max time.Duration) *Backoff {
	if initial <= 0 {
		initial = 15 * time.Minute
	}
	if max < initial {
		max = 4 * time.Hour
		if max < initial {
			max = initial
		}
	}
	return &Backoff{initial: initial, max: max, now: time.Now, state: map[string]backoffState{}}
}

// Blocked implements CredentialGuard.
func (b *Backoff) Blocked(key string) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.state[key]
	if !ok || !b.now().Before(st.until) {
		return time.Time{}, false
	}
	return st.until, true
}

// Refused implements CredentialGuard.
func (b *Backoff) Refused(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.state[key]
	st.refusals++
	d := b.initial
	for i := 1; i < st.refusals && d < b.max; i++ {
		d *= 2
	}
	if d > b.max {
		d = b.max
	}
	st.until = b.now().Add(d)
	b.state[key] = st
}

// Accepted implements CredentialGuard.
func (b *Backoff) Accepted(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.state, key)
}

// Reset forgets the back-off of key (a person checked the account).
func (b *Backoff) Reset(key string) { b.Accepted(key) }

// ResetAll forgets every back-off (the configuration changed).
func (b *Backoff) ResetAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.state)
}

// Remaining is how long credentials for key stay withheld (0 if not).
func (b *Backoff) Remaining(key string) time.Duration {
	until, blocked := b.Blocked(key)
	if !blocked {
		return 0
	}
	return until.Sub(b.now())
}
