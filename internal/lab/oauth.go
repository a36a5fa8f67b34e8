package lab

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TokenServer is an OAuth 2.0 token endpoint like Entra ID's
// /oauth2/v2.0/token and /oauth2/v2.0/devicecode. It issues app-only
// tokens for the client-credentials grant, and delegated tokens — with a
// refresh token that is rotated at every use, as Entra ID does — for the
// device authorization grant (RFC 8628), the refresh-token grant and the
// resource-owner password grant. Tokens it issues are valid for TTL;
// Token tells an Autodiscover server which kind it was given.
type TokenServer struct {
	// Clients maps a confidential client's id to its secret.
	Clients map[string]string
	// PublicClients are the client ids that may use the delegated grants
	// without a secret (an app registration with public client flows on).
	PublicClients []string
	// Users maps a user principal name to its password, for the password
	// grant and for approving a device code.
	Users map[string]string
	// TTL of issued tokens; 0 means one hour.
	TTL time.Duration
	// Refuse makes every request fail with invalid_client, whatever it says.
	Refuse atomic.Bool
	// SlowDown answers the next that many device-code polls with
	// slow_down before anything else.
	SlowDown atomic.Int32

	requests atomic.Int64
	mu       sync.Mutex
	issued   map[string]TokenInfo
	refresh  map[string]string // refresh token → user
	devices  map[string]*deviceGrant
}

// TokenInfo is what an issued access token stands for.
type TokenInfo struct {
	// User is the signed-in user of a delegated token; empty for app-only.
	User     string
	ClientID string
	// Audience is the resource the token is for (its aud claim): the
	// scheme and host of the first URL among the requested scopes, such as
	// https://outlook.office365.com.
	Audience string
	Expires  time.Time
}

// Delegated reports a token issued to a user rather than to an app.
func (t TokenInfo) Delegated() bool { return t.User != "" }

// deviceGrant is a device code waiting for a user.
type deviceGrant struct {
	clientID, userCode, scope string
	user                      string // set once approved
	denied                    bool
	expires                   time.Time
}

// AddClient registers a confidential client with its secret.
func (s *TokenServer) AddClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Clients == nil {
		s.Clients = map[string]string{}
	}
	s.Clients[id] = secret
}

// AddPublicClient registers a public client (public client flows on).
func (s *TokenServer) AddPublicClient(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.PublicClients = append(s.PublicClients, id)
}

// AddUser lets a user sign in with a password.
func (s *TokenServer) AddUser(upn, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Users == nil {
		s.Users = map[string]string{}
	}
	s.Users[upn] = password
}

// Requests counts the token requests received.
func (s *TokenServer) Requests() int64 { return s.requests.Load() }

// Token returns what a valid access token stands for.
func (s *TokenServer) Token(token string) (TokenInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, ok := s.issued[token]
	return info, ok && time.Now().Before(info.Expires)
}

// Approve signs user in on the device whose user code is shown: the next
// poll for it gets tokens. It reports whether the code was pending.
func (s *TokenServer) Approve(userCode, user string) bool {
	return s.decide(userCode, func(g *deviceGrant) { g.user = user })
}

// Deny refuses the device whose user code is shown.
func (s *TokenServer) Deny(userCode string) bool {
	return s.decide(userCode, func(g *deviceGrant) { g.denied = true })
}

func (s *TokenServer) decide(userCode string, f func(*deviceGrant)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.devices {
		if g.userCode == userCode && g.user == "" && !g.denied {
			f(g)
			return true
		}
	}
	return false
}

// RevokeRefreshTokens makes every refresh token of user unusable, as an
// administrator revoking the user's sessions does.
func (s *TokenServer) RevokeRefreshTokens(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for rt, u := range s.refresh {
		if u == user {
			delete(s.refresh, rt)
		}
	}
}

// RefreshTokens counts the refresh tokens that are still valid.
func (s *TokenServer) RefreshTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.refresh)
}

type tokenError struct {
	status      int
	code, descr string
}

func (s *TokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if r.Method != http.MethodPost {
		writeTokenError(w, tokenError{http.StatusMethodNotAllowed, "invalid_request", "POST required"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeTokenError(w, tokenError{http.StatusBadRequest, "invalid_request", "unreadable form"})
		return
	}
	if strings.HasSuffix(r.URL.Path, "/devicecode") {
		s.deviceCode(w, r)
		return
	}
	body, terr := s.grant(r)
	if terr != nil {
		writeTokenError(w, *terr)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func writeTokenError(w http.ResponseWriter, e tokenError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": e.code, "error_description": e.descr})
}

// grant answers a token request by its grant type. Every grant must
// name its scope, as Entra ID's v2.0 endpoint requires.
func (s *TokenServer) grant(r *http.Request) (map[string]any, *tokenError) {
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	if s.Refuse.Load() {
		return nil, &tokenError{http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided."}
	}
	grantType, scope := r.PostForm.Get("grant_type"), r.PostForm.Get("scope")
	if scope == "" && grantType != deviceCodeGrant {
		return nil, &tokenError{http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'scope'."}
	}
	switch grantType {
	case "client_credentials":
		if !s.secretOK(id, secret) {
			return nil, &tokenError{http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided."}
		}
		return s.issue(id, "", scope, false), nil
	case "password":
		if !s.public(id) && !s.secretOK(id, secret) {
			return nil, &tokenError{http.StatusUnauthorized, "invalid_client", "AADSTS7000218: The request body must contain client_assertion or client_secret."}
		}
		user := r.PostForm.Get("username")
		if !s.passwordOK(user, r.PostForm.Get("password")) {
			return nil, &tokenError{http.StatusBadRequest, "invalid_grant", "AADSTS50126: Error validating credentials due to invalid username or password."}
		}
		return s.issue(id, user, scope, true), nil
	case "refresh_token":
		return s.redeemRefresh(id, r.PostForm.Get("refresh_token"), scope)
	case deviceCodeGrant:
		return s.pollDevice(id, r.PostForm.Get("device_code"))
	}
	return nil, &tokenError{http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: unsupported grant type"}
}

const deviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"

func (s *TokenServer) secretOK(id, secret string) bool {
	s.mu.Lock()
	want, known := s.Clients[id]
	s.mu.Unlock()
	return known && subtle.ConstantTimeCompare([]byte(secret), []byte(want)) == 1
}

func (s *TokenServer) passwordOK(user, password string) bool {
	s.mu.Lock()
	want, known := s.Users[user]
	s.mu.Unlock()
	return known && subtle.ConstantTimeCompare([]byte(password), []byte(want)) == 1
}

func (s *TokenServer) public(clientID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.PublicClients, clientID)
}

// audience is the resource a scope list asks for: the scheme and host of
// its first URL ("https://outlook.office365.com/EWS.AccessAsUser.All").
func audience(scope string) string {
	for _, sc := range strings.Fields(scope) {
		if u, err := url.Parse(sc); err == nil && u.Scheme != "" && u.Host != "" {
			return u.Scheme + "://" + u.Host
		}
	}
	return ""
}

// redeemRefresh spends a refresh token: the one sent is refused from now
// on, and the answer carries its successor.
func (s *TokenServer) redeemRefresh(clientID, rt, scope string) (map[string]any, *tokenError) {
	s.mu.Lock()
	user, ok := s.refresh[rt]
	delete(s.refresh, rt)
	s.mu.Unlock()
	if !ok || !s.public(clientID) {
		return nil, &tokenError{http.StatusBadRequest, "invalid_grant", "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity or has been revoked."}
	}
	return s.issue(clientID, user, scope, true), nil
}

// issue makes an access token for scope, and for a delegated one a
// refresh token.
func (s *TokenServer) issue(clientID, user, scope string, withRefresh bool) map[string]any {
	ttl := s.TTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	token := "lab-" + randomHex()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.issued == nil {
		s.issued = map[string]TokenInfo{}
	}
	s.issued[token] = TokenInfo{User: user, ClientID: clientID, Audience: audience(scope), Expires: time.Now().Add(ttl)}
	body := map[string]any{"token_type": "Bearer", "expires_in": int(ttl.Seconds()), "access_token": token}
	if withRefresh {
		rt := "lab-rt-" + randomHex()
		if s.refresh == nil {
			s.refresh = map[string]string{}
		}
		s.refresh[rt] = user
		body["refresh_token"] = rt
	}
	return body
}

// deviceCode starts a device authorization (RFC 8628 3.1-3.2).
func (s *TokenServer) deviceCode(w http.ResponseWriter, r *http.Request) {
	id := r.PostForm.Get("client_id")
	if !s.public(id) {
		writeTokenError(w, tokenError{http.StatusBadRequest, "unauthorized_client", "AADSTS700016: the application is not a public client"})
		return
	}
	if r.PostForm.Get("scope") == "" {
		writeTokenError(w, tokenError{http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'scope'."})
		return
	}
	g := &deviceGrant{clientID: id, scope: r.PostForm.Get("scope"), userCode: strings.ToUpper(randomHex()[:8]), expires: time.Now().Add(15 * time.Minute)}
	code := "lab-dc-" + randomHex()
	s.mu.Lock()
	if s.devices == nil {
		s.devices = map[string]*deviceGrant{}
	}
	s.devices[code] = g
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"device_code": code, "user_code": g.userCode,
		"verification_uri": "https://microsoft.lab.test/devicelogin", "expires_in": 900, "interval": 1,
		"message": "To sign in, use a web browser to open the page https://microsoft.lab.test/devicelogin and enter the code " + g.userCode + " to authenticate.",
	})
}

// pollDevice answers a device-code poll (RFC 8628 3.4-3.5).
func (s *TokenServer) pollDevice(clientID, code string) (map[string]any, *tokenError) {
	if s.SlowDown.Load() > 0 {
		s.SlowDown.Add(-1)
		return nil, &tokenError{http.StatusBadRequest, "slow_down", "polling too fast"}
	}
	s.mu.Lock()
	var g deviceGrant
	found, ok := s.devices[code]
	if ok {
		g = *found
	}
	s.mu.Unlock()
	switch {
	case !ok || g.clientID != clientID:
		return nil, &tokenError{http.StatusBadRequest, "invalid_grant", "AADSTS70000: unknown device code"}
	case time.Now().After(g.expires):
		return nil, &tokenError{http.StatusBadRequest, "expired_token", "AADSTS70020: the device code expired"}
	case g.denied:
		return nil, &tokenError{http.StatusBadRequest, "access_denied", "AADSTS70019: the user declined"}
	case g.user == "":
		return nil, &tokenError{http.StatusBadRequest, "authorization_pending", "AADSTS70016: waiting for the user"}
	}
	s.mu.Lock()
	delete(s.devices, code)
	s.mu.Unlock()
	return s.issue(clientID, g.user, g.scope, true), nil
}

// PendingUserCodes lists the user codes of device authorizations waiting
// for a user, for a test that plays the user.
func (s *TokenServer) PendingUserCodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, g := range s.devices {
		if g.user == "" && !g.denied {
			out = append(out, g.userCode)
		}
	}
	return out
}

func randomHex() string {
	buf := make([]byte, 16)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// IssueRefreshToken gives user a refresh token for clientID, as a past
// sign-in would have: what a refresh token file holds after login.
func (s *TokenServer) IssueRefreshToken(clientID, user string) string {
	body := s.issue(clientID, user, "offline_access", true)
	return body["refresh_token"].(string)
}
