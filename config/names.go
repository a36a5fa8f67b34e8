package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/net/idna"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// validName checks mailbox and module names: they travel as the ?target=
// parameter and the instance label, so they stay URL- and label-safe.
func validName(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// reservedLabel lists the label names the exporter sets itself; a mailbox
// label with one of these names would collide on every series.
func reservedLabel(name string) bool {
	switch name {
	case "instance", "job", "target", "module", "hop", "method", "host", "step", "address", "expectation":
		return true
	}
	return false
}

func checkLabelName(name string) error {
	if name == "" {
		return errors.New("label name must not be empty")
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || i > 0 && r >= '0' && r <= '9') {
			return fmt.Errorf("invalid label name %q: must match [a-zA-Z_][a-zA-Z0-9_]*", name)
		}
	}
	if strings.HasPrefix(name, "__") {
		return fmt.Errorf("invalid label name %q: names starting with \"__\" are reserved for Prometheus", name)
	}
	if reservedLabel(name) {
		return fmt.Errorf("label name %q is reserved: the exporter sets it itself", name)
	}
	return nil
}

// canonicalDomain checks an allowed_domains entry with the probe's own
// address rules (IDNA, no IP literals, no single labels, no bare public
// suffix), so a domain is accepted here exactly when a mailbox in it would
// be, and comes out in the lower-case A-label form the probe compares with.
func canonicalDomain(s string) (string, error) {
	switch {
	case s == "":
		return "", errors.New("must not be empty")
	case strings.Contains(s, "*"):
		return "", fmt.Errorf("invalid domain %q: no wildcards needed, a domain already covers its subdomains", s)
	case strings.ContainsAny(s, "@/: "):
		return "", fmt.Errorf("invalid domain %q: must be a bare domain name", s)
	}
	domain, err := probe.NormalizeDomain(s)
	if err != nil {
		return "", fmt.Errorf("invalid domain %q: %s", s, err.Detail)
	}
	return domain, nil
}

// canonicalHostPort checks "host:port" and returns it in the form the probe
// compares with: IP addresses as netip prints them, names lower-cased
// without a trailing dot, ports without leading zeros.
func canonicalHostPort(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", s)
	}
	return joinCanonical(host, port)
}

// canonicalDNSServer is canonicalHostPort with the port optional: resolvers
// are nearly always on 53.
func canonicalDNSServer(s string) (string, error) {
	host, port := s, "53"
	switch {
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		host = s[1 : len(s)-1]
	case strings.Contains(s, ":"):
		if _, err := netip.ParseAddr(s); err == nil {
			break // a bare IPv6 address
		}
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", fmt.Errorf("%q is neither host nor host:port", s)
		}
		host, port = h, p
	}
	return joinCanonical(host, port)
}

func joinCanonical(host, port string) (string, error) {
	h, err := canonicalHost(host)
	if err != nil {
		return "", err
	}
	p, err := canonicalPort(port)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(h, p), nil
}

func canonicalHost(h string) (string, error) {
	if h == "" {
		return "", errors.New("empty host")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String(), nil
	}
	name := strings.ToLower(strings.TrimSuffix(h, "."))
	if !isDNSName(name) {
		return "", fmt.Errorf("host %q is neither an IP address nor a valid host name", h)
	}
	return name, nil
}

func canonicalPort(p string) (string, error) {
	if p == "" || strings.Trim(p, "0123456789") != "" {
		return "", fmt.Errorf("port %q is not a number", p)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q is out of range 1-65535", p)
	}
	return strconv.Itoa(n), nil
}

// isDNSName accepts lower-case LDH host names (RFC 1123).
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// Limits on files read at load. A password or CA bundle larger than this is
// the wrong file.
const (
	maxPasswordFile = 64 << 10
	maxCAFile       = 16 << 20
)

// readFile reads a small regular file. It refuses anything else because
// opening a FIFO blocks and /dev/zero never ends, either of which would hang
// a reload.
func readFile(path, what string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s %q: %w", what, path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %q is not a regular file", what, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s %q is larger than %d bytes", what, path, limit)
	}
	return data, nil
}

// readSecretFile returns a password or client secret with its trailing line
// break removed: editors and "echo" add one, and no real secret ends in
// one. what names the file in errors ("password file"); errors name the
// path only, never the content.
func readSecretFile(path, what string) (string, error) {
	data, err := readFile(path, what, maxPasswordFile)
	if err != nil {
		return "", err
	}
	pw := strings.TrimRight(string(data), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("%s %q is empty", what, path)
	}
	return pw, nil
}

// loadCAFile builds a pool from a PEM bundle. Unlike
// x509.CertPool.AppendCertsFromPEM it fails on a certificate that does not
// parse, instead of quietly trusting fewer roots than the operator meant.
func loadCAFile(path string) (*x509.CertPool, error) {
	data, err := readFile(path, "CA file", maxCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA file %q: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("CA file %q holds no PEM certificate", path)
	}
	return pool, nil
}

// canonicalHostName checks a bare DNS host name (v2 hosts, expected hosts)
// and returns it lower-cased, in A-label form, without a trailing dot. URLs,
// ports and IP addresses are refused with a message saying which it was,
// since those are the usual mistakes.
func canonicalHostName(s string) (string, error) {
	switch {
	case s == "":
		return "", errors.New("must not be empty")
	case strings.Contains(s, "://"):
		return "", fmt.Errorf("%q is a URL: give the host name only", s)
	case strings.ContainsAny(s, "/?#@"):
		return "", fmt.Errorf("%q is not a host name: give the host name only", s)
	}
	if _, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return "", fmt.Errorf("%q is an IP address, not a DNS name", s)
	}
	if strings.Contains(s, ":") {
		return "", fmt.Errorf("%q has a port: give the host name only", s)
	}
	name := strings.TrimSuffix(s, ".")
	if ascii, err := idna.Lookup.ToASCII(name); err == nil {
		name = ascii
	}
	name = strings.ToLower(name)
	if !isDNSName(name) {
		return "", fmt.Errorf("%q is not a valid DNS name", s)
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return "", fmt.Errorf("%q is an IP address, not a DNS name", s)
	}
	return name, nil
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// canonicalTenant checks an Entra ID tenant: a directory GUID or one of the
// tenant's domains, returned lower-cased. The user grants may also name
// "organizations" (or "common"), where the user's sign-in picks the tenant;
// an app-only token needs the tenant itself.
func canonicalTenant(s string, grant probe.OAuth2Grant) (string, error) {
	if guidRE.MatchString(s) {
		return strings.ToLower(s), nil
	}
	switch alias := strings.ToLower(s); alias {
	case "common", "organizations":
		if grant != probe.GrantClientCredentials {
			return alias, nil
		}
		return "", fmt.Errorf("%q is a multi-tenant alias, which cannot issue app-only tokens: give the tenant GUID or domain", s)
	case "consumers":
		return "", fmt.Errorf("%q signs in personal Microsoft accounts, which have no Exchange Online mailbox: give the tenant GUID or domain", s)
	}
	name, err := canonicalHostName(s)
	if err != nil || !strings.Contains(name, ".") {
		return "", fmt.Errorf("tenant %q is neither a GUID nor a domain such as contoso.onmicrosoft.com", s)
	}
	return name, nil
}

// checkScope accepts one OAuth2 scope: an absolute https URL
// ("https://outlook.office365.com/.default") or a plain token without
// white space ("offline_access").
func checkScope(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty (leave the field out for the grant's default)")
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Errorf("scope %q contains white space: give one scope, or a list of them", s)
	case strings.Contains(s, "://"):
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			return fmt.Errorf("scope %q is not an absolute https URL", s)
		}
	}
	return nil
}

// checkEndpointURL accepts an absolute https URL without credentials or
// fragment for an identity platform endpoint. Plain http is refused even
// on loopback: what travels to it (a client secret, a password, a refresh
// token) must not be readable on the way. Messages show the URL with any
// password masked.
func checkEndpointURL(s string, grant probe.OAuth2Grant) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	shown := u.Redacted()
	sent := map[probe.OAuth2Grant]string{
		probe.GrantClientCredentials: "the client secret",
		probe.GrantPassword:          "the password",
		probe.GrantRefreshToken:      "the refresh token",
	}[grant]
	switch {
	case !u.IsAbs() || u.Opaque != "":
		return fmt.Errorf("%q is not an absolute https URL", shown)
	case u.Scheme != "https":
		return fmt.Errorf("%q must be an https URL: %s is sent to it", shown, sent)
	case u.User != nil:
		return fmt.Errorf("%q must not contain user information", shown)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%q must not have a fragment", shown)
	}
	if _, err := canonicalHost(u.Hostname()); err != nil {
		return fmt.Errorf("%q: %w", shown, err)
	}
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		if _, err := canonicalPort(port); err != nil {
			return fmt.Errorf("%q: %w", shown, err)
		}
	}
	return nil
}

// checkNTLMUser accepts "DOMAIN\user", "user@domain" and a bare "user"
// (the server's domain applies), refusing forms with an empty part.
func checkNTLMUser(s string) error {
	if strings.ContainsFunc(s, unicode.IsControl) {
		return errors.New("must not contain control characters")
	}
	if domain, user, ok := strings.Cut(s, `\`); ok {
		switch {
		case domain == "":
			return fmt.Errorf("%q has an empty domain before '\\' (write DOMAIN\\user or user@domain)", s)
		case user == "":
			return fmt.Errorf("%q has an empty user name after '\\' (write DOMAIN\\user or user@domain)", s)
		case strings.Contains(user, `\`):
			return fmt.Errorf("%q has more than one '\\' (write DOMAIN\\user or user@domain)", s)
		}
		return nil
	}
	if user, domain, ok := strings.Cut(s, "@"); ok {
		switch {
		case user == "":
			return fmt.Errorf("%q has an empty user name before '@' (write user@domain or DOMAIN\\user)", s)
		case domain == "":
			return fmt.Errorf("%q has an empty domain after '@' (write user@domain or DOMAIN\\user)", s)
		case strings.Contains(domain, "@"):
			return fmt.Errorf("%q has more than one '@' (write user@domain or DOMAIN\\user)", s)
		}
	}
	return nil
}

// v2ProtocolNames lists the protocols Autodiscover v2 answers for, in their
// canonical spelling.
var v2ProtocolNames = []string{
	"AutodiscoverV1", "ActiveSync", "Ews", "Rest", "Substrate",
	"SubstrateSearchService", "SubstrateNotificationService",
	"OutlookMeetingScheduler", "OutlookPay", "Actions", "Connectors",
	"ConnectorsProcessors", "ConnectorsWebhook", "NotesClient",
	"OwaPoweredExperience", "OwaPoweredExperienceV2", "ToDo", "Weve",
	"OutlookLocationsService", "OutlookCloudSettingsService",
	"OutlookTailoredExperiences", "Speedway",
	"SpeechAndLanguagePersonalization", "SubstrateSignalService",
	"CompliancePolicyService",
}

// canonicalName finds s in names ignoring case.
func canonicalName(s string, names []string) (string, bool) {
	for _, n := range names {
		if strings.EqualFold(s, n) {
			return n, true
		}
	}
	return "", false
}

// canonicalApplicationURI accepts an ApplicationUri as GetFederationInformation
// returns it: a federation organisation identifier such as
// FYDIBOHF25SPDLT.contoso.com, or a URI (outlook.com, urn:…), printable
// and without white space.
func canonicalApplicationURI(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errors.New("must not be empty")
	case len(s) > 255:
		return "", fmt.Errorf("is %d bytes long: an ApplicationUri has at most 255", len(s))
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return "", fmt.Errorf("%q holds white space or a control character", s)
		}
	}
	return s, nil
}
