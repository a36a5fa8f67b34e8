package probe

import (
	"strings"
	"time"
)

// Result is the full record of one discovery run.
type Result struct {
	// Mailbox is the address the run started with.
	Mailbox string
	Success bool
	// Reason says in one sentence why the run failed (empty on success).
	Reason string
	// Failure is the decisive failure of a failed run (nil on success).
	Failure *Failure
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
	// ErrorSchema says which vocabulary ErrorCode is from: SchemaOutlook
	// (POX ErrorCode: 500, 600…) or SchemaMobileSync (Status: 1, 2).
	ErrorSchema Schema
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
	// EndpointHosts holds, with Settings.Endpoints, one entry per host:port
	// of the endpoint URLs checked, in the order first named.
	EndpointHosts []EndpointHost
	// Endpoints holds one entry per distinct endpoint URL of the selected
	// kinds the answer returned, in EndpointProtocols order.
	Endpoints []EndpointCheck
	// EndpointsMissing are the selected kinds the answer returned no URL
	// for (the Outlook schema carries no ActiveSync URL, say).
	EndpointsMissing []EndpointProtocol
	// SOAP is the verdict of SOAP Autodiscover, with method soap; nil
	// without it.
	SOAP *SOAPResult
	// Federation is the federation check's, with Settings.Federation; nil
	// without it.
	Federation *FederationResult
	// SCP is what the SCP lookup found, with method scp; nil without it.
	SCP *SCPResult
}

// SOAPResult is what SOAP Autodiscover (GetUserSettings on
// autodiscover.svc) found for the mailbox.
type SOAPResult struct {
	OK bool
	// Reason says why it failed, in one sentence; empty on success.
	Reason string
	// URL is the autodiscover.svc URL that answered last.
	URL string
	// Mailbox is the address the settings are for (after RedirectAddress).
	Mailbox string
	// EWSURL is ExternalEwsUrl, else InternalEwsUrl; EWSSource names which.
	EWSURL    string
	EWSSource string
	// Settings are the returned user settings, in the answer's order.
	Settings []UserSetting
	// SettingErrors are the per-setting errors (SettingIsNotAvailable, …).
	SettingErrors []UserSettingError
	// ErrorCode and ErrorMessage come from the answer that ended the
	// discovery with an error.
	ErrorCode    string
	ErrorMessage string
	// ServerVersion is the ServerVersionInfo of the answer.
	ServerVersion string
	// Redirects counts the SOAP discovery's hops (RedirectAddress,
	// RedirectUrl, 3xx, HTTP redirect method).
	Redirects int
}

// Setting returns the value of the named setting, "" when absent.
func (s *SOAPResult) Setting(name string) string {
	for _, u := range s.Settings {
		if strings.EqualFold(u.Name, name) {
			return u.Value
		}
	}
	return ""
}

// UserSetting is one setting of a GetUserSettings answer.
type UserSetting struct {
	Name, Value string
}

// UserSettingError is one per-setting error of a GetUserSettings answer.
type UserSettingError struct {
	Name, ErrorCode, ErrorMessage string
}

// FederationResult is what the anonymous GetFederationInformation for the
// mailbox's domain and the WSSecurity endpoint answered.
type FederationResult struct {
	// OK is set when GetFederationInformation answered NoError and the
	// WSSecurity endpoint answered as Exchange does.
	OK     bool
	Reason string
	// URL is the autodiscover.svc URL that answered.
	URL            string
	ApplicationURI string
	Domains        []string
	TokenIssuers   []TokenIssuer
	ErrorCode      string
	ErrorMessage   string
	// WSSecurityURL is the endpoint checked; WSSecurityOK its verdict.
	WSSecurityURL string
	WSSecurityOK  bool
}

// TokenIssuer is a security token service GetFederationInformation names.
type TokenIssuer struct {
	URI, Endpoint string
}

// EndpointHost is the connection check of one host:port that endpoint
// URLs name: DNS, TCP, TLS, the certificate and the client-certificate
// request, once however many URLs share the host.
type EndpointHost struct {
	Host string
	Port int
	// SharedWithChain is set when the chain already checked the host and
	// the endpoint connection presented the same certificate: its verdict
	// stands, and Steps are left empty.
	SharedWithChain bool
	Steps           []Step
	// OK is set when a connection came about and its certificate passed.
	OK bool
}

// EndpointCheck is the check of one endpoint URL.
type EndpointCheck struct {
	Protocol EndpointProtocol
	// What names the endpoint for people: "EWS", "MAPI/HTTP mail store".
	What string
	// Scope is ScopeExternal or ScopeInternal: where the URL was found.
	Scope EndpointScope
	// Source names the block of the answer the URL came from.
	Source string
	URL    string
	Host   string
	Port   int
	OK     bool
	// Duration is the check's own requests plus the connection to its
	// host.
	Duration time.Duration
	// Steps are the URL's own: endpoint_url when the rules refused it,
	// else auth_methods, credentials and endpoint_answer as far as they
	// got. The connection steps are the host's.
	Steps []Step
}

// EndpointSummary is the verdict of one protocol on one host, the unit
// of autodiscover_endpoint_success.
type EndpointSummary struct {
	Protocol EndpointProtocol
	Host     string
	OK       bool
	// Duration is the longest of its checks.
	Duration time.Duration
}

// EndpointSummaries folds the endpoint checks into one verdict per
// protocol and host, in the order of Endpoints: a protocol passes on a
// host when every URL of it there passed.
func (r *Result) EndpointSummaries() []EndpointSummary {
	var out []EndpointSummary
	index := map[[2]string]int{}
	for _, c := range r.Endpoints {
		k := [2]string{string(c.Protocol), c.Host}
		i, ok := index[k]
		if !ok {
			index[k] = len(out)
			out = append(out, EndpointSummary{Protocol: c.Protocol, Host: c.Host, OK: c.OK, Duration: c.Duration})
			continue
		}
		out[i].OK = out[i].OK && c.OK
		out[i].Duration = max(out[i].Duration, c.Duration)
	}
	return out
}

// EndpointsOK reports whether every endpoint check passed; true when
// none ran.
func (r *Result) EndpointsOK() bool {
	for _, c := range r.Endpoints {
		if !c.OK {
			return false
		}
	}
	return true
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
	// Name is one of ExpectationNames.
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
	// ErrorClass is empty when OK.
	ErrorClass ErrorClass
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
	// Endpoint is set for a host only an endpoint URL named: the chain
	// never reached it.
	Endpoint bool
}
