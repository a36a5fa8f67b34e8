package probe_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// endpointSteps lists the step names of one endpoint check.
func endpointSteps(c probe.EndpointCheck) []probe.StepName {
	var out []probe.StepName
	for _, s := range c.Steps {
		out = append(out, s.Name)
	}
	return out
}

func findCheck(t *testing.T, res *probe.Result, p probe.EndpointProtocol, what, host string) probe.EndpointCheck {
	t.Helper()
	for _, c := range res.Endpoints {
		if c.Protocol == p && c.Host == host && (what == "" || c.What == what) {
			return c
		}
	}
	t.Fatalf("no %s %s check on %s in %+v", p, what, host, res.Endpoints)
	return probe.EndpointCheck{}
}

func sameSteps(a, b []probe.StepName) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var (
	authenticatedCheck = []probe.StepName{probe.StepAuthMethods, probe.StepCredentials, probe.StepEndpointAnswer}
	challengeOnlyCheck = []probe.StepName{probe.StepAuthMethods}
	owaCheck           = []probe.StepName{probe.StepEndpointAnswer}
)

// Every protocol's check passes against Exchange's services with the
// module's credentials: the unauthenticated request gets a 401 offering
// Basic, the authenticated one the protocol's own success.
func TestEveryEndpointProtocolPassesWithCredentials(t *testing.T) {
	e := newEstate(t)
	mb, _, err := e.AddExchange("contoso.test", "alice", "pw")
	must(t, err)
	s := settingsFor(e, mb)
	s.Endpoints = probe.EndpointProtocols
	s.EndpointsScope = probe.ScopeBoth
	res := mustRun(t, mb.Address, s)
	if !res.Success {
		t.Fatalf("probe failed: %s\n%s", res.Reason, res.Log())
	}
	tests := []struct {
		protocol probe.EndpointProtocol
		what     string
		host     string
		steps    []probe.StepName
		answer   string
	}{
		{probe.EndpointEWS, "EWS", "mail.contoso.test", authenticatedCheck, "ResponseCode NoError"},
		{probe.EndpointEWS, "EWS", "internal.mail.contoso.test", authenticatedCheck, "ResponseCode NoError"},
		{probe.EndpointMAPI, "MAPI/HTTP mail store", "mail.contoso.test", authenticatedCheck, "X-ResponseCode 0 (Success)"},
		{probe.EndpointMAPI, "MAPI/HTTP address book", "mail.contoso.test", authenticatedCheck, "X-ResponseCode 0 (Success)"},
		{probe.EndpointOAB, "OAB", "mail.contoso.test", authenticatedCheck, "OAB manifest with 1 address list"},
		{probe.EndpointOWA, "Outlook on the web", "mail.contoso.test", owaCheck, "HTTP 302"},
		{probe.EndpointOWA, "Outlook on the web", "internal.mail.contoso.test", owaCheck, "HTTP 302"},
	}
	for _, tt := range tests {
		t.Run(tt.what+" on "+tt.host, func(t *testing.T) {
			c := findCheck(t, res, tt.protocol, tt.what, tt.host)
			if !c.OK || !sameSteps(endpointSteps(c), tt.steps) {
				t.Fatalf("check %+v, want OK with steps %v", c, tt.steps)
			}
			last := c.Steps[len(c.Steps)-1]
			if !strings.Contains(last.Detail, tt.answer) {
				t.Errorf("answer %q does not say %q", last.Detail, tt.answer)
			}
			if c.Duration <= 0 {
				t.Errorf("duration %v", c.Duration)
			}
		})
	}
	if len(res.Endpoints) != 10 {
		t.Errorf("%d endpoint checks, want 10 (EWS, 2 MAPI, OAB, OWA on two hosts)", len(res.Endpoints))
	}
	if len(res.EndpointsMissing) != 1 || res.EndpointsMissing[0] != probe.EndpointActiveSync {
		t.Errorf("missing %v, want activesync: the Outlook schema carries no ActiveSync URL", res.EndpointsMissing)
	}
	if len(res.EndpointHosts) != 2 {
		t.Fatalf("endpoint hosts %+v, want mail and internal.mail", res.EndpointHosts)
	}
	for _, h := range res.EndpointHosts {
		if !h.OK || h.SharedWithChain || len(h.Steps) != 7 || h.Steps[0].Name != probe.StepDNS {
			t.Errorf("host %s: ok %v shared %v with %d steps, want its own 7 connection steps from DNS on", h.Host, h.OK, h.SharedWithChain, len(h.Steps))
		}
	}
	// Each host is dialled once however many URLs it carries, plus one
	// connection per URL after a connection-bound credential exchange.
	var mailCerts int
	for _, c := range res.Certificates {
		if c.Host == "mail.contoso.test" {
			mailCerts++
			if !c.Endpoint {
				t.Error("the endpoint host's certificate is not marked as an endpoint's")
			}
		}
	}
	if mailCerts != 1 {
		t.Errorf("%d certificates of mail.contoso.test, want 1", mailCerts)
	}
	assertCredentialsOnlyTo(t, e, "autodiscover.contoso.test", "mail.contoso.test", "internal.mail.contoso.test")
}

// ActiveSync is in the MobileSync schema's answer: OPTIONS is answered
// with a 401, then with the protocol versions.
func TestActiveSyncEndpointAnswersOptionsWithProtocolVersions(t *testing.T) {
	e := newEstate(t)
	mb, _, err := e.AddExchange("contoso.test", "alice", "pw")
	must(t, err)
	s := settingsFor(e, mb)
	s.Schema = probe.SchemaMobileSync
	s.Endpoints = []probe.EndpointProtocol{probe.EndpointActiveSync, probe.EndpointEWS}
	res := mustRun(t, mb.Address, s)
	c := findCheck(t, res, probe.EndpointActiveSync, "", "mail.contoso.test")
	if !c.OK || !sameSteps(endpointSteps(c), authenticatedCheck) || !strings.Contains(c.Steps[2].Detail, "16.1") {
		t.Fatalf("ActiveSync check %+v", c)
	}
	var optionsSeen bool
	for _, r := range e.RequestsTo("mail.contoso.test") {
		if r.Method == http.MethodOptions && r.Path == "/Microsoft-Server-ActiveSync" {
			optionsSeen = true
		}
	}
	if !optionsSeen {
		t.Error("no OPTIONS reached /Microsoft-Server-ActiveSync")
	}
	if len(res.EndpointsMissing) != 1 || res.EndpointsMissing[0] != probe.EndpointEWS {
		t.Errorf("missing %v, want ews: the MobileSync schema carries no EWS URL", res.EndpointsMissing)
	}
}

// anonymousAutodiscover serves settings without a challenge while the
// client access services behind it ask for credentials, so a module
// without credentials gets as far as the endpoints.
func anonymousAutodiscover(t *testing.T, e *lab.Estate, domain string, mailOpts ...lab.HostOption) (*lab.Exchange, string) {
	t.Helper()
	address := "alice@" + domain
	settings := lab.Reply{Settings: &lab.Settings{DisplayName: "Alice", Server: "mail." + domain}}
	must(t, e.HTTPS("autodiscover."+domain, &lab.Autodiscover{Users: map[string]lab.Reply{address: settings}}))
	gate := &lab.Autodiscover{Accounts: map[string]string{address: "pw"}, Users: map[string]lab.Reply{address: settings}}
	x := &lab.Exchange{Auth: gate}
	must(t, e.HTTPS("mail."+domain, x, mailOpts...))
	return x, address
}

// Without credentials an endpoint passes when it asks for them as it
// should; the step says why none were sent, and none were.
func TestEndpointsWithoutCredentialsPassOnTheirChallenge(t *testing.T) {
	e := newEstate(t)
	_, address := anonymousAutodiscover(t, e, "contoso.test")
	s := settingsFor(e, lab.Mailbox{})
	s.Endpoints = probe.EndpointProtocols
	res := mustRun(t, address, s)
	if !res.ChainSuccess {
		t.Fatalf("chain failed: %s", res.Reason)
	}
	for _, p := range []probe.EndpointProtocol{probe.EndpointEWS, probe.EndpointMAPI, probe.EndpointOAB} {
		c := findCheck(t, res, p, "", "mail.contoso.test")
		if !c.OK || !sameSteps(endpointSteps(c), challengeOnlyCheck) {
			t.Errorf("%s: %+v, want OK after auth_methods alone", p, c)
			continue
		}
		if d := c.Steps[0].Detail; !strings.Contains(d, "offering Negotiate, NTLM, Basic") || !strings.Contains(d, "credentials not sent") {
			t.Errorf("%s: auth_methods detail %q", p, d)
		}
	}
	for _, r := range e.Requests() {
		if r.Authorization != "" {
			t.Errorf("a module without credentials sent Authorization to %s", r.Server)
		}
	}
}

// The credential rules of the chain hold for endpoints, asserted from
// what the servers received: an endpoint outside the paired domains is
// checked without credentials, one whose certificate failed gets no
// request at all, and URLs that are not https on 443, carry user info or
// name an IP address are never dialled.
func TestEndpointCredentialsFollowTheChainRules(t *testing.T) {
	e := newEstate(t)
	domain := "contoso.test"
	address := "alice@" + domain
	gate := &lab.Autodiscover{Accounts: map[string]string{address: "pw"}, Users: map[string]lab.Reply{address: {Settings: &lab.Settings{Server: "mail." + domain}}}}
	answer := `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
 <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
  <User><DisplayName>Alice</DisplayName><AutoDiscoverSMTPAddress>alice@contoso.test</AutoDiscoverSMTPAddress></User>
  <Account><AccountType>email</AccountType><Action>settings</Action>
   <Protocol><Type>EXPR</Type><Server>mail.contoso.test</Server>
    <EwsUrl>https://mail.fabrikam.test/EWS/Exchange.asmx</EwsUrl>
    <OABUrl>http://mail.contoso.test/OAB/x/</OABUrl></Protocol>
   <Protocol><Type>EXCH</Type><Server>mail.contoso.test</Server>
    <EwsUrl>https://untrusted.contoso.test/EWS/Exchange.asmx</EwsUrl>
    <OABUrl>https://mail.contoso.test/OAB/x/</OABUrl></Protocol>
   <Protocol Type="mapiHttp" Version="1">
    <MailStore><ExternalUrl>https://mail.contoso.test:8443/mapi/emsmdb/</ExternalUrl></MailStore>
    <AddressBook><ExternalUrl>https://alice:pw@mail.contoso.test/mapi/nspi/</ExternalUrl></AddressBook></Protocol>
   <Protocol><Type>WEB</Type><External><OWAUrl AuthenticationMethod="Fba">https://127.0.0.1/owa/</OWAUrl></External></Protocol>
  </Account>
 </Response>
</Autodiscover>`
	must(t, e.HTTPS("autodiscover."+domain, &lab.Autodiscover{Accounts: gate.Accounts, Users: map[string]lab.Reply{address: {Raw: answer, ContentType: "text/xml"}}}))
	must(t, e.HTTPS("mail."+domain, &lab.Exchange{Auth: gate}))
	must(t, e.HTTP("mail."+domain, &lab.Exchange{Auth: gate}))
	must(t, e.HTTPS("mail.fabrikam.test", &lab.Exchange{Auth: gate}))
	must(t, e.HTTPS("untrusted."+domain, &lab.Exchange{Auth: gate}, lab.WithUntrustedCert()))
	s := settingsFor(e, lab.Mailbox{Address: address, Username: address, Password: "pw"})
	s.Endpoints = probe.EndpointProtocols
	s.EndpointsScope = probe.ScopeBoth
	res := mustRun(t, address, s)
	if !res.ChainSuccess {
		t.Fatalf("chain failed: %s", res.Reason)
	}

	tests := []struct {
		name    string
		p       probe.EndpointProtocol
		what    string
		host    string
		ok      bool
		steps   []probe.StepName
		class   probe.ErrorClass
		contain string
	}{
		{"outside the paired domains: checked, no credentials", probe.EndpointEWS, "EWS", "mail.fabrikam.test", true, challengeOnlyCheck, "", "neither in contoso.test nor in an allowed domain"},
		{"plain http: refused", probe.EndpointOAB, "OAB", "mail.contoso.test", false, []probe.StepName{probe.StepEndpointURL}, probe.ClassBadURL, "only https://"},
		{"own domain over https: credentials", probe.EndpointOAB, "OAB", "mail.contoso.test", true, authenticatedCheck, "", "OAB manifest"},
		{"untrusted certificate: no request", probe.EndpointEWS, "EWS", "untrusted.contoso.test", false, nil, "", ""},
		{"a port other than 443: refused", probe.EndpointMAPI, "MAPI/HTTP mail store", "mail.contoso.test", false, []probe.StepName{probe.StepEndpointURL}, probe.ClassBadURL, "port 8443"},
		{"user info: refused", probe.EndpointMAPI, "MAPI/HTTP address book", "mail.contoso.test", false, []probe.StepName{probe.StepEndpointURL}, probe.ClassBadURL, "user info"},
		{"an IP literal: refused", probe.EndpointOWA, "", "127.0.0.1", false, []probe.StepName{probe.StepEndpointURL}, probe.ClassBadURL, "IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *probe.EndpointCheck
			for i, x := range res.Endpoints {
				if x.Protocol == tt.p && x.Host == tt.host && (tt.what == "" || x.What == tt.what) && (len(tt.steps) == 0 || len(x.Steps) > 0 && x.Steps[0].Name == tt.steps[0]) {
					c = &res.Endpoints[i]
				}
			}
			if c == nil {
				t.Fatalf("no such check in %+v", res.Endpoints)
			}
			if c.OK != tt.ok || !sameSteps(endpointSteps(*c), tt.steps) {
				t.Fatalf("check ok=%v steps %v, want ok=%v %v: %+v", c.OK, endpointSteps(*c), tt.ok, tt.steps, c)
			}
			if len(c.Steps) == 0 {
				return
			}
			first := c.Steps[0]
			if first.ErrorClass != tt.class || !strings.Contains(first.Detail+c.Steps[len(c.Steps)-1].Detail, tt.contain) {
				t.Errorf("step %s class %q detail %q, want class %q containing %q", first.Name, first.ErrorClass, first.Detail, tt.class, tt.contain)
			}
		})
	}
	assertCredentialsOnlyTo(t, e, "autodiscover.contoso.test", "mail.contoso.test")
	if strings.Contains(res.Log(), "alice:pw") {
		t.Error("the user info of a refused URL reached the step log")
	}
	if got := e.RequestsTo("untrusted.contoso.test"); len(got) != 0 {
		t.Errorf("%d requests reached the host whose certificate failed", len(got))
	}
	for _, r := range e.Requests() {
		if r.Scheme == "http" {
			t.Errorf("the plain-http URL was dialled: %s %s", r.Method, r.Path)
		}
		if strings.Contains(r.Path, "/mapi/") && r.Server == "mail.contoso.test" {
			t.Errorf("a refused MAPI URL was requested: %s", r.Path)
		}
	}
	var untrusted probe.EndpointHost
	for _, h := range res.EndpointHosts {
		if h.Host == "untrusted.contoso.test" {
			untrusted = h
		}
	}
	if untrusted.OK || len(untrusted.Steps) == 0 || untrusted.Steps[len(untrusted.Steps)-1].Name != probe.StepClientCert {
		t.Errorf("untrusted host %+v, want its failed certificate steps", untrusted)
	}
}

// A broken virtual directory fails its protocol alone; the probe's
// verdict stays Autodiscover's unless expect.endpoints asks otherwise,
// and then the endpoint's step is the decisive failure.
func TestFailingEndpointFailsTheProbeOnlyWhenExpected(t *testing.T) {
	e := newEstate(t)
	mb, x, err := e.AddExchange("contoso.test", "alice", "pw")
	must(t, err)
	x.SetFault("/mapi/", http.StatusServiceUnavailable)
	s := settingsFor(e, mb)
	s.Endpoints = []probe.EndpointProtocol{probe.EndpointEWS, probe.EndpointMAPI}
	for _, expect := range []bool{false, true} {
		p, err := probe.NewProber(s, probe.Env{})
		must(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		res, err := p.Run(ctx, probe.Target{Address: mb.Address, Expect: &probe.Expectations{Endpoints: expect}})
		cancel()
		must(t, err)
		summaries := map[probe.EndpointProtocol]bool{}
		for _, sum := range res.EndpointSummaries() {
			summaries[sum.Protocol] = sum.OK
		}
		if !summaries[probe.EndpointEWS] || summaries[probe.EndpointMAPI] {
			t.Fatalf("summaries %v, want EWS up and MAPI down", summaries)
		}
		mapi := findCheck(t, res, probe.EndpointMAPI, "MAPI/HTTP mail store", "mail.contoso.test")
		if mapi.Steps[0].ErrorClass != probe.ClassServerError || !strings.Contains(mapi.Steps[0].Detail, "503") {
			t.Errorf("MAPI step %+v, want server_error naming 503", mapi.Steps[0])
		}
		if res.Success == expect {
			t.Errorf("expect.endpoints=%v: success %v", expect, res.Success)
		}
		if !expect {
			continue
		}
		f := res.Failure
		if f == nil || f.Method != "endpoint_mapi" || f.Step != probe.StepAuthMethods || f.Class != probe.ClassServerError || !strings.Contains(f.Sentence, "MAPI/HTTP mail store at https://mail.contoso.test/mapi/emsmdb/") {
			t.Errorf("failure %+v, want the MAPI step", f)
		}
		if !strings.Contains(res.Reason, "expectation not met: endpoints") {
			t.Errorf("reason %q", res.Reason)
		}
	}
}

// A certificate about to expire on the mail host is exported with the
// chain's, while the endpoint works and cert_min_days (about Autodiscover)
// is not affected; an expired one fails the host's checks without a
// request.
func TestEndpointHostCertificatesJoinTheChainsCertificates(t *testing.T) {
	tests := []struct {
		name     string
		notAfter time.Duration
		ok       bool
	}{
		{"expiring in five days", 5 * 24 * time.Hour, true},
		{"expired yesterday", -24 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEstate(t)
			spec := lab.CertSpec{Names: []string{"mail.contoso.test"}, NotBefore: time.Now().Add(-30 * 24 * time.Hour), NotAfter: time.Now().Add(tt.notAfter)}
			mb, _, err := e.AddExchange("contoso.test", "alice", "pw", lab.WithCert(spec))
			must(t, err)
			s := settingsFor(e, mb)
			s.Endpoints = []probe.EndpointProtocol{probe.EndpointEWS}
			p, err := probe.NewProber(s, probe.Env{})
			must(t, err)
			res, err := p.Run(context.Background(), probe.Target{Address: mb.Address, Expect: &probe.Expectations{CertMinDays: 14}})
			must(t, err)
			if !res.Success {
				t.Errorf("probe failed (%s): the endpoint's certificate must not fail cert_min_days", res.Reason)
			}
			var cert *probe.CertInfo
			for i, c := range res.Certificates {
				if c.Host == "mail.contoso.test" {
					cert = &res.Certificates[i]
				}
			}
			if cert == nil || !cert.Endpoint || cert.NotAfter.Sub(spec.NotAfter).Abs() > time.Minute {
				t.Fatalf("mail.contoso.test certificate %+v, want NotAfter %v", cert, spec.NotAfter)
			}
			c := findCheck(t, res, probe.EndpointEWS, "", "mail.contoso.test")
			if c.OK != tt.ok {
				t.Errorf("EWS ok=%v, want %v", c.OK, tt.ok)
			}
			if !tt.ok && len(e.RequestsTo("mail.contoso.test")) != 0 {
				t.Error("a request reached the host whose certificate expired")
			}
		})
	}
}

// The chain's own host is not checked twice: its addresses are reused
// without DNS and, with the same certificate, the chain's verdict
// stands.
func TestEndpointOnTheChainsHostSharesItsVerdict(t *testing.T) {
	e := newEstate(t)
	address := "alice@contoso.test"
	ad := &lab.Autodiscover{Accounts: map[string]string{address: "pw"}, Users: map[string]lab.Reply{address: {Settings: &lab.Settings{Server: "autodiscover.contoso.test"}}}}
	mux := http.NewServeMux()
	mux.Handle("/autodiscover/", ad)
	mux.Handle("/Autodiscover/", ad)
	mux.Handle("/", &lab.Exchange{Auth: ad})
	must(t, e.HTTPS("autodiscover.contoso.test", mux))
	s := settingsFor(e, lab.Mailbox{Address: address, Username: address, Password: "pw"})
	s.Endpoints = []probe.EndpointProtocol{probe.EndpointEWS, probe.EndpointOAB}
	res := mustRun(t, address, s)
	if len(res.EndpointHosts) != 1 {
		t.Fatalf("endpoint hosts %+v", res.EndpointHosts)
	}
	h := res.EndpointHosts[0]
	if !h.SharedWithChain || !h.OK || len(h.Steps) != 0 {
		t.Errorf("host %+v, want the chain's verdict shared", h)
	}
	for _, c := range res.Endpoints {
		if !c.OK {
			t.Errorf("%s failed: %+v", c.What, c.Steps)
		}
	}
	if n := len(res.Certificates); n != 1 {
		t.Errorf("%d certificates, want the chain's one", n)
	}
	if !strings.Contains(res.Log(), "was validated while testing Autodiscover above") {
		t.Error("the step log does not say the verdict is shared")
	}
}

// hostileExchange asks for Basic like Exchange and then misbehaves.
func hostileExchange(after func(w http.ResponseWriter)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		after(w)
	})
}

// A hostile endpoint — slow, huge, garbage — fails its step with a reason
// by the deadline, and the other endpoints are checked beside it.
func TestHostileEndpointsFailTheirStepByTheDeadline(t *testing.T) {
	tests := []struct {
		name    string
		handler http.Handler
		class   probe.ErrorClass
	}{
		{"slow", hostileExchange(func(w http.ResponseWriter) { time.Sleep(3 * time.Second) }), probe.ClassTimeout},
		{"huge", hostileExchange(func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusOK)
			chunk := strings.Repeat("<x>", 1<<14)
			for i := 0; i < 200; i++ {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
		}), probe.ClassResponseTooLarge},
		{"garbage", hostileExchange(func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/xml")
			_, _ = io.WriteString(w, "\x00\x01<not xml")
		}), probe.ClassBadXML},
		{"another XML", hostileExchange(func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/xml")
			_, _ = io.WriteString(w, "<html><body>hello</body></html>")
		}), probe.ClassNotProtocol},
		{"black hole", nil, probe.ClassTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEstate(t)
			address := "alice@contoso.test"
			must(t, e.HTTPS("autodiscover.contoso.test", &lab.Autodiscover{Users: map[string]lab.Reply{address: {Settings: &lab.Settings{Server: "mail.contoso.test"}}}}))
			if tt.handler == nil {
				must(t, e.BlackHole("mail.contoso.test", 443))
			} else {
				must(t, e.HTTPS("mail.contoso.test", tt.handler))
			}
			must(t, e.HTTPS("internal.mail.contoso.test", &lab.Exchange{Auth: &lab.Autodiscover{Accounts: map[string]string{address: "pw"}, Users: map[string]lab.Reply{address: {}}}}))
			s := settingsFor(e, lab.Mailbox{Address: address, Username: address, Password: "pw"})
			s.StepTimeout = time.Second
			s.MaxBodyBytes = 64 << 10
			s.Endpoints = []probe.EndpointProtocol{probe.EndpointEWS}
			s.EndpointsScope = probe.ScopeBoth
			started := time.Now()
			res := mustRun(t, address, s)
			if took := time.Since(started); took > 10*time.Second {
				t.Errorf("took %v", took)
			}
			bad := findCheck(t, res, probe.EndpointEWS, "", "mail.contoso.test")
			var classes []probe.ErrorClass
			for _, st := range bad.Steps {
				classes = append(classes, st.ErrorClass)
			}
			for _, h := range res.EndpointHosts {
				if h.Host == "mail.contoso.test" {
					for _, st := range h.Steps {
						classes = append(classes, st.ErrorClass)
					}
				}
			}
			found := false
			for _, c := range classes {
				found = found || c == tt.class
			}
			if bad.OK || !found {
				t.Errorf("hostile check ok=%v classes %v, want %s\n%s", bad.OK, classes, tt.class, res.Log())
			}
			if good := findCheck(t, res, probe.EndpointEWS, "", "internal.mail.contoso.test"); !good.OK {
				t.Errorf("the internal EWS failed beside the hostile one: %+v", good.Steps)
			}
		})
	}
}

// The endpoints spend the probe's connection budget: a spent budget is a
// failed step, not more dials.
func TestEndpointsSpendTheProbesConnectionBudget(t *testing.T) {
	e := newEstate(t)
	mb, _, err := e.AddExchange("contoso.test", "alice", "pw")
	must(t, err)
	s := settingsFor(e, mb)
	s.Endpoints = []probe.EndpointProtocol{probe.EndpointEWS}
	s.EndpointsScope = probe.ScopeBoth
	s.MaxConnectionAttempts = 2 // the chain's one and one endpoint host
	res := mustRun(t, mb.Address, s)
	var spent, passed int
	for _, h := range res.EndpointHosts {
		for _, st := range h.Steps {
			if st.ErrorClass == probe.ClassBudgetExhausted {
				spent++
			}
		}
		if h.OK {
			passed++
		}
	}
	if spent != 1 || passed != 1 {
		t.Errorf("%d hosts out of budget and %d passed, want 1 and 1:\n%s", spent, passed, res.Log())
	}
}

// The step log has the section ExRCA's Outlook connectivity test shows
// after Autodiscover, one line per step.
func TestEndpointStepLogReadsLikeConnectivityAnalyzer(t *testing.T) {
	e := newEstate(t)
	mb, _, err := e.AddExchange("contoso.test", "alice", "pw")
	must(t, err)
	s := settingsFor(e, mb)
	s.Endpoints = probe.EndpointProtocols
	log := mustRun(t, mb.Address, s).Log()
	for _, want := range []string{
		"Testing the endpoints Autodiscover returned.",
		"Testing the endpoint host mail.contoso.test on port 443 (EWS, MAPI/HTTP, OAB, Outlook on the web).",
		"✓ Attempting to resolve the host name mail.contoso.test in DNS … OK",
		"Testing EWS at https://mail.contoso.test/EWS/Exchange.asmx (external, from EXHTTP external).",
		"✓ Testing HTTP Authentication Methods for URL https://mail.contoso.test/EWS/Exchange.asmx … OK: HTTP 401 offering Negotiate, NTLM, Basic; the module answers Basic",
		"✓ Providing user credentials … OK",
		"✓ Testing the EWS GetFolder request for the Inbox folder … OK",
		"✓ Testing the MAPI Mail Store endpoint on the Exchange server … OK",
		"✓ Testing the MAPI Address Book endpoint on the Exchange server … OK",
		"✓ Testing the Offline Address Book download (oab.xml) … OK",
		"The answer returned no ActiveSync URL.",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("step log lacks %q\n%s", want, log)
		}
	}
	if strings.Contains(log, "internal.mail.contoso.test") {
		t.Error("the default scope checked internal URLs")
	}
}

// NTLM binds a connection to the account, so each endpoint URL starts on
// a connection of its own and still gets its 401 first; every check
// completes the NTLMv2 handshake the lab verifies.
func TestEndpointsAuthenticateWithNTLM(t *testing.T) {
	e := newEstate(t)
	mb, err := e.AddNTLMOnly("ntlm.test", "CONTOSO", "nina", "Correct-Horse1")
	must(t, err)
	gate := &lab.Autodiscover{
		NTLM:       &lab.NTLMVerifier{Accounts: map[string]string{`CONTOSO\nina`: "Correct-Horse1"}, Domain: "CONTOSO"},
		Challenges: []string{"Negotiate", "NTLM"},
		Users:      map[string]lab.Reply{mb.Address: {}},
	}
	must(t, e.HTTPS("mail.ntlm.test", &lab.Exchange{Auth: gate}))
	s := settingsFor(e, lab.Mailbox{})
	s.Auth = probe.AuthSettings{Type: probe.AuthNTLM, Username: mb.Username, Password: mb.Password}
	s.Endpoints = []probe.EndpointProtocol{probe.EndpointEWS, probe.EndpointMAPI, probe.EndpointOAB}
	res := mustRun(t, mb.Address, s)
	if !res.ChainSuccess {
		t.Fatalf("chain failed: %s", res.Reason)
	}
	if len(res.Endpoints) != 4 {
		t.Fatalf("%d endpoint checks, want EWS, two MAPI and OAB", len(res.Endpoints))
	}
	for _, c := range res.Endpoints {
		if !c.OK || !sameSteps(endpointSteps(c), authenticatedCheck) || !strings.Contains(c.Steps[1].Detail, "NTLM credentials") {
			t.Errorf("%s: %+v", c.What, c.Steps)
		}
	}
	var unauthenticated int
	for _, r := range e.RequestsTo("mail.ntlm.test") {
		if r.Authorization == "" {
			unauthenticated++
		}
	}
	if unauthenticated != 4 {
		t.Errorf("%d unauthenticated requests reached mail.ntlm.test, want one per URL", unauthenticated)
	}
}
