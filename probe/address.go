package probe

import (
	"net"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// idnaProfile converts a domain to its ASCII (A-label) form with the
// registration-time rules, so odd forms (mixed scripts, invalid punycode,
// disallowed code points) are rejected rather than guessed at.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.VerifyDNSLength(true),
	idna.StrictDomainName(true),
)

// NormalizeAddress checks a mailbox address and returns it with the domain
// in lower-case A-label form, plus that domain. It refuses what a safe
// client must never discover for: no '@', an empty or invalid local part,
// and every domain NormalizeDomain refuses. The error is an *Error of class
// bad_address.
func NormalizeAddress(address string) (normalized, domain string, err error) {
	fail := func(reason string) (string, string, error) {
		return "", "", failf(ClassBadAddress, "invalid mailbox address %q: %s", address, reason)
	}
	if strings.TrimSpace(address) != address || address == "" {
		return fail("empty or surrounded by white space")
	}
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return fail("no '@'")
	}
	local := address[:at]
	if local == "" {
		return fail("empty local part")
	}
	if len(local) > 64 || strings.ContainsAny(local, " \t\r\n<>()[]\\,;:\"@") || !isPlain(local) {
		return fail("local part has characters a mailbox address cannot have")
	}
	domain, derr := NormalizeDomain(address[at+1:])
	if derr != nil {
		return fail(derr.Detail)
	}
	return local + "@" + domain, domain, nil
}

// NormalizeDomain checks a mail domain and returns its lower-case A-label
// form. It refuses IP literals, single-label names and bare public
// suffixes (the "autodiscover.<tld>" leak of 2021); the error's Detail
// says why in a few words.
func NormalizeDomain(raw string) (string, *Error) {
	fail := func(reason string) (string, *Error) { return "", &Error{Class: ClassBadAddress, Detail: reason} }
	if raw == "" {
		return fail("empty domain")
	}
	if !utf8.ValidString(raw) {
		return fail("domain is not valid UTF-8")
	}
	if strings.HasPrefix(raw, "[") || net.ParseIP(raw) != nil {
		return fail("domain is an IP address literal")
	}
	ascii, err := idnaProfile.ToASCII(strings.TrimSuffix(raw, "."))
	if err != nil {
		return fail("domain is not a valid (internationalised) domain name: " + err.Error())
	}
	ascii = strings.ToLower(ascii)
	if !strings.Contains(ascii, ".") {
		return fail("single-label domain")
	}
	if _, err := publicsuffix.EffectiveTLDPlusOne(ascii); err != nil {
		return fail("domain is a public suffix")
	}
	return ascii, nil
}
