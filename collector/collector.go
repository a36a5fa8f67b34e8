package collector

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

const namespace = "autodiscover"

var stepLabels = []string{"hop", "method", "host", "step"}

// Descriptors of every family; names and labels are the exporter's contract.
var (
	probeSuccess        = family("probe_success", "Whether the Autodiscover chain returned settings (1) or not (0).")
	probeDuration       = family("probe_duration_seconds", "How long the whole Autodiscover chain took.")
	probeTimeout        = family("probe_timeout_seconds", "The deadline the chain ran under.")
	redirectHops        = family("redirect_hops", "Redirects followed (HTTP 3xx, redirectUrl, HTTP redirect method, redirectAddr).")
	stepSuccess         = family("step_success", "Whether a step of the chain passed (1) or failed (0); absent when the step was not reached.", stepLabels...)
	stepDuration        = family("step_duration_seconds", "How long a step of the chain took.", stepLabels...)
	certNotAfter        = family("cert_not_after_timestamp_seconds", "NotAfter of the leaf certificate a TLS host of the chain or an endpoint host presented, also when validation failed.", "host")
	chainNotAfter       = family("cert_chain_not_after_timestamp_seconds", "Earliest NotAfter of the verified certificate chain of a TLS host of the chain or an endpoint host; absent when the chain did not verify.", "host")
	responseErrorCode   = family("response_error_code", "The ErrorCode of an Autodiscover Error answer (e.g. 500: address not found); absent when none came back.")
	mobileSyncStatus    = family("mobilesync_status", "The Status of a MobileSync Autodiscover Error answer (1: protocol error, 2: provider error); absent when none came back.")
	resultInfo          = family("result_info", "Where discovery ended: the Autodiscover URL that answered, the EWS URL, the block it came from and the server the answer named.", "endpoint", "ews_url", "ews_source", "server")
	protocolInfo        = family("protocol_info", "An IMAP, POP3 or SMTP server the answer returned (mail-only providers).", "type", "server", "port", "encryption")
	v2Success           = family("v2_success", "Whether Autodiscover v2 (autodiscover.json) returned an endpoint for the protocol.", "protocol")
	v2Info              = family("v2_info", "The endpoint Autodiscover v2 returned for the protocol.", "protocol", "url")
	addressStepSuccess  = family("address_step_success", "Per-address check (check_all_addresses) of a TLS host of the chain: tcp, tls_handshake and the certificate verdicts.", "host", "address", "step")
	addressStepDuration = family("address_step_duration_seconds", "How long a per-address check step took.", "host", "address", "step")
	addressCertNotAfter = family("address_cert_not_after_timestamp_seconds", "NotAfter of the certificate one address of a TLS host presented (check_all_addresses).", "host", "address")
	expectationSuccess  = family("expectation_success", "Whether the result met a configured expectation of the mailbox.", "expectation")
	authBackoff         = family("auth_backoff_seconds", "How long credentials stay withheld for this mailbox after the server refused them (account lockout protection); 0 when they are not.")
	failureInfo         = family("probe_failure_info", "The decisive failure of a failed probe: the step that got furthest toward settings, with its class; absent on success.", "method", "host", "step", "class")
	endpointSuccess     = family("endpoint_success", "Whether every URL of an endpoint protocol (ews, mapi, oab, activesync, owa) on a host that the Autodiscover answer returned passed its checks: connection, certificate, authentication methods and the protocol's own answer.", "protocol", "host")
	endpointDuration    = family("endpoint_duration_seconds", "How long the slowest URL of an endpoint protocol on a host took, its host's connection included.", "protocol", "host")
	soapSuccess         = family("soap_success", "Whether SOAP Autodiscover (GetUserSettings on autodiscover.svc, method soap) returned an EWS URL for the mailbox, as EWS applications ask it.")
	soapInfo            = family("soap_info", "Where SOAP Autodiscover ended: the autodiscover.svc URL that answered and the EWS URL it returned.", "endpoint", "ews_url")
	federationSuccess   = family("federation_success", "Whether the anonymous GetFederationInformation for the mailbox's domain answered with federation information and the WSSecurity endpoint Exchange Online calls answered as Exchange does (federation: true).")
	federationInfo      = family("federation_info", "The ApplicationUri GetFederationInformation returned and the first token issuer it named.", "application_uri", "token_issuer")
	scpRecords          = family("scp_records", "How many Autodiscover SCP URL objects the SCP lookup (method scp) found in Active Directory, over the directories asked; absent without the lookup.")
	scpURLSuccess       = family("scp_url_success", "Whether the Autodiscover URL an SCP names answered with settings or a redirect (1) or failed (0) when the chain tried it; absent when the chain did not get to it.", "host")
	resultAge           = family("probe_result_age_seconds", "Age of the result served: 0 for a fresh chain, more when min_interval served the last one.")
)

// family describes the metric namespace_name.
func family(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

// Collector exposes one probe result.
type Collector struct {
	result *probe.Result
	opts   Options
}

// Options describe how the result was obtained.
type Options struct {
	// Timeout is the deadline the chain ran under (0: not exported).
	Timeout time.Duration
	// ResultAge is how old the served result is (min_interval).
	ResultAge time.Duration
}

// New returns a Collector for res.
func New(res *probe.Result, opts Options) *Collector {
	return &Collector{result: res, opts: opts}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{probeSuccess, probeDuration, probeTimeout, redirectHops, stepSuccess, stepDuration, certNotAfter, chainNotAfter, responseErrorCode, mobileSyncStatus, resultInfo, protocolInfo,
		v2Success, v2Info, addressStepSuccess, addressStepDuration, addressCertNotAfter, expectationSuccess, authBackoff, resultAge, failureInfo,
		endpointSuccess, endpointDuration, soapSuccess, soapInfo, federationSuccess, federationInfo, scpRecords, scpURLSuccess} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	r := c.result
	ch <- prometheus.MustNewConstMetric(probeSuccess, prometheus.GaugeValue, boolValue(r.Success))
	ch <- prometheus.MustNewConstMetric(probeDuration, prometheus.GaugeValue, r.Duration.Seconds())
	if c.opts.Timeout > 0 {
		ch <- prometheus.MustNewConstMetric(probeTimeout, prometheus.GaugeValue, c.opts.Timeout.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(resultAge, prometheus.GaugeValue, c.opts.ResultAge.Seconds())
	ch <- prometheus.MustNewConstMetric(authBackoff, prometheus.GaugeValue, r.AuthBackoff.Seconds())
	ch <- prometheus.MustNewConstMetric(redirectHops, prometheus.GaugeValue, float64(r.RedirectHops))
	if f := r.Failure; f != nil && !r.Success {
		ch <- prometheus.MustNewConstMetric(failureInfo, prometheus.GaugeValue, 1, string(f.Method), HostLabel(f.Host), string(f.Step), string(f.Class))
	}

	for _, s := range lastPerSeries(r.Steps) {
		lv := []string{strconv.Itoa(s.Hop), string(s.Method), HostLabel(s.Host), string(s.Name)}
		ch <- prometheus.MustNewConstMetric(stepSuccess, prometheus.GaugeValue, boolValue(s.OK), lv...)
		ch <- prometheus.MustNewConstMetric(stepDuration, prometheus.GaugeValue, s.Duration.Seconds(), lv...)
	}
	for _, cert := range r.Certificates {
		ch <- prometheus.MustNewConstMetric(certNotAfter, prometheus.GaugeValue, float64(cert.NotAfter.Unix()), HostLabel(cert.Host))
		if !cert.ChainNotAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(chainNotAfter, prometheus.GaugeValue, float64(cert.ChainNotAfter.Unix()), HostLabel(cert.Host))
		}
	}
	if code, err := strconv.Atoi(strings.TrimSpace(r.ErrorCode)); err == nil {
		// MobileSync's Status and POX's ErrorCode are two vocabularies.
		desc := responseErrorCode
		if r.ErrorSchema == probe.SchemaMobileSync {
			desc = mobileSyncStatus
		}
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(code))
	}
	if r.ChainSuccess && r.Response != nil {
		ews, from := r.Response.EWSURLFrom()
		ch <- prometheus.MustNewConstMetric(resultInfo, prometheus.GaugeValue, 1,
			SanitizeURL(r.FinalURL), SanitizeURL(ews), from, HostLabel(r.Response.Server()))
		c.collectMailServers(ch)
	}
	seenProtocol := map[string]bool{}
	for _, v := range r.V2 {
		p := strings.ToLower(v.Protocol)
		if seenProtocol[p] {
			continue
		}
		seenProtocol[p] = true
		ch <- prometheus.MustNewConstMetric(v2Success, prometheus.GaugeValue, boolValue(v.OK), v.Protocol)
		if v.OK {
			ch <- prometheus.MustNewConstMetric(v2Info, prometheus.GaugeValue, 1, v.Protocol, SanitizeURL(v.URL))
		}
	}
	seenAddr := map[string]bool{}
	for _, ac := range r.AddressChecks {
		key := ac.Host + " " + ac.Address
		if seenAddr[key] {
			continue
		}
		seenAddr[key] = true
		for _, s := range ac.Steps {
			ch <- prometheus.MustNewConstMetric(addressStepSuccess, prometheus.GaugeValue, boolValue(s.OK), ac.Host, ac.Address, string(s.Name))
			ch <- prometheus.MustNewConstMetric(addressStepDuration, prometheus.GaugeValue, s.Duration.Seconds(), ac.Host, ac.Address, string(s.Name))
		}
		if ac.Cert != nil {
			ch <- prometheus.MustNewConstMetric(addressCertNotAfter, prometheus.GaugeValue, float64(ac.Cert.NotAfter.Unix()), ac.Host, ac.Address)
		}
	}
	seenEndpoint := map[string]bool{}
	for _, e := range r.EndpointSummaries() {
		lv := []string{string(e.Protocol), HostLabel(e.Host)}
		if key := strings.Join(lv, " "); !seenEndpoint[key] {
			seenEndpoint[key] = true
			ch <- prometheus.MustNewConstMetric(endpointSuccess, prometheus.GaugeValue, boolValue(e.OK), lv...)
			ch <- prometheus.MustNewConstMetric(endpointDuration, prometheus.GaugeValue, e.Duration.Seconds(), lv...)
		}
	}
	if s := r.SOAP; s != nil {
		ch <- prometheus.MustNewConstMetric(soapSuccess, prometheus.GaugeValue, boolValue(s.OK))
		if s.OK {
			ch <- prometheus.MustNewConstMetric(soapInfo, prometheus.GaugeValue, 1, SanitizeURL(s.URL), SanitizeURL(s.EWSURL))
		}
	}
	if s := r.SCP; s != nil {
		ch <- prometheus.MustNewConstMetric(scpRecords, prometheus.GaugeValue, float64(s.Records))
		seen := map[string]bool{}
		for _, u := range s.URLs {
			// One series per host: two SCPs naming one host are one
			// server, and the worst of them is its verdict.
			if !u.Tried || seen[u.Host] || len(seen) == maxSCPHostSeries {
				continue
			}
			seen[u.Host] = true
			ch <- prometheus.MustNewConstMetric(scpURLSuccess, prometheus.GaugeValue, boolValue(scpHostOK(s.URLs, u.Host)), HostLabel(u.Host))
		}
	}
	if f := r.Federation; f != nil {
		ch <- prometheus.MustNewConstMetric(federationSuccess, prometheus.GaugeValue, boolValue(f.OK))
		if f.ApplicationURI != "" {
			issuer := ""
			if len(f.TokenIssuers) > 0 {
				issuer = f.TokenIssuers[0].URI
			}
			ch <- prometheus.MustNewConstMetric(federationInfo, prometheus.GaugeValue, 1, LabelValue(f.ApplicationURI), LabelValue(issuer))
		}
	}
	for _, e := range r.Expectations {
		ch <- prometheus.MustNewConstMetric(expectationSuccess, prometheus.GaugeValue, boolValue(e.OK), e.Name)
	}
}

// lastPerSeries keeps one step per label set, the latest, so a host met
// twice in one hop and method cannot produce a duplicate series.
func lastPerSeries(steps []probe.Step) []*probe.Step {
	type key struct {
		hop          int
		method, host string
		step         probe.StepName
	}
	index := make(map[key]int, len(steps))
	out := make([]*probe.Step, 0, len(steps))
	for i := range steps {
		s := &steps[i]
		k := key{s.Hop, string(s.Method), strings.ToLower(s.Host), s.Name}
		if j, ok := index[k]; ok {
			out[j] = s
			continue
		}
		index[k] = len(out)
		out = append(out, s)
	}
	return out
}

// collectMailServers exports the IMAP, POP3 and SMTP servers of a
// mail-only provider's answer, so that a changed host shows as drift.
func (c *Collector) collectMailServers(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, p := range c.result.Response.MailProtocols() {
		lv := []string{strings.ToUpper(p.Type), HostLabel(p.Server), strconv.Itoa(p.Port), p.Encryption}
		if key := strings.Join(lv, " "); !seen[key] {
			seen[key] = true
			ch <- prometheus.MustNewConstMetric(protocolInfo, prometheus.GaugeValue, 1, lv...)
		}
	}
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// maxSCPHostSeries bounds the scp_url_success series of one probe; the
// lookup itself caps the SCPs it reads.
const maxSCPHostSeries = 32

// scpHostOK is whether every SCP URL on host that the chain tried passed.
func scpHostOK(urls []probe.SCPURL, host string) bool {
	for _, u := range urls {
		if u.Host == host && u.Tried && !u.OK {
			return false
		}
	}
	return true
}
