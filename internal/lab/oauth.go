package lab

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// TokenServer is an OAuth 2.0 token endpoint for the client-credentials
// grant, like Entra ID's /oauth2/v2.0/token. Tokens it issues are valid
// for TTL; Valid lets an Autodiscover server accept them.
type TokenServer struct {
	// Clients maps client id to secret.
	Clients map[string]string
	// TTL of issued tokens; 0 means one hour.
	TTL time.Duration
	// Refuse makes every request fail with invalid_client, whatever it says.
	Refuse atomic.Bool

	requests atomic.Int64
	mu       sync.Mutex
	issued   map[string]time.Time
}

// Requests counts the token requests received.
func (s *TokenServer) Requests() int64 { return s.requests.Load() }

// Valid implements TokenValidator.
func (s *TokenServer) Valid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.issued[token]
	return ok && time.Now().Before(exp)
}

func (s *TokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	fail := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "invalid_request", "POST required")
		return
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", "unreadable form")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	want, known := s.Clients[id]
	if s.Refuse.Load() || !known || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		fail(http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		fail(http.StatusBadRequest, "unsupported_grant_type", "only client_credentials")
		return
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	buf := make([]byte, 16)
	_, _ = rand.Read(buf)
	token := "lab-" + hex.EncodeToString(buf)
	s.mu.Lock()
	if s.issued == nil {
		s.issued = map[string]time.Time{}
	}
	s.issued[token] = time.Now().Add(ttl)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": int(ttl.Seconds()), "access_token": token})
}
