package probe

import (
	"net"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// autodiscoverPath is the path rule the EWS Managed API applies to redirect
// targets: /autodiscover/(segment/)*autodiscover.xml, any case. The optional
// segments admit Exchange Online's per-mailbox paths.
var autodiscoverPath = regexp.MustCompile(`(?i)^/autodiscover/([^/]+/)*autodiscover\.xml$`)

// resolveLocation makes a Location header absolute against the request URL.
func resolveLocation(base *url.URL, location string) (*url.URL, *stepError) {
	if strings.TrimSpace(location) == "" {
		return nil, failf("bad_redirect", "redirect without a Location header")
	}
	loc, err := url.Parse(strings.TrimSpace(location))
	if err != nil {
		return nil, failf("bad_redirect", "Location is not a URL")
	}
	return asciiHost(base.ResolveReference(loc))
}

// asciiHost converts an internationalised host to its A-label form with
// the strict profile mailbox domains get, so that a look-alike host shows
// (and is compared) as the punycode it really is, and an invalid one is
// refused.
func asciiHost(u *url.URL) (*url.URL, *stepError) {
	host := u.Hostname()
	if host == "" || net.ParseIP(host) != nil || isASCII(host) {
		return u, nil
	}
	if !utf8.ValidString(host) {
		return nil, failf("bad_redirect", "redirect host is not valid UTF-8")
	}
	ascii, err := idnaProfile.ToASCII(strings.TrimSuffix(host, "."))
	if err != nil {
		return nil, failf("bad_redirect", "redirect host %q is not a valid internationalised domain name", truncate(host, 80))
	}
	c := *u
	c.Host = strings.ToLower(ascii)
	if p := u.Port(); p != "" {
		c.Host = net.JoinHostPort(c.Host, p)
	}
	return &c, nil
}

// validHostname accepts DNS names only: dot-separated labels of letters,
// digits, '-' and '_' (SRV-style names), 1–63 bytes each, 253 in all.
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

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// checkRedirectURL applies the rules every URL redirect must pass: HTTPS, no
// user info, a DNS name (not an IP literal) and, where pathRule is set, the
// Autodiscover path.
func checkRedirectURL(u *url.URL, pathRule bool) *stepError {
	switch {
	case !strings.EqualFold(u.Scheme, "https"):
		return failf("bad_redirect", "redirect to %s refused: only https:// targets are followed", redactURL(u))
	case u.User != nil:
		return failf("bad_redirect", "redirect to a URL with user info refused")
	case u.Hostname() == "":
		return failf("bad_redirect", "redirect target has no host")
	case net.ParseIP(u.Hostname()) != nil || strings.HasPrefix(u.Host, "["):
		return failf("bad_redirect", "redirect to an IP address literal refused (%s)", truncate(u.Hostname(), 60))
	case !validHostname(strings.ToLower(u.Hostname())):
		return failf("bad_redirect", "redirect target %q is not a DNS host name", truncate(u.Hostname(), 60))
	case pathRule && !autodiscoverPath.MatchString(u.EscapedPath()):
		return failf("bad_redirect", "redirect to %s refused: the path is not /autodiscover/…/autodiscover.xml", redactURL(u))
	}
	return nil
}

// normalizeURL is the visited-set key: lower-case scheme, host and path,
// default port dropped, query kept, fragment and user info dropped. IIS
// treats the path case-insensitively, so a ping-pong that only changes case
// is still a loop.
func normalizeURL(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
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
