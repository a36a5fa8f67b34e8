package probe

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
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
	// NewExchange starts one authentication exchange for one request. An
	// exchange may need several round trips (NTLM) on one connection.
	NewExchange() Exchange
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

// Basic is HTTP Basic authentication (RFC 7617).
type Basic struct {
	Username string
	Password string
}

// Choose implements Authenticator.
func (b *Basic) Choose(offered []Challenge) (Challenge, bool) {
	for _, c := range offered {
		if strings.EqualFold(c.Scheme, "Basic") {
			return c, true
		}
	}
	return Challenge{}, false
}

// NewExchange implements Authenticator.
func (b *Basic) NewExchange() Exchange { return &basicExchange{b: b} }

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

// ParseChallenges reads every WWW-Authenticate header of a response. A
// header may carry several challenges separated by commas; a new challenge
// starts at a token that is followed by a space or the end and is not a
// parameter (no '=' right after it).
func ParseChallenges(h http.Header) []Challenge {
	var out []Challenge
	for _, line := range h.Values("WWW-Authenticate") {
		out = append(out, parseChallengeLine(line)...)
	}
	return out
}

func parseChallengeLine(line string) []Challenge {
	var out []Challenge
	parts := splitOutsideQuotes(line, ',')
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		name, rest, _ := strings.Cut(p, " ")
		if isSchemeToken(name) && !strings.Contains(name, "=") {
			out = append(out, Challenge{Scheme: name, Params: strings.TrimSpace(rest)})
			continue
		}
		// A continuation parameter of the previous challenge.
		if len(out) > 0 {
			if out[len(out)-1].Params != "" {
				out[len(out)-1].Params += ", "
			}
			out[len(out)-1].Params += p
		}
	}
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
