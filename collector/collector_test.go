package collector

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

var (
	leafExpiry  = time.Date(2027, 2, 20, 12, 0, 0, 0, time.UTC)
	chainExpiry = time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	pastExpiry  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func successResult() *probe.Result {
	return &probe.Result{
		Mailbox:      "alice@contoso.test",
		Success:      true,
		ChainSuccess: true,
		FinalURL:     "https://autodiscover-s.outlook.test:443/Autodiscover/alice@contoso.test/Autodiscover.xml?x=1",
		RedirectHops: 1,
		Duration:     1500 * time.Millisecond,
		Steps: []probe.Step{
			{Hop: 0, Method: probe.MethodRootDomain, Host: "contoso.test", Name: probe.StepDNS, OK: false, ErrorClass: "nxdomain", Duration: 2 * time.Millisecond, Detail: "contoso.test does not exist"},
			{Hop: 0, Method: probe.MethodAutodiscoverDomain, Host: "Autodiscover.Contoso.test", Name: probe.StepDNS, OK: true, Duration: 3 * time.Millisecond},
			{Hop: 0, Method: probe.MethodAutodiscoverDomain, Host: "autodiscover.contoso.test", Name: probe.StepCertValidity, OK: false, ErrorClass: "expired", Duration: 0},
			{Hop: 1, Method: probe.MethodRedirect, Host: "autodiscover-s.outlook.test", Name: probe.StepRequest, OK: true, Duration: 250 * time.Millisecond},
		},
		Certificates: []probe.CertInfo{
			{Host: "autodiscover.contoso.test", NotAfter: pastExpiry},
			{Host: "autodiscover-s.outlook.test", NotAfter: leafExpiry, ChainNotAfter: chainExpiry},
		},
		Response: &probe.Response{
			Action: probe.ActionSettings,
			Protocols: []probe.Protocol{
				{Type: "EXCH", Server: "5e1f@contoso.test", EwsUrl: "https://mail.contoso.test/EWS/Exchange.asmx"},
				{Type: "EXPR", Server: "Mail.Contoso.test", EwsUrl: "https://mail.contoso.test/EWS/Exchange.asmx"},
			},
		},
	}
}

func TestCollectorExposesTheContractFamilies(t *testing.T) {
	want := `
# HELP autodiscover_cert_chain_not_after_timestamp_seconds Earliest NotAfter of the verified certificate chain of a TLS host of the chain or an endpoint host; absent when the chain did not verify.
# TYPE autodiscover_cert_chain_not_after_timestamp_seconds gauge
autodiscover_cert_chain_not_after_timestamp_seconds{host="autodiscover-s.outlook.test"} 1.8013536e+09
# HELP autodiscover_cert_not_after_timestamp_seconds NotAfter of the leaf certificate a TLS host of the chain or an endpoint host presented, also when validation failed.
# TYPE autodiscover_cert_not_after_timestamp_seconds gauge
autodiscover_cert_not_after_timestamp_seconds{host="autodiscover-s.outlook.test"} 1.8031248e+09
autodiscover_cert_not_after_timestamp_seconds{host="autodiscover.contoso.test"} 1.7672256e+09
# HELP autodiscover_auth_backoff_seconds How long credentials stay withheld for this mailbox after the server refused them (account lockout protection); 0 when they are not.
# TYPE autodiscover_auth_backoff_seconds gauge
autodiscover_auth_backoff_seconds 0
# HELP autodiscover_probe_duration_seconds How long the whole Autodiscover chain took.
# TYPE autodiscover_probe_duration_seconds gauge
autodiscover_probe_duration_seconds 1.5
# HELP autodiscover_probe_result_age_seconds Age of the result served: 0 for a fresh chain, more when min_interval served the last one.
# TYPE autodiscover_probe_result_age_seconds gauge
autodiscover_probe_result_age_seconds 0
# HELP autodiscover_probe_success Whether the Autodiscover chain returned settings (1) or not (0).
# TYPE autodiscover_probe_success gauge
autodiscover_probe_success 1
# HELP autodiscover_probe_timeout_seconds The deadline the chain ran under.
# TYPE autodiscover_probe_timeout_seconds gauge
autodiscover_probe_timeout_seconds 14.5
# HELP autodiscover_redirect_hops Redirects followed (HTTP 3xx, redirectUrl, HTTP redirect method, redirectAddr).
# TYPE autodiscover_redirect_hops gauge
autodiscover_redirect_hops 1
# HELP autodiscover_result_info Where discovery ended: the Autodiscover URL that answered, the EWS URL, the block it came from and the server the answer named.
# TYPE autodiscover_result_info gauge
autodiscover_result_info{endpoint="https://autodiscover-s.outlook.test/Autodiscover/{mailbox}/Autodiscover.xml",ews_source="EXPR",ews_url="https://mail.contoso.test/EWS/Exchange.asmx",server="mail.contoso.test"} 1
# HELP autodiscover_step_duration_seconds How long a step of the chain took.
# TYPE autodiscover_step_duration_seconds gauge
autodiscover_step_duration_seconds{hop="0",host="autodiscover.contoso.test",method="autodiscover_domain",step="cert_validity"} 0
autodiscover_step_duration_seconds{hop="0",host="autodiscover.contoso.test",method="autodiscover_domain",step="dns"} 0.003
autodiscover_step_duration_seconds{hop="0",host="contoso.test",method="root_domain",step="dns"} 0.002
autodiscover_step_duration_seconds{hop="1",host="autodiscover-s.outlook.test",method="redirect",step="request"} 0.25
# HELP autodiscover_step_success Whether a step of the chain passed (1) or failed (0); absent when the step was not reached.
# TYPE autodiscover_step_success gauge
autodiscover_step_success{hop="0",host="autodiscover.contoso.test",method="autodiscover_domain",step="cert_validity"} 0
autodiscover_step_success{hop="0",host="autodiscover.contoso.test",method="autodiscover_domain",step="dns"} 1
autodiscover_step_success{hop="0",host="contoso.test",method="root_domain",step="dns"} 0
autodiscover_step_success{hop="1",host="autodiscover-s.outlook.test",method="redirect",step="request"} 1
`
	c := New(successResult(), Options{Timeout: 14500 * time.Millisecond})
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

func TestFailedResultHasNoInfoAndExposesTheErrorCode(t *testing.T) {
	res := &probe.Result{
		Success:   false,
		ErrorCode: "500",
		Steps:     []probe.Step{{Hop: 0, Method: probe.MethodAutodiscoverDomain, Host: "autodiscover.contoso.test", Name: probe.StepParse, ErrorClass: "autodiscover_error"}},
		Response:  &probe.Response{Error: &probe.ResponseError{Code: "500"}},
	}
	c := New(res, Options{})
	if n := testutil.CollectAndCount(c, "autodiscover_result_info"); n != 0 {
		t.Errorf("result_info has %d series on a failed probe", n)
	}
	if n := testutil.CollectAndCount(c, "autodiscover_probe_timeout_seconds"); n != 0 {
		t.Errorf("timeout exported without a timeout")
	}
	want := "# HELP autodiscover_response_error_code The ErrorCode of an Autodiscover Error answer (e.g. 500: address not found); absent when none came back.\n# TYPE autodiscover_response_error_code gauge\nautodiscover_response_error_code 500\n"
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "autodiscover_response_error_code"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(New(successResult(), Options{}), "autodiscover_response_error_code"); n != 0 {
		t.Errorf("error code exported although no error came back")
	}
}

func TestRepeatedStepKeepsOneSeries(t *testing.T) {
	res := &probe.Result{Steps: []probe.Step{
		{Hop: 0, Method: probe.MethodSRV, Host: "mail.contoso.test", Name: probe.StepDNS, OK: false},
		{Hop: 0, Method: probe.MethodSRV, Host: "MAIL.contoso.test", Name: probe.StepDNS, OK: true},
	}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New(res, Options{}))
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
	want := "# HELP autodiscover_step_success Whether a step of the chain passed (1) or failed (0); absent when the step was not reached.\n# TYPE autodiscover_step_success gauge\nautodiscover_step_success{hop=\"0\",host=\"mail.contoso.test\",method=\"srv\",step=\"dns\"} 1\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "autodiscover_step_success"); err != nil {
		t.Error(err)
	}
}

func TestNoLabelCarriesAnAddressOrErrorText(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New(successResult(), Options{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				v := lp.GetValue()
				if strings.Contains(v, "@") || strings.Contains(v, "does not exist") || strings.Contains(v, "?") {
					t.Errorf("%s{%s=%q}: label value carries an address, a query or error text", mf.GetName(), lp.GetName(), v)
				}
			}
		}
	}
}

func TestSanitizeURL(t *testing.T) {
	cases := map[string]string{
		"https://Pod51049.Outlook.com/Autodiscover/Autodiscover.xml":           "https://pod51049.outlook.com/Autodiscover/Autodiscover.xml",
		"https://autodiscover-s.outlook.com/Autodiscover/bob%40x.com/a.xml":    "https://autodiscover-s.outlook.com/Autodiscover/{mailbox}/a.xml",
		"https://u:p@mail.contoso.com/mapi/emsmdb/?MailboxId=guid@contoso.com": "https://mail.contoso.com/mapi/emsmdb/",
		"": "",
	}
	for in, want := range cases {
		if got := SanitizeURL(in); got != want {
			t.Errorf("SanitizeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIssue5FamiliesForV2AddressesAndExpectations(t *testing.T) {
	res := successResult()
	res.V2 = []probe.V2Result{
		{Protocol: "Ews", OK: true, URL: "https://outlook.office365.com/EWS/Exchange.asmx"},
		{Protocol: "ActiveSync", OK: false, ErrorCode: "ProtocolNotSupported"},
	}
	res.AddressChecks = []probe.AddressCheck{
		{Host: "autodiscover.contoso.test", Address: "192.0.2.10", Steps: []probe.Step{{Name: probe.StepTCP, OK: false, ErrorClass: "refused"}}},
		{Host: "autodiscover.contoso.test", Address: "192.0.2.11", Steps: []probe.Step{{Name: probe.StepTCP, OK: true}, {Name: probe.StepCertValidity, OK: true}}, Cert: &probe.CertInfo{NotAfter: leafExpiry}},
	}
	res.Expectations = []probe.ExpectationResult{{Name: "endpoint_host", OK: true}, {Name: "cert_min_days", OK: false}}
	res.Success = false
	want := `
# HELP autodiscover_address_cert_not_after_timestamp_seconds NotAfter of the certificate one address of a TLS host presented (check_all_addresses).
# TYPE autodiscover_address_cert_not_after_timestamp_seconds gauge
autodiscover_address_cert_not_after_timestamp_seconds{address="192.0.2.11",host="autodiscover.contoso.test"} 1.8031248e+09
# HELP autodiscover_address_step_success Per-address check (check_all_addresses) of a TLS host of the chain: tcp, tls_handshake and the certificate verdicts.
# TYPE autodiscover_address_step_success gauge
autodiscover_address_step_success{address="192.0.2.10",host="autodiscover.contoso.test",step="tcp"} 0
autodiscover_address_step_success{address="192.0.2.11",host="autodiscover.contoso.test",step="cert_validity"} 1
autodiscover_address_step_success{address="192.0.2.11",host="autodiscover.contoso.test",step="tcp"} 1
# HELP autodiscover_expectation_success Whether the result met a configured expectation of the mailbox.
# TYPE autodiscover_expectation_success gauge
autodiscover_expectation_success{expectation="cert_min_days"} 0
autodiscover_expectation_success{expectation="endpoint_host"} 1
# HELP autodiscover_probe_success Whether the Autodiscover chain returned settings (1) or not (0).
# TYPE autodiscover_probe_success gauge
autodiscover_probe_success 0
# HELP autodiscover_v2_info The endpoint Autodiscover v2 returned for the protocol.
# TYPE autodiscover_v2_info gauge
autodiscover_v2_info{protocol="Ews",url="https://outlook.office365.com/EWS/Exchange.asmx"} 1
# HELP autodiscover_v2_success Whether Autodiscover v2 (autodiscover.json) returned an endpoint for the protocol.
# TYPE autodiscover_v2_success gauge
autodiscover_v2_success{protocol="ActiveSync"} 0
autodiscover_v2_success{protocol="Ews"} 1
`
	c := New(res, Options{})
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "autodiscover_address_cert_not_after_timestamp_seconds", "autodiscover_address_step_success", "autodiscover_expectation_success", "autodiscover_probe_success", "autodiscover_v2_info", "autodiscover_v2_success"); err != nil {
		t.Error(err)
	}
	// The chain itself worked: where it ended is still exported.
	if n := testutil.CollectAndCount(c, "autodiscover_result_info"); n != 1 {
		t.Errorf("result_info series %d, want 1 when only an expectation failed", n)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// The answer's mail-only servers, MobileSync's Status and the block the
// EWS URL came from are exported, each in its own family.
func TestMailServersMobileSyncStatusAndEWSSource(t *testing.T) {
	res := successResult()
	res.Response.Protocols = []probe.Protocol{
		{Type: "IMAP", Server: "IMAP.mail.test", Port: 993, Encryption: "ssl"},
		{Type: "SMTP", Server: "smtp.mail.test", Port: 587, Encryption: "tls"},
		{Type: "WEB", External: &probe.WebScope{Protocols: []probe.Protocol{{Type: "EXPR", ASUrl: "https://mail.mail.test/EWS/Exchange.asmx"}}}},
	}
	want := `
# HELP autodiscover_protocol_info An IMAP, POP3 or SMTP server the answer returned (mail-only providers).
# TYPE autodiscover_protocol_info gauge
autodiscover_protocol_info{encryption="ssl",port="993",server="imap.mail.test",type="IMAP"} 1
autodiscover_protocol_info{encryption="tls",port="587",server="smtp.mail.test",type="SMTP"} 1
`
	if err := testutil.CollectAndCompare(New(res, Options{}), strings.NewReader(want), "autodiscover_protocol_info"); err != nil {
		t.Error(err)
	}
	if got := gatherLabels(t, New(res, Options{}), "autodiscover_result_info"); len(got) != 1 || got[0]["ews_source"] != probe.EWSFromWEBExternal {
		t.Errorf("result_info %v", got)
	}
	failed := &probe.Result{ErrorCode: "2", ErrorSchema: probe.SchemaMobileSync}
	if n := testutil.CollectAndCount(New(failed, Options{}), "autodiscover_mobilesync_status"); n != 1 {
		t.Errorf("mobilesync_status series %d", n)
	}
	if n := testutil.CollectAndCount(New(failed, Options{}), "autodiscover_response_error_code"); n != 0 {
		t.Errorf("a MobileSync Status reached response_error_code")
	}
}

func TestFailureInfoNamesTheDecisiveStepOfAFailedProbeOnly(t *testing.T) {
	failed := &probe.Result{
		Reason: "the certificate of autodiscover.contoso.test expired on 2026-01-01 (autodiscover host)",
		Steps:  []probe.Step{{Hop: 0, Method: probe.MethodAutodiscoverDomain, Host: "Autodiscover.Contoso.test.", Name: probe.StepCertValidity, ErrorClass: probe.ClassExpired}},
		Failure: &probe.Failure{Method: probe.MethodAutodiscoverDomain, Host: "Autodiscover.Contoso.test.", Step: probe.StepCertValidity, Class: probe.ClassExpired,
			Sentence: "the certificate of autodiscover.contoso.test expired on 2026-01-01 (autodiscover host)"},
	}
	want := `# HELP autodiscover_probe_failure_info The decisive failure of a failed probe: the step that got furthest toward settings, with its class; absent on success.
# TYPE autodiscover_probe_failure_info gauge
autodiscover_probe_failure_info{class="expired",host="autodiscover.contoso.test",method="autodiscover_domain",step="cert_validity"} 1
`
	if err := testutil.CollectAndCompare(New(failed, Options{}), strings.NewReader(want), "autodiscover_probe_failure_info"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(New(successResult(), Options{}), "autodiscover_probe_failure_info"); n != 0 {
		t.Errorf("failure_info has %d series on a successful probe", n)
	}
}

// Endpoint checks fold into one series per protocol and host: a protocol
// fails on a host when any of its URLs there failed, and the slowest URL
// is its duration. The endpoint host's certificate joins the certificate
// families, so the certificate alerts cover it.
func TestEndpointFamiliesFoldURLsPerProtocolAndHost(t *testing.T) {
	res := successResult()
	res.Endpoints = []probe.EndpointCheck{
		{Protocol: probe.EndpointEWS, Host: "mail.contoso.test", OK: true, Duration: 40 * time.Millisecond},
		{Protocol: probe.EndpointMAPI, Host: "mail.contoso.test", OK: true, Duration: 30 * time.Millisecond},
		{Protocol: probe.EndpointMAPI, Host: "mail.contoso.test", OK: false, Duration: 50 * time.Millisecond},
		{Protocol: probe.EndpointMAPI, Host: "Internal.Mail.Contoso.test", OK: true, Duration: 20 * time.Millisecond},
	}
	res.Certificates = append(res.Certificates, probe.CertInfo{Host: "mail.contoso.test", NotAfter: leafExpiry, ChainNotAfter: chainExpiry, Endpoint: true})
	want := `
# HELP autodiscover_endpoint_duration_seconds How long the slowest URL of an endpoint protocol on a host took, its host's connection included.
# TYPE autodiscover_endpoint_duration_seconds gauge
autodiscover_endpoint_duration_seconds{host="internal.mail.contoso.test",protocol="mapi"} 0.02
autodiscover_endpoint_duration_seconds{host="mail.contoso.test",protocol="ews"} 0.04
autodiscover_endpoint_duration_seconds{host="mail.contoso.test",protocol="mapi"} 0.05
# HELP autodiscover_endpoint_success Whether every URL of an endpoint protocol (ews, mapi, oab, activesync, owa) on a host that the Autodiscover answer returned passed its checks: connection, certificate, authentication methods and the protocol's own answer.
# TYPE autodiscover_endpoint_success gauge
autodiscover_endpoint_success{host="internal.mail.contoso.test",protocol="mapi"} 1
autodiscover_endpoint_success{host="mail.contoso.test",protocol="ews"} 1
autodiscover_endpoint_success{host="mail.contoso.test",protocol="mapi"} 0
`
	c := New(res, Options{})
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "autodiscover_endpoint_success", "autodiscover_endpoint_duration_seconds"); err != nil {
		t.Error(err)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP autodiscover_cert_chain_not_after_timestamp_seconds Earliest NotAfter of the verified certificate chain of a TLS host of the chain or an endpoint host; absent when the chain did not verify.
# TYPE autodiscover_cert_chain_not_after_timestamp_seconds gauge
autodiscover_cert_chain_not_after_timestamp_seconds{host="autodiscover-s.outlook.test"} 1.8013536e+09
autodiscover_cert_chain_not_after_timestamp_seconds{host="mail.contoso.test"} 1.8013536e+09
`), "autodiscover_cert_chain_not_after_timestamp_seconds"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

func TestSOAPAndFederationFamiliesAppearOnlyWhenTheyRan(t *testing.T) {
	res := successResult()
	c := New(res, Options{})
	if n := testutil.CollectAndCount(c, "autodiscover_soap_success", "autodiscover_soap_info", "autodiscover_federation_success", "autodiscover_federation_info"); n != 0 {
		t.Errorf("without soap and federation, %d of their series were exposed", n)
	}
	res.SOAP = &probe.SOAPResult{OK: true, URL: "https://autodiscover.contoso.test/autodiscover/autodiscover.svc", EWSURL: "https://mail.contoso.test/EWS/Exchange.asmx?token=secret"}
	res.Federation = &probe.FederationResult{OK: false, ApplicationURI: "FYDIBOHF25SPDLT.contoso.test",
		TokenIssuers: []probe.TokenIssuer{{URI: "urn:federation:MicrosoftOnline", Endpoint: "https://login.test/extSTS.srf"}}}
	want := `
# HELP autodiscover_federation_info The ApplicationUri GetFederationInformation returned and the first token issuer it named.
# TYPE autodiscover_federation_info gauge
autodiscover_federation_info{application_uri="FYDIBOHF25SPDLT.contoso.test",token_issuer="urn:federation:MicrosoftOnline"} 1
# HELP autodiscover_federation_success Whether the anonymous GetFederationInformation for the mailbox's domain answered with federation information and the WSSecurity endpoint Exchange Online calls answered as Exchange does (federation: true).
# TYPE autodiscover_federation_success gauge
autodiscover_federation_success 0
# HELP autodiscover_soap_info Where SOAP Autodiscover ended: the autodiscover.svc URL that answered and the EWS URL it returned.
# TYPE autodiscover_soap_info gauge
autodiscover_soap_info{endpoint="https://autodiscover.contoso.test/autodiscover/autodiscover.svc",ews_url="https://mail.contoso.test/EWS/Exchange.asmx"} 1
# HELP autodiscover_soap_success Whether SOAP Autodiscover (GetUserSettings on autodiscover.svc, method soap) returned an EWS URL for the mailbox, as EWS applications ask it.
# TYPE autodiscover_soap_success gauge
autodiscover_soap_success 1
`
	c = New(res, Options{})
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "autodiscover_soap_success", "autodiscover_soap_info", "autodiscover_federation_success", "autodiscover_federation_info"); err != nil {
		t.Error(err)
	}
	res.SOAP.OK = false
	if n := testutil.CollectAndCount(New(res, Options{}), "autodiscover_soap_info"); n != 0 {
		t.Errorf("a failed SOAP discovery still exposes %d soap_info series", n)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

func TestSCPFamiliesFoldURLsPerHostAndLeaveOutUntriedOnes(t *testing.T) {
	res := successResult()
	if n := testutil.CollectAndCount(New(res, Options{}), "autodiscover_scp_records", "autodiscover_scp_url_success"); n != 0 {
		t.Errorf("without scp, %d of its series were exposed", n)
	}
	res.SCP = &probe.SCPResult{OK: true, Records: 4, URLs: []probe.SCPURL{
		{URL: "https://EX2010.corp.contoso.test/autodiscover/autodiscover.xml", Host: "ex2010.corp.contoso.test", Tried: true},
		{URL: "https://mail.corp.contoso.test/Autodiscover/Autodiscover.xml", Host: "mail.corp.contoso.test", Tried: true, OK: true},
		// A second SCP on the same host that failed: the host's verdict is
		// the worst of its URLs.
		{URL: "https://mail.corp.contoso.test/autodiscover/old/autodiscover.xml", Host: "mail.corp.contoso.test", Tried: true},
		{URL: "https://branch.corp.contoso.test/autodiscover/autodiscover.xml", Host: "branch.corp.contoso.test"},
	}}
	want := `
# HELP autodiscover_scp_records How many Autodiscover SCP URL objects the SCP lookup (method scp) found in Active Directory, over the directories asked; absent without the lookup.
# TYPE autodiscover_scp_records gauge
autodiscover_scp_records 4
# HELP autodiscover_scp_url_success Whether the Autodiscover URL an SCP names answered with settings or a redirect (1) or failed (0) when the chain tried it; absent when the chain did not get to it.
# TYPE autodiscover_scp_url_success gauge
autodiscover_scp_url_success{host="ex2010.corp.contoso.test"} 0
autodiscover_scp_url_success{host="mail.corp.contoso.test"} 0
`
	c := New(res, Options{})
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "autodiscover_scp_records", "autodiscover_scp_url_success"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}
