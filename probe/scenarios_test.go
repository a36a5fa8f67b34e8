package probe_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// stepLine is the part of a step a sequence assertion compares.
func stepLine(s probe.Step) string {
	ok := "ok"
	if !s.OK {
		ok = "FAIL " + string(s.ErrorClass)
	}
	return fmt.Sprintf("%d %s %s %s %s", s.Hop, s.Method, s.Host, s.Name, ok)
}

func assertSequence(t *testing.T, res *probe.Result, want []string) {
	t.Helper()
	var got []string
	for _, s := range res.Steps {
		got = append(got, stepLine(s))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("step sequence differs.\ngot:\n  %s\nwant:\n  %s\nlog:\n%s", strings.Join(got, "\n  "), strings.Join(want, "\n  "), res.Log())
	}
}

// tlsSteps lists the connection steps of a healthy HTTPS candidate.
func tlsSteps(prefix string) []string {
	var out []string
	for _, s := range []string{"dns", "tcp", "tls_handshake", "cert_name", "cert_trust", "cert_validity", "client_cert"} {
		out = append(out, prefix+" "+s+" ok")
	}
	return out
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func findStep(res *probe.Result, hop int, host string, name probe.StepName) (probe.Step, bool) {
	for _, s := range res.Steps {
		if s.Hop == hop && s.Host == host && s.Name == name {
			return s, true
		}
	}
	return probe.Step{}, false
}

// assertCredentialsOnlyTo checks, from what the servers recorded, that an
// Authorization header reached no server outside allowed and never crossed
// plain HTTP.
func assertCredentialsOnlyTo(t *testing.T, e *lab.Estate, allowed ...string) {
	t.Helper()
	for _, r := range e.Requests() {
		if r.Authorization == "" {
			continue
		}
		if r.Scheme != "https" {
			t.Errorf("credentials reached %s over plain HTTP", r.Server)
		}
		ok := false
		for _, a := range allowed {
			if r.Server == a {
				ok = true
			}
		}
		if !ok {
			t.Errorf("credentials reached %s, which is not one of %v", r.Server, allowed)
		}
	}
}

func TestMicrosoft365FlowFollowsHTTPRedirectAndRedirectURL(t *testing.T) {
	e := newEstate(t)
	mb, err := e.AddMicrosoft365("fabrikam.test", "bob", "pa55word")
	if err != nil {
		t.Fatal(err)
	}
	res := mustRun(t, mb.Address, settingsFor(e, mb))
	if !res.Success || res.RedirectHops != 2 {
		t.Fatalf("success=%v hops=%d, want true and 2; reason %q\n%s", res.Success, res.RedirectHops, res.Reason, res.Log())
	}
	ad := "0 autodiscover_domain autodiscover.fabrikam.test"
	front := "1 redirect " + lab.CloudFrontDoor
	pod := "2 redirect " + lab.CloudPod
	hr := "0 http_redirect autodiscover.fabrikam.test"
	assertSequence(t, res, concat(
		[]string{"0 root_domain fabrikam.test dns FAIL nxdomain"},
		[]string{ad + " dns ok", ad + " tcp ok", ad + " tls_handshake ok", ad + " cert_name FAIL name_mismatch", ad + " cert_trust ok", ad + " cert_validity ok", ad + " client_cert ok"},
		[]string{hr + " dns ok", hr + " tcp ok", hr + " http_get ok", hr + " redirect ok"},
		tlsSteps(front), []string{front + " credentials ok", front + " request ok", front + " parse ok", front + " redirect ok"},
		tlsSteps(pod), []string{pod + " credentials ok", pod + " request ok", pod + " parse ok"},
	))
	if want := "https://" + lab.CloudPod + "/Autodiscover/Autodiscover.xml"; res.FinalURL != want {
		t.Errorf("final URL %q, want %q", res.FinalURL, want)
	}
	if got := res.Response.EWSURL(); got != "https://outlook.outlook.test/EWS/Exchange.asmx" {
		t.Errorf("EWS URL %q", got)
	}
	dns, _ := findStep(res, 0, "autodiscover.fabrikam.test", probe.StepDNS)
	if !strings.Contains(dns.Detail, "CNAME "+lab.CloudCNAMEHost) {
		t.Errorf("DNS step does not show the CNAME chain: %q", dns.Detail)
	}
	assertCredentialsOnlyTo(t, e, lab.CloudFrontDoor, lab.CloudPod)
}

func TestHybridFlowMatchesTheWalkThrough(t *testing.T) {
	e := newEstate(t)
	mb, err := e.AddHybrid("contoso.test", "alice", "Secr3t!")
	if err != nil {
		t.Fatal(err)
	}
	res := mustRun(t, mb.Address, settingsFor(e, mb))
	if !res.Success || res.RedirectHops != 3 {
		t.Fatalf("success=%v hops=%d, want true and 3; reason %q\n%s", res.Success, res.RedirectHops, res.Reason, res.Log())
	}
	root := "0 root_domain contoso.test"
	onprem := "0 autodiscover_domain autodiscover.contoso.test"
	tenantAD := "1 autodiscover_domain autodiscover.contoso.mail.onmicrosoft.test"
	hr := "1 http_redirect autodiscover.contoso.mail.onmicrosoft.test"
	front := "2 redirect " + lab.CloudFrontDoor
	pod := "3 redirect " + lab.CloudPod
	assertSequence(t, res, concat(
		[]string{root + " dns ok", root + " tcp ok", root + " tls_handshake ok", root + " cert_name FAIL name_mismatch", root + " cert_trust ok", root + " cert_validity ok", root + " client_cert ok"},
		tlsSteps(onprem), []string{onprem + " credentials ok", onprem + " request ok", onprem + " parse ok", onprem + " redirect ok"},
		[]string{"1 root_domain contoso.mail.onmicrosoft.test dns FAIL nxdomain"},
		[]string{tenantAD + " dns ok", tenantAD + " tcp FAIL refused"},
		[]string{hr + " dns ok", hr + " tcp ok", hr + " http_get ok", hr + " redirect ok"},
		tlsSteps(front), []string{front + " credentials ok", front + " request ok", front + " parse ok", front + " redirect ok"},
		tlsSteps(pod), []string{pod + " credentials ok", pod + " request ok", pod + " parse ok"},
	))
	// The domain root's web site got nothing: its certificate failed.
	if n := len(e.RequestsTo("contoso.test")); n != 0 {
		t.Errorf("the domain root with the wrong certificate received %d requests", n)
	}
	assertCredentialsOnlyTo(t, e, "autodiscover.contoso.test", lab.CloudFrontDoor, lab.CloudPod)
	// Every TLS host reached has its certificate facts, in order reached.
	var hosts []string
	for _, c := range res.Certificates {
		hosts = append(hosts, c.Host)
		if c.NotAfter.IsZero() {
			t.Errorf("%s: no NotAfter", c.Host)
		}
	}
	if got, want := strings.Join(hosts, ","), "contoso.test,autodiscover.contoso.test,"+lab.CloudFrontDoor+","+lab.CloudPod; got != want {
		t.Errorf("certificates for %s, want %s", got, want)
	}
	if root := res.Certificates[0]; root.NameOK || root.ChainNotAfter.IsZero() {
		// The root's certificate is trusted (chain verified) but names another host.
		t.Errorf("domain root certificate: NameOK=%v ChainNotAfter=%v", res.Certificates[0].NameOK, res.Certificates[0].ChainNotAfter)
	}
}

func TestHybridStepLogReadsLikeConnectivityAnalyzer(t *testing.T) {
	e := newEstate(t)
	mb, err := e.AddHybrid("contoso.test", "alice", "Secr3t!")
	if err != nil {
		t.Fatal(err)
	}
	log := mustRun(t, mb.Address, settingsFor(e, mb)).Log()
	for _, want := range []string{
		"Testing Autodiscover for alice@contoso.test.",
		"Attempting to test potential Autodiscover URL https://contoso.test/autodiscover/autodiscover.xml",
		"Validating the certificate name … FAILED (name_mismatch): host name contoso.test doesn't match any name on the certificate (www.webhost.test, webhost.test)",
		"Attempting to resolve the host name autodiscover.contoso.test in DNS … OK: resolved 127.0.0.",
		"Checking the IIS configuration for client certificate authentication … OK: client certificate authentication wasn't detected",
		"Providing user credentials … OK: Basic credentials of alice@contoso.test sent",
		"Analyzing the Autodiscover response … OK: redirectAddr alice@contoso.mail.onmicrosoft.test",
		"Hop 1: discovering alice@contoso.mail.onmicrosoft.test",
		"Attempting to resolve the host name contoso.mail.onmicrosoft.test in DNS … FAILED (nxdomain)",
		"Testing TCP port 443 on host autodiscover.contoso.mail.onmicrosoft.test to ensure it's listening and open … FAILED (refused)",
		"Attempting to contact the Autodiscover service using the HTTP redirect method",
		"Testing TCP port 80 on host autodiscover.contoso.mail.onmicrosoft.test to ensure it's listening and open … OK",
		"Analyzing the Autodiscover response … OK: redirectUrl https://pod51049.outlook.test/Autodiscover/Autodiscover.xml",
		"Autodiscover settings were obtained from https://pod51049.outlook.test/Autodiscover/Autodiscover.xml after 3 redirect hop(s)",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("step log lacks %q\n%s", want, log)
		}
	}
	if strings.Contains(log, "Secr3t!") {
		t.Error("the step log contains the password")
	}
}

func TestSRVOnlyDomainUsesPort443RecordsLowestPriorityFirst(t *testing.T) {
	e := newEstate(t)
	mb, err := e.AddSRVOnly("srvonly.test", "carol", "pw")
	if err != nil {
		t.Fatal(err)
	}
	// A lower-priority (higher value) second target must not be needed.
	e.AddSRV("_autodiscover._tcp.srvonly.test", 20, 0, 443, "backup.srvonly.test")
	res := mustRun(t, mb.Address, settingsFor(e, mb))
	if !res.Success {
		t.Fatalf("SRV-only domain failed: %s\n%s", res.Reason, res.Log())
	}
	srv, ok := findStep(res, 0, "_autodiscover._tcp.srvonly.test", probe.StepSRVLookup)
	if !ok || !srv.OK {
		t.Fatalf("no successful srv_lookup step\n%s", res.Log())
	}
	if !strings.Contains(srv.Detail, "legacy.srvonly.test:8443 (priority 0, weight 0) skipped: only port 443 is used") {
		t.Errorf("the non-443 record is not reported as skipped: %q", srv.Detail)
	}
	if strings.Index(srv.Detail, "mail.srvonly.test") > strings.Index(srv.Detail, "backup.srvonly.test") {
		t.Errorf("SRV records not in priority order: %q", srv.Detail)
	}
	last := res.Steps[len(res.Steps)-1]
	if last.Method != probe.MethodSRV || last.Host != "mail.srvonly.test" || last.Name != probe.StepParse {
		t.Errorf("last step %s, want the parse step of the SRV target", stepLine(last))
	}
	if _, tried := findStep(res, 0, "backup.srvonly.test", probe.StepDNS); tried {
		t.Error("the lower-priority SRV target was tried although the first one answered")
	}
	for _, m := range []probe.Method{probe.MethodRootDomain, probe.MethodAutodiscoverDomain, probe.MethodHTTPRedirect} {
		found := false
		for _, s := range res.Steps {
			if s.Method == m && s.Name == probe.StepDNS && !s.OK && s.ErrorClass == "nxdomain" {
				found = true
			}
		}
		if !found {
			t.Errorf("method %s did not fail on DNS first", m)
		}
	}
}

func TestCertificateFailuresAreSeparateVerdictsAndStopTheCandidate(t *testing.T) {
	past := time.Now().Add(-48 * time.Hour)
	cases := []struct {
		name      string
		opts      []lab.HostOption
		failStep  probe.StepName
		class     probe.ErrorClass
		passSteps []probe.StepName
		// chainVerified: the chain itself is trusted and in date, so its
		// earliest expiry is known (a name mismatch does not break a chain).
		chainVerified bool
	}{
		{
			name:      "expired",
			opts:      []lab.HostOption{lab.WithCert(lab.CertSpec{Names: []string{"autodiscover.certs.test"}, NotBefore: past.Add(-24 * time.Hour), NotAfter: past})},
			failStep:  probe.StepCertValidity,
			class:     "expired",
			passSteps: []probe.StepName{probe.StepCertName, probe.StepCertTrust},
		},
		{
			name:      "untrusted issuer",
			opts:      []lab.HostOption{lab.WithUntrustedCert()},
			failStep:  probe.StepCertTrust,
			class:     "untrusted",
			passSteps: []probe.StepName{probe.StepCertName, probe.StepCertValidity},
		},
		{
			name:          "wrong name",
			opts:          []lab.HostOption{lab.WithCert(lab.CertSpec{Names: []string{"mail.other.test"}})},
			failStep:      probe.StepCertName,
			class:         "name_mismatch",
			passSteps:     []probe.StepName{probe.StepCertTrust, probe.StepCertValidity},
			chainVerified: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			mb, _, err := e.AddOnPremises("certs.test", "dave", "pw", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			s := settingsFor(e, mb)
			s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
			res := mustRun(t, mb.Address, s)
			if res.Success {
				t.Fatal("the chain succeeded through a bad certificate")
			}
			st, ok := findStep(res, 0, "autodiscover.certs.test", tc.failStep)
			if !ok || st.OK || st.ErrorClass != tc.class {
				t.Fatalf("step %s: %+v, want failed with %s\n%s", tc.failStep, st, tc.class, res.Log())
			}
			for _, name := range tc.passSteps {
				if st, _ := findStep(res, 0, "autodiscover.certs.test", name); !st.OK {
					t.Errorf("step %s failed too (%s): verdicts are not independent", name, st.ErrorClass)
				}
			}
			if _, posted := findStep(res, 0, "autodiscover.certs.test", probe.StepRequest); posted {
				t.Error("a request was sent to a host whose certificate failed")
			}
			if n := len(e.Requests()); n != 0 {
				t.Errorf("the server received %d requests", n)
			}
			if len(res.Certificates) != 1 || res.Certificates[0].NotAfter.IsZero() {
				t.Fatalf("certificate facts missing: %+v", res.Certificates)
			}
			if tc.class == "expired" && !res.Certificates[0].NotAfter.Before(time.Now()) {
				t.Errorf("expired certificate reported NotAfter %v", res.Certificates[0].NotAfter)
			}
			if got := !res.Certificates[0].ChainNotAfter.IsZero(); got != tc.chainVerified {
				t.Errorf("chain expiry reported=%v, want %v", got, tc.chainVerified)
			}
		})
	}
}

func TestInsecureSkipVerifyGoesOnButNeverSendsCredentials(t *testing.T) {
	e := newEstate(t)
	mb, _, err := e.AddOnPremises("insecure.test", "erin", "pw", lab.WithUntrustedCert())
	if err != nil {
		t.Fatal(err)
	}
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	s.InsecureSkipVerify = true
	res := mustRun(t, mb.Address, s)
	cred, ok := findStep(res, 0, "autodiscover.insecure.test", probe.StepCredentials)
	if !ok || cred.OK || cred.ErrorClass != "withheld_certificate" {
		t.Fatalf("credentials step %+v, want withheld_certificate\n%s", cred, res.Log())
	}
	reqs := e.RequestsTo("autodiscover.insecure.test")
	if len(reqs) != 1 || reqs[0].Authorization != "" {
		t.Errorf("server saw %+v, want one request without Authorization", reqs)
	}
	if res.Success {
		t.Error("success without credentials")
	}
}

func TestRedirectLoopsEndTheChain(t *testing.T) {
	t.Run("URL ping-pong", func(t *testing.T) {
		e := newEstate(t)
		a := &lab.Autodiscover{Users: map[string]lab.Reply{"x@ping.test": {RedirectURL: "https://autodiscover.pong.test/autodiscover/autodiscover.xml"}}}
		// Same URL as the first one, spelled with another case and :443.
		b := &lab.Autodiscover{Users: map[string]lab.Reply{"x@ping.test": {RedirectURL: "https://AUTODISCOVER.ping.test:443/Autodiscover/Autodiscover.xml"}}}
		must(t, e.HTTPS("autodiscover.ping.test", a))
		must(t, e.HTTPS("autodiscover.pong.test", b))
		s := settingsFor(e, lab.Mailbox{})
		res := mustRun(t, "x@ping.test", s)
		last := res.Steps[len(res.Steps)-1]
		if res.Success || last.Name != probe.StepRedirect || last.ErrorClass != "loop" {
			t.Fatalf("last step %s, want a redirect loop\n%s", stepLine(last), res.Log())
		}
		if !strings.Contains(res.Reason, "loop") {
			t.Errorf("reason %q does not say loop", res.Reason)
		}
		for _, st := range res.Steps {
			if st.Method == probe.MethodHTTPRedirect || st.Method == probe.MethodSRV {
				t.Fatalf("discovery went on after the loop: %s", stepLine(st))
			}
		}
	})
	t.Run("address ping-pong", func(t *testing.T) {
		e := newEstate(t)
		a := &lab.Autodiscover{Users: map[string]lab.Reply{"x@ping.test": {RedirectAddr: "x@pong.test"}}}
		b := &lab.Autodiscover{Users: map[string]lab.Reply{"x@pong.test": {RedirectAddr: "X@Ping.test"}}}
		must(t, e.HTTPS("autodiscover.ping.test", a))
		must(t, e.HTTPS("autodiscover.pong.test", b))
		res := mustRun(t, "x@ping.test", settingsFor(e, lab.Mailbox{}))
		last := res.Steps[len(res.Steps)-1]
		if res.Success || last.ErrorClass != "loop" || res.RedirectHops != 1 {
			t.Fatalf("last step %s, hops %d; want a loop after 1 hop\n%s", stepLine(last), res.RedirectHops, res.Log())
		}
	})
}

func TestRedirectBudgetStopsAnElevenHopChain(t *testing.T) {
	build := func(t *testing.T) *lab.Estate {
		e := newEstate(t)
		for i := 0; i <= 11; i++ {
			host := fmt.Sprintf("h%d.chain.test", i)
			if i == 0 {
				host = "autodiscover.chain.test"
			}
			reply := lab.Reply{RedirectURL: fmt.Sprintf("https://h%d.chain.test/autodiscover/autodiscover.xml", i+1)}
			if i == 11 {
				reply = lab.Reply{Settings: &lab.Settings{Server: "mail.chain.test"}}
			}
			must(t, e.HTTPS(host, &lab.Autodiscover{Users: map[string]lab.Reply{"u@chain.test": reply}}))
		}
		return e
	}
	t.Run("default budget of 10", func(t *testing.T) {
		e := build(t)
		s := settingsFor(e, lab.Mailbox{})
		s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
		res := mustRun(t, "u@chain.test", s)
		last := res.Steps[len(res.Steps)-1]
		if res.Success || res.RedirectHops != 10 || last.ErrorClass != "too_many_redirects" {
			t.Fatalf("success=%v hops=%d last=%s; want failure at the 11th hop\n%s", res.Success, res.RedirectHops, stepLine(last), res.Log())
		}
		if n := len(e.RequestsTo("h11.chain.test")); n != 0 {
			t.Errorf("the 11th hop's server received %d requests", n)
		}
	})
	t.Run("budget of 11 reaches the end", func(t *testing.T) {
		e := build(t)
		s := settingsFor(e, lab.Mailbox{})
		s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
		s.MaxRedirects = 11
		res := mustRun(t, "u@chain.test", s)
		if !res.Success || res.RedirectHops != 11 {
			t.Fatalf("success=%v hops=%d, want success after 11 hops\n%s", res.Success, res.RedirectHops, res.Log())
		}
	})
}

func TestHTTPRedirectMethodRefusesUnsafeTargets(t *testing.T) {
	cases := []struct {
		name     string
		location string
		detail   string
	}{
		{"plain http target", "http://autodiscover.evil.test/autodiscover/autodiscover.xml", "only https:// targets"},
		{"wrong path", "https://www.web.test/", "the path is not /autodiscover/…/autodiscover.xml"},
		{"IP literal", "https://127.0.0.1/autodiscover/autodiscover.xml", "IP address literal"},
		{"user info", "https://user:pw@autodiscover.evil.test/autodiscover/autodiscover.xml", "user info"},
		{"no location", "", "without a Location"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			must(t, e.HTTP("autodiscover.redir.test", lab.Redirect(http.StatusFound, tc.location)))
			must(t, e.HTTP("autodiscover.evil.test", lab.Static(200, "text/xml", "<x/>")))
			must(t, e.HTTPS("www.web.test", lab.Static(200, "text/html", "<html/>")))
			s := settingsFor(e, lab.Mailbox{})
			s.Methods = []probe.Method{probe.MethodHTTPRedirect}
			res := mustRun(t, "z@redir.test", s)
			st, ok := findStep(res, 0, "autodiscover.redir.test", probe.StepRedirect)
			if !ok || st.OK || st.ErrorClass != "bad_redirect" || !strings.Contains(st.Detail, tc.detail) {
				t.Fatalf("redirect step %+v, want bad_redirect mentioning %q\n%s", st, tc.detail, res.Log())
			}
			if res.RedirectHops != 0 || res.Success {
				t.Errorf("hops=%d success=%v", res.RedirectHops, res.Success)
			}
			for _, r := range e.Requests() {
				if r.Server != "autodiscover.redir.test" {
					t.Errorf("the refused target %s received a request", r.Server)
				}
				if r.Authorization != "" {
					t.Errorf("credentials on the HTTP redirect probe")
				}
			}
		})
	}
}

func TestAutodiscoverErrorEndsTheChainWithItsCode(t *testing.T) {
	e := newEstate(t)
	mb, ad, err := e.AddOnPremises("err.test", "frank", "pw")
	if err != nil {
		t.Fatal(err)
	}
	ad.SetUser(mb.Address, lab.Reply{ErrorCode: "500", ErrorMessage: "The email address can't be found."})
	res := mustRun(t, mb.Address, settingsFor(e, mb))
	if res.Success || res.ErrorCode != "500" || res.ErrorMessage != "The email address can't be found." {
		t.Fatalf("success=%v code=%q message=%q", res.Success, res.ErrorCode, res.ErrorMessage)
	}
	last := res.Steps[len(res.Steps)-1]
	if last.Name != probe.StepParse || last.ErrorClass != "autodiscover_error" {
		t.Errorf("last step %s, want parse autodiscover_error", stepLine(last))
	}
	for _, st := range res.Steps {
		if st.Method == probe.MethodHTTPRedirect || st.Method == probe.MethodSRV {
			t.Fatalf("discovery went on after an authoritative error: %s", stepLine(st))
		}
	}
	if !strings.Contains(res.Reason, "Autodiscover error 500") {
		t.Errorf("reason %q", res.Reason)
	}
}

func TestDeadAddressAmongSeveralIsReportedAndSkipped(t *testing.T) {
	e := newEstate(t)
	dead, err := e.AddDeadAddress("autodiscover.lb.test")
	if err != nil {
		t.Fatal(err)
	}
	mb, _, err := e.AddOnPremises("lb.test", "gina", "pw")
	if err != nil {
		t.Fatal(err)
	}
	live, _ := e.IPOf("autodiscover.lb.test")
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	res := mustRun(t, mb.Address, s)
	if !res.Success {
		t.Fatalf("failed: %s\n%s", res.Reason, res.Log())
	}
	tcp, _ := findStep(res, 0, "autodiscover.lb.test", probe.StepTCP)
	if !tcp.OK || tcp.Address != live {
		t.Errorf("tcp step answered by %q, want %q", tcp.Address, live)
	}
	if !strings.Contains(tcp.Detail, dead+" refused") || !strings.Contains(tcp.Detail, live+" connected") {
		t.Errorf("tcp detail does not show both addresses: %q", tcp.Detail)
	}
}

func TestIPv6OnlyHostIsResolvedAndReached(t *testing.T) {
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		l.Close()
	}
	e := newEstate(t)
	mb, _, err := e.AddOnPremises("v6.test", "hugo", "pw", lab.OnIPv6())
	if err != nil {
		t.Fatal(err)
	}
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	res := mustRun(t, mb.Address, s)
	if !res.Success {
		t.Fatalf("failed: %s\n%s", res.Reason, res.Log())
	}
	dns, _ := findStep(res, 0, "autodiscover.v6.test", probe.StepDNS)
	tcp, _ := findStep(res, 0, "autodiscover.v6.test", probe.StepTCP)
	if dns.Detail != "resolved ::1" || tcp.Address != "::1" {
		t.Errorf("dns %q, tcp address %q; want ::1 only", dns.Detail, tcp.Address)
	}
	s.IPVersion = probe.IPv4
	res = mustRun(t, mb.Address, s)
	if dns, _ := findStep(res, 0, "autodiscover.v6.test", probe.StepDNS); dns.OK || dns.ErrorClass != "no_records" {
		t.Errorf("with ip4 only: dns step %+v, want no_records", dns)
	}
}

func TestCredentialsNeverLeaveTheRules(t *testing.T) {
	cases := []struct {
		name        string
		setup       func(t *testing.T, e *lab.Estate)
		allowed     []string
		credsClass  probe.ErrorClass
		credsOnHost string
	}{
		{
			name: "redirectUrl into a foreign domain with a valid certificate",
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS("autodiscover.home.test", &lab.Autodiscover{Users: map[string]lab.Reply{"i@home.test": {RedirectURL: "https://autodiscover.evil.test/autodiscover/autodiscover.xml"}}}))
				must(t, e.HTTPS("autodiscover.evil.test", &lab.Autodiscover{Accounts: map[string]string{"x": "y"}}))
			},
			credsClass: "withheld_domain", credsOnHost: "autodiscover.evil.test",
		},
		{
			name: "look-alike domain that ends with the mailbox domain",
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS("autodiscover.home.test", &lab.Autodiscover{Users: map[string]lab.Reply{"i@home.test": {RedirectURL: "https://autodiscover.evilhome.test/autodiscover/autodiscover.xml"}}}))
				must(t, e.HTTPS("autodiscover.evilhome.test", &lab.Autodiscover{Accounts: map[string]string{"x": "y"}}))
			},
			credsClass: "withheld_domain", credsOnHost: "autodiscover.evilhome.test",
		},
		{
			name: "redirectAddr into a foreign domain",
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS("autodiscover.home.test", &lab.Autodiscover{Users: map[string]lab.Reply{"i@home.test": {RedirectAddr: "i@foreign.test"}}}))
				must(t, e.HTTPS("autodiscover.foreign.test", &lab.Autodiscover{Accounts: map[string]string{"x": "y"}}))
			},
			credsClass: "withheld_domain", credsOnHost: "autodiscover.foreign.test",
		},
		{
			name: "SRV target in a foreign domain with a valid certificate for itself",
			setup: func(t *testing.T, e *lab.Estate) {
				e.AddSRV("_autodiscover._tcp.home.test", 0, 0, 443, "mail.foreign.test")
				must(t, e.HTTPS("mail.foreign.test", &lab.Autodiscover{Accounts: map[string]string{"x": "y"}}))
			},
			credsClass: "withheld_domain", credsOnHost: "mail.foreign.test",
		},
		{
			name: "allowed domain gets credentials",
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS("autodiscover.home.test", &lab.Autodiscover{Users: map[string]lab.Reply{"i@home.test": {RedirectURL: "https://pod.partner.test/autodiscover/autodiscover.xml"}}}))
				must(t, e.HTTPS("pod.partner.test", &lab.Autodiscover{Accounts: map[string]string{"i@home.test": "pw"}, Users: map[string]lab.Reply{"i@home.test": {Settings: &lab.Settings{Server: "mail.partner.test"}}}}))
			},
			allowed:     []string{"partner.test"},
			credsOnHost: "pod.partner.test",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			tc.setup(t, e)
			mb := lab.Mailbox{Address: "i@home.test", Username: "i@home.test", Password: "pw", AllowedDomains: tc.allowed}
			res := mustRun(t, mb.Address, settingsFor(e, mb))
			var credHost []string
			var credsStep probe.Step
			for _, st := range res.Steps {
				if st.Name == probe.StepCredentials && st.Host == tc.credsOnHost {
					credsStep = st
				}
				if st.Name == probe.StepCredentials {
					credHost = append(credHost, st.Host)
				}
			}
			if credsStep.Name == "" {
				t.Fatalf("no credentials step on %s (steps on %v)\n%s", tc.credsOnHost, credHost, res.Log())
			}
			if tc.credsClass == "" {
				if !credsStep.OK || !res.Success {
					t.Fatalf("allowed domain: credentials step %+v\n%s", credsStep, res.Log())
				}
				assertCredentialsOnlyTo(t, e, tc.credsOnHost)
				return
			}
			if credsStep.OK || credsStep.ErrorClass != tc.credsClass {
				t.Fatalf("credentials step %+v, want %s\n%s", credsStep, tc.credsClass, res.Log())
			}
			assertCredentialsOnlyTo(t, e)
		})
	}
}

func TestClientCertificateRequestIsDetected(t *testing.T) {
	t.Run("requested but optional: reported, chain succeeds", func(t *testing.T) {
		e := newEstate(t)
		mb, _, err := e.AddOnPremises("cc.test", "ida", "pw", lab.WithClientAuth(tls.RequestClientCert))
		if err != nil {
			t.Fatal(err)
		}
		res := mustRun(t, mb.Address, settingsFor(e, mb))
		cc, _ := findStep(res, 0, "autodiscover.cc.test", probe.StepClientCert)
		if cc.OK || cc.ErrorClass != "client_cert_requested" {
			t.Errorf("client_cert step %+v, want client_cert_requested", cc)
		}
		if !res.Success {
			t.Errorf("chain failed: %s", res.Reason)
		}
	})
	t.Run("required: the request fails", func(t *testing.T) {
		e := newEstate(t)
		mb, _, err := e.AddOnPremises("cc.test", "ida", "pw", lab.WithClientAuth(tls.RequireAnyClientCert))
		if err != nil {
			t.Fatal(err)
		}
		s := settingsFor(e, mb)
		s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
		res := mustRun(t, mb.Address, s)
		if res.Success {
			t.Fatal("succeeded against a server that requires a client certificate")
		}
		cc, _ := findStep(res, 0, "autodiscover.cc.test", probe.StepClientCert)
		req, _ := findStep(res, 0, "autodiscover.cc.test", probe.StepRequest)
		if cc.ErrorClass != "client_cert_requested" || req.OK || req.ErrorClass != "client_cert_required" {
			t.Errorf("client_cert %+v request %+v\n%s", cc, req, res.Log())
		}
	})
}

func TestBlackHoledPortsEndWithinTheDeadline(t *testing.T) {
	e := newEstate(t)
	must(t, e.BlackHole("blackhole.test", 443))
	must(t, e.BlackHole("autodiscover.blackhole.test", 443))
	must(t, e.BlackHole("autodiscover.blackhole.test", 80))
	s := settingsFor(e, lab.Mailbox{})
	s.StepTimeout = 300 * time.Millisecond
	deadline := 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	res, err := runProbe(ctx, "j@blackhole.test", s)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// Correctness, not speed: the run must honour its deadline.
	if elapsed > deadline+time.Second {
		t.Errorf("Run took %v, past its %v deadline", elapsed, deadline)
	}
	hs, _ := findStep(res, 0, "blackhole.test", probe.StepTLSHandshake)
	if hs.OK || hs.ErrorClass != "timeout" {
		t.Errorf("root handshake %+v, want timeout", hs)
	}
	get, _ := findStep(res, 0, "autodiscover.blackhole.test", probe.StepHTTPGet)
	if get.OK || get.ErrorClass != "timeout" {
		t.Errorf("HTTP redirect GET %+v, want timeout (each step has its own timeout, so later methods still run)", get)
	}
	t.Run("the whole deadline shorter than one step", func(t *testing.T) {
		s.StepTimeout = 10 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		res, err := runProbe(ctx, "j@blackhole.test", s)
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("Run ignored the context deadline (%v)", time.Since(start))
		}
		if res.Success || !strings.Contains(res.Reason, "deadline") {
			t.Errorf("reason %q does not mention the deadline", res.Reason)
		}
	})
}

func TestHostileAnswersBecomeFailedSteps(t *testing.T) {
	cases := []struct {
		name  string
		reply lab.Reply
		step  probe.StepName
		class probe.ErrorClass
	}{
		{"garbage XML", lab.Reply{Raw: "<Autodiscover><Response><<<", ContentType: "text/xml"}, probe.StepParse, "bad_xml"},
		{"HTML page", lab.Reply{Raw: "<html><body>hi</body></html>", ContentType: "text/html"}, probe.StepParse, "bad_content_type"},
		{"HTML page labelled XML", lab.Reply{Raw: "<html><body>hi</body></html>", ContentType: "text/xml"}, probe.StepParse, "not_autodiscover"},
		{"JSON", lab.Reply{Raw: `{"a":1}`, ContentType: "application/json"}, probe.StepParse, "bad_content_type"},
		{"empty body", lab.Reply{Raw: " ", ContentType: "text/xml"}, probe.StepParse, "empty_body"},
		{"redirect to nowhere", lab.Reply{Status: http.StatusFound}, probe.StepRedirect, "bad_redirect"},
		{"server error", lab.Reply{Raw: "oops", Status: 503, ContentType: "text/plain"}, probe.StepRequest, "server_error"},
		{"forbidden", lab.Reply{Raw: "no", Status: 403, ContentType: "text/plain"}, probe.StepRequest, "forbidden"},
		{"account state 456", lab.Reply{Raw: "", Status: 456, ContentType: "text/plain"}, probe.StepRequest, "account_state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			mb, ad, err := e.AddOnPremises("hostile.test", "kim", "pw")
			if err != nil {
				t.Fatal(err)
			}
			ad.SetUser(mb.Address, tc.reply)
			s := settingsFor(e, mb)
			s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
			res := mustRun(t, mb.Address, s)
			st, ok := findStep(res, 0, "autodiscover.hostile.test", tc.step)
			if !ok || st.OK || st.ErrorClass != tc.class || st.Detail == "" {
				t.Fatalf("step %s = %+v, want failed with %s and a detail\n%s", tc.step, st, tc.class, res.Log())
			}
			if res.Success {
				t.Error("success on a hostile answer")
			}
		})
	}
}

func TestMalformedAddressesFailBeforeAnyTraffic(t *testing.T) {
	e := newEstate(t)
	for _, addr := range []string{"", "no-at-sign", "@contoso.test", "a@", "a@localhost", "a@co.uk", "a@com", "a@[127.0.0.1]", "a@127.0.0.1", "a@xn--zz.test", "a@exa mple.test", " a@contoso.test", "a@-bad-.test"} {
		t.Run(addr, func(t *testing.T) {
			res, err := runProbe(context.Background(), addr, settingsFor(e, lab.Mailbox{}))
			if err == nil || res != nil {
				t.Fatalf("Run(%q) = %v, %v; want an error", addr, res, err)
			}
		})
	}
	if n := e.DNSQueries(); n != 0 {
		t.Errorf("malformed addresses caused %d DNS queries", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestMobileSyncSchemaReturnsTheActiveSyncServer(t *testing.T) {
	e := newEstate(t)
	mb, _, err := e.AddOnPremises("eas.test", "lena", "pw")
	if err != nil {
		t.Fatal(err)
	}
	s := settingsFor(e, mb)
	s.Schema = probe.SchemaMobileSync
	res := mustRun(t, mb.Address, s)
	if !res.Success || res.Response.Schema != probe.SchemaMobileSync {
		t.Fatalf("success=%v schema=%v\n%s", res.Success, res.Response, res.Log())
	}
	if len(res.Response.MobileServers) != 1 || res.Response.MobileServers[0].URL != "https://mail.eas.test/Microsoft-Server-ActiveSync" {
		t.Errorf("mobile servers %+v", res.Response.MobileServers)
	}
}

func TestConnectToByNameKeepsTheNameForSNIAndCertificate(t *testing.T) {
	e := newEstate(t)
	mb, _, err := e.AddOnPremises("override.test", "max", "pw")
	if err != nil {
		t.Fatal(err)
	}
	ip, _ := e.IPOf("autodiscover.override.test")
	listener := e.ConnectTo()[ip+":443"]
	// The name no longer resolves: only the override can reach the node.
	e.RemoveRecords("autodiscover.override.test", 1 /* A */)
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	s.ConnectTo = map[string]string{"autodiscover.override.test:443": listener}
	res := mustRun(t, mb.Address, s)
	if !res.Success {
		t.Fatalf("failed through the override: %s\n%s", res.Reason, res.Log())
	}
	if _, dnsRan := findStep(res, 0, "autodiscover.override.test", probe.StepDNS); dnsRan {
		t.Error("DNS was consulted for a host with a connect_to override by name")
	}
	tcp, _ := findStep(res, 0, "autodiscover.override.test", probe.StepTCP)
	if !strings.Contains(tcp.Detail, "via "+listener) {
		t.Errorf("tcp detail %q does not show the override", tcp.Detail)
	}
	reqs := e.RequestsTo("autodiscover.override.test")
	if len(reqs) == 0 || reqs[0].SNI != "autodiscover.override.test" || reqs[0].Host != "autodiscover.override.test" {
		t.Errorf("server saw %+v; want SNI and Host of the original name", reqs)
	}
}

func TestRedirectOnPOSTIsResentAsPOST(t *testing.T) {
	settings := func(n string) lab.Reply { return lab.Reply{Settings: &lab.Settings{Server: n}} }
	cases := []struct {
		name  string
		setup func(t *testing.T, e *lab.Estate)
	}{
		{"absolute Location on another host", func(t *testing.T, e *lab.Estate) {
			must(t, e.HTTPS("autodiscover.moved.test", &lab.Autodiscover{Users: map[string]lab.Reply{"n@moved.test": {Status: http.StatusTemporaryRedirect, Location: "https://mail.moved.test/autodiscover/autodiscover.xml"}}}))
			must(t, e.HTTPS("mail.moved.test", &lab.Autodiscover{Users: map[string]lab.Reply{"n@moved.test": settings("mail.moved.test")}}))
		}},
		{"relative Location on the same host", func(t *testing.T, e *lab.Estate) {
			mux := http.NewServeMux()
			mux.Handle("/autodiscover/autodiscover.xml", &lab.Autodiscover{Users: map[string]lab.Reply{"n@moved.test": {Status: http.StatusFound, Location: "/Autodiscover/Moved/Autodiscover.xml"}}})
			mux.Handle("/Autodiscover/Moved/Autodiscover.xml", &lab.Autodiscover{Users: map[string]lab.Reply{"n@moved.test": settings("mail.moved.test")}})
			must(t, e.HTTPS("autodiscover.moved.test", mux))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			tc.setup(t, e)
			s := settingsFor(e, lab.Mailbox{})
			s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
			res := mustRun(t, "n@moved.test", s)
			if !res.Success || res.RedirectHops != 1 {
				t.Fatalf("success=%v hops=%d\n%s", res.Success, res.RedirectHops, res.Log())
			}
			reqs := e.Requests()
			if len(reqs) != 2 {
				t.Fatalf("servers saw %d requests, want 2: %+v", len(reqs), reqs)
			}
			for _, r := range reqs {
				if r.Method != http.MethodPost {
					t.Errorf("%s %s: the redirect was not re-sent as a POST", r.Method, r.Path)
				}
			}
		})
	}
}
