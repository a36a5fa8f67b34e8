package probe_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

const tokenHost = "login.lab.test"

// oauthEstate serves a token endpoint and an Autodiscover host that only
// takes Bearer tokens from it.
func oauthEstate(t *testing.T) (*lab.Estate, *lab.TokenServer) {
	t.Helper()
	e := newEstate(t)
	ts := &lab.TokenServer{Clients: map[string]string{"app-1": "client-Secret-9"}}
	must(t, e.HTTPS(tokenHost, ts))
	must(t, e.HTTPS("autodiscover.cloudonly.test", &lab.Autodiscover{
		Tokens:          ts,
		BearerChallenge: `authorization_uri="https://login.lab.test/common/oauth2/authorize", error="invalid_token"`,
		Challenges:      []string{`Bearer authorization_uri="https://login.lab.test/common/oauth2/authorize"`},
		Users:           map[string]lab.Reply{"olga@cloudonly.test": {Settings: &lab.Settings{Server: "outlook.cloudonly.test", MicrosoftOnline: true}}},
	}))
	return e, ts
}

func oauthSettings(e *lab.Estate, secret string) probe.Settings {
	s := settingsFor(e, lab.Mailbox{})
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	s.Auth = probe.AuthSettings{
		Type:         probe.AuthOAuth2,
		TokenURL:     "https://" + tokenHost + "/tenant/oauth2/v2.0/token",
		ClientID:     "app-1",
		ClientSecret: secret,
	}
	return s
}

func TestOAuth2TokensAnswerBearerChallengesAndAreCached(t *testing.T) {
	e, ts := oauthEstate(t)
	// One prober, as one configuration load builds: its token cache spans
	// the probes.
	p, err := probe.NewProber(oauthSettings(e, "client-Secret-9"), probe.Env{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		res, err := p.Run(context.Background(), probe.Target{Address: "olga@cloudonly.test"})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Success {
			t.Fatalf("run %d failed: %s\n%s", i, res.Reason, res.Log())
		}
		cred, _ := findStep(res, 0, "autodiscover.cloudonly.test", probe.StepCredentials)
		if !strings.Contains(cred.Detail, "Bearer credentials of client app-1") {
			t.Errorf("credentials detail %q", cred.Detail)
		}
	}
	if n := ts.Requests(); n != 1 {
		t.Errorf("%d token requests for two probes, want 1 (cached until expiry)", n)
	}
	for _, r := range e.RequestsTo("autodiscover.cloudonly.test") {
		if r.Authorization != "" && !strings.HasPrefix(r.Authorization, "Bearer lab-") {
			t.Errorf("unexpected Authorization %q", r.Authorization)
		}
	}
}

func TestOAuth2RefusedByTheTokenEndpointFailsTheCredentialsStep(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret string
		refuse bool
	}{{"wrong secret", "not-the-secret", false}, {"endpoint refuses everything", "client-Secret-9", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e, ts := oauthEstate(t)
			ts.Refuse.Store(tc.refuse)
			res := mustRun(t, "olga@cloudonly.test", oauthSettings(e, tc.secret))
			cred, _ := findStep(res, 0, "autodiscover.cloudonly.test", probe.StepCredentials)
			if res.Success || cred.OK || cred.ErrorClass != "auth_error" || !strings.Contains(cred.Detail, "invalid_client") {
				t.Fatalf("credentials step %+v\n%s", cred, res.Log())
			}
			if strings.Contains(res.Log(), tc.secret) {
				t.Error("the client secret is in the step log")
			}
			for _, r := range e.RequestsTo("autodiscover.cloudonly.test") {
				if r.Authorization != "" {
					t.Errorf("a token was sent although none was issued: %q", r.Authorization)
				}
			}
		})
	}
}

// The token endpoint is verified with the module's CA bundle, like the
// Autodiscover hosts: a token endpoint whose certificate the module does
// not trust gets no client secret and gives no token.
func TestOAuth2TokenEndpointIsVerifiedWithTheModuleCA(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []lab.HostOption
		success bool
	}{
		{"token endpoint signed by the module's CA", nil, true},
		{"token endpoint signed by another CA", []lab.HostOption{lab.WithUntrustedCert()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			ts := &lab.TokenServer{Clients: map[string]string{"app-1": "client-Secret-9"}}
			must(t, e.HTTPS(tokenHost, ts, tc.opts...))
			must(t, e.HTTPS("autodiscover.cloudonly.test", &lab.Autodiscover{
				Tokens:     ts,
				Challenges: []string{`Bearer authorization_uri="https://login.lab.test/common/oauth2/authorize"`},
				Users:      map[string]lab.Reply{"olga@cloudonly.test": {Settings: &lab.Settings{Server: "outlook.cloudonly.test"}}},
			}))
			res := mustRun(t, "olga@cloudonly.test", oauthSettings(e, "client-Secret-9"))
			cred, _ := findStep(res, 0, "autodiscover.cloudonly.test", probe.StepCredentials)
			if res.Success != tc.success {
				t.Fatalf("success=%v, want %v; credentials step %+v\n%s", res.Success, tc.success, cred, res.Log())
			}
			if !tc.success && (cred.ErrorClass != probe.ClassAuthError || ts.Requests() != 0) {
				t.Errorf("credentials step %+v and %d token requests: want auth_error and no request reaching the endpoint", cred, ts.Requests())
			}
		})
	}
}

func TestBearerChallengeWithoutOAuthIsClassifiedAsModernAuth(t *testing.T) {
	e, _ := oauthEstate(t)
	for _, tc := range []struct {
		name string
		auth probe.AuthSettings
	}{{"basic module", probe.AuthSettings{Type: probe.AuthBasic, Username: "olga@cloudonly.test", Password: "pw"}}, {"no credentials", probe.AuthSettings{}}} {
		t.Run(tc.name, func(t *testing.T) {
			s := settingsFor(e, lab.Mailbox{})
			s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
			s.Auth = tc.auth
			res := mustRun(t, "olga@cloudonly.test", s)
			cred, _ := findStep(res, 0, "autodiscover.cloudonly.test", probe.StepCredentials)
			if cred.ErrorClass != "bearer_required" || !strings.Contains(cred.Detail, "authorization_uri=https://login.lab.test/common/oauth2/authorize") {
				t.Errorf("credentials step %+v, want bearer_required naming the authorization_uri", cred)
			}
		})
	}
	for _, r := range e.Requests() {
		if strings.HasPrefix(r.Authorization, "Basic") {
			t.Errorf("Basic credentials sent to an OAuth-only server")
		}
	}
}

func TestExchangeOnlineAnswersAreClassifiedWithTheirDiagnostics(t *testing.T) {
	cases := []struct {
		name    string
		handler http.Handler
		class   probe.ErrorClass
		detail  []string
	}{
		{"456 with X-AutoDiscovery-Error", headersThen(456, map[string]string{"X-AutoDiscovery-Error": "LiveIdBasicAuth:AppPasswordRequired", "request-id": "a1b2", "X-FEServer": "AM0PR01CA0001"}), "account_state",
			[]string{"X-AutoDiscovery-Error: LiveIdBasicAuth:AppPasswordRequired", "request-id=a1b2", "X-FEServer=AM0PR01CA0001"}},
		{"429 throttled", headersThen(http.StatusTooManyRequests, map[string]string{"X-OWA-Version": "15.20.7000.10"}), "throttled", []string{"X-OWA-Version=15.20.7000.10"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			must(t, e.HTTPS("autodiscover.exo.test", tc.handler))
			s := settingsFor(e, lab.Mailbox{})
			s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
			res := mustRun(t, "p@exo.test", s)
			req, _ := findStep(res, 0, "autodiscover.exo.test", probe.StepRequest)
			if req.OK || req.ErrorClass != tc.class {
				t.Fatalf("request step %+v, want %s", req, tc.class)
			}
			for _, d := range tc.detail {
				if !strings.Contains(req.Detail, d) {
					t.Errorf("request detail %q lacks %q", req.Detail, d)
				}
			}
		})
	}
}

func headersThen(status int, headers map[string]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
	})
}

func v2Estate(t *testing.T) *lab.Estate {
	t.Helper()
	e := newEstate(t)
	exo := &lab.V2{
		URLs: map[string]map[string]string{
			"quinn@v2.test": {"ews": "https://outlook.v2cloud.test/EWS/Exchange.asmx", "activesync": "https://outlook.v2cloud.test/Microsoft-Server-ActiveSync", "autodiscoverv1": "https://outlook.v2cloud.test/autodiscover/autodiscover.xml"},
		},
		Redirect: map[string]string{"rita@hybrid2.test": "https://autodiscover.hybrid2.test"},
	}
	onprem := &lab.V2{URLs: map[string]map[string]string{"rita@hybrid2.test": {"ews": "https://mail.hybrid2.test/EWS/Exchange.asmx"}}}
	must(t, e.HTTPS("outlook.v2cloud.test", exo))
	must(t, e.HTTPS("autodiscover.hybrid2.test", onprem))
	return e
}

func TestV2JSONReturnsAnEndpointPerProtocol(t *testing.T) {
	e := v2Estate(t)
	s := settingsFor(e, lab.Mailbox{})
	s.Methods = []probe.Method{probe.MethodV2JSON}
	s.V2Hosts = []string{"outlook.v2cloud.test"}
	res := mustRun(t, "quinn@v2.test", s)
	if !res.Success || len(res.V2) != 3 {
		t.Fatalf("success=%v v2=%+v\n%s", res.Success, res.V2, res.Log())
	}
	want := map[string]string{"Ews": "https://outlook.v2cloud.test/EWS/Exchange.asmx", "ActiveSync": "https://outlook.v2cloud.test/Microsoft-Server-ActiveSync", "AutodiscoverV1": "https://outlook.v2cloud.test/autodiscover/autodiscover.xml"}
	for _, v := range res.V2 {
		if !v.OK || v.URL != want[v.Protocol] {
			t.Errorf("%s: %+v, want %s", v.Protocol, v, want[v.Protocol])
		}
	}
	if _, ok := findStep(res, 0, "outlook.v2cloud.test", probe.StepParse); !ok {
		t.Error("no parse step")
	}
	// The text step log shows v2's own steps beside the SOAP and
	// federation sections.
	if log := res.Log(); !strings.Contains(log, "Attempting Autodiscover v2 (ews) at https://outlook.v2cloud.test/") || !strings.Contains(log, "Sending an anonymous Autodiscover v2 GET to outlook.v2cloud.test") {
		t.Errorf("the v2 steps are missing from the step log:\n%s", log)
	}
	var methods []string
	for _, st := range res.Steps {
		if st.Name == probe.StepParse {
			methods = append(methods, string(st.Method))
		}
		if st.Name == probe.StepCredentials {
			t.Error("v2 must be anonymous")
		}
	}
	if strings.Join(methods, ",") != "v2_ews,v2_activesync,v2_autodiscoverv1" {
		t.Errorf("parse steps per protocol %v", methods)
	}
	for _, r := range e.Requests() {
		if r.Method != http.MethodGet || r.Authorization != "" {
			t.Errorf("v2 request %s with Authorization %q", r.Method, r.Authorization)
		}
	}
}

func TestV2FollowsTheRedirectOfAHybridMailboxToOnPremises(t *testing.T) {
	e := v2Estate(t)
	s := settingsFor(e, lab.Mailbox{})
	s.Methods = []probe.Method{probe.MethodV2JSON}
	s.V2Hosts = []string{"outlook.v2cloud.test"}
	s.V2Protocols = []string{"Ews"}
	res := mustRun(t, "rita@hybrid2.test", s)
	if !res.Success || len(res.V2) != 1 || res.V2[0].URL != "https://mail.hybrid2.test/EWS/Exchange.asmx" || res.V2[0].Redirects != 1 || res.V2[0].Host != "autodiscover.hybrid2.test" {
		t.Fatalf("v2 %+v\n%s", res.V2, res.Log())
	}
	if st, ok := findStep(res, 1, "autodiscover.hybrid2.test", probe.StepParse); !ok || st.Method != "v2_ews" {
		t.Errorf("the on-premises answer is not at v2 hop 1: %+v", st)
	}
}

func TestV2ErrorsAndGarbageFailWithAClass(t *testing.T) {
	cases := []struct {
		name     string
		protocol string
		handler  http.Handler
		class    probe.ErrorClass
		code     string
	}{
		{"unknown protocol", "Nonsense", nil, "v2_error", "ProtocolNotSupported"},
		{"malformed JSON", "Ews", lab.Static(200, "application/json", `{"Protocol": "Ews", "Url": `), "bad_payload", ""},
		{"Url not https", "Ews", lab.Static(200, "application/json", `{"Protocol":"Ews","Url":"http://x.test/EWS"}`), "bad_payload", ""},
		{"HTML", "Ews", lab.Static(200, "text/html", `<html></html>`), "bad_payload", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := v2Estate(t)
			host := "outlook.v2cloud.test"
			if tc.handler != nil {
				host = "garbage.v2.test"
				must(t, e.HTTPS(host, tc.handler))
			}
			s := settingsFor(e, lab.Mailbox{})
			s.Methods = []probe.Method{probe.MethodV2JSON}
			s.V2Hosts = []string{host}
			s.V2Protocols = []string{tc.protocol}
			res := mustRun(t, "quinn@v2.test", s)
			st, _ := findStep(res, 0, host, probe.StepParse)
			if res.Success || st.ErrorClass != tc.class || res.V2[0].ErrorCode != tc.code {
				t.Fatalf("parse %+v, v2 %+v; want %s %q\n%s", st, res.V2, tc.class, tc.code, res.Log())
			}
		})
	}
}

func TestCheckAllAddressesShowsEachNodeBehindAName(t *testing.T) {
	e := newEstate(t)
	mb, ad, err := e.AddOnPremises("pool.test", "sam", "pw")
	if err != nil {
		t.Fatal(err)
	}
	host := "autodiscover.pool.test"
	dead, err := e.AddDeadAddress(host)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	stale, err := e.HTTPSNode(host, "node3", ad, lab.WithCert(lab.CertSpec{Names: []string{host}, NotBefore: past.AddDate(0, -3, 0), NotAfter: past}))
	if err != nil {
		t.Fatal(err)
	}
	live, _ := e.IPOf(host)
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	s.CheckAllAddresses = true
	res := mustRun(t, mb.Address, s)
	if !res.Success {
		t.Fatalf("the chain should succeed through the first node: %s\n%s", res.Reason, res.Log())
	}
	byAddr := map[string]probe.AddressCheck{}
	for _, ac := range res.AddressChecks {
		if ac.Host != host {
			t.Errorf("address check for unexpected host %s", ac.Host)
		}
		byAddr[ac.Address] = ac
	}
	if len(byAddr) != 3 {
		t.Fatalf("address checks %+v, want 3 addresses", res.AddressChecks)
	}
	last := func(ac probe.AddressCheck) probe.Step { return ac.Steps[len(ac.Steps)-1] }
	if st := byAddr[dead].Steps[0]; st.Name != probe.StepTCP || st.OK || st.ErrorClass != "refused" {
		t.Errorf("dead node %s: %+v", dead, st)
	}
	if st := last(byAddr[stale]); st.Name != probe.StepCertValidity || st.OK || st.ErrorClass != "expired" {
		t.Errorf("stale node %s: %+v", stale, byAddr[stale].Steps)
	}
	if c := byAddr[stale].Cert; c == nil || !c.NotAfter.Before(time.Now()) {
		t.Errorf("stale node certificate %+v", c)
	}
	for _, st := range byAddr[live].Steps {
		if !st.OK {
			t.Errorf("live node %s: %+v", live, st)
		}
	}
	if !strings.Contains(res.Log(), "the load-balancer node view") {
		t.Error("the step log does not show the address checks")
	}
}

func TestExpectationsCatchDriftAndFailTheProbe(t *testing.T) {
	e := newEstate(t)
	mb, err := e.AddHybrid("contoso.test", "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	three, two := 3, 2
	cases := []struct {
		name   string
		expect probe.Expectations
		failed []string
	}{
		{"all met", probe.Expectations{EndpointHost: lab.CloudPod, EWSURLHost: "outlook.outlook.test", MaxRedirects: &three, Protocols: []string{"mapiHttp", "exhttp", "WEB"}, CertMinDays: 30}, nil},
		{"still on premises expected", probe.Expectations{EndpointHost: "autodiscover.contoso.test"}, []string{"endpoint_host"}},
		{"fewer hops and the legacy view expected", probe.Expectations{MaxRedirects: &two, Protocols: []string{"EXPR"}}, []string{"max_redirects", "protocols"}},
		{"certificates must last a year", probe.Expectations{CertMinDays: 365, EWSURLHost: "mail.contoso.test"}, []string{"ews_url_host", "cert_min_days"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := probe.NewProber(settingsFor(e, mb), probe.Env{})
			if err != nil {
				t.Fatal(err)
			}
			exp := tc.expect
			res, err := p.Run(context.Background(), probe.Target{Address: mb.Address, Expect: &exp})
			if err != nil {
				t.Fatal(err)
			}
			var failed []string
			for _, x := range res.Expectations {
				if !x.OK {
					failed = append(failed, x.Name)
				}
				if x.Detail == "" {
					t.Errorf("%s has no detail", x.Name)
				}
			}
			if strings.Join(failed, ",") != strings.Join(tc.failed, ",") {
				t.Errorf("failed expectations %v, want %v\n%s", failed, tc.failed, res.Log())
			}
			if res.ChainSuccess != true || res.Success != (len(tc.failed) == 0) {
				t.Errorf("chain=%v success=%v", res.ChainSuccess, res.Success)
			}
			if len(tc.failed) > 0 && (!strings.Contains(res.Reason, "expectation not met: "+tc.failed[0]) || !strings.Contains(res.Log(), "NOT MET")) {
				t.Errorf("reason %q; the log must say why", res.Reason)
			}
		})
	}
}

func TestMobileSyncRedirectAndErrorAreFollowedAndReported(t *testing.T) {
	e := newEstate(t)
	mb, ad, err := e.AddOnPremises("eas2.test", "tom", "pw")
	if err != nil {
		t.Fatal(err)
	}
	ad.SetUser(mb.Address, lab.Reply{RedirectAddr: "tom@eas3.test"})
	target := &lab.Autodiscover{Users: map[string]lab.Reply{"tom@eas3.test": {ErrorCode: "2", ErrorMessage: "Protocol error"}}}
	must(t, e.HTTPS("autodiscover.eas3.test", target))
	s := settingsFor(e, mb)
	s.Schema = probe.SchemaMobileSync
	res := mustRun(t, mb.Address, s)
	if res.RedirectHops != 1 || res.Success || res.ErrorCode != "2" || res.ErrorMessage != "Protocol error" || res.Response.Schema != probe.SchemaMobileSync {
		t.Fatalf("hops=%d success=%v code=%q message=%q\n%s", res.RedirectHops, res.Success, res.ErrorCode, res.ErrorMessage, res.Log())
	}
}
