package probe

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// oauth2Config configures one of the grants.
type oauth2Config struct {
	Grant        OAuth2Grant
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// Username and Password are the password grant's.
	Username, Password string
	// RefreshTokenFile and Store are the refresh-token grant's.
	RefreshTokenFile string
	Store            *TokenStore
	// Client reaches the token endpoint (the prober's side-channel client).
	Client *http.Client
}

// OAuth2 answers Bearer challenges with an access token from one grant:
// an app-only token (client credentials) or a user's (a refresh token, or
// the legacy password grant). The token is cached until shortly before it
// expires, across probes: one OAuth2 value lives as long as its module,
// and its lock makes concurrent probes share one token request.
type OAuth2 struct {
	cfg    oauth2Config
	client *http.Client

	mu       sync.Mutex
	token    *oauth2.Token
	obtained time.Time
}

// fresh reports whether the cached token has life left: more than a tenth
// of its lifetime, and at most a minute is kept in reserve, so that a
// short-lived token is still reused.
func (o *OAuth2) fresh() bool {
	if o.token == nil || o.token.AccessToken == "" {
		return false
	}
	if o.token.Expiry.IsZero() {
		return true // no expires_in: good until a server refuses it
	}
	margin := min(o.token.Expiry.Sub(o.obtained)/10, time.Minute)
	return time.Until(o.token.Expiry) > margin
}

// newOAuth2 returns the authenticator for cfg.
func newOAuth2(cfg oauth2Config) *OAuth2 {
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{DefaultOAuth2Scope}
		if cfg.Grant != GrantClientCredentials && cfg.Grant != "" {
			cfg.Scopes = DefaultDelegatedScopes
		}
	}
	return &OAuth2{cfg: cfg, client: cfg.Client}
}

// fetch runs the module's grant once.
func (o *OAuth2) fetch(ctx context.Context) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, o.client)
	c := o.cfg
	endpoint := oauth2.Endpoint{TokenURL: c.TokenURL, AuthStyle: oauth2.AuthStyleInParams}
	switch c.Grant {
	case GrantPassword:
		conf := oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: endpoint, Scopes: c.Scopes}
		return conf.PasswordCredentialsToken(ctx, c.Username, c.Password)
	case GrantRefreshToken:
		return c.Store.redeem(c.RefreshTokenFile, func(rt string) (*oauth2.Token, error) {
			// oauth2.Config's refresh leaves the scope out, which Entra ID's
			// v2.0 endpoint requires; clientcredentials lets the grant type
			// be overridden for exactly such endpoints, and sends the scope.
			conf := clientcredentials.Config{
				ClientID: c.ClientID, TokenURL: c.TokenURL, Scopes: c.Scopes, AuthStyle: oauth2.AuthStyleInParams,
				EndpointParams: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}},
			}
			return conf.Token(ctx)
		})
	}
	cc := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: c.TokenURL, Scopes: c.Scopes, AuthStyle: oauth2.AuthStyleInParams}
	return cc.Token(ctx)
}

// Choose implements Authenticator.
func (o *OAuth2) Choose(offered []Challenge) (Challenge, bool) { return sameScheme(offered, "Bearer") }

// NewExchange implements Authenticator.
func (o *OAuth2) NewExchange(string) Exchange { return &bearerExchange{o: o} }

// Identity implements Authenticator.
func (o *OAuth2) Identity() string {
	switch o.cfg.Grant {
	case GrantPassword:
		return o.cfg.Username + " (client " + o.cfg.ClientID + ")"
	case GrantRefreshToken:
		return "the signed-in user (client " + o.cfg.ClientID + ")"
	}
	return "client " + o.cfg.ClientID + ", app-only"
}

// String keeps the client secret out of any %v rendering.
func (o *OAuth2) String() string { return "OAuth2(" + o.cfg.ClientID + ")" }

// accessToken returns the cached token or fetches a new one.
func (o *OAuth2) accessToken(ctx context.Context) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fresh() {
		return o.token.AccessToken, nil
	}
	tok, err := o.fetch(ctx)
	if err != nil {
		msg := fmt.Sprintf("token endpoint %s: %s", o.cfg.TokenURL, tokenError(err, o.cfg.ClientSecret, o.cfg.Password))
		if refusedByTokenEndpoint(err) {
			if o.cfg.Grant == GrantRefreshToken {
				msg += ": the refresh token was revoked or has expired; run `autodiscover_exporter login` for this module again"
			}
			return "", &refusal{msg: msg}
		}
		return "", errors.New(msg)
	}
	o.token, o.obtained = tok, time.Now()
	return tok.AccessToken, nil
}

// refusedByTokenEndpoint reports an answer that refuses the client's
// credentials themselves (RFC 6749 5.2): asking again with them will not
// work and, for a password grant, counts as a failed logon.
func refusedByTokenEndpoint(err error) bool {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return false
	}
	switch re.ErrorCode {
	case "invalid_client", "invalid_grant", "unauthorized_client":
		return true
	}
	return false
}

// refusal is an error that means the credentials were refused.
type refusal struct{ msg string }

func (e *refusal) Error() string        { return e.msg }
func (e *refusal) Is(target error) bool { return target == ErrRejected }

// forget drops a token the server refused, so the next probe asks anew.
func (o *OAuth2) forget(access string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.token != nil && o.token.AccessToken == access {
		o.token = nil
	}
}

// tokenError describes a failed token request without the secret. An
// endpoint's error_description is server text that may echo what it was
// sent, in any encoding and cut anywhere, so it is not quoted: only the
// status, an error code of the OAuth vocabulary and the AADSTS codes Entra
// ID puts in it (AADSTS7000215: invalid client secret) are. Any other
// error has every form of the secret masked before anything cuts it.
func tokenError(err error, secrets ...string) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := fmt.Sprintf("HTTP %d", re.Response.StatusCode)
		if oauthErrorCode.MatchString(re.ErrorCode) {
			msg += " " + re.ErrorCode
		}
		if codes := aadstsCode.FindAllString(re.ErrorDescription, 3); len(codes) > 0 {
			msg += " (" + strings.Join(codes, ", ") + ")"
		}
		return msg
	}
	msg := err.Error()
	for _, secret := range secrets {
		msg = maskSecret(msg, secret)
	}
	return msg
}

var (
	// oauthErrorCode is the shape of RFC 6749's error codes.
	oauthErrorCode = regexp.MustCompile(`^[a-z_]{1,40}$`)
	aadstsCode     = regexp.MustCompile(`\bAADSTS[0-9]{4,8}\b`)
)

// maskSecret replaces the secret in s in every form a server or a library
// could write it: raw, URL-encoded, base64.
func maskSecret(s, secret string) string {
	if secret == "" {
		return s
	}
	for _, form := range []string{
		secret,
		url.QueryEscape(secret), url.PathEscape(secret),
		base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawStdEncoding.EncodeToString([]byte(secret)),
		base64.URLEncoding.EncodeToString([]byte(secret)), base64.RawURLEncoding.EncodeToString([]byte(secret)),
	} {
		s = strings.ReplaceAll(s, form, "<secret>")
	}
	return s
}

type bearerExchange struct {
	o    *OAuth2
	sent string
}

func (e *bearerExchange) Respond(ctx context.Context, _ Challenge) (string, error) {
	if e.sent != "" {
		e.o.forget(e.sent)
		return "", ErrRejected
	}
	tok, err := e.o.accessToken(ctx)
	if err != nil {
		return "", err
	}
	e.sent = tok
	return "Bearer " + tok, nil
}
