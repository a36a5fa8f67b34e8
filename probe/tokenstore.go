package probe

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// TokenStore keeps the refresh tokens of the refresh-token grant, one per
// file. Entra ID rotates a refresh token at every use and refuses the
// spent one, so a redemption and the write-back of its successor must not
// interleave with another: the store holds one lock per file, and is
// shared by the probers of every configuration load (Env.Tokens), so that
// two probes never redeem the same token, not even across a reload. It
// reads a file again when something else (the login command) wrote it.
type TokenStore struct {
	mu    sync.Mutex
	files map[string]*refreshFile
}

type refreshFile struct {
	mu    sync.Mutex
	token string
	// seen is the file's modification time and size when token was read
	// or written, to notice a write by the login command.
	seen fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// NewTokenStore returns an empty store.
func NewTokenStore() *TokenStore { return &TokenStore{files: map[string]*refreshFile{}} }

func (s *TokenStore) file(path string) *refreshFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[path]
	if !ok {
		f = &refreshFile{}
		s.files[path] = f
	}
	return f
}

// redeem hands the current refresh token of path to exchange and, when
// the answer carries a successor, writes it to path before returning, so
// the file never holds a spent token. An answer without a new refresh
// token keeps the old one, as the grant allows.
func (s *TokenStore) redeem(path string, exchange func(refreshToken string) (*oauth2.Token, error)) (*oauth2.Token, error) {
	f := s.file(path)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.load(path); err != nil {
		return nil, err
	}
	tok, err := exchange(f.token)
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken != "" && tok.RefreshToken != f.token {
		f.token = tok.RefreshToken
		if err := f.save(path); err != nil {
			// The new token works for now, in memory; a restart would find
			// the spent one.
			return nil, fmt.Errorf("the token endpoint rotated the refresh token, but writing it to %s failed (the new one is kept in memory; after a restart run login again): %w", path, err)
		}
	}
	return tok, nil
}

// Save writes refreshToken to path, as the login command does.
func (s *TokenStore) Save(path, refreshToken string) error {
	f := s.file(path)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = refreshToken
	return f.save(path)
}

// ChangedOutside reports that something other than this store (the login
// command) wrote path since the store last read or wrote it.
func (s *TokenStore) ChangedOutside(path string) bool {
	f := s.file(path)
	f.mu.Lock()
	seen := f.seen
	f.mu.Unlock()
	if seen == (fileStamp{}) {
		return false // never read: nothing was refused yet
	}
	info, err := os.Stat(path)
	return err == nil && (fileStamp{mod: info.ModTime(), size: info.Size()}) != seen
}

// load reads the file when it has not been read yet or changed since.
func (f *refreshFile) load(path string) error {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("the refresh token file %s does not exist: run `autodiscover_exporter login` for this module", path)
	case err != nil:
		return fmt.Errorf("reading the refresh token file: %w", err)
	}
	stamp := fileStamp{mod: info.ModTime(), size: info.Size()}
	if f.token != "" && stamp == f.seen {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the refresh token file: %w", err)
	}
	token := string(bytes.TrimSpace(data))
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return fmt.Errorf("the refresh token file %s is empty or holds no single token: run `autodiscover_exporter login` for this module", path)
	}
	f.token, f.seen = token, stamp
	return nil
}

// save writes the token atomically: a temporary file in the same
// directory, readable by the owner only, renamed over the old one.
func (f *refreshFile) save(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".refresh-token-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(f.token + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if info, err := os.Stat(path); err == nil {
		f.seen = fileStamp{mod: info.ModTime(), size: info.Size()}
	}
	return nil
}
