package probe_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// withSOAP adds method soap (and, when federation, the federation check)
// to s.
func withSOAP(s probe.Settings, federation bool) probe.Settings {
	s.Methods = append(append([]probe.Method{}, probe.DefaultMethods...), probe.MethodSOAP)
	s.Federation = federation
	return s
}

// hybridEstate builds the hybrid flow of domain for jane.
func hybridEstate(t *testing.T, domain string) (*lab.Estate, lab.Mailbox) {
	t.Helper()
	e := newEstate(t)
	mb, err := e.AddHybrid(domain, "jane", "Hybrid-pw1")
	if err != nil {
		t.Fatal(err)
	}
	return e, mb
}

// soapOnly serves status and body from autodiscover.soap.test after a
// Basic challenge, with settings that ask SOAP alone for ann@soap.test.
func soapOnly(t *testing.T, status int, body string) (*lab.Estate, lab.Mailbox, probe.Settings) {
	t.Helper()
	e := newEstate(t)
	if err := e.HTTPS("autodiscover.soap.test", soapAnswer("ann@soap.test", "pw", status, body)); err != nil {
		t.Fatal(err)
	}
	mb := lab.Mailbox{Address: "ann@soap.test", Username: "ann@soap.test", Password: "pw"}
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodSOAP}
	return e, mb, s
}

func soapSteps(res *probe.Result) []probe.Step {
	var out []probe.Step
	for _, st := range res.Steps {
		if strings.HasPrefix(string(st.Method), probe.MethodSOAPPrefix) {
			out = append(out, st)
		}
	}
	return out
}

func TestSOAPFollowsTheHybridRedirectsToTheCloud(t *testing.T) {
	e, mb := hybridEstate(t, "contoso.test")
	res := mustRun(t, mb.Address, withSOAP(settingsFor(e, mb), false))
	s := res.SOAP
	if !res.Success || s == nil || !s.OK {
		t.Fatalf("success %v, SOAP %+v\n%s", res.Success, s, res.Log())
	}
	if want := "https://outlook.outlook.test/EWS/Exchange.asmx"; s.EWSURL != want || s.EWSSource != "ExternalEwsUrl" {
		t.Errorf("EWS %s from %s, want %s from ExternalEwsUrl", s.EWSURL, s.EWSSource, want)
	}
	// RedirectAddress to the tenant, the HTTP redirect method to the
	// front door, RedirectUrl to the pod: three hops, as POX.
	if s.Redirects != 3 || s.Mailbox != "jane@contoso.mail.onmicrosoft.test" || !strings.HasPrefix(s.URL, "https://pod51049.outlook.test/") {
		t.Errorf("redirects %d, mailbox %s, URL %s", s.Redirects, s.Mailbox, s.URL)
	}
	methods := map[probe.Method]bool{}
	for _, st := range soapSteps(res) {
		methods[st.Method] = true
	}
	for _, m := range []probe.Method{"soap_root_domain", "soap_autodiscover_domain", "soap_http_redirect", "soap_redirect"} {
		if !methods[m] {
			t.Errorf("no step under method %s: %v", m, methods)
		}
	}
	if res.RedirectHops != 3 || res.FinalURL == "" {
		t.Errorf("the POX chain's own verdict changed: %d hops, %q", res.RedirectHops, res.FinalURL)
	}
	log := res.Log()
	for _, want := range []string{"Testing SOAP Autodiscover (autodiscover.svc, GetUserSettings)", "Attempting to send a SOAP GetUserSettings request to https://autodiscover.contoso.test/autodiscover/autodiscover.svc", "RedirectAddress jane@contoso.mail.onmicrosoft.test", "SOAP Autodiscover returned settings from"} {
		if !strings.Contains(log, want) {
			t.Errorf("the step log lacks %q:\n%s", want, log)
		}
	}
}

func TestSOAPAloneStandsForTheVerdict(t *testing.T) {
	e := newEstate(t)
	mb, _, err := e.AddExchange("fabrikam.test", "omar", "pw-2")
	if err != nil {
		t.Fatal(err)
	}
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodSOAP}
	res := mustRun(t, mb.Address, s)
	if !res.Success || !res.SOAP.OK || res.SOAP.EWSURL != "https://mail.fabrikam.test/EWS/Exchange.asmx" {
		t.Fatalf("success %v, SOAP %+v", res.Success, res.SOAP)
	}
	for _, st := range res.Steps {
		if !strings.HasPrefix(string(st.Method), probe.MethodSOAPPrefix) {
			t.Errorf("step %s under method %s: only SOAP was asked for", st.Name, st.Method)
		}
	}
	if got := res.SOAP.Setting("CasVersion"); got != lab.ExchangeBuild {
		t.Errorf("CasVersion %q, want %q", got, lab.ExchangeBuild)
	}
	if !strings.Contains(res.Log(), "SOAP Autodiscover returned settings from https://autodiscover.fabrikam.test/autodiscover/autodiscover.svc") {
		t.Errorf("the final line does not name the SOAP URL:\n%s", res.Log())
	}
}

func TestDeadSOAPServiceFailsTheProbeWhilePOXWorks(t *testing.T) {
	e, mb := hybridEstate(t, "contoso.test")
	e.HybridServer("contoso.test").SetSOAPStatus(http.StatusServiceUnavailable)
	res := mustRun(t, mb.Address, withSOAP(settingsFor(e, mb), false))
	if !res.ChainSuccess {
		t.Fatalf("POX failed too:\n%s", res.Log())
	}
	if res.Success || res.SOAP.OK {
		t.Fatalf("the probe passed with autodiscover.svc answering 503")
	}
	if !strings.HasPrefix(res.Reason, "SOAP Autodiscover failed:") || !strings.Contains(res.Reason, "autodiscover.contoso.test") {
		t.Errorf("reason %q", res.Reason)
	}
	f := res.Failure
	if f == nil || f.Method != "soap_autodiscover_domain" || f.Class != probe.ClassServerError {
		t.Errorf("decisive failure %+v, want server_error under soap_autodiscover_domain", f)
	}
}

// soapAnswer serves body (with status) to every SOAP request after a
// Basic challenge, like a server of the estate.
func soapAnswer(user, password string, status int, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

const (
	envelopeOpen  = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>`
	envelopeClose = `</s:Body></s:Envelope>`
)

func userResponse(code, message, target, settings string) string {
	return envelopeOpen + `<GetUserSettingsResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover"><Response><ErrorCode>NoError</ErrorCode><UserResponses><UserResponse><ErrorCode>` + code + `</ErrorCode><ErrorMessage>` + message + `</ErrorMessage><RedirectTarget>` + target + `</RedirectTarget><UserSettings>` + settings + `</UserSettings></UserResponse></UserResponses></Response></GetUserSettingsResponseMessage>` + envelopeClose
}

func TestBadSOAPAnswersFailWithAClassAndADetail(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		class  probe.ErrorClass
		detail string
	}{
		{"a fault without detail", 500, envelopeOpen + `<s:Fault></s:Fault>` + envelopeClose, probe.ClassSOAPFault, "neither a fault code nor a fault string"},
		{"a fault with its code", 500, envelopeOpen + `<s:Fault><faultcode>a:InternalServiceFault</faultcode><faultstring>boom</faultstring></s:Fault>` + envelopeClose, probe.ClassSOAPFault, "a:InternalServiceFault: boom"},
		{"InvalidUser", 200, userResponse("InvalidUser", "Invalid user: 'ann@soap.test'", "", ""), probe.ClassInvalidUser, "ErrorCode InvalidUser"},
		{"ServerBusy", 200, userResponse("ServerBusy", "The server is too busy", "", ""), probe.ClassServerBusy, "ErrorCode ServerBusy"},
		{"InvalidRequest for the whole request", 200, envelopeOpen + `<GetUserSettingsResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover"><Response><ErrorCode>InvalidRequest</ErrorCode><ErrorMessage>The request is invalid.</ErrorMessage></Response></GetUserSettingsResponseMessage>` + envelopeClose, probe.ClassInvalidRequest, "the request was refused"},
		{"settings without an EWS URL", 200, userResponse("NoError", "No error.", "", `<UserSetting><Name>UserDisplayName</Name><Value>Ann</Value></UserSetting>`), probe.ClassNoSettings, "missing UserDN"},
		{"an envelope in the wrong namespace", 200, `<s:Envelope xmlns:s="urn:not-soap"><s:Body/></s:Envelope>`, probe.ClassNotAutodiscover, "not SOAP 1.1's"},
		{"a SOAP 1.2 envelope", 200, `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>`, probe.ClassNotAutodiscover, "SOAP 1.2"},
		{"the message in the wrong namespace", 200, envelopeOpen + `<GetUserSettingsResponseMessage xmlns="urn:other"/>` + envelopeClose, probe.ClassNotAutodiscover, "not Autodiscover's"},
		{"an XML bomb", 200, `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>&lol2;</s:Body></s:Envelope>`, probe.ClassBadXML, "DOCTYPE"},
		{"an HTML page", 200, `<html><body>hello</body></html>`, probe.ClassNotAutodiscover, "no SOAP envelope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, mb, s := soapOnly(t, tt.status, tt.body)
			res := mustRun(t, mb.Address, s)
			if res.Success || res.SOAP == nil || res.SOAP.OK {
				t.Fatalf("success %v with %s", res.Success, tt.name)
			}
			var parse *probe.Step
			for i, st := range res.Steps {
				if st.Method == "soap_autodiscover_domain" && st.Name == probe.StepParse {
					parse = &res.Steps[i]
				}
			}
			if parse == nil || parse.OK || parse.ErrorClass != tt.class || !strings.Contains(parse.Detail, tt.detail) {
				t.Fatalf("parse step %+v, want class %s with %q", parse, tt.class, tt.detail)
			}
			if res.SOAP.Reason == "" || res.Failure == nil || res.Failure.Class != tt.class {
				t.Errorf("reason %q, failure %+v", res.SOAP.Reason, res.Failure)
			}
		})
	}
}

func TestSOAPRedirectsAreHeldToTheRules(t *testing.T) {
	tests := []struct {
		name   string
		target string
		detail string
	}{
		{"plain http", "http://evil.test/autodiscover/autodiscover.svc", "only https:// targets are followed"},
		{"another port", "https://evil.test:8443/autodiscover/autodiscover.svc", "port 8443 is not 443"},
		{"not autodiscover.svc", "https://evil.test/owa/", "the path is not /autodiscover/…/autodiscover.svc"},
		{"user info", "https://user:pass@evil.test/autodiscover/autodiscover.svc", "user info refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, mb, s := soapOnly(t, 200, userResponse("RedirectUrl", "Redirection URL.", tt.target, ""))
			res := mustRun(t, mb.Address, s)
			var redirect *probe.Step
			for i, st := range soapSteps(res) {
				if st.Name == probe.StepRedirect {
					redirect = &soapSteps(res)[i]
				}
			}
			if redirect == nil || redirect.OK || redirect.ErrorClass != probe.ClassBadRedirect || !strings.Contains(redirect.Detail, tt.detail) {
				t.Fatalf("redirect step %+v, want bad_redirect with %q", redirect, tt.detail)
			}
			if res.SOAP.OK || len(e.RequestsTo("evil.test")) > 0 {
				t.Errorf("the refused target was contacted")
			}
		})
	}
}

func TestSOAPCredentialsStayInThePairedDomains(t *testing.T) {
	e, mb, s := soapOnly(t, 200, userResponse("RedirectUrl", "Redirection URL.", "https://autodiscover.elsewhere.test/autodiscover/autodiscover.svc", ""))
	if err := e.HTTPS("autodiscover.elsewhere.test", soapAnswer("ann@soap.test", "pw", 200, userResponse("NoError", "", "", `<UserSetting><Name>ExternalEwsUrl</Name><Value>https://mail.elsewhere.test/EWS/Exchange.asmx</Value></UserSetting>`))); err != nil {
		t.Fatal(err)
	}
	s.ConnectTo = e.ConnectTo() // the settings were made before this host started
	res := mustRun(t, mb.Address, s)
	for _, r := range e.RequestsTo("autodiscover.elsewhere.test") {
		if r.Authorization != "" {
			t.Fatalf("credentials went to a domain the module did not pair them with: %s", r.Authorization[:5])
		}
	}
	if len(e.RequestsTo("autodiscover.elsewhere.test")) == 0 {
		t.Fatalf("the redirect was not followed:\n%s", res.Log())
	}
	if res.SOAP.OK || res.Failure == nil || res.Failure.Class != probe.ClassWithheldDomain {
		t.Errorf("SOAP %+v, failure %+v, want credentials withheld", res.SOAP, res.Failure)
	}
}

func TestFederationCheckReadsTheTrustAnonymously(t *testing.T) {
	e, mb := hybridEstate(t, "contoso.test")
	res := mustRun(t, mb.Address, withSOAP(settingsFor(e, mb), true))
	f := res.Federation
	if f == nil || !f.OK {
		t.Fatalf("federation %+v\n%s", f, res.Log())
	}
	if f.ApplicationURI != lab.HybridApplicationURI("contoso.test") || len(f.TokenIssuers) != 1 || f.TokenIssuers[0].URI != "urn:federation:MicrosoftOnline" {
		t.Errorf("ApplicationUri %q, issuers %+v", f.ApplicationURI, f.TokenIssuers)
	}
	if f.WSSecurityURL != "https://autodiscover.contoso.test/autodiscover/autodiscover.svc/WSSecurity" || !f.WSSecurityOK {
		t.Errorf("WSSecurity %s ok %v", f.WSSecurityURL, f.WSSecurityOK)
	}
	// GetFederationInformation has to be anonymous: none of the
	// federation requests carries credentials.
	sent := 0
	for _, r := range e.RequestsTo("autodiscover.contoso.test") {
		body := r.Header.Get("SOAPAction")
		if strings.Contains(body, "GetFederationInformation") {
			sent++
			if r.Authorization != "" {
				t.Errorf("a federation request to %s carried credentials", r.Path)
			}
		}
	}
	if sent < 2 {
		t.Errorf("%d federation requests reached the on-premises server, want GetFederationInformation and WSSecurity", sent)
	}
	if !strings.Contains(res.Log(), "Testing the WSSecurity endpoint https://autodiscover.contoso.test/autodiscover/autodiscover.svc/WSSecurity that Exchange Online calls … OK") {
		t.Errorf("step log:\n%s", res.Log())
	}
}

func TestFederationFailuresAreReported(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(*lab.Autodiscover)
		step   probe.StepName
		class  probe.ErrorClass
	}{
		{"no federation trust", func(a *lab.Autodiscover) { a.SetFederation(nil) }, probe.StepParse, probe.ClassNotFederated},
		{"WSSecurity behind HTTP authentication", func(a *lab.Autodiscover) { a.SetWSSecurityOff(true) }, probe.StepWSSecurity, probe.ClassUnauthorized},
		{"the SOAP service down", func(a *lab.Autodiscover) { a.SetSOAPStatus(http.StatusServiceUnavailable) }, probe.StepRequest, probe.ClassServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, mb := hybridEstate(t, "contoso.test")
			tt.break_(e.HybridServer("contoso.test"))
			s := settingsFor(e, mb)
			s.Federation = true
			res := mustRun(t, mb.Address, s)
			if res.Federation == nil || res.Federation.OK || res.Federation.Reason == "" {
				t.Fatalf("federation %+v", res.Federation)
			}
			found := false
			for _, st := range res.Steps {
				if st.Method == "federation_autodiscover_domain" && st.Name == tt.step && !st.OK && st.ErrorClass == tt.class {
					found = true
				}
			}
			if !found {
				t.Errorf("no failed %s step of class %s:\n%s", tt.step, tt.class, res.Log())
			}
			// The federation check alone does not fail the probe.
			if !res.Success {
				t.Errorf("the probe failed on the federation check alone: %s", res.Reason)
			}
		})
	}
}

func TestChangedFederationTrustFailsTheExpectation(t *testing.T) {
	t.Run("a federation check that failed on a step is the decisive failure", func(t *testing.T) {
		e, mb := hybridEstate(t, "contoso.test")
		e.HybridServer("contoso.test").SetFederation(nil)
		s := settingsFor(e, mb)
		s.Federation = true
		p, err := probe.NewProber(s, probe.Env{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Run(t.Context(), probe.Target{Address: mb.Address, Expect: &probe.Expectations{FederationApplicationURI: lab.HybridApplicationURI("contoso.test")}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Success || res.Failure == nil || res.Failure.Class != probe.ClassNotFederated || res.Failure.Method != "federation_autodiscover_domain" {
			t.Errorf("failure %+v, want not_federated under federation_autodiscover_domain", res.Failure)
		}
	})
	e, mb := hybridEstate(t, "contoso.test")
	s := settingsFor(e, mb)
	s.Federation = true
	p, err := probe.NewProber(s, probe.Env{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		want string
		ok   bool
	}{{lab.HybridApplicationURI("contoso.test"), true}, {"FYDIBOHF25SPDLT.old-forest.test", false}} {
		res, err := p.Run(t.Context(), probe.Target{Address: mb.Address, Expect: &probe.Expectations{FederationApplicationURI: strings.ToLower(tt.want)}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Success != tt.ok || len(res.Expectations) != 1 || res.Expectations[0].OK != tt.ok {
			t.Errorf("expecting %s: success %v, expectations %+v", tt.want, res.Success, res.Expectations)
		}
		if !tt.ok && (res.Failure == nil || res.Failure.Class != probe.ClassExpectationNotMet || !strings.Contains(res.Reason, probe.ExpectFederationAppURI)) {
			t.Errorf("a changed ApplicationUri failed with %+v, reason %q; want expectation_not_met", res.Failure, res.Reason)
		}
	}
}

func TestSOAPAnswerWithAByteOrderMarkIsRead(t *testing.T) {
	body := "\uFEFF\n" + userResponse("NoError", "No error.", "", `<UserSetting><Name>ExternalEwsUrl</Name><Value>https://mail.soap.test/EWS/Exchange.asmx</Value></UserSetting>`)
	_, mb, s := soapOnly(t, 200, body)
	res := mustRun(t, mb.Address, s)
	if !res.SOAP.OK || res.SOAP.EWSURL != "https://mail.soap.test/EWS/Exchange.asmx" {
		t.Errorf("SOAP %+v\n%s", res.SOAP, res.Log())
	}
	if !strings.Contains(res.Log(), "Testing SOAP Autodiscover") {
		t.Error("no SOAP section")
	}
}

func TestFederationStepLogHeadsTheWSSecurityCall(t *testing.T) {
	e, mb := hybridEstate(t, "contoso.test")
	s := settingsFor(e, mb)
	s.Federation = true
	log := mustRun(t, mb.Address, s).Log()
	if !strings.Contains(log, "  Testing the WSSecurity endpoint https://autodiscover.contoso.test/autodiscover/autodiscover.svc/WSSecurity that Exchange Online calls with its federation token.\n") {
		t.Errorf("the WSSecurity call is not headed as its own check:\n%s", log)
	}
}
