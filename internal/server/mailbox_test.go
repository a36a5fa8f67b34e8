package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	kitlog "github.com/go-kit/log"
	"golang.org/x/net/html"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// pageServer is a Server over a hand-made configuration whose mailboxes
// have the given last results (nil: not probed yet), for the pages alone.
func pageServer(t testing.TB, results map[string]*probe.Result) *Server {
	t.Helper()
	cfg := &config.Config{}
	h := newHistory(len(results) + 1)
	for name, res := range results {
		cfg.Mailboxes = append(cfg.Mailboxes, &config.Mailbox{Name: name, Module: "m", Labels: map[string]string{"site": "hq"}})
		if res != nil {
			h.add(name, "m", res)
		}
	}
	return &Server{cur: &Loaded{Config: cfg}, history: h, logger: kitlog.NewNopLogger(), metrics: newMetrics()}
}

// expiredResult is an on-premises run whose autodiscover host presents a
// certificate that expired three days ago.
func expiredResult() *probe.Result {
	notAfter := time.Now().Add(-72*time.Hour - time.Minute)
	res := failedAt(&probe.Result{Mailbox: "dave@expired.test", Duration: 21 * time.Millisecond, Steps: []probe.Step{
		failed(0, probe.MethodRootDomain, "expired.test", probe.StepDNS, probe.ClassNXDomain),
		passed(0, probe.MethodAutodiscoverDomain, "autodiscover.expired.test", probe.StepDNS, "resolved 127.0.0.18"),
		passed(0, probe.MethodAutodiscoverDomain, "autodiscover.expired.test", probe.StepCertTrust, ""),
		failed(0, probe.MethodAutodiscoverDomain, "autodiscover.expired.test", probe.StepCertValidity, probe.ClassExpired),
		failed(0, probe.MethodHTTPRedirect, "autodiscover.expired.test", probe.StepTCP, probe.ClassRefused),
	}, Certificates: []probe.CertInfo{{
		Host: "autodiscover.expired.test", Address: "127.0.0.18", Subject: "CN=autodiscover.expired.test", Issuer: "CN=Lab Root CA",
		DNSNames: []string{"autodiscover.expired.test"}, NotAfter: notAfter, NameOK: true, TrustOK: true,
	}}}, 3)
	res.Failure.Sentence = "the certificate of autodiscover.expired.test expired on " + notAfter.UTC().Format(time.DateOnly) + " (autodiscover host)"
	return res
}

func TestMailboxPageAnswersBadInputWith400AndUnknownTargetsWith404(t *testing.T) {
	s := pageServer(t, map[string]*probe.Result{"expired-dave": expiredResult(), "fresh-fay": nil})
	h := s.routes()
	cases := []struct {
		name   string
		method string
		url    string
		code   int
		reason string
	}{
		{"no target", http.MethodGet, "/mailbox", http.StatusBadRequest, "target parameter is missing"},
		{"an empty target", http.MethodGet, "/mailbox?target=", http.StatusBadRequest, "target parameter is missing"},
		{"two targets", http.MethodGet, "/mailbox?target=expired-dave&target=fresh-fay", http.StatusBadRequest, "give one target"},
		{"markup for a name", http.MethodGet, "/mailbox?target=%3Cscript%3E", http.StatusBadRequest, "is not a mailbox name"},
		{"an address for a name", http.MethodGet, "/mailbox?target=dave@expired.test", http.StatusBadRequest, "is not a mailbox name"},
		{"a name longer than any mailbox's", http.MethodGet, "/mailbox?target=" + strings.Repeat("a", 65), http.StatusBadRequest, "is not a mailbox name"},
		{"a name nobody configured", http.MethodGet, "/mailbox?target=nobody", http.StatusNotFound, `unknown target "nobody"`},
		{"a POST", http.MethodPost, "/mailbox?target=expired-dave", http.StatusMethodNotAllowed, "takes GET"},
		{"a mailbox not probed yet", http.MethodGet, "/mailbox?target=fresh-fay", http.StatusOK, "Not probed yet"},
		{"a probed mailbox", http.MethodGet, "/mailbox?target=expired-dave", http.StatusOK, `<details class="test failed" open>`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.url, nil))
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.reason) {
				t.Errorf("%s %s = %d %.300q; want %d with %q", tc.method, tc.url, rec.Code, rec.Body.String(), tc.code, tc.reason)
			}
		})
	}
}

func TestMailboxPageFoldsTheStepLogWithTheFailureOpen(t *testing.T) {
	s := pageServer(t, map[string]*probe.Result{"expired-dave": expiredResult()})
	code, page := get(t, s.routes(), "/mailbox?target=expired-dave", nil)
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		`<details class="hop-group failed" data-hop="0" open>`,
		// The domain root failed in DNS: open; its step crossed.
		`<details class="candidate failed" open>
<summary><span class="mark">✗</span>Potential Autodiscover URL (domain root) <span class="url">https://expired.test/autodiscover/autodiscover.xml</span></summary>`,
		`<li class="step failed decisive" data-step="cert_validity"><span class="mark">✗</span><span class="phrase">Checking the certificate dates</span> … <span class="verdict">FAILED (<span class="error-class">expired</span>)</span>`,
		`<li class="step passed" data-step="dns"><span class="mark">✓</span><span class="phrase">Resolving autodiscover.expired.test in DNS</span> … <span class="verdict">OK</span>: <span class="detail">resolved 127.0.0.18</span> <span class="duration">(0 ms)</span></li>`,
		`<li class="hop failed" data-method="autodiscover_domain"><span class="via">autodiscover host</span><span class="host">autodiscover.expired.test</span>`,
		`<td class="host">autodiscover.expired.test</td>`,
		`<td class="cert-days cert-red" data-days="-3"`,
		`>expired 3 days ago</span>`,
		`<td class="verdict-fail">✗ failed</td>`,
		`Testing Autodiscover failed after 0 redirect hop(s) in 21 ms: the certificate of autodiscover.expired.test expired on`,
		`<a href="logs?target=expired-dave">step log as text</a>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the mailbox page lacks\n%s", want)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", page)
	}
}

func TestPagesShowHostileServerTextAsTextAndCapped(t *testing.T) {
	const attack = `"><script>alert(1)</script><img src=x onerror=alert(2)>`
	names := make([]string, 500)
	for i := range names {
		names[i] = fmt.Sprintf("n%d.%s", i, attack)
	}
	res := failedAt(&probe.Result{
		Mailbox: "eve@hostile.test",
		Reason:  attack,
		Steps: []probe.Step{
			{Hop: 0, Method: probe.MethodAutodiscoverDomain, Mailbox: attack, Host: attack + "\u202e", URL: "javascript:alert(3)", Name: probe.StepParse, ErrorClass: probe.ClassBadXML, Detail: strings.Repeat(attack, 500)},
		},
		Certificates: []probe.CertInfo{{Host: attack, Subject: strings.Repeat(attack, 2000), Issuer: attack, DNSNames: names, NotAfter: time.Now().Add(48 * time.Hour)}},
		V2:           []probe.V2Result{{Protocol: attack, ErrorCode: attack, ErrorMessage: attack}},
		Expectations: []probe.ExpectationResult{{Name: "ews_url_host", Detail: attack}},
	}, 0)
	res.Failure.Sentence = attack
	s := pageServer(t, map[string]*probe.Result{"eve": res})
	h := s.routes()
	for _, path := range []string{"/", "/mailbox?target=eve"} {
		t.Run(path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			page := rec.Body.String()
			if bad := injectedMarkup(t, page); bad != "" {
				t.Errorf("server text became markup: %s", bad)
			}
			if !strings.Contains(page, "&lt;script&gt;") {
				t.Error("the hostile text is not shown at all")
			}
			if strings.Contains(page, "\u202e") {
				t.Error("a bidi override reached the page")
			}
			// One mailbox with a megabyte of hostile text: the page stays small.
			if len(page) > 96<<10 {
				t.Errorf("the page is %d bytes", len(page))
			}
			csp := rec.Header().Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy %q does not forbid scripts", csp)
			}
		})
	}
	_, page := get(t, h, "/mailbox?target=eve", nil)
	if !strings.Contains(page, fmt.Sprintf("… %d more", 500-maxPageCertNames)) {
		t.Error("the certificate names are not capped")
	}
}

// injectedMarkup parses page as a browser would and names the first
// element or attribute that only server text could have put there.
func injectedMarkup(t *testing.T, page string) string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "script" || n.Data == "img" {
			return "<" + n.Data + ">"
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "src" || strings.HasPrefix(strings.ToLower(a.Val), "javascript:") {
				return fmt.Sprintf("%s=%q on <%s>", a.Key, a.Val, n.Data)
			}
		}
	}
	return ""
}

func TestLandingRowShowsThePathTheFailureAndTheCertificateDays(t *testing.T) {
	healthy := &probe.Result{Success: true, Steps: []probe.Step{
		passed(0, probe.MethodAutodiscoverDomain, "autodiscover.contoso.test", probe.StepParse, "settings returned"),
	}, Certificates: []probe.CertInfo{{Host: "autodiscover.contoso.test", NotAfter: time.Now().Add(90*24*time.Hour + time.Hour)}}}
	deadline := &probe.Result{Reason: "the deadline was reached while another scrape of this mailbox was running"}
	s := pageServer(t, map[string]*probe.Result{"expired-dave": expiredResult(), "alice": healthy, "late-lou": deadline, "fresh-fay": nil})
	_, page := get(t, s.routes(), "/", nil)
	rows := map[string]string{}
	for _, m := range regexp.MustCompile(`(?s)<tr class="mailbox" id="mailbox-([^"]+)".*?</tr>`).FindAllStringSubmatch(page, -1) {
		rows[m[1]] = m[0]
	}
	cases := []struct {
		mailbox string
		want    []string
		not     []string
	}{
		{"alice", []string{`data-state="success"`, `<td class="ok">success</td>`, `<span class="host">autodiscover.contoso.test</span></li></ol>`, `<td class="cert-days cert-green" data-days="90"`, `>90 days</span>`, `<a href="mailbox?target=alice">alice</a>`},
			[]string{`hop failed`}},
		{"expired-dave", []string{`data-state="failure"`, `<div class="reason">the certificate of autodiscover.expired.test expired on`, `<li class="hop failed"`, `<span class="error-class">expired</span>`, `cert-red" data-days="-3"`},
			nil},
		{"late-lou", []string{`<div class="reason">the deadline was reached while another scrape`, `<td class="cert-days cert-none"`}, []string{`hop failed`}},
		{"fresh-fay", []string{`data-state="unprobed"`, `not probed yet`}, []string{`<ol class="hops">`}},
	}
	for _, tc := range cases {
		t.Run(tc.mailbox, func(t *testing.T) {
			row, ok := rows[tc.mailbox]
			if !ok {
				t.Fatalf("no row for %s in\n%s", tc.mailbox, page)
			}
			for _, want := range tc.want {
				if !strings.Contains(row, want) {
					t.Errorf("row lacks %s\n%s", want, row)
				}
			}
			for _, not := range tc.not {
				if strings.Contains(row, not) {
					t.Errorf("row has %s\n%s", not, row)
				}
			}
		})
	}
}

// The endpoints get a section of their own: each host's connection, then
// each URL, with a failing one open.
func TestMailboxPageShowsTheEndpointSection(t *testing.T) {
	res := &probe.Result{Mailbox: "mike@mapidown.test", Success: true, ChainSuccess: true, FinalURL: "https://autodiscover.mapidown.test/autodiscover/autodiscover.xml",
		Steps: []probe.Step{passed(0, probe.MethodAutodiscoverDomain, "autodiscover.mapidown.test", probe.StepParse, "settings returned")},
		EndpointHosts: []probe.EndpointHost{{Host: "mail.mapidown.test", Port: 443, OK: true,
			Steps: []probe.Step{passed(0, probe.MethodEndpoint, "mail.mapidown.test", probe.StepDNS, "resolved 127.0.0.30")}}},
		Endpoints: []probe.EndpointCheck{
			{Protocol: probe.EndpointEWS, What: "EWS", Scope: probe.ScopeExternal, Source: "EXHTTP external", URL: "https://mail.mapidown.test/EWS/Exchange.asmx", Host: "mail.mapidown.test", Port: 443, OK: true,
				Steps: []probe.Step{passed(0, "endpoint_ews", "mail.mapidown.test", probe.StepEndpointAnswer, "GetFolder of the inbox answered ResponseCode NoError")}},
			{Protocol: probe.EndpointMAPI, What: "MAPI/HTTP mail store", Scope: probe.ScopeExternal, Source: "mapiHttp", URL: "https://mail.mapidown.test/mapi/emsmdb/", Host: "mail.mapidown.test", Port: 443,
				Steps: []probe.Step{failed(0, "endpoint_mapi", "mail.mapidown.test", probe.StepAuthMethods, probe.ClassServerError)}},
		}}
	s := pageServer(t, map[string]*probe.Result{"mapidown-mike": res})
	code, page := get(t, s.routes(), "/mailbox?target=mapidown-mike", nil)
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		`<details class="endpoints failed" open>`,
		`Testing the endpoints Autodiscover returned</summary>`,
		`<summary><span class="mark">✓</span>Endpoint host mail.mapidown.test on port 443</summary>`,
		`<summary><span class="mark">✓</span>EWS (external, from EXHTTP external) <span class="url">https://mail.mapidown.test/EWS/Exchange.asmx</span></summary>`,
		`<details class="candidate failed" open>
<summary><span class="mark">✗</span>MAPI/HTTP mail store (external, from mapiHttp) <span class="url">https://mail.mapidown.test/mapi/emsmdb/</span></summary>`,
		`<span class="phrase">Testing the HTTP authentication methods</span> … <span class="verdict">FAILED (<span class="error-class">server_error</span>)`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the mailbox page lacks\n%s", want)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", page)
	}
}

func TestMailboxPageHeadsTheSOAPAndFederationHops(t *testing.T) {
	res := &probe.Result{Mailbox: "sara@soapfed.test", Success: true, ChainSuccess: true, Steps: []probe.Step{
		passed(0, probe.MethodAutodiscoverDomain, "autodiscover.soapfed.test", probe.StepParse, "settings returned"),
		passed(0, "soap_autodiscover_domain", "autodiscover.soapfed.test", probe.StepParse, "settings returned"),
		passed(0, "federation_autodiscover_domain", "autodiscover.soapfed.test", probe.StepWSSecurity, "HTTP 500; SOAP fault a:InvalidSecurity"),
	}}
	s := pageServer(t, map[string]*probe.Result{"soap-sara": res})
	code, page := get(t, s.routes(), "/mailbox?target=soap-sara", nil)
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	soap := strings.Index(page, `<h3 class="section">SOAP Autodiscover (autodiscover.svc, GetUserSettings)`)
	fed := strings.Index(page, `<h3 class="section">Federation information (GetFederationInformation, anonymous)`)
	if soap < 0 || fed < soap || strings.Count(page, `data-hop="0"`) != 3 {
		t.Fatalf("the SOAP and federation hops are not headed apart (at %d and %d, %d hop-0 groups):\n%s", soap, fed, strings.Count(page, `data-hop="0"`), page)
	}
	for _, want := range []string{"Potential Autodiscover URL (SOAP autodiscover host)", "Testing the WSSecurity endpoint Exchange Online calls", "WSSecurity endpoint Exchange Online calls"} {
		if !strings.Contains(page, want) {
			t.Errorf("the mailbox page lacks %q", want)
		}
	}
}

func TestSOAPOnlySuccessSaysWhereSOAPAnswered(t *testing.T) {
	res := &probe.Result{Mailbox: "omar@fabrikam.test", Success: true, SOAP: &probe.SOAPResult{OK: true, URL: "https://autodiscover.fabrikam.test/autodiscover/autodiscover.svc", Redirects: 1}}
	if got, want := verdictSentence(res), "SOAP Autodiscover returned settings from https://autodiscover.fabrikam.test/autodiscover/autodiscover.svc after 1 redirect hop(s)"; !strings.HasPrefix(got, want) {
		t.Errorf("verdict %q, want it to start %q", got, want)
	}
}
