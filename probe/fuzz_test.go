package probe

// Fuzz targets for the parts of the probe that read what a server it does
// not control sends: redirect targets, WWW-Authenticate headers, v2 JSON,
// redirectAddr mailbox addresses, NTLM CHALLENGE tokens and raw HTTP
// answers. Each target checks invariants the rest of the probe relies on,
// not only the absence of panics.
//
// Run one with: go test -run='^$' -fuzz='^FuzzRedirectLocation$' ./probe
// or all of them with scripts/fuzz.sh. The seeds (f.Add and
// testdata/fuzz/<Target>/) run as ordinary tests under go test.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/Azure/go-ntlmssp"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
)

// ---------------------------------------------------------------------------
// Redirect targets

const fuzzOnPremURL = "https://autodiscover.contoso.com/autodiscover/autodiscover.xml"

// isIPLiteralHost reports whether a URL host names an address rather than a
// DNS name: anything net.ParseIP or netip.ParseAddr accepts (the latter
// also takes IPv6 zones, "fe80::1%eth0"), or a bracketed host.
func isIPLiteralHost(u *url.URL) bool {
	h := u.Hostname()
	if net.ParseIP(h) != nil {
		return true
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return strings.HasPrefix(u.Host, "[")
}

// matchesAutodiscoverPath is the path rule written out without the
// regular expression: /autodiscover/(segment/)*autodiscover.xml with
// non-empty segments, any case.
func matchesAutodiscoverPath(escaped string) bool {
	segs := strings.Split(strings.ToLower(escaped), "/")
	if len(segs) < 3 || segs[0] != "" || segs[1] != "autodiscover" || segs[len(segs)-1] != "autodiscover.xml" {
		return false
	}
	for _, s := range segs[2 : len(segs)-1] {
		if s == "" {
			return false
		}
	}
	return true
}

// userInfoLeaked reports whether s carries u's user info ("user:pw@")
// where the URL without user info does not already hold that text.
func userInfoLeaked(u *url.URL, s string) bool {
	if u.User == nil {
		return false
	}
	ui := u.User.String()
	if ui == "" {
		return false
	}
	// Only the authority can carry user info: a path that happens to hold
	// the same text (as normalizeURL lower-cases it) is not a leak.
	authority := s
	if i := strings.Index(authority, "://"); i >= 0 {
		authority = authority[i+3:]
	}
	if i := strings.IndexByte(authority, '/'); i >= 0 {
		authority = authority[:i]
	}
	return strings.Contains(authority, ui+"@")
}

func FuzzRedirectLocation(f *testing.F) {
	const exo = "https://autodiscover-s.outlook.com/autodiscover/autodiscover.xml"
	for _, s := range [][2]string{
		{fuzzOnPremURL, "https://mail.contoso.com/autodiscover/autodiscover.xml"},
		{fuzzOnPremURL, "https://autodiscover-s.outlook.com:443/Autodiscover/Autodiscover.xml"},
		{exo, "https://outlook.office365.com/autodiscover/nina@contoso.onmicrosoft.com/autodiscover.xml"},
		{"http://autodiscover.contoso.com/autodiscover/autodiscover.xml", "/autodiscover/autodiscover.xml"},
		{fuzzOnPremURL, "../owa/autodiscover.xml?x=1#frag"},
		{"http://autodiscover.contoso.com/autodiscover/autodiscover.xml", "https://autodiscover.contoso.com/autodiscover/autodiscover.xml"},
		{fuzzOnPremURL, "http://mail.contoso.com/autodiscover/autodiscover.xml"},
		{fuzzOnPremURL, "https://nina:s3cret@mail.contoso.com/autodiscover/autodiscover.xml"},
		{fuzzOnPremURL, "https://192.0.2.10/autodiscover/autodiscover.xml"},
		{fuzzOnPremURL, "https://[2001:db8::1]:443/autodiscover/autodiscover.xml"},
		{fuzzOnPremURL, "  //MAIL.Contoso.COM:8443/AUTODISCOVER/a/b/AutoDiscover.XML  "},
		{fuzzOnPremURL, "https://mail.contoso.com/autodiscover//autodiscover.xml"},
		{fuzzOnPremURL, "https://mail.contoso.com:/autodiscover/%2e%2e/autodiscover.xml"},
		{fuzzOnPremURL, "\t"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, base, location string) {
		b, err := url.Parse(base)
		if err != nil {
			b, _ = url.Parse(fuzzOnPremURL)
		}
		u, serr := resolveLocation(b, location)
		if serr != nil {
			if u != nil || serr.Class != ClassBadRedirect {
				t.Fatalf("resolveLocation(%q) = %v, %v: want nil and bad_redirect", location, u, serr)
			}
			return
		}
		if u == nil {
			t.Fatal("resolveLocation returned neither a URL nor an error")
		}
		if b.IsAbs() && !u.IsAbs() {
			t.Fatalf("resolving %q against the absolute %q gave the relative %q", location, b, u)
		}
		n := normalizeURL(u)
		if p, err := url.Parse(n); err == nil && p.User != nil {
			t.Fatalf("normalizeURL(%q) = %q carries user info", u, n)
		}
		if userInfoLeaked(u, n) {
			t.Fatalf("normalizeURL(%q) = %q carries user info", u, n)
		}
		accepted := false
		for _, pathRule := range []bool{false, true} {
			cerr := checkServerURL(u, redirectRule(pathRule), nil)
			if cerr != nil {
				if cerr.Class != ClassBadRedirect || cerr.Detail == "" {
					t.Fatalf("checkServerURL(%q, %v) error %+v: want bad_redirect with a detail", u, pathRule, cerr)
				}
				if userInfoLeaked(u, cerr.Error()) {
					t.Fatalf("checkServerURL(%q, %v) error %q carries user info", u, pathRule, cerr)
				}
				if pathRule && accepted && !strings.Contains(cerr.Detail, "path") {
					t.Fatalf("accepted without the path rule but refused with it for %q", cerr)
				}
				continue
			}
			if pathRule && !accepted {
				t.Fatalf("%q passes with the path rule but not without it", u)
			}
			accepted = true
			switch {
			case !strings.EqualFold(u.Scheme, "https"):
				t.Fatalf("accepted %q (pathRule %v): scheme %q is not https", u, pathRule, u.Scheme)
			case u.User != nil:
				t.Fatalf("accepted %q (pathRule %v): it has user info", u, pathRule)
			case u.Hostname() == "":
				t.Fatalf("accepted %q (pathRule %v): no host", u, pathRule)
			case isIPLiteralHost(u):
				if a, err := netip.ParseAddr(u.Hostname()); err == nil && a.Zone() != "" {
					t.Fatalf("checkServerURL accepts the IPv6 literal with a zone %q (net.ParseIP refuses zones)", u.Host)
				}
				t.Fatalf("accepted %q (pathRule %v): host %q is an IP address literal", u, pathRule, u.Host)
			case pathRule && !matchesAutodiscoverPath(u.EscapedPath()):
				t.Fatalf("accepted %q with the path rule: path %q is not /autodiscover/…/autodiscover.xml", u, u.EscapedPath())
			}
		}
		if !accepted {
			return
		}
		// The visited-set key must be a fixed point: a URL that comes back
		// in its normalized spelling is the same key.
		p, err := url.Parse(n)
		if err != nil && strings.ContainsAny(u.Hostname(), ":%") {
			t.Fatalf("resolveLocation/checkServerURL accept the host %q, which is no DNS name (a colon, which url.Parse lets through in a scheme-relative Location, or a percent sign from %%25); normalizeURL gives %q", u.Host, n)
		}
		if err != nil {
			t.Fatalf("normalizeURL(%q) = %q does not parse: %v", u, n, err)
		}
		if n2 := normalizeURL(p); n2 != n {
			t.Fatalf("normalizeURL is not idempotent for %q: %q, then %q", u, n, n2)
		}
		// inDomain on the accepted host: a name is in its own domain, and
		// one more character in front of it (no dot) is not.
		h := u.Hostname()
		if strings.TrimSuffix(strings.ToLower(h), ".") != "" && !strings.HasPrefix(h, ".") {
			if !inDomain(h, h) {
				t.Fatalf("inDomain(%q, itself) = false", h)
			}
			if inDomain("x"+h, h) {
				t.Fatalf("inDomain(%q, %q) = true across a label boundary", "x"+h, h)
			}
		}
		if inDomain(h, "") || inDomain(h, ".") {
			t.Fatalf("inDomain(%q, empty domain) = true", h)
		}
	})
}

// ---------------------------------------------------------------------------
// WWW-Authenticate

// joinChallenges writes challenges back as one header value.
func joinChallenges(cs []Challenge) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		if c.Params == "" {
			parts = append(parts, c.Scheme)
		} else {
			parts = append(parts, c.Scheme+" "+c.Params)
		}
	}
	return strings.Join(parts, ", ")
}

func wwwAuthenticate(values ...string) http.Header {
	h := http.Header{}
	for _, v := range values {
		h.Add("WWW-Authenticate", v)
	}
	return h
}

func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{
		"Negotiate\nNTLM\nBasic realm=\"autodiscover.contoso.com\"",
		`Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*", token_types="app_asserted_user_v1 service_asserted_app_v1", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="invalid_token",Basic Realm="",Negotiate,NTLM`,
		`Basic realm="a, b", charset="UTF-8"`,
		"NTLM TlRMTVNTUAACAAAADAAMADgAAAAFgomiESIzRFVmd4gAAAAAAAAAAIoAigBEAAAACgBjRQAAAA9DAE8ATgBUAE8AUwBPAA==",
		`Negotiate oYIBCzCCAQegAwoBAaEMBgorBgEEAYI3AgIKooHxBIHu`,
		`Bearer realm="", error="invalid_token", error_description="The access token is missing"`,
		`Basic realm="unterminated, NTLM`,
		`Basic realm="esc\"aped, still", NTLM`,
		", , =x, Basic\trealm=y,  ,NTLM ",
		`x-ms-diagnostics realm="a\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		check := func(cs []Challenge, what string) {
			for _, c := range cs {
				if c.Scheme == "" || strings.ContainsAny(c.Scheme, " \t\r\n,=\"") || !isSchemeToken(c.Scheme) {
					t.Fatalf("%s: scheme %q is not a token", what, c.Scheme)
				}
				if !strings.Contains(header, c.Scheme) {
					t.Fatalf("%s: scheme %q is not in the header %q", what, c.Scheme, header)
				}
				if c.Params != strings.TrimSpace(c.Params) {
					t.Fatalf("%s: params %q are not trimmed", what, c.Params)
				}
			}
		}
		one := ParseChallenges(wwwAuthenticate(header))
		check(one, "one value")
		if len(one) > strings.Count(header, ",")+1 {
			t.Fatalf("%d challenges from %d comma-separated parts", len(one), strings.Count(header, ",")+1)
		}
		// Written back as one value, the challenges parse to themselves.
		if again := ParseChallenges(wwwAuthenticate(joinChallenges(one))); !reflect.DeepEqual(again, one) && !(len(again) == 0 && len(one) == 0) {
			t.Fatalf("round trip of %q:\n first %q\n again %q", header, one, again)
		}

		lines := strings.Split(header, "\n")
		many := ParseChallenges(wwwAuthenticate(lines...))
		check(many, "one value per line")
		// Header values are independent of each other.
		var each []Challenge
		for _, l := range lines {
			each = append(each, ParseChallenges(wwwAuthenticate(l))...)
		}
		if len(lines) <= maxChallengeHeaders && len(each) <= maxChallenges && !reflect.DeepEqual(many, each) {
			t.Fatalf("parsing the values together %q differs from one by one %q", many, each)
		}

		// What the probe does with the offer must hold up as well.
		_ = bearerAuthorizationURI(many)
		_ = schemeNames(many)
		if c, ok := (&NTLM{}).Choose(many); ok && !strings.EqualFold(c.Scheme, "NTLM") && !strings.EqualFold(c.Scheme, "Negotiate") {
			t.Fatalf("NTLM chose %q", c.Scheme)
		}
		if c, ok := (&Basic{}).Choose(many); ok && !strings.EqualFold(c.Scheme, "Basic") {
			t.Fatalf("Basic chose %q", c.Scheme)
		}
	})
}

// ---------------------------------------------------------------------------
// Autodiscover v2 answers

func FuzzParseV2Answer(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{200, `{"Protocol":"EWS","Url":"https://outlook.office365.com/EWS/Exchange.asmx"}`},
		{200, `{"Protocol":"ActiveSync","Url":"https://outlook.office365.com/Microsoft-Server-ActiveSync"}`},
		{200, `{"Protocol":"AutodiscoverV1","Url":"https://autodiscover-s.outlook.com/autodiscover/autodiscover.xml"}`},
		{400, `{"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value 'Foo' is invalid. Supported values are 'Rest,ActiveSync,Ews,AutodiscoverV1'."}`},
		{400, `{"ErrorCode":"InvalidUser","ErrorMessage":"Invalid user 'nobody@contoso.com'"}`},
		{400, `{}`},
		{200, `{"ErrorCode":"MailboxNotEnabledForRESTAPI","ErrorMessage":"REST API is not yet supported for this mailbox."}`},
		{200, `{"Protocol":"EWS","Url":"http://mail.contoso.com/EWS/Exchange.asmx"}`},
		{200, `{"Protocol":"EWS","Url":"/EWS/Exchange.asmx"}`},
		{200, `<html><body>Service Unavailable</body></html>`},
		{200, `{"Protocol":"EWS","Url":"https://outlook.office365.com/EWS/Exchange.asmx","Url":"ftp://x"}`},
		{302, `null`},
		{500, ""},
	} {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		ans, err := parseV2Answer(status, body)
		if err == nil {
			if ans == nil {
				t.Fatal("nil answer without an error")
			}
			if status == http.StatusBadRequest || ans.ErrorCode != "" {
				t.Fatalf("success for status %d with ErrorCode %q", status, ans.ErrorCode)
			}
			u, perr := url.Parse(ans.URL)
			switch {
			case perr != nil:
				t.Fatalf("success with a Url url.Parse refuses: %q: %v", ans.URL, perr)
			case !strings.EqualFold(u.Scheme, "https"):
				t.Fatalf("success with a non-https Url %q", ans.URL)
			case u.Hostname() == "" && u.Host != "":
				t.Fatalf("parseV2Answer accepts the Url %q, which has a port but no host name", ans.URL)
			case u.Hostname() == "":
				t.Fatalf("success with a Url without a host name: %q (Host %q)", ans.URL, u.Host)
			}
			return
		}
		switch err.Class {
		case ClassBadPayload:
			if ans != nil {
				t.Fatalf("bad_payload with an answer %+v", ans)
			}
		case ClassV2Error:
			if ans == nil {
				t.Fatal("v2_error without the answer")
			}
			if status != http.StatusBadRequest && ans.ErrorCode == "" {
				t.Fatalf("v2_error for status %d without an ErrorCode", status)
			}
		default:
			t.Fatalf("error class %q (%v)", err.Class, err)
		}
		if err.Detail == "" {
			t.Fatal("error without a detail")
		}
	})
}

// ---------------------------------------------------------------------------
// Mailbox addresses (the configuration and redirectAddr)

func FuzzNormalizeAddress(f *testing.F) {
	for _, s := range []string{
		"nina@contoso.com",
		"Nina.Ramos@CONTOSO.COM.",
		"nina@contoso.onmicrosoft.com",
		"user@bücher.example",
		"user@xn--bcher-kva.example",
		"пользователь@почта.рф",
		"a@b@contoso.com",
		"nina@192.0.2.1",
		"nina@[2001:db8::1]",
		"nina@com",
		"nina@co.uk",
		"nina@localhost",
		" nina@contoso.com",
		"\"nina ramos\"@contoso.com",
		"nina@con\u200dtoso.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		norm, domain, err := NormalizeAddress(addr)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Class != ClassBadAddress || ae.Detail == "" || norm != "" || domain != "" {
				t.Fatalf("NormalizeAddress(%q) = %q, %q, %v", addr, norm, domain, err)
			}
			return
		}
		at := strings.LastIndexByte(norm, '@')
		if at <= 0 || strings.Count(norm, "@") != 1 {
			t.Fatalf("NormalizeAddress(%q) = %q: want exactly one '@' after a non-empty local part", addr, norm)
		}
		if norm[at+1:] != domain {
			t.Fatalf("NormalizeAddress(%q) = %q but domain %q", addr, norm, domain)
		}
		for i := 0; i < len(domain); i++ {
			if c := domain[i]; c >= 0x80 || c >= 'A' && c <= 'Z' {
				t.Fatalf("NormalizeAddress(%q): domain %q is not lower-case ASCII", addr, domain)
			}
		}
		if !strings.Contains(domain, ".") {
			t.Fatalf("NormalizeAddress(%q): single-label domain %q", addr, domain)
		}
		if _, perr := netip.ParseAddr(domain); perr == nil || net.ParseIP(domain) != nil {
			t.Fatalf("NormalizeAddress(%q): domain %q is an IP address", addr, domain)
		}
		again, domain2, err := NormalizeAddress(norm)
		if err != nil && !utf8.ValidString(addr[strings.LastIndexByte(addr, '@')+1:]) {
			t.Fatalf("NormalizeAddress(%q) turns a domain that is not UTF-8 into %q, which it then refuses: %v", addr, domain, err)
		}
		if err != nil || again != norm || domain2 != domain {
			t.Fatalf("NormalizeAddress is not idempotent: %q → %q → %q, %q, %v", addr, norm, again, domain2, err)
		}
	})
}

// ---------------------------------------------------------------------------
// NTLM CHALLENGE tokens

const fuzzNTLMPassword = "Fz-Pa55w0rd!q"

// labNTLMChallenge returns a CHALLENGE token the lab's verifier (an
// IIS-like server with target info) issues for a NEGOTIATE message.
func labNTLMChallenge(f *testing.F) string {
	neg, err := ntlmssp.NewNegotiateMessage("", "PROBE01")
	if err != nil {
		f.Fatal(err)
	}
	v := &lab.NTLMVerifier{Accounts: map[string]string{`CONTOSO\nina`: fuzzNTLMPassword}, Domain: "CONTOSO", DNSDomain: "contoso.com"}
	req := httptest.NewRequest(http.MethodPost, "/autodiscover/autodiscover.xml", nil)
	req.Header.Set("Authorization", "NTLM "+base64.StdEncoding.EncodeToString(neg))
	rec := httptest.NewRecorder()
	if _, responded := v.Handle(rec, req); !responded {
		f.Fatal("the lab verifier sent no challenge")
	}
	scheme, token, _ := strings.Cut(rec.Header().Get("WWW-Authenticate"), " ")
	if scheme != "NTLM" || token == "" {
		f.Fatalf("lab challenge header %q", rec.Header().Get("WWW-Authenticate"))
	}
	return token
}

// craftedType2 is a minimal CHALLENGE message (unicode, NTLM) changed by
// mutate.
func craftedType2(mutate func([]byte) []byte) []byte {
	m := make([]byte, 48)
	copy(m, "NTLMSSP\x00")
	binary.LittleEndian.PutUint32(m[8:], 2)
	binary.LittleEndian.PutUint32(m[20:], 1<<0|1<<9|1<<23)
	copy(m[24:32], "\x01\x23\x45\x67\x89\xab\xcd\xef")
	return mutate(m)
}

func FuzzNTLMChallenge(f *testing.F) {
	lab := labNTLMChallenge(f)
	labRaw, err := base64.StdEncoding.DecodeString(lab)
	if err != nil {
		f.Fatal(err)
	}
	// Each message goes in as the base64 token a server sends; the first
	// four also as raw bytes, the form the second drive below encodes.
	for i, m := range [][]byte{
		labRaw,
		craftedType2(func(m []byte) []byte { return m }),
		craftedType2(func(m []byte) []byte { // target info with a timestamp
			binary.LittleEndian.PutUint16(m[40:], 16)
			binary.LittleEndian.PutUint16(m[42:], 16)
			binary.LittleEndian.PutUint32(m[44:], 48)
			return append(m, 7, 0, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0)
		}),
		craftedType2(func(m []byte) []byte { // AV pair without MsvAvEOL
			binary.LittleEndian.PutUint16(m[40:], 8)
			binary.LittleEndian.PutUint32(m[44:], 48)
			return append(m, 2, 0, 200, 0, 'C', 0, 'O', 0)
		}),
		craftedType2(func(m []byte) []byte { // target name past the end
			binary.LittleEndian.PutUint16(m[12:], 0x7FFF)
			binary.LittleEndian.PutUint32(m[16:], 48)
			return m
		}),
		craftedType2(func(m []byte) []byte { // key exchange demanded
			binary.LittleEndian.PutUint32(m[20:], 1<<0|1<<9|1<<30)
			return m
		}),
		craftedType2(func(m []byte) []byte { // OEM only
			binary.LittleEndian.PutUint32(m[20:], 1<<1|1<<9)
			return m
		}),
		craftedType2(func(m []byte) []byte { return m[:30] }),
	} {
		f.Add(base64.StdEncoding.EncodeToString(m))
		if i < 4 {
			f.Add(string(m))
		}
	}
	f.Add(" " + lab + "\t")
	f.Add("TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGNFAAAADw==") // a NEGOTIATE echoed back
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		ctx := context.Background()
		// The token as sent, and its bytes as the message itself, which
		// lets the fuzzer reach the message parser without having to
		// stumble on valid base64 first.
		for _, tok := range []string{token, base64.StdEncoding.EncodeToString([]byte(token))} {
			n := &NTLM{Username: `CONTOSO\nina`, Password: fuzzNTLMPassword, Workstation: "PROBE01"}
			ex := n.NewExchange("mail.example.test")
			first, err := ex.Respond(ctx, Challenge{Scheme: "NTLM"})
			if err != nil || !strings.HasPrefix(first, "NTLM ") {
				t.Fatalf("first leg: %q, %v", first, err)
			}
			hdr, err := ex.Respond(ctx, Challenge{Scheme: "NTLM", Params: tok})
			if err != nil {
				if strings.Contains(err.Error(), fuzzNTLMPassword) {
					t.Fatalf("error holds the password: %v", err)
				}
				if strings.TrimSpace(tok) == "" && !errors.Is(err, ErrRejected) {
					t.Fatalf("an empty second challenge gave %v, want ErrRejected", err)
				}
				if hdr != "" {
					t.Fatalf("error %v with a header %q", err, hdr)
				}
			} else {
				b64, ok := strings.CutPrefix(hdr, "NTLM ")
				if !ok {
					t.Fatalf("second leg header %q does not start with \"NTLM \"", hdr)
				}
				msg, derr := base64.StdEncoding.DecodeString(b64)
				if derr != nil || len(msg) < 64 || string(msg[:8]) != "NTLMSSP\x00" || binary.LittleEndian.Uint32(msg[8:12]) != 3 {
					t.Fatalf("second leg is not an AUTHENTICATE message: %q (%v)", hdr, derr)
				}
				if _, cerr := decodeNTLMChallenge(strings.TrimSpace(tok)); cerr != nil {
					t.Fatalf("answered a challenge the checks refuse: %v", cerr)
				}
				if bytes.Contains(msg, []byte(fuzzNTLMPassword)) || bytes.Contains(msg, utf16le(fuzzNTLMPassword)) || strings.Contains(hdr, fuzzNTLMPassword) {
					t.Fatal("the AUTHENTICATE message carries the password in clear")
				}
			}
			if _, err := ex.Respond(ctx, Challenge{Scheme: "NTLM", Params: tok}); !errors.Is(err, ErrRejected) {
				t.Fatalf("third leg: %v, want ErrRejected", err)
			}
		}
	})
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// ---------------------------------------------------------------------------
// Raw HTTP answers

const (
	fuzzMaxBody     = 4096
	fuzzHTTPTimeout = 200 * time.Millisecond
	fuzzHang        = time.Second
)

// serveRaw runs one roundTrip against a server that reads the request and
// answers with raw, then closes its end.
func serveRaw(t *testing.T, raw []byte) (*response, *Error, time.Duration) {
	client, server := net.Pipe()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the request
		defer wg.Done()
		_, _ = io.Copy(io.Discard, server)
	}()
	go func() { // the answer
		defer wg.Done()
		_, _ = server.Write(raw)
		_ = server.Close()
	}()
	hc := newHTTPConn(client, fuzzMaxBody, nil)
	u := &url.URL{Scheme: "https", Host: "autodiscover.contoso.com", Path: "/autodiscover/autodiscover.xml"}
	req := newPOST(u, &Settings{}, "nina@contoso.com")

	type result struct {
		resp *response
		err  *Error
	}
	done := make(chan result, 1)
	started := time.Now()
	go func() {
		resp, err := hc.roundTrip(context.Background(), req, []byte("<Autodiscover/>"), fuzzHTTPTimeout)
		done <- result{resp, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(fuzzHang):
		hc.Close()
		t.Fatalf("roundTrip still running after %s on %q", fuzzHang, raw)
	}
	elapsed := time.Since(started)
	hc.Close()
	wg.Wait()
	return r.resp, r.err, elapsed
}

func FuzzHTTPResponse(f *testing.F) {
	xml := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"/>`
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: " + strconv.Itoa(len(xml)) + "\r\n\r\n" + xml,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/xml\r\n\r\n10\r\n<Autodiscover/>\n\r\n0\r\nX-Trailer: 1\r\n\r\n",
		"HTTP/1.1 302 Found\r\nLocation: https://autodiscover-s.outlook.com/autodiscover/autodiscover.xml\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 401 Unauthorized\r\nServer: Microsoft-IIS/10.0\r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: NTLM\r\nWWW-Authenticate: Basic realm=\"autodiscover.contoso.com\"\r\nX-Powered-By: ASP.NET\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Type: text/xml\n\n" + xml, // LF only, body to EOF
		"HTTP/1.0 200 OK\r\n\r\n" + strings.Repeat("A", fuzzMaxBody+1),
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
		"HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("x", maxHeaderBytes+fuzzMaxBody) + "\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\ntrailing junk",
		"SSH-2.0-OpenSSH_9.6\r\n",
		"HTTP/1.1 2OO OK\r\n\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		resp, err, _ := serveRaw(t, raw)
		if (resp == nil) == (err == nil) {
			t.Fatalf("roundTrip returned response %v and error %v", resp, err)
		}
		// What net/http itself makes of the same bytes, read in one piece.
		direct, dbody, derr := readDirect(raw)
		if err != nil {
			if !isErrorClass(err.Class) || err.Detail == "" {
				t.Fatalf("error class %q, detail %q: want a class of the vocabulary and a detail", err.Class, err.Detail)
			}
			// Within the byte budget, a well-formed answer must be read.
			if derr == nil && len(dbody) <= fuzzMaxBody && len(raw) <= fuzzMaxBody+maxHeaderBytes && len(direct.Header) <= maxHeaderFields && err.Class != ClassTimeout {
				t.Fatalf("roundTrip refused an answer net/http reads (status %d, %d body bytes): %v", direct.StatusCode, len(dbody), err)
			}
			return
		}
		if len(resp.body) > fuzzMaxBody {
			t.Fatalf("body of %d bytes, over the %d limit", len(resp.body), fuzzMaxBody)
		}
		if resp.status < 0 || resp.status > 999 || resp.header == nil {
			t.Fatalf("status %d, header %v", resp.status, resp.header)
		}
		if derr != nil {
			t.Fatalf("roundTrip read an answer net/http refuses: %v", derr)
		}
		if direct.StatusCode != resp.status || !bytes.Equal(dbody, resp.body) || !reflect.DeepEqual(direct.Header, resp.header) {
			t.Fatalf("roundTrip read status %d, %d body bytes, header %v; net/http reads %d, %d body bytes, header %v",
				resp.status, len(resp.body), resp.header, direct.StatusCode, len(dbody), direct.Header)
		}
	})
}

// readDirect parses raw with net/http from memory, reading at most one
// byte more body than roundTrip accepts.
func readDirect(raw []byte) (*http.Response, []byte, error) {
	req := &http.Request{Method: http.MethodPost, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	br := bufio.NewReader(bytes.NewReader(raw))
	resp, err := http.ReadResponse(br, req)
	// Like roundTrip, skip interim 1xx answers to reach the real one.
	for interim := 0; err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols && interim < 5; interim++ {
		resp, err = http.ReadResponse(br, req)
	}
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, fuzzMaxBody+1))
	if err != nil {
		return nil, nil, err
	}
	return resp, body, nil
}

// isErrorClass reports whether class is one of the vocabulary.
func isErrorClass(class ErrorClass) bool {
	return slices.Contains(ErrorClasses, class)
}

// FuzzEndpointAnswer feeds the judge of every endpoint protocol an
// arbitrary status, header value and body. A verdict is always reached:
// a pass with a detail, or a failure of a class from the vocabulary with
// printable text, and a pass only for the protocol's own success shape.
func FuzzEndpointAnswer(f *testing.F) {
	f.Add(200, "0", []byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetFolderResponse xmlns:m="m"><m:ResponseMessages><m:GetFolderResponseMessage><m:ResponseCode>NoError</m:ResponseCode></m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>`))
	f.Add(500, "", []byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>a:ErrorSchemaValidation</faultcode><faultstring>x</faultstring></s:Fault></s:Body></s:Envelope>`))
	f.Add(200, "16.1", []byte(`<?xml version="1.0"?><OAB><OAL name="\Default"><Full>x.lzx</Full></OAL></OAB>`))
	f.Add(200, "13", []byte("PROCESSING\r\nDONE\r\n\r\n"))
	f.Add(503, "x", []byte("<html>"))
	f.Fuzz(func(t *testing.T, status int, header string, body []byte) {
		if status < 100 || status > 999 {
			status = 200
		}
		h := http.Header{}
		h.Set("X-ResponseCode", header)
		h.Set("MS-ASProtocolVersions", header)
		resp := &response{status: status, header: h, body: body}
		for _, p := range EndpointProtocols {
			detail, err := judgeAnswer(p, resp)
			if err != nil {
				if !slices.Contains(ErrorClasses, err.Class) {
					t.Fatalf("%s: class %q is not in the vocabulary", p, err.Class)
				}
				continue
			}
			if p != EndpointOWA && status != http.StatusOK {
				t.Fatalf("%s passed an HTTP %d answer: %q", p, status, detail)
			}
			if p == EndpointMAPI && strings.TrimSpace(header) != "0" {
				t.Fatalf("MAPI passed X-ResponseCode %q", header)
			}
		}
	})
}

// FuzzSOAPAnswer feeds the SOAP Autodiscover parser arbitrary bodies: it
// returns a fault, the asked message in Autodiscover's namespace, or an
// error of the vocabulary with a detail; what it keeps is capped and
// printable; and the WSSecurity judge reaches a verdict on the same body.
func FuzzSOAPAnswer(f *testing.F) {
	f.Add([]byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetUserSettingsResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover"><Response><ErrorCode>NoError</ErrorCode><UserResponses><UserResponse><ErrorCode>NoError</ErrorCode><UserSettings><UserSetting><Name>ExternalEwsUrl</Name><Value>https://mail.contoso.test/EWS/Exchange.asmx</Value></UserSetting></UserSettings></UserResponse></UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>`))
	f.Add([]byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>a:InvalidSecurity</faultcode><faultstring>x</faultstring></s:Fault></s:Body></s:Envelope>`))
	f.Add([]byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetFederationInformationResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover"><Response><ErrorCode>NoError</ErrorCode><ApplicationUri>FYDIBOHF25SPDLT.contoso.test</ApplicationUri><Domains><Domain>contoso.test</Domain></Domains><TokenIssuers><TokenIssuer><Endpoint>https://x</Endpoint><Uri>urn:x</Uri></TokenIssuer></TokenIssuers></Response></GetFederationInformationResponseMessage></s:Body></s:Envelope>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaa">]><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"/>`))
	f.Add([]byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, want := range []string{"GetUserSettingsResponseMessage", "GetFederationInformationResponseMessage"} {
			ans, err := parseSOAPAnswer(body, want)
			if err != nil {
				if !isErrorClass(err.Class) || err.Detail == "" {
					t.Fatalf("error class %q, detail %q", err.Class, err.Detail)
				}
				continue
			}
			if ans.fault == nil && (ans.message == nil || ans.message.space != nsAutodiscover || !strings.EqualFold(ans.message.local, want)) {
				t.Fatalf("neither a fault nor a %s in Autodiscover's namespace", want)
			}
			if ans.fault != nil {
				if s := ans.fault.String(); s == "" {
					t.Fatal("a fault without words")
				}
				continue
			}
			settings, errs := readUserSettings(ans.message.child("Response").child("UserResponses").child("UserResponse"))
			if len(settings) > maxSOAPSettings || len(errs) > maxSOAPSettings {
				t.Fatalf("%d settings, %d errors kept, over the cap of %d", len(settings), len(errs), maxSOAPSettings)
			}
			for _, s := range settings {
				if !utf8.ValidString(s.Name+s.Value) || len(s.Value) > maxFieldBytes+8 {
					t.Fatalf("setting %q kept unescaped or uncapped", s.Name)
				}
			}
		}
		detail, err := judgeWSSecurity(&response{status: http.StatusInternalServerError, header: http.Header{}, body: body})
		if err != nil && !isErrorClass(err.Class) || err == nil && detail == "" {
			t.Fatalf("WSSecurity verdict %q, %v", detail, err)
		}
	})
}

// FuzzSCPBinding feeds hostile serviceBindingInformation and keywords
// through the SCP readers: no panic, and a binding accepted as an SCP URL
// is always one the redirect validator would follow.
func FuzzSCPBinding(f *testing.F) {
	for _, s := range []string{"https://mail.corp.contoso.test/Autodiscover/Autodiscover.xml", "LDAP://dc2.corp.contoso.test:389", "http://x/autodiscover/autodiscover.xml",
		"https://127.0.0.1/autodiscover/autodiscover.xml", "https://u:p@host.test/autodiscover/autodiscover.xml", "ldaps://[::1]:636", "mail.corp.contoso.test", ""} {
		f.Add(s, "Site=HQ")
	}
	f.Fuzz(func(t *testing.T, binding, keyword string) {
		pointer, isURL, sites, domains := scpKeywords([]string{keyword, scpURLKeyword})
		if !isURL || pointer && !strings.EqualFold(strings.TrimSpace(keyword), scpPointerKeyword) || len(sites)+len(domains) > 1 {
			t.Fatalf("keywords %q read as pointer %v, url %v, sites %q, domains %q", keyword, pointer, isURL, sites, domains)
		}
		if u, err := scpURL(binding, nil); err == nil {
			if !strings.EqualFold(u.Scheme, "https") || u.User != nil || portOf(u) != 443 || net.ParseIP(u.Hostname()) != nil {
				t.Fatalf("accepted %q as SCP URL %s", binding, u)
			}
		} else if err.Class != ClassBadSCP {
			t.Fatalf("refused %q with class %s", binding, err.Class)
		}
		if u, err := pointerURL(binding, true); err == nil && (u.Scheme != "ldaps" || u.User != nil || !ldapPorts[u.Port()] || net.ParseIP(u.Hostname()) != nil) {
			t.Fatalf("accepted %q as directory %s", binding, u)
		}
	})
}
