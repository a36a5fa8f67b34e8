package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CredentialGuard protects accounts from lockout. A monitor that keeps
// offering a stale password locks the service account out, which is worse
// than no monitor: after the server refused credentials the guard
// withholds them for a while. Keys name a credential (see
// Prober.CredentialKey), so every mailbox and module that uses one account
// shares its back-off.
type CredentialGuard interface {
	// Acquire asks to offer the credentials of key. It reports until when
	// they are withheld; when they are not, the caller offers them and then
	// calls release, after Refused or Accepted. While a credential has not
	// been accepted since the last refusal (or the start), only one probe
	// at a time may offer it, so that probes in flight together cannot each
	// spend a failed logon; Acquire waits for that probe, until ctx ends.
	Acquire(ctx context.Context, key string) (until time.Time, blocked bool, release func(), err error)
	// Blocked reports until when credentials for key are withheld.
	Blocked(key string) (until time.Time, blocked bool)
	// Refused records that the server refused the credentials.
	Refused(key string)
	// Accepted records that the credentials worked.
	Accepted(key string)
	// Reset forgets the back-off of key: the credentials behind it are
	// new (a login wrote a new refresh token).
	Reset(key string)
}

// Backoff is a CredentialGuard whose back-off starts at Initial after a
// refusal and doubles with every further refusal up to Max. With Persist
// it keeps its state in a file, so a restart (a crash-looping pod) does
// not offer a refused password again at once. Safe for concurrent use.
type Backoff struct {
	initial, max time.Duration
	now          func() time.Time

	mu    sync.Mutex
	state map[string]*backoffState
	// file, when set, holds the back-offs in force; saveErr hears of a
	// failed write.
	file    string
	saveErr func(error)
}

type backoffState struct {
	Refusals int       `json:"refusals"`
	Until    time.Time `json:"until"`
	// proven: the credential was accepted since its last refusal, so
	// probes may offer it concurrently.
	proven bool
	// gate is held by the one probe offering an unproven credential.
	gate chan struct{}
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
	return &Backoff{initial: initial, max: max, now: time.Now, state: map[string]*backoffState{}}
}

func (b *Backoff) entry(key string) *backoffState {
	st, ok := b.state[key]
	if !ok {
		st = &backoffState{gate: make(chan struct{}, 1)}
		b.state[key] = st
	}
	return st
}

// Acquire implements CredentialGuard.
func (b *Backoff) Acquire(ctx context.Context, key string) (time.Time, bool, func(), error) {
	b.mu.Lock()
	st := b.entry(key)
	if until, blocked := b.blockedLocked(st); blocked {
		b.mu.Unlock()
		return until, true, nil, nil
	}
	proven, gate := st.proven, st.gate
	b.mu.Unlock()
	if proven {
		return time.Time{}, false, func() {}, nil
	}
	select {
	case gate <- struct{}{}:
	case <-ctx.Done():
		return time.Time{}, false, nil, fmt.Errorf("waiting for another probe offering the same credentials: %w", ctx.Err())
	}
	release := func() { <-gate }
	// The probe that held the gate may have been refused meanwhile.
	if until, blocked := b.Blocked(key); blocked {
		release()
		return until, true, nil, nil
	}
	return time.Time{}, false, release, nil
}

// Blocked implements CredentialGuard.
func (b *Backoff) Blocked(key string) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.state[key]
	if !ok {
		return time.Time{}, false
	}
	return b.blockedLocked(st)
}

func (b *Backoff) blockedLocked(st *backoffState) (time.Time, bool) {
	if !b.now().Before(st.Until) {
		return time.Time{}, false
	}
	return st.Until, true
}

// Refused implements CredentialGuard.
func (b *Backoff) Refused(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.entry(key)
	st.Refusals++
	st.proven = false
	d := b.initial
	for i := 1; i < st.Refusals && d < b.max; i++ {
		d *= 2
	}
	st.Until = b.now().Add(min(d, b.max))
	b.saveLocked()
}

// Accepted implements CredentialGuard.
func (b *Backoff) Accepted(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.entry(key)
	changed := st.Refusals != 0
	st.Refusals, st.Until, st.proven = 0, time.Time{}, true
	if changed {
		b.saveLocked()
	}
}

// Reset forgets the back-off of key (a person checked the account).
func (b *Backoff) Reset(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st, ok := b.state[key]; ok {
		st.Refusals, st.Until = 0, time.Time{}
	}
	b.saveLocked()
}

// ResetAll forgets every back-off.
func (b *Backoff) ResetAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, st := range b.state {
		st.Refusals, st.Until = 0, time.Time{}
	}
	b.saveLocked()
}

// Remaining is how long credentials for key stay withheld (0 if not).
func (b *Backoff) Remaining(key string) time.Duration {
	until, blocked := b.Blocked(key)
	if !blocked {
		return 0
	}
	return until.Sub(b.now())
}

// Persist keeps the back-offs in path: it reads what the file holds now
// (a back-off of an earlier run stays in force) and rewrites it after
// every change, atomically (a temporary file in the same directory,
// renamed over it) and readable by the owner only. A missing file is an
// empty state; a file that cannot be read is an error. onError hears of a
// write that failed; the back-off in memory is still kept.
func (b *Backoff) Persist(path string, onError func(error)) error {
	data, err := os.ReadFile(path)
	state := map[string]*backoffState{}
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("reading the back-off file: %w", err)
	case len(data) > 0:
		if err := json.Unmarshal(data, &state); err != nil {
			return fmt.Errorf("reading the back-off file %s: %w", path, err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for key, st := range state {
		e := b.entry(key)
		e.Refusals, e.Until = st.Refusals, st.Until
	}
	b.file, b.saveErr = path, onError
	return b.writeLocked()
}

func (b *Backoff) saveLocked() {
	if b.file == "" {
		return
	}
	if err := b.writeLocked(); err != nil && b.saveErr != nil {
		b.saveErr(err)
	}
}

// writeLocked writes the back-offs in force; a refusal count outlives its
// back-off only in memory, which is enough to double the next one.
func (b *Backoff) writeLocked() error {
	out := map[string]*backoffState{}
	for key, st := range b.state {
		if _, blocked := b.blockedLocked(st); blocked {
			out[key] = st
		}
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(b.file), ".backoff-*")
	if err != nil {
		return fmt.Errorf("writing the back-off file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the back-off file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the back-off file: %w", err)
	}
	if err := os.Rename(tmp.Name(), b.file); err != nil {
		return fmt.Errorf("writing the back-off file: %w", err)
	}
	return nil
}
