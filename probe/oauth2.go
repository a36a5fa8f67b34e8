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

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// oauth2Config configures the client-credentials flow.
type oauth2Config struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// Client reaches the token endpoint (the prober's side-channel client).
	Client *http.Client
}

// OAuth2 answers Bearer challenges with an app-only access token from the
// client-credentials flow. The token is cached until shortly before it
// expires, across probes: one OAuth2 value lives as long as its module.
type OAuth2 struct {
	cfg    clientcredentials.Config
	client *http.Client

	mu    sync.Mutex
	token *oauth2.Token
}

// newOAuth2 returns the authenticator for cfg.
func newOAuth2(cfg oauth2Config) *OAuth2 {
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{DefaultOAuth2Scope}
	}
	return &OAuth2{
		cfg: clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			TokenURL:     cfg.TokenURL,
			Scopes:       scopes,
			AuthStyle:    oauth2.AuthStyleInParams,
		},
		client: cfg.Client,
	}
}

// Choose implements Authenticator.
func (o *OAuth2) Choose(offered []Challenge) (Challenge, bool) {
	for _, c := range offered {
		if strings.EqualFold(c.Scheme, "Bearer") {
			return c, true
		}
	}
	return Challenge{}, false
}

// NewExchange implements Authenticator.
func (o *OAuth2) NewExchange() Exchange { return &bearerExchange{o: o} }

// Identity implements Authenticator.
func (o *OAuth2) Identity() string { return "client " + o.cfg.ClientID }

// String keeps the client secret out of any %v rendering.
func (o *OAuth2) String() string { return "OAuth2(" + o.cfg.ClientID + ")" }

// accessToken returns the cached token or fetches a new one.
func (o *OAuth2) accessToken(ctx context.Context) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.token != nil && o.token.Valid() {
		return o.token.AccessToken, nil
	}
	tok, err := o.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, o.client))
	if err != nil {
		msg := fmt.Sprintf("token endpoint %s: %s", o.cfg.TokenURL, tokenError(err, o.cfg.ClientSecret))
		if refusedByTokenEndpoint(err) {
			return "", &refusal{msg: msg}
		}
		return "", errors.New(msg)
	}
	o.token = tok
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
func tokenError(err error, secret string) string {
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
	return maskSecret(err.Error(), secret)
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
