package probe

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Every host a server names — a 3xx Location, a redirectUrl, the domain of
// a redirectAddr, an SRV target, a v2 redirect, a URL in a v2 answer —
// passes checkServerURL or checkServerHost below, and nothing else decides
// whether the probe may go there.

// urlRule is what a URL from a server must satisfy besides being https
// with a DNS host name and no user info.
type urlRule struct {
	// what names the URL in messages ("redirect", "v2 redirect").
	what string
	// path, when set, must match the escaped path; pathWords says the rule
	// in words for the message.
	path      *regexp.Regexp
	pathWords string
	// anyPort admits any port: the URL is reported, not followed.
	anyPort bool
}

var (
	// poxRedirect is the path rule the EWS Managed API applies to 3xx and
	// HTTP-redirect-method targets: /autodiscover/(segment/)*autodiscover.xml,
	// any case. The optional segments admit Exchange Online's per-mailbox
	// paths.
	poxRedirect = urlRule{what: "redirect", path: regexp.MustCompile(`(?i)^/autodiscover/([^/]+/)*autodiscover\.xml$`), pathWords: "/autodiscover/…/autodiscover.xml"}
	// redirectURLRule is redirectUrl's: the server names the URL itself.
	redirectURLRule = urlRule{what: "redirect"}
	// v2Redirect keeps a v2 query on v2 URLs.
	v2Redirect = urlRule{what: "v2 redirect", path: regexp.MustCompile(`(?i)^/autodiscover/autodiscover\.json`), pathWords: "an autodiscover.json URL"}
	// v2Endpoint is a URL a v2 answer returns for a protocol.
	v2Endpoint = urlRule{what: "v2 endpoint", anyPort: true}
)

// checkServerURL applies the rules every URL from a server must pass:
// HTTPS, no user info, a DNS host name (checkServerHost), port 443 or one
// in ports, and the rule's path.
func checkServerURL(u *url.URL, rule urlRule, ports []int) *Error {
	switch {
	case !strings.EqualFold(u.Scheme, "https"):
		return failf(ClassBadRedirect, "%s to %s refused: only https:// targets are followed", rule.what, redactURL(u))
	case u.User != nil:
		return failf(ClassBadRedirect, "%s to a URL with user info refused", rule.what)
	case u.Hostname() == "":
		return failf(ClassBadRedirect, "%s target has no host", rule.what)
	case strings.HasPrefix(u.Host, "["):
		return failf(ClassBadRedirect, "%s target %s is an IP address literal: refused", rule.what, truncate(u.Hostname(), 60))
	}
	if err := checkServerHost(u.Hostname(), rule.what+" target"); err != nil {
		return err
	}
	if p := portOf(u); !rule.anyPort && p != 443 && !slices.Contains(ports, p) {
		return failf(ClassBadRedirect, "%s to %s refused: port %s is not 443 and not in the module's allowed_ports", rule.what, redactURL(u), truncate(u.Port(), 8))
	}
	if rule.path != nil && !rule.path.MatchString(u.EscapedPath()) {
		return failf(ClassBadRedirect, "%s to %s refused: the path is not %s", rule.what, redactURL(u), rule.pathWords)
	}
	return nil
}

// checkServerHost accepts a DNS name only: no IP literal, no port, no
// user info, nothing but dot-separated labels of letters, digits, '-' and
// '_' (SRV-style names), 1–63 bytes each, 253 in all. what names the host
// in the message ("redirect target").
func checkServerHost(host, what string) *Error {
	if net.ParseIP(host) != nil {
		return failf(ClassBadRedirect, "%s %s is an IP address literal: refused", what, truncate(host, 60))
	}
	if !validHostname(strings.ToLower(host)) {
		return failf(ClassBadRedirect, "%s target %q is not a DNS host name", what, truncate(host, 60))
	}
	return nil
}

func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// resolveLocation makes a Location header (or a redirectUrl) absolute
// against the request URL.
func resolveLocation(base *url.URL, location string) (*url.URL, *Error) {
	if strings.TrimSpace(location) == "" {
		return nil, failf(ClassBadRedirect, "redirect without a Location header")
	}
	loc, err := url.Parse(strings.TrimSpace(location))
	if err != nil {
		return nil, failf(ClassBadRedirect, "Location is not a URL")
	}
	return asciiHost(base.ResolveReference(loc))
}

// asciiHost gives a server-named host the one spelling the probe compares
// and connects with: lower case, no trailing dot, and an internationalised
// name as its A-label form (with the strict profile mailbox domains get, so
// that a look-alike host shows as the punycode it really is and an invalid
// one is refused).
func asciiHost(u *url.URL) (*url.URL, *Error) {
	host := u.Hostname()
	if host == "" || net.ParseIP(host) != nil {
		return u, nil
	}
	canonical := strings.TrimSuffix(strings.ToLower(host), ".")
	if !isASCII(host) {
		if !utf8.ValidString(host) {
			return nil, failf(ClassBadRedirect, "redirect host is not valid UTF-8")
		}
		ascii, err := idnaProfile.ToASCII(strings.TrimSuffix(host, "."))
		if err != nil {
			return nil, failf(ClassBadRedirect, "redirect host %q is not a valid internationalised domain name", truncate(host, 80))
		}
		canonical = strings.ToLower(ascii)
	}
	if canonical == host {
		return u, nil
	}
	c := *u
	c.Host = canonical
	if p := u.Port(); p != "" {
		c.Host = net.JoinHostPort(c.Host, p)
	}
	return &c, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// followURL checks a URL redirect against the rules, the hop budget and
// the visited set. It decides follow, nextCandidate (a refused target) or
// stop (budget or loop).
func (r *run) followURL(t target, started time.Time, addr string, to *url.URL, rule urlRule, via string) outcome {
	if err := checkServerURL(to, rule, r.p.s.AllowedPorts); err != nil {
		r.rec.record(t, StepRedirect, started, addr, err, via)
		return outcome{next: nextCandidate}
	}
	if r.hop+1 > r.p.s.maxRedirects() {
		err := failf(ClassTooManyRedirects, "%s to %s would be hop %d, over the budget of %d", via, redactURL(to), r.hop+1, r.p.s.maxRedirects())
		r.rec.record(t, StepRedirect, started, addr, err, "")
		return stopBecause("redirect budget exhausted: " + err.Detail)
	}
	if r.visitedURLs[r.visitKey(to)] {
		err := failf(ClassLoop, "%s points back to %s, which this run already tried", via, redactURL(to))
		r.rec.record(t, StepRedirect, started, addr, err, "")
		return stopBecause("redirect loop: " + err.Detail)
	}
	r.rec.record(t, StepRedirect, started, addr, nil, fmt.Sprintf("%s to %s (hop %d of at most %d)", via, redactURL(to), r.hop+1, r.p.s.maxRedirects()))
	r.hop++
	return outcome{next: follow, url: to}
}

// followAddr checks a redirectAddr and, when it passes, restarts discovery
// for the new address's domain.
func (r *run) followAddr(t target, addr, newAddr string) outcome {
	started := time.Now()
	mailbox, domain, err := NormalizeAddress(newAddr)
	if err != nil {
		r.rec.record(t, StepRedirect, started, addr, failf(ClassBadRedirect, "redirectAddr is not a usable address: %v", err), "")
		return outcome{next: nextCandidate}
	}
	if strings.EqualFold(mailbox, r.mailbox) {
		serr := failf(ClassLoop, "redirectAddr points back to %s, the address being discovered: this server's Autodiscover for it is broken", mailbox)
		r.rec.record(t, StepRedirect, started, addr, serr, "")
		return stopBecause("redirect loop: " + serr.Detail)
	}
	if r.visitedAddrs[strings.ToLower(mailbox)] {
		serr := failf(ClassLoop, "redirectAddr %s was already discovered in this run", mailbox)
		r.rec.record(t, StepRedirect, started, addr, serr, "")
		return stopBecause("redirect loop: " + serr.Detail)
	}
	if r.hop+1 > r.p.s.maxRedirects() {
		serr := failf(ClassTooManyRedirects, "redirectAddr to %s would be hop %d, over the budget of %d", mailbox, r.hop+1, r.p.s.maxRedirects())
		r.rec.record(t, StepRedirect, started, addr, serr, "")
		return stopBecause("redirect budget exhausted: " + serr.Detail)
	}
	r.rec.record(t, StepRedirect, started, addr, nil, fmt.Sprintf("redirectAddr to %s: restarting discovery for %s (hop %d of at most %d)", mailbox, domain, r.hop+1, r.p.s.maxRedirects()))
	r.visitedAddrs[strings.ToLower(mailbox)] = true
	r.hop++
	return outcome{next: restart, mailbox: mailbox, domain: domain}
}

// normalizeURL is the visited-set key: lower-case scheme, host and path,
// the host without a trailing dot, default port dropped, query kept, fragment and user info dropped. IIS
// treats the path case-insensitively, so a ping-pong that only changes case
// is still a loop.
func normalizeURL(u *url.URL) string {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	scheme := strings.ToLower(u.Scheme)
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	n := scheme + "://" + host + strings.ToLower(u.EscapedPath())
	if u.RawQuery != "" {
		n += "?" + u.RawQuery
	}
	return n
}

// redactURL drops user info from a URL before it goes into a log.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// inDomain reports whether host is domain or below it. Label boundaries
// matter: "evilcontoso.com" is not in "contoso.com".
func inDomain(host, domain string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	return domain != "" && (host == domain || strings.HasSuffix(host, "."+domain))
}

// portOf returns the URL's port, or the scheme's default.
func portOf(u *url.URL) int {
	if p := u.Port(); p != "" {
		n := 0
		for _, r := range p {
			if r < '0' || r > '9' {
				return 0
			}
			n = n*10 + int(r-'0')
			if n > 65535 {
				return 0
			}
		}
		return n
	}
	if strings.EqualFold(u.Scheme, "http") {
		return 80
	}
	return 443
}
