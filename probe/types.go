package probe

import (
	"crypto/x509"
	"time"
)

// Method names how a candidate URL was found. The values are a fixed
// vocabulary: they end up as metric label values.
type Method string

const (
	MethodRootDomain         Method = "root_domain"         // https://<domain>/autodiscover/autodiscover.xml
	MethodAutodiscoverDomain Method = "autodiscover_domain" // https://autodiscover.<domain>/autodiscover/autodiscover.xml
	MethodHTTPRedirect       Method = "http_redirect"       // GET http://autodiscover.<domain>/… answered by a 3xx
	MethodSRV                Method = "srv"                 // _autodiscover._tcp.<domain> SRV target
	MethodRedirect           Method = "redirect"            // a URL reached through a 3xx or redirectUrl
	// MethodV2JSON asks Autodiscover v2 (autodiscover.json) anonymously. Its
	// steps are recorded per protocol as MethodV2Prefix+lower(protocol),
	// e.g. "v2_ews", so that protocols asked of one host stay apart.
	MethodV2JSON Method = "v2_json"
)

// MethodV2Prefix starts the method of every v2 step ("v2_ews", …).
const MethodV2Prefix = "v2_"

// DefaultMethods is the candidate order Outlook and the EWS Managed API use.
var DefaultMethods = []Method{MethodRootDomain, MethodAutodiscoverDomain, MethodHTTPRedirect, MethodSRV}

// StepName names one check inside a candidate. Fixed vocabulary, used as a
// metric label value.
type StepName string

const (
	StepDNS          StepName = "dns"           // A/AAAA lookup of the candidate host
	StepSRVLookup    StepName = "srv_lookup"    // SRV lookup of _autodiscover._tcp.<domain>
	StepTCP          StepName = "tcp"           // TCP connect, each address in turn
	StepTLSHandshake StepName = "tls_handshake" // TLS handshake
	StepCertName     StepName = "cert_name"     // the certificate names the host
	StepCertTrust    StepName = "cert_trust"    // the certificate chains to a trusted root
	StepCertValidity StepName = "cert_validity" // now is inside NotBefore..NotAfter
	StepClientCert   StepName = "client_cert"   // the server did not ask for a client certificate
	StepHTTPGet      StepName = "http_get"      // unauthenticated GET of the HTTP redirect method
	StepRequest      StepName = "request"       // the Autodiscover POST (unauthenticated)
	StepCredentials  StepName = "credentials"   // answer to a 401 challenge, when the rules allow it
	StepParse        StepName = "parse"         // the Autodiscover XML answer
	StepRedirect     StepName = "redirect"      // validation of a redirect target (URL or address)
)

// V2 protocols a monitor asks for by default.
var DefaultV2Protocols = []string{"Ews", "ActiveSync", "AutodiscoverV1"}

// DefaultV2Host is Exchange Online's Autodiscover v2 front end.
const DefaultV2Host = "outlook.office365.com"

// Schema selects the POX request flavour.
type Schema string

const (
	SchemaOutlook    Schema = "outlook"
	SchemaMobileSync Schema = "mobilesync"
)

// IPVersion restricts which address families the probe resolves and dials.
type IPVersion string

const (
	IPAny IPVersion = "any" // IPv4 addresses first, then IPv6
	IPv4  IPVersion = "ip4"
	IPv6  IPVersion = "ip6"
)

// Settings is everything a probe needs besides the mailbox address. The zero
// value is usable: every field has a default (see the accessor methods).
type Settings struct {
	// Methods to try, in this order. Empty means DefaultMethods.
	Methods []Method
	Schema  Schema
	// MaxRedirects is the hop budget shared by every redirect kind
	// (3xx, redirectUrl, HTTP redirect method, redirectAddr). 0 means 10.
	MaxRedirects int
	// StepTimeout bounds each network step so a black-holed candidate cannot
	// eat the whole deadline. 0 means 5s.
	StepTimeout time.Duration
	// DNSServer is host:port of the resolver. Empty means the servers of
	// /etc/resolv.conf.
	DNSServer string
	IPVersion IPVersion
	// RootCAs verifies server certificates. nil means the system pool.
	RootCAs *x509.CertPool
	// InsecureSkipVerify lets the chain go on past a failed certificate
	// check (the verdicts are still recorded as failed steps). Credentials
	// are never sent to such a host whatever this says.
	InsecureSkipVerify bool
	// Auth answers 401 challenges. nil means no credentials are ever sent.
	Auth Authenticator
	// AllowedDomains are where credentials may go besides the mailbox's own
	// domain (a host matches a domain and all its subdomains).
	AllowedDomains []string
	// ConnectTo maps "host:port" to "address:port", like curl --connect-to.
	// The host may be a name (then DNS is not consulted for that port) or an
	// IP address DNS returned. SNI, Host and certificate checks keep the
	// original name. The probe only reads it, so callers may share one map.
	ConnectTo map[string]string
	// UserAgent sent with every request. Empty means DefaultUserAgent.
	UserAgent string
	// MaxBodyBytes caps a response body. 0 means 1 MiB.
	MaxBodyBytes int64
	// Now is the clock for certificate dates; nil means time.Now.
	Now func() time.Time
	// CheckAllAddresses checks TCP, TLS and the certificate on every
	// address DNS returned for every TLS host of the chain, besides the
	// one the chain used: the load-balancer node view.
	CheckAllAddresses bool
	// V2Hosts are the hosts method v2_json asks; empty means DefaultV2Host.
	V2Hosts []string
	// V2Protocols are the protocols v2_json asks for; empty means
	// DefaultV2Protocols.
	V2Protocols []string
	// Expect lists what the result must look like; nil checks nothing.
	Expect *Expectations
	// Guard withholds credentials after the server refused them (account
	// lockout protection); GuardKey names the account (the mailbox).
	Guard    CredentialGuard
	GuardKey string
}

// Expectations catch drift after migrations: a chain that still works but
// ends somewhere else. Zero fields are not checked.
type Expectations struct {
	// EndpointHost is the host of the Autodiscover URL that must answer.
	EndpointHost string
	// EWSURLHost is the host the returned EWS URL must point at.
	EWSURLHost string
	// MaxRedirects, when set, is the most redirect hops allowed.
	MaxRedirects *int
	// Protocols must all be among the returned Protocol types (EXCH, EXPR,
	// WEB, EXHTTP, mapiHttp, MobileSync).
	Protocols []string
	// CertMinDays is the fewest days any certificate of the chain may have
	// left.
	CertMinDays int
}

// DefaultUserAgent identifies the prober to Exchange (servers log and
// sometimes branch on it).
const DefaultUserAgent = "autodiscover_exporter (+https://github.com/autodiscover-exporter/autodiscover_exporter)"

func (s *Settings) methods() []Method {
	if len(s.Methods) == 0 {
		return DefaultMethods
	}
	return s.Methods
}

func (s *Settings) maxRedirects() int {
	if s.MaxRedirects <= 0 {
		return 10
	}
	return s.MaxRedirects
}

func (s *Settings) stepTimeout() time.Duration {
	if s.StepTimeout <= 0 {
		return 5 * time.Second
	}
	return s.StepTimeout
}

func (s *Settings) schema() Schema {
	if s.Schema == "" {
		return SchemaOutlook
	}
	return s.Schema
}

func (s *Settings) ipVersion() IPVersion {
	if s.IPVersion == "" {
		return IPAny
	}
	return s.IPVersion
}

func (s *Settings) userAgent() string {
	if s.UserAgent == "" {
		return DefaultUserAgent
	}
	return s.UserAgent
}

func (s *Settings) maxBodyBytes() int64 {
	if s.MaxBodyBytes <= 0 {
		return 1 << 20
	}
	return s.MaxBodyBytes
}

func (s *Settings) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Result is the full record of one discovery run.
type Result struct {
	// Mailbox is the address the run started with.
	Mailbox string
	Success bool
	// Reason says in one sentence why the run failed (empty on success).
	Reason string
	// FinalURL is the Autodiscover URL that returned settings (or the error).
	FinalURL     string
	RedirectHops int
	Duration     time.Duration
	Steps        []Step
	// Certificates holds one entry per TLS host the chain reached, in the
	// order first reached.
	Certificates []CertInfo
	// Response is the parsed Autodiscover answer that ended the run, if any.
	Response *Response
	// ErrorCode and ErrorMessage are set when the server answered with an
	// Autodiscover Error element.
	ErrorCode    string
	ErrorMessage string
	// ChainSuccess is the POX chain's own verdict (Success also needs v2
	// and every expectation to pass).
	ChainSuccess bool
	// V2 holds one entry per protocol asked with method v2_json.
	V2 []V2Result
	// AddressChecks holds, with CheckAllAddresses, one entry per address of
	// every TLS host the chain reached.
	AddressChecks []AddressCheck
	// Expectations holds one verdict per configured expectation.
	Expectations []ExpectationResult
	// AuthBackoff is how long credentials stay withheld after this run
	// (account lockout protection); 0 when they are not.
	AuthBackoff time.Duration
}

// V2Result is the answer of Autodiscover v2 for one protocol.
type V2Result struct {
	Protocol string
	OK       bool
	// URL is the endpoint returned for the protocol.
	URL string
	// Host is where the final answer came from (after v2 redirects).
	Host string
	// ErrorCode and ErrorMessage come from a 400 JSON error answer.
	ErrorCode    string
	ErrorMessage string
	Redirects    int
}

// AddressCheck is the per-address view of one TLS host.
type AddressCheck struct {
	Host    string
	Address string
	// Steps are tcp, tls_handshake and the three certificate verdicts, as
	// far as they got.
	Steps []Step
	// Cert is set when the handshake completed.
	Cert *CertInfo
}

// ExpectationResult is one checked expectation.
type ExpectationResult struct {
	// Name is one of endpoint_host, ews_url_host, max_redirects,
	// protocols, cert_min_days.
	Name   string
	OK     bool
	Detail string
}

// Step is one check of the chain.
type Step struct {
	Hop    int
	Method Method
	// Mailbox is the address being discovered at this hop (it changes after
	// a redirectAddr). Never exported as a label.
	Mailbox string
	Host    string
	// Port is the TCP port the step concerns (0 when not applicable).
	Port int
	// Address is the IP address that answered (or was last tried).
	Address string
	URL     string
	Name    StepName
	OK      bool
	// Start is the offset from the start of the run.
	Start    time.Duration
	Duration time.Duration
	// ErrorClass is a short fixed token ("nxdomain", "name_mismatch", …);
	// empty when OK.
	ErrorClass string
	// Detail is human-readable, for the step log. It never holds secrets.
	Detail string
}

// CertInfo describes the certificate a TLS host presented.
type CertInfo struct {
	Host      string
	Address   string
	Subject   string
	Issuer    string
	DNSNames  []string
	NotBefore time.Time
	NotAfter  time.Time
	// ChainNotAfter is the earliest NotAfter of the verified chain; zero
	// when the chain did not verify.
	ChainNotAfter time.Time
	NameOK        bool
	TrustOK       bool
	ValidityOK    bool
}
