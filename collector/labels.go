package collector

import (
	"net"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLabelBytes caps every label value that comes from a server: a URL,
// a host, a server name. A DNS name is at most 253 bytes, so no honest
// host is cut; a longer value ends in "…".
const MaxLabelBytes = 256

// invalidLabel stands for a server value that is no usable URL: raw text
// of it would be a series a server chose.
const invalidLabel = "invalid"

// SanitizeURL makes a URL a server sent fit for a label: scheme://host/path
// with a lower-case host and no default port, no query, fragment or user
// info, path segments holding an address (Exchange Online's per-mailbox
// paths, MailboxId values) replaced by "{mailbox}", no control or format
// character, at most MaxLabelBytes. A value that is no http(s) URL is
// "invalid"; an empty one stays empty.
func SanitizeURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (!strings.EqualFold(u.Scheme, "https") && !strings.EqualFold(u.Scheme, "http")) || u.Hostname() == "" {
		return invalidLabel
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if p := u.Port(); p != "" && !(scheme == "https" && p == "443") && !(scheme == "http" && p == "80") {
		host = net.JoinHostPort(host, p)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	segs := strings.Split(u.EscapedPath(), "/")
	for i, s := range segs {
		if strings.Contains(s, "@") || strings.Contains(strings.ToLower(s), "%40") {
			segs[i] = "{mailbox}"
		}
	}
	return LabelValue(scheme + "://" + host + strings.Join(segs, "/"))
}

// LabelValue makes any server text fit for a label: control and format
// characters and invalid UTF-8 dropped, at most MaxLabelBytes.
func LabelValue(s string) string {
	clean := strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return -1
		}
		return r
	}, s)
	if len(clean) <= MaxLabelBytes {
		return clean
	}
	const mark = "…"
	cut := MaxLabelBytes - len(mark)
	for cut > 0 && !utf8.RuneStart(clean[cut]) {
		cut--
	}
	return clean[:cut] + mark
}

// HostLabel is a host name for a label: lower case, capped.
func HostLabel(h string) string { return strings.TrimRight(LabelValue(strings.ToLower(h)), ".") }
