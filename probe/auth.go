package probe

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Challenge is one scheme offered in a WWW-Authenticate header.
type Challenge struct {
	// Scheme as the server spelled it ("Basic", "NTLM", "Negotiate", "Bearer").
	Scheme string
	// Params is everything after the scheme name (realm=…, or an NTLM token).
	Params string
}

// Authenticator answers 401 challenges. Implementations hold the secret and
// never reveal it through Identity or errors.
type Authenticator interface {
	// Choose picks the challenge this authenticator will answer, or false
	// when it supports none of the offered schemes.
	Choose(offered []Challenge) (Challenge, bool)
	// NewExchange starts one authentication exchange for one request to
	// host. An exchange may need several round trips (NTLM) on one
	// connection; Kerberos asks a ticket for the host's service principal.
	NewExchange(host string) Exchange
	// Identity names who authenticates (user name, client id) for the log.
	Identity() string
}

// Exchange produces Authorization header values, one per 401 round.
type Exchange interface {
	// Respond is given the challenge of the chosen scheme from the latest
	// 401 and returns the Authorization header value to send next.
	// ErrRejected means the server refused what was sent already.
	Respond(ctx context.Context, ch Challenge) (string, error)
}

// ErrRejected is returned by an Exchange when the server answered the
// credentials with a fresh challenge: the credentials were refused.
var ErrRejected = errors.New("credentials rejected by the server")

// credentialError is an Exchange's failure with its class: a KDC that
// cannot be reached, a refused password. refused starts the back-off.
type credentialError struct {
	class   ErrorClass
	detail  string
	refused bool
}

func (e *credentialError) Error() string { return e.detail }

// Basic is HTTP Basic authentication (RFC 7617).
type Basic struct {
	Username string
	Password string
}

// Choose implements Authenticator.
func (b *Basic) Choose(offered []Challenge) (Challenge, bool) { return sameScheme(offered, "Basic") }

// NewExchange implements Authenticator.
func (b *Basic) NewExchange(string) Exchange { return &basicExchange{b: b} }

// Identity implements Authenticator.
func (b *Basic) Identity() string { return b.Username }

// String keeps the password out of any %v rendering.
func (b *Basic) String() string { return "Basic(" + b.Username + ")" }

type basicExchange struct {
	b    *Basic
	sent bool
}

func (e *basicExchange) Respond(_ context.Context, _ Challenge) (string, error) {
	if e.sent {
		return "", ErrRejected
	}
	e.sent = true
	raw := e.b.Username + ":" + e.b.Password
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(raw)), nil
}

// Caps on what a 401 may offer: a real one carries a few challenges with
// a few parameters each.
const (
	maxChallengeHeaders = 32
	maxChallenges       = 32
	maxChallengeParams  = 64
)

// ParseChallenges reads the WWW-Authenticate headers of a response. A
// header may carry several challenges separated by commas; a new challenge
// starts at a token that is followed by a space or the end and is not a
// parameter (no '=' right after it). It takes at most maxChallengeHeaders
// headers, maxChallenges challenges and maxChallengeParams parameters per
// challenge, in one pass over each header: a hostile server cannot make it
// slow.
func ParseChallenges(h http.Header) []Challenge {
	var out []Challenge
	for i, line := range h.Values("WWW-Authenticate") {
		if i == maxChallengeHeaders || len(out) >= maxChallenges {
			break
		}
		out = appendChallenges(out, line)
	}
	return out
}

// appendChallenges adds the challenges of one header value to out.
func appendChallenges(out []Challenge, line string) []Challenge {
	// A parameter continues a challenge of its own header only.
	first := len(out)
	var params []string
	flush := func() {
		if len(params) > 0 && len(out) > first {
			last := &out[len(out)-1]
			if last.Params != "" {
				params = append([]string{last.Params}, params...)
			}
			last.Params = strings.Join(params, ", ")
		}
		params = params[:0]
	}
	for _, p := range splitOutsideQuotes(line, ',') {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		name, rest, _ := strings.Cut(p, " ")
		if isSchemeToken(name) && !strings.Contains(name, "=") {
			flush()
			if len(out) == maxChallenges {
				return out
			}
			out = append(out, Challenge{Scheme: name, Params: strings.TrimSpace(rest)})
			continue
		}
		// A continuation parameter of the previous challenge.
		if len(out) > first && len(params) < maxChallengeParams {
			params = append(params, p)
		}
	}
	flush()
	return out
}

func isSchemeToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	inQuotes, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQuotes {
				i++
			}
		case '"':
			inQuotes = !inQuotes
		case sep:
			if !inQuotes {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

// schemeNames lists the offered schemes for the step log ("Negotiate, NTLM, Basic").
func schemeNames(cs []Challenge) string {
	names := make([]string, 0, len(cs))
	for _, c := range cs {
		names = append(names, c.Scheme)
	}
	return strings.Join(names, ", ")
}

// authenticate answers a 401 challenge, but only over HTTPS whose
// certificate passed, only to the mailbox's domain or an allowed domain,
// and only with a scheme the authenticator supports.
//
// It records the credentials step on rec; build makes each request that
// carries credentials (the Autodiscover POST, an endpoint's request), and
// body is its body.
func (r *run) authenticate(ctx context.Context, rec *recorder, t target, hc *httpConn, u *url.URL, addr string, build func() *http.Request, body []byte, challenges []Challenge, certOK bool) (*response, bool) {
	started := time.Now()
	fail := func(err *Error) (*response, bool) {
		rec.record(t, StepCredentials, started, addr, err, "")
		return nil, false
	}
	if err := r.mayAnswer(t, u, challenges, certOK); err != nil {
		return fail(err)
	}
	auth := r.p.auth
	ch, ok := auth.Choose(challenges)
	if !ok {
		if uri := bearerAuthorizationURI(challenges); uri != "" {
			return fail(failf(ClassBearerRequired, "the server wants OAuth (hybrid modern auth is enabled: authorization_uri=%s); the module's credentials cannot answer it", truncate(uri, 120)))
		}
		return fail(failf(ClassUnsupportedScheme, "none of the offered schemes (%s) is one the module may use", orNone(schemeNames(challenges))))
	}
	key := r.p.credentialKey
	if r.p.guard != nil {
		if a := r.p.s.Auth; a.Type == AuthOAuth2 && a.Grant == GrantRefreshToken && r.p.tokens.ChangedOutside(a.RefreshTokenFile) {
			// A login wrote a new refresh token: the refused one is gone.
			r.p.guard.Reset(key)
		}
		until, blocked, release, err := r.p.guard.Acquire(ctx, key)
		switch {
		case err != nil:
			return fail(failf(ClassTimeout, "%v", err))
		case blocked:
			return fail(backoffError(until))
		}
		defer release()
	}
	return r.exchangeCredentials(ctx, rec, t, hc, addr, build, body, ch, started)
}

// exchangeCredentials runs the rounds of one authentication exchange and
// tells the guard how the server took the credentials.
func (r *run) exchangeCredentials(ctx context.Context, rec *recorder, t target, hc *httpConn, addr string, build func() *http.Request, body []byte, ch Challenge, started time.Time) (*response, bool) {
	auth, guard, key := r.p.auth, r.p.guard, r.p.credentialKey
	fail := func(err *Error) (*response, bool) {
		rec.record(t, StepCredentials, started, addr, err, "")
		return nil, false
	}
	refused := func(class ErrorClass, format string, args ...any) (*response, bool) {
		if guard != nil {
			guard.Refused(key)
		}
		return fail(failf(class, format, args...))
	}
	ex := auth.NewExchange(t.host)
	for round := 0; round < 4; round++ {
		hdr, err := ex.Respond(ctx, ch)
		var re *refusal
		var ce *credentialError
		switch {
		case errors.As(err, &ce) && ce.refused:
			return refused(ce.class, "%s", ce.detail)
		case errors.As(err, &ce):
			return fail(failf(ce.class, "%s", ce.detail))
		case errors.As(err, &re):
			return refused(ClassAuthError, "%s: %v", ch.Scheme, err)
		case errors.Is(err, ErrRejected):
			return refused(ClassAuthFailed, "the server refused the %s credentials of %s (HTTP 401 again)", ch.Scheme, auth.Identity())
		case err != nil:
			return fail(failf(ClassAuthError, "%s: %v", ch.Scheme, err))
		}
		req := build()
		req.Header.Set("Authorization", hdr)
		resp, serr := hc.roundTrip(ctx, req, body, r.p.s.stepTimeout())
		if serr != nil {
			return fail(serr)
		}
		switch resp.status {
		case http.StatusForbidden:
			// A refusal of the account (disabled, not allowed): back off as
			// after a 401, and let the request step report the status.
			refused(ClassAuthFailed, "the server refused the %s credentials of %s (HTTP 403 Forbidden)", ch.Scheme, auth.Identity())
			return resp, true
		case http.StatusUnauthorized:
		default:
			if guard != nil {
				guard.Accepted(key)
			}
			rec.record(t, StepCredentials, started, addr, nil, fmt.Sprintf("%s credentials of %s sent; server answered HTTP %d", ch.Scheme, auth.Identity(), resp.status))
			return resp, true
		}
		// A 401 without the scheme's challenge goes to the exchange as an
		// empty one: each scheme knows whether that refuses a password
		// (Basic, NTLM, a token) or only a ticket the KDC already vouched
		// for (Kerberos).
		again, found := sameScheme(ParseChallenges(resp.header), ch.Scheme)
		if !found {
			again = Challenge{Scheme: ch.Scheme}
		}
		ch = again
	}
	return fail(failf(ClassAuthFailed, "too many authentication rounds"))
}

// mayAnswer applies the credential rules before any secret is produced:
// credentials exist, the scheme is https, the certificate passed and the
// host is in a paired domain. The back-off comes after, in authenticate.
func (r *run) mayAnswer(t target, u *url.URL, challenges []Challenge, certOK bool) *Error {
	switch {
	case r.p.auth == nil && bearerAuthorizationURI(challenges) != "":
		return failf(ClassBearerRequired, "the server wants OAuth (hybrid modern auth is enabled: authorization_uri=%s) and the module has no credentials", truncate(bearerAuthorizationURI(challenges), 120))
	case r.p.auth == nil:
		return failf(ClassNoCredentials, "the server asks for credentials but the module has none configured")
	case !strings.EqualFold(u.Scheme, "https"):
		return failf(ClassWithheldPlainHTTP, "credentials are never sent over plain HTTP")
	case !certOK:
		return failf(ClassWithheldCertificate, "credentials withheld: the certificate of %s failed validation", t.host)
	case !r.credentialsAllowed(t.host):
		return failf(ClassWithheldDomain, "credentials withheld: %s is neither in %s nor in an allowed domain", t.host, r.homeDomain)
	}
	return nil
}

func backoffError(until time.Time) *Error {
	return failf(ClassAuthBackoff, "credentials withheld until %s (%s left): the server refused them before, and repeating a stale password locks accounts out", until.UTC().Format(time.RFC3339), time.Until(until).Round(time.Second))
}

func (r *run) credentialsAllowed(host string) bool {
	return net.ParseIP(host) == nil && r.inPairedDomain(host)
}

// inPairedDomain reports whether host is in the mailbox's domain or an
// allowed one: the domains the operator paired with the module.
func (r *run) inPairedDomain(host string) bool {
	if inDomain(host, r.homeDomain) {
		return true
	}
	for _, d := range r.p.s.AllowedDomains {
		if inDomain(host, d) {
			return true
		}
	}
	return false
}

// bearerAuthorizationURI returns the authorization_uri of a Bearer
// challenge: Exchange advertises hybrid modern auth (or Exchange Online
// OAuth) that way.
func bearerAuthorizationURI(cs []Challenge) string {
	for _, c := range cs {
		if !strings.EqualFold(c.Scheme, "Bearer") {
			continue
		}
		for _, p := range splitOutsideQuotes(c.Params, ',') {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "authorization_uri") {
				return strings.Trim(strings.TrimSpace(v), `"`)
			}
		}
	}
	return ""
}

// preferredScheme is the offered challenge of the first of schemes the
// server offers, in the authenticator's order of preference.
func preferredScheme(offered []Challenge, schemes ...string) (Challenge, bool) {
	for _, scheme := range schemes {
		if c, ok := sameScheme(offered, scheme); ok {
			return c, true
		}
	}
	return Challenge{}, false
}

func sameScheme(cs []Challenge, scheme string) (Challenge, bool) {
	for _, c := range cs {
		if strings.EqualFold(c.Scheme, scheme) {
			return c, true
		}
	}
	return Challenge{}, false
}

func orNone(s string) string {
	if s == "" {
		return "no scheme"
	}
	return s
}
