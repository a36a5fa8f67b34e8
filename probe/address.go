package probe

import (
	"fmt"
	"net"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// AddressError reports a mailbox address the probe refuses before sending
// anything on the network.
type AddressError struct {
	Address string
	Reason  string
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("invalid mailbox address %q: %s", e.Address, e.Reason)
}

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
// IP literals, single-label names and bare public suffixes (the
// "autodiscover.<tld>" leak of 2021).
func NormalizeAddress(address string) (normalized, domain string, err error) {
	fail := func(reason string) (string, string, error) {
		return "", "", &AddressError{Address: address, Reason: reason}
	}
	if strings.TrimSpace(address) != address || address == "" {
		return fail("empty or surrounded by white space")
	}
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return fail("no '@'")
	}
	local, rawDomain := address[:at], address[at+1:]
	if local == "" {
		return fail("empty local part")
	}
	if len(local) > 64 || strings.ContainsAny(local, " \t\r\n<>()[]\\,;:\"@") {
		return fail("local part has characters a mailbox address cannot have")
	}
	if rawDomain == "" {
		return fail("empty domain")
	}
	if !utf8.ValidString(rawDomain) {
		return fail("domain is not valid UTF-8")
	}
	if strings.HasPrefix(rawDomain, "[") || net.ParseIP(rawDomain) != nil {
		return fail("domain is an IP address literal")
	}
	ascii, err := idnaProfile.ToASCII(strings.TrimSuffix(rawDomain, "."))
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
	return local + "@" + ascii, ascii, nil
}
