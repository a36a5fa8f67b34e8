package probe

import (
	"cmp"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
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
	// MethodV2Endpoint is the AutodiscoverV1 URL Autodiscover v2 returned,
	// POSTed to first when v2_json is the first method, as Outlook does
	// for Office 365.
	MethodV2Endpoint Method = "v2_endpoint"
	// MethodV2JSON asks Autodiscover v2 (autodiscover.json) anonymously. Its
	// steps are recorded per protocol as MethodV2Prefix+lower(protocol),
	// e.g. "v2_ews", so that protocols asked of one host stay apart.
	MethodV2JSON Method = "v2_json"
	// MethodSOAP runs SOAP Autodiscover (GetUserSettings on
	// autodiscover.svc) over the same candidates as POX. Its steps are
	// recorded as MethodSOAPPrefix+candidate, e.g. "soap_root_domain".
	MethodSOAP Method = "soap"
	// MethodSCP asks Active Directory for the Autodiscover service
	// connection points (Settings.LDAP) and POSTs to the URLs they name,
	// as domain-joined Outlook does before any DNS method.
	MethodSCP Method = "scp"
)

// MethodV2Prefix starts the method of every v2 step ("v2_ews", …).
const MethodV2Prefix = "v2_"

// MethodSOAPPrefix starts the method of every SOAP step
// ("soap_autodiscover_domain", "soap_redirect", …) and
// MethodFederationPrefix that of every federation check step
// ("federation_autodiscover_domain", …).
const (
	MethodSOAPPrefix       = "soap_"
	MethodFederationPrefix = "federation_"
)

// DefaultMethods is the candidate order Outlook and the EWS Managed API use
// outside the domain.
var DefaultMethods = []Method{MethodRootDomain, MethodAutodiscoverDomain, MethodHTTPRedirect, MethodSRV}

// poxMethods are the methods of the POX chain: the default ones and scp.
var poxMethods = []Method{MethodSCP, MethodRootDomain, MethodAutodiscoverDomain, MethodHTTPRedirect, MethodSRV}

// SelectableMethods are the values a module may list: the default POX
// methods and the opt-in scp, v2_json and soap. MethodRedirect names URLs
// reached through redirects and is never selected.
var SelectableMethods = []Method{MethodSCP, MethodRootDomain, MethodAutodiscoverDomain, MethodHTTPRedirect, MethodSRV, MethodV2JSON, MethodSOAP}

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

	// The steps of an endpoint URL (Settings.Endpoints); its host's
	// connection steps are the ones above.
	StepEndpointURL    StepName = "endpoint_url"    // the URL passed the rules for server-named URLs (recorded when it did not)
	StepAuthMethods    StepName = "auth_methods"    // the unauthenticated request and the schemes its 401 offered
	StepEndpointAnswer StepName = "endpoint_answer" // the protocol's own answer (EWS ResponseCode, MAPI/HTTP X-ResponseCode, …)

	// StepWSSecurity is the federation check's unauthenticated call to
	// autodiscover.svc/WSSecurity, the endpoint Exchange Online calls.
	StepWSSecurity StepName = "wssecurity"

	// The SCP lookup's steps (method scp): the directory's connection
	// steps are the ones above (tls_handshake after StartTLS on ldap://).
	StepLDAPBind  StepName = "ldap_bind"  // the simple bind of the module's ldap account (anonymous when it has none)
	StepSCPLookup StepName = "scp_lookup" // the rootDSE read and the search for Autodiscover SCP objects
	StepSCPRecord StepName = "scp_record" // an SCP object whose serviceBindingInformation is no usable URL (recorded when it is not)
)

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

// AuthType selects how a module answers 401 challenges.
type AuthType string

const (
	AuthNone   AuthType = "none"
	AuthBasic  AuthType = "basic"
	AuthNTLM   AuthType = "ntlm"
	AuthOAuth2 AuthType = "oauth2"
	// AuthKerberos answers Negotiate challenges with a Kerberos ticket,
	// as domain-joined Outlook does inside the network.
	AuthKerberos AuthType = "kerberos"
)

// AuthTypes lists every AuthType.
var AuthTypes = []AuthType{AuthNone, AuthBasic, AuthNTLM, AuthOAuth2, AuthKerberos}

// Defaults and limits of the settings. The configuration uses the same
// values, so they are defined here once.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultStepTimeout  = 5 * time.Second
	DefaultMaxRedirects = 10
	// MaxRedirectsLimit caps max_redirects: a longer chain is a loop or an
	// attack, not a deployment.
	MaxRedirectsLimit = 50
	// DefaultMaxBodyBytes caps a response: a real Autodiscover answer is a
	// few kilobytes.
	DefaultMaxBodyBytes = 1 << 20
	MinBodyBytes        = 4 << 10
	MaxBodyBytesLimit   = 64 << 20
	// DefaultV2Host is Exchange Online's Autodiscover v2 front end.
	DefaultV2Host = "outlook.office365.com"
	// DefaultOAuth2Scope is Exchange Online's app-only scope.
	DefaultOAuth2Scope = "https://outlook.office365.com/.default"
	// DefaultOAuth2TokenURL is the Microsoft identity platform token
	// endpoint; %s is the tenant ID or domain.
	DefaultOAuth2TokenURL = "https://login.microsoftonline.com/%s/oauth2/v2.0/token"
	// DefaultUserAgent identifies the prober to Exchange (servers log and
	// sometimes branch on it).
	DefaultUserAgent = "autodiscover_exporter (+https://github.com/autodiscover-exporter/autodiscover_exporter)"
)

// DefaultV2Protocols are the protocols a monitor asks v2 for by default.
var DefaultV2Protocols = []string{"Ews", "ActiveSync", "AutodiscoverV1"}

// Settings is the plain-data description of a module: everything a probe
// needs besides the mailbox. NewProber turns it into a Prober once per
// configuration load. The zero value of every field means its default.
type Settings struct {
	// Timeout bounds the whole chain. 0 means DefaultTimeout.
	Timeout time.Duration
	// Methods to try, in this order. Empty means DefaultMethods.
	Methods []Method
	Schema  Schema
	// MaxRedirects is the hop budget shared by every redirect kind
	// (3xx, redirectUrl, HTTP redirect method, redirectAddr). 0 means
	// DefaultMaxRedirects.
	MaxRedirects int
	// StepTimeout bounds each network step so a black-holed candidate cannot
	// eat the whole deadline. 0 means DefaultStepTimeout.
	StepTimeout time.Duration
	// DNSServer is host:port of the resolver. Empty means the servers of
	// /etc/resolv.conf, read when the Prober is built.
	DNSServer string
	IPVersion IPVersion
	// RootCAs verifies server certificates. nil means the system pool.
	RootCAs *x509.CertPool
	// InsecureSkipVerify lets the chain go on past a failed certificate
	// check (the verdicts are still recorded as failed steps). Credentials
	// are never sent to such a host whatever this says.
	InsecureSkipVerify bool
	// Auth are the credentials that answer 401 challenges.
	Auth AuthSettings
	// AllowedDomains are where credentials may go besides the mailbox's own
	// domain (a host matches a domain and all its subdomains).
	AllowedDomains []string
	// ConnectTo maps "host:port" to "address:port", like curl --connect-to.
	// The host may be a name (then DNS is not consulted for that port) or an
	// IP address DNS returned. SNI, Host and certificate checks keep the
	// original name. The probe only reads it, so callers may share one map.
	ConnectTo map[string]string
	// OmitMapiHTTP leaves out the headers that ask for the MAPI/HTTP view
	// (X-MapiHttpCapability, X-ClientCanHandle): the server then answers
	// as to Outlook 2010, with EXCH and EXPR blocks.
	OmitMapiHTTP bool
	// UserAgent sent with every request. Empty means DefaultUserAgent.
	UserAgent string
	// MaxBodyBytes caps a response body. 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// CheckAllAddresses checks TCP, TLS and the certificate on every
	// address DNS returned for every TLS host of the chain, besides the
	// one the chain used: the load-balancer node view.
	CheckAllAddresses bool
	// ContinueAfterError tries the later candidates after one answered
	// with an Autodiscover Error, where Outlook stops: it shows whether
	// they would have worked.
	ContinueAfterError bool
	// AllowedPorts are the ports besides 443 a URL named by a server (a
	// 3xx, a redirectUrl, a v2 redirect) may use; none by default.
	AllowedPorts []int
	// MaxConnectionAttempts and MaxDNSQueries are the probe's budget: what
	// one probe may spend on the network, whatever the domains it is
	// redirected to publish. 0 means DefaultMaxConnectionAttempts and
	// DefaultMaxDNSQueries.
	MaxConnectionAttempts int
	MaxDNSQueries         int
	// V2Hosts are the hosts method v2_json asks; empty means DefaultV2Host.
	V2Hosts []string
	// V2Protocols are the protocols v2_json asks for; empty means
	// DefaultV2Protocols.
	V2Protocols []string
	// Endpoints are the kinds of URL the answer returns that are checked
	// after the chain: what Outlook and phones connect to next. Empty
	// checks none.
	Endpoints []EndpointProtocol
	// EndpointsScope selects the external URLs, the internal ones or
	// both. Empty means ScopeExternal.
	EndpointsScope EndpointScope
	// Federation asks the mailbox's domain anonymously for its federation
	// information (GetFederationInformation) and checks the WSSecurity
	// endpoint Exchange Online calls for hybrid free/busy.
	Federation bool
	// LDAP is the directory method scp asks.
	LDAP LDAPSettings
}

// LDAPSettings say where and as whom method scp reads Active Directory.
// Its String and GoString never show the password.
type LDAPSettings struct {
	// URL is ldaps://host[:port] (TLS from the start, port 636 by default)
	// or ldap://host[:port] (StartTLS before anything else, port 389):
	// the bind password never travels in clear text.
	URL string
	// BindDN is the account's distinguished name or user principal name;
	// empty reads anonymously.
	BindDN   string
	Password string
	// BaseDN is the configuration naming context to search; empty reads
	// it from the rootDSE (configurationNamingContext), as clients do.
	BaseDN string
	// Site is the Active Directory site the exporter stands in for:
	// SCPs whose keywords name it come first, as for a client of that
	// site. Empty prefers none.
	Site string
}

func (l LDAPSettings) String() string {
	if l.BindDN == "" {
		return "ldap(" + l.URL + ", anonymous)"
	}
	return "ldap(" + l.URL + ", " + l.BindDN + ")"
}

// GoString keeps the password out of %#v as well.
func (l LDAPSettings) GoString() string { return l.String() }

// EndpointProtocol names a kind of endpoint an Autodiscover answer
// returns. The values are a fixed vocabulary: they are metric label
// values.
type EndpointProtocol string

const (
	EndpointEWS        EndpointProtocol = "ews"        // Exchange Web Services
	EndpointMAPI       EndpointProtocol = "mapi"       // MAPI over HTTP, mail store and address book
	EndpointOAB        EndpointProtocol = "oab"        // the offline address book's oab.xml
	EndpointActiveSync EndpointProtocol = "activesync" // Exchange ActiveSync
	EndpointOWA        EndpointProtocol = "owa"        // Outlook on the web
)

// EndpointProtocols lists every EndpointProtocol in the order they are
// checked and shown.
var EndpointProtocols = []EndpointProtocol{EndpointEWS, EndpointMAPI, EndpointOAB, EndpointActiveSync, EndpointOWA}

// EndpointScope selects which of an answer's URLs are checked.
type EndpointScope string

const (
	ScopeExternal EndpointScope = "external" // the URLs clients outside the network use
	ScopeInternal EndpointScope = "internal" // the URLs clients inside it use
	ScopeBoth     EndpointScope = "both"
)

// EndpointScopes lists every EndpointScope.
var EndpointScopes = []EndpointScope{ScopeExternal, ScopeInternal, ScopeBoth}

// AuthSettings are a module's credentials as plain data. Its String and
// GoString never show a secret.
type AuthSettings struct {
	// Type empty means AuthNone.
	Type AuthType
	// Username and Password are for basic and ntlm. An NTLM Username is
	// "DOMAIN\user" or a user principal name.
	Username string
	Password string
	// Workstation names the client machine in NTLM messages (servers log
	// it); empty leaves it out.
	Workstation string
	// Grant, TokenURL, ClientID, ClientSecret and Scopes are for oauth2.
	// Empty Grant means GrantClientCredentials; empty Scopes means
	// DefaultOAuth2Scope for it and DefaultDelegatedScopes for the others.
	Grant        OAuth2Grant
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// DeviceAuthURL is the device authorization endpoint the login command
	// uses (refresh-token grant).
	DeviceAuthURL string
	// RefreshTokenFile holds the refresh token of the refresh-token grant;
	// the probe writes every rotated token back to it.
	RefreshTokenFile string
	// Realm, KDCs, SPN and Keytab are for kerberos (with Username, and
	// Password unless Keytab is given). Empty KDCs means the
	// _kerberos._tcp SRV records of the realm; SPN may hold {host}, the
	// host being authenticated to, and empty means DefaultKerberosSPN.
	Realm  string
	KDCs   []string
	SPN    string
	Keytab []byte
}

// DefaultKerberosSPN is the service principal Windows clients ask a
// ticket for when they authenticate to a web server.
const DefaultKerberosSPN = "HTTP/{host}"

// OAuth2Grant selects how an oauth2 module gets its access tokens.
type OAuth2Grant string

const (
	// GrantClientCredentials gets app-only tokens. Exchange Online's POX
	// Autodiscover refuses them (Error 500); EWS with X-AnchorMailbox takes
	// them.
	GrantClientCredentials OAuth2Grant = "client_credentials"
	// GrantRefreshToken redeems a user's refresh token (written by the
	// login command's device authorization) for delegated tokens.
	GrantRefreshToken OAuth2Grant = "refresh_token"
	// GrantPassword is the legacy resource-owner password grant, for
	// service accounts that still allow it.
	GrantPassword OAuth2Grant = "password"
)

// OAuth2Grants lists every grant.
var OAuth2Grants = []OAuth2Grant{GrantClientCredentials, GrantRefreshToken, GrantPassword}

// DefaultDelegatedScopes are the scopes of a delegated token for Exchange
// Online: EWS as the signed-in user (Outlook's resource), and
// offline_access for the refresh token.
var DefaultDelegatedScopes = []string{"https://outlook.office365.com/EWS.AccessAsUser.All", "offline_access"}

// DefaultOAuth2DeviceAuthURL is the Microsoft identity platform device
// authorization endpoint; %s is the tenant.
const DefaultOAuth2DeviceAuthURL = "https://login.microsoftonline.com/%s/oauth2/v2.0/devicecode"

func (a AuthSettings) String() string {
	switch a.Type {
	case AuthBasic, AuthNTLM:
		return string(a.Type) + "(" + a.Username + ")"
	case AuthKerberos:
		return string(a.Type) + "(" + a.Username + "@" + a.Realm + ")"
	case AuthOAuth2:
		if a.Grant == GrantPassword {
			return "oauth2(" + a.Username + ", client " + a.ClientID + ")"
		}
		return "oauth2(" + a.ClientID + ")"
	}
	return string(AuthNone)
}

// GoString keeps the secrets out of %#v as well.
func (a AuthSettings) GoString() string { return a.String() }

// Fingerprint is a hash of everything the credentials are, secret
// included, for telling changed credentials from unchanged ones; it does
// not reveal the secret.
func (a AuthSettings) Fingerprint() string {
	h := sha256.New()
	fields := append([]string{string(a.Type), string(a.Grant), a.Username, a.Password, a.Workstation, a.TokenURL, a.ClientID, a.ClientSecret, a.RefreshTokenFile, a.Realm, a.SPN, string(a.Keytab)}, a.Scopes...)
	for _, f := range append(fields, a.KDCs...) {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Expectation names, the values of autodiscover_expectation_success's
// label and of a mailbox's expect fields.
const (
	ExpectEndpointHost     = "endpoint_host"
	ExpectEWSURLHost       = "ews_url_host"
	ExpectMaxRedirects     = "max_redirects"
	ExpectProtocols        = "protocols"
	ExpectCertMinDays      = "cert_min_days"
	ExpectSMTPAddress      = "smtp_address"
	ExpectEndpoints        = "endpoints"
	ExpectFederationAppURI = "federation_application_uri"
	ExpectSCPHosts         = "scp_hosts"
)

// ExpectationNames lists them in the order they are checked.
var ExpectationNames = []string{ExpectEndpointHost, ExpectEWSURLHost, ExpectMaxRedirects, ExpectProtocols, ExpectCertMinDays, ExpectSMTPAddress, ExpectEndpoints, ExpectFederationAppURI, ExpectSCPHosts}

// MaxCertMinDays caps cert_min_days at ten years: no certificate is issued
// for longer, so a larger value always fails.
const MaxCertMinDays = 3650

// Expectations catch drift after migrations: a chain that still works but
// ends somewhere else. Zero fields are not checked. The YAML names are
// the configuration's.
type Expectations struct {
	// EndpointHost is the lower-case host of the Autodiscover URL that
	// must answer.
	EndpointHost string `yaml:"endpoint_host,omitempty"`
	// EWSURLHost is the lower-case host the returned EWS URL must name.
	EWSURLHost string `yaml:"ews_url_host,omitempty"`
	// MaxRedirects, when set, is the most redirect hops allowed; a pointer
	// because 0 ("no redirect at all") is a meaningful expectation.
	MaxRedirects *int `yaml:"max_redirects,omitempty"`
	// Protocols must all be among the returned Protocol types (EXCH, EXPR,
	// WEB, EXHTTP, mapiHttp, MobileSync), in their canonical spelling.
	Protocols []string `yaml:"protocols,omitempty"`
	// CertMinDays is the fewest days any certificate of the chain may have
	// left.
	CertMinDays int `yaml:"cert_min_days,omitempty"`
	// SMTPAddress is the primary address (AutoDiscoverSMTPAddress) the
	// answer must name: a changed one is drift of the mailbox itself.
	SMTPAddress string `yaml:"smtp_address,omitempty"`
	// Endpoints makes a failing endpoint check (the module's endpoints)
	// fail the probe; without it the endpoints have metrics of their own
	// and the probe's verdict is Autodiscover's.
	Endpoints bool `yaml:"endpoints,omitempty"`
	// FederationApplicationURI is the ApplicationUri the federation check
	// (the module's federation) must return, any case: a changed one means
	// the federation trust changed, and free/busy with it.
	FederationApplicationURI string `yaml:"federation_application_uri,omitempty"`
	// SCPHosts are the lower-case hosts the Autodiscover SCPs of the
	// directory (method scp) must name, no more and no fewer: an SCP
	// left behind by a decommissioned server is the commonest stale one.
	SCPHosts []string `yaml:"scp_hosts,omitempty"`
}

// ExpectationProtocols are the Protocol types expect.protocols accepts.
var ExpectationProtocols = []string{"EXCH", "EXPR", "WEB", "EXHTTP", "mapiHttp", "MobileSync", "IMAP", "POP3", "SMTP"}

// positiveOr is v, or def when v is not positive (left out).
func positiveOr[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func (s *Settings) timeout() time.Duration     { return positiveOr(s.Timeout, DefaultTimeout) }
func (s *Settings) stepTimeout() time.Duration { return positiveOr(s.StepTimeout, DefaultStepTimeout) }
func (s *Settings) maxRedirects() int          { return positiveOr(s.MaxRedirects, DefaultMaxRedirects) }
func (s *Settings) maxBodyBytes() int64        { return positiveOr(s.MaxBodyBytes, DefaultMaxBodyBytes) }
func (s *Settings) schema() Schema             { return cmp.Or(s.Schema, SchemaOutlook) }
func (s *Settings) ipVersion() IPVersion       { return cmp.Or(s.IPVersion, IPAny) }
func (s *Settings) userAgent() string          { return cmp.Or(s.UserAgent, DefaultUserAgent) }

func (s *Settings) endpointsScope() EndpointScope { return cmp.Or(s.EndpointsScope, ScopeExternal) }

func (s *Settings) methods() []Method {
	if len(s.Methods) == 0 {
		return DefaultMethods
	}
	return s.Methods
}

func (s *Settings) v2Hosts() []string {
	if len(s.V2Hosts) == 0 {
		return []string{DefaultV2Host}
	}
	return s.V2Hosts
}

func (s *Settings) v2Protocols() []string {
	if len(s.V2Protocols) == 0 {
		return DefaultV2Protocols
	}
	return s.V2Protocols
}
