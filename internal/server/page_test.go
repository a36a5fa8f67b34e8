package server

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// passed and failed build the steps of hand-made results.
func passed(hop int, m probe.Method, host string, name probe.StepName, detail string) probe.Step {
	return probe.Step{Hop: hop, Method: m, Mailbox: "user@contoso.test", Host: host, URL: "https://" + host + "/autodiscover/autodiscover.xml", Name: name, OK: true, Detail: detail}
}

func failed(hop int, m probe.Method, host string, name probe.StepName, class probe.ErrorClass) probe.Step {
	st := passed(hop, m, host, name, "it failed")
	st.OK, st.ErrorClass = false, class
	return st
}

// failedAt makes res a failed run whose decisive failure is step i.
func failedAt(res *probe.Result, i int) *probe.Result {
	st := res.Steps[i]
	res.Success = false
	res.Failure = &probe.Failure{Hop: st.Hop, Method: st.Method, Host: st.Host, Step: st.Name, Class: st.ErrorClass, Sentence: "it failed at " + st.Host, StepIndex: i}
	return res
}

// hopsOf is what a reader sees of a path: label, host, failure mark.
func hopsOf(path []pathHop) []string {
	out := make([]string, len(path))
	for i, h := range path {
		out[i] = h.Via + " → " + h.Host
		if h.Failed {
			out[i] += fmt.Sprintf(" ✗ %s: %s", h.Step, h.Class)
		}
	}
	return out
}

func TestLandingPathShowsTheHostThatAnsweredAtEachHop(t *testing.T) {
	const (
		root = probe.MethodRootDomain
		ad   = probe.MethodAutodiscoverDomain
		http = probe.MethodHTTPRedirect
		srv  = probe.MethodSRV
		redi = probe.MethodRedirect
		v2   = probe.Method("v2_ews")
	)
	cases := []struct {
		name string
		res  *probe.Result
		want []string
	}{
		{
			name: "arrows name how the chain got to each hop, across a redirectAddr",
			res: &probe.Result{Success: true, Steps: []probe.Step{
				passed(0, root, "contoso.test", probe.StepDNS, ""),
				failed(0, root, "contoso.test", probe.StepCertName, probe.ClassNameMismatch),
				passed(0, ad, "autodiscover.contoso.test", probe.StepParse, ""),
				passed(0, ad, "autodiscover.contoso.test", probe.StepRedirect, "redirectAddr to user@tenant.test: restarting discovery for tenant.test (hop 1 of at most 10)"),
				failed(1, root, "tenant.test", probe.StepDNS, probe.ClassNXDomain),
				passed(1, http, "autodiscover.tenant.test", probe.StepHTTPGet, "HTTP 302, Location https://front.test/autodiscover/autodiscover.xml"),
				passed(1, http, "autodiscover.tenant.test", probe.StepRedirect, "HTTP 302 to https://front.test/autodiscover/autodiscover.xml (hop 2 of at most 10)"),
				passed(2, redi, "front.test", probe.StepRedirect, "redirectUrl to https://pod.test/autodiscover/autodiscover.xml (hop 3 of at most 10)"),
				passed(3, redi, "pod.test", probe.StepParse, "settings returned"),
			}},
			want: []string{"autodiscover host → autodiscover.contoso.test", "redirectAddr · HTTP redirect → autodiscover.tenant.test", "HTTP 302 → front.test", "redirectUrl → pod.test"},
		},
		{
			name: "the decisive failure ends the path at its host, though later candidates ran",
			res: failedAt(&probe.Result{Steps: []probe.Step{
				failed(0, root, "expired.test", probe.StepDNS, probe.ClassNXDomain),
				passed(0, ad, "autodiscover.expired.test", probe.StepCertTrust, ""),
				failed(0, ad, "autodiscover.expired.test", probe.StepCertValidity, probe.ClassExpired),
				failed(0, http, "autodiscover.expired.test", probe.StepTCP, probe.ClassRefused),
				failed(0, srv, "_autodiscover._tcp.expired.test", probe.StepSRVLookup, probe.ClassNXDomain),
			}}, 2),
			want: []string{"autodiscover host → autodiscover.expired.test ✗ cert_validity: expired"},
		},
		{
			name: "a loop is marked on the hop whose redirect points back",
			res: failedAt(&probe.Result{Steps: []probe.Step{
				passed(0, ad, "autodiscover.loop.test", probe.StepRedirect, "redirectUrl to https://mail.loop.test/autodiscover/autodiscover.xml (hop 1 of at most 10)"),
				failed(1, redi, "mail.loop.test", probe.StepRedirect, probe.ClassLoop),
			}}, 1),
			want: []string{"autodiscover host → autodiscover.loop.test", "redirectUrl → mail.loop.test ✗ redirect: loop"},
		},
		{
			name: "hops of a redirect chain given up on are not on the path",
			res: &probe.Result{Success: true, Steps: []probe.Step{
				passed(0, ad, "autodiscover.contoso.test", probe.StepRedirect, "redirectUrl to https://gone.test/autodiscover/autodiscover.xml (hop 1 of at most 10)"),
				failed(1, redi, "gone.test", probe.StepTCP, probe.ClassRefused),
				passed(0, srv, "_autodiscover._tcp.contoso.test", probe.StepSRVLookup, "mail.contoso.test:443 (priority 0, weight 0)"),
				passed(0, srv, "mail.contoso.test", probe.StepParse, "settings returned"),
			}},
			want: []string{"SRV → mail.contoso.test"},
		},
		{
			name: "unmet expectations end the path with a mark at no host",
			res: &probe.Result{Steps: []probe.Step{
				passed(0, ad, "autodiscover.contoso.test", probe.StepParse, "settings returned"),
			}, Failure: &probe.Failure{Step: probe.StepExpectations, Class: probe.ClassExpectationNotMet, StepIndex: -1}},
			want: []string{"autodiscover host → autodiscover.contoso.test", " →  ✗ expectations: expectation_not_met"},
		},
		{
			name: "Autodiscover v2 alone shows the v2 host",
			res: &probe.Result{Success: true, Steps: []probe.Step{
				passed(0, v2, "outlook.v2.test", probe.StepRequest, ""),
				passed(0, v2, "outlook.v2.test", probe.StepParse, ""),
			}},
			want: []string{"Autodiscover v2 → outlook.v2.test"},
		},
		{
			name: "a failing v2 after a working chain shows the v2 path that failed",
			res: failedAt(&probe.Result{Steps: []probe.Step{
				passed(0, ad, "autodiscover.contoso.test", probe.StepParse, "settings returned"),
				failed(0, v2, "outlook.v2.test", probe.StepRequest, probe.ClassV2Error),
			}}, 1),
			want: []string{"Autodiscover v2 → outlook.v2.test ✗ request: v2_error"},
		},
		{
			name: "SOAP and federation steps after a working chain leave its path alone",
			res: &probe.Result{Success: true, Steps: []probe.Step{
				passed(0, ad, "autodiscover.contoso.test", probe.StepParse, "settings returned"),
				passed(0, "soap_autodiscover_domain", "autodiscover.contoso.test", probe.StepRedirect, "redirectAddr to user@tenant.test: restarting discovery for tenant.test (hop 1 of at most 10)"),
				passed(1, "soap_redirect", "pod.test", probe.StepParse, "settings returned"),
				passed(0, "federation_autodiscover_domain", "autodiscover.contoso.test", probe.StepWSSecurity, ""),
			}},
			want: []string{"autodiscover host → autodiscover.contoso.test"},
		},
		{
			name: "a failing SOAP discovery after a working chain shows the SOAP path that failed",
			res: failedAt(&probe.Result{Steps: []probe.Step{
				passed(0, ad, "autodiscover.contoso.test", probe.StepParse, "settings returned"),
				failed(0, "soap_autodiscover_domain", "autodiscover.contoso.test", probe.StepRequest, probe.ClassServerError),
				failed(0, "federation_autodiscover_domain", "autodiscover.contoso.test", probe.StepRequest, probe.ClassServerError),
			}}, 1),
			want: []string{"SOAP autodiscover host → autodiscover.contoso.test ✗ request: server_error"},
		},
		{
			name: "a run that never started has an empty path",
			res:  &probe.Result{Success: true},
			want: []string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := hopsOf(chainPath(tc.res)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("path\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestLandingPathNamesRedirectsByTheProbesOwnWordsOnly(t *testing.T) {
	cases := []struct{ detail, want string }{
		{"redirectUrl to https://pod.test/autodiscover/autodiscover.xml (hop 3 of at most 10)", "redirectUrl"},
		{"redirectAddr to a@b.test: restarting discovery for b.test (hop 1 of at most 10)", "redirectAddr"},
		{"HTTP 301 to https://x.test/autodiscover/autodiscover.xml (hop 1 of at most 10)", "HTTP 301"},
		{"HTTP 200 to somewhere", "redirect"},
		{"HTTP 3xx to somewhere", "redirect"},
		{"<b>redirectUrl</b> to x", "redirect"},
		{"no arrow here", "redirect"},
	}
	for _, tc := range cases {
		if got := redirectKind(tc.detail); got != tc.want {
			t.Errorf("redirectKind(%q) = %q, want %q", tc.detail, got, tc.want)
		}
	}
}

func TestPageCertificateDaysAreColouredAndSaidInWords(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	cases := []struct {
		name     string
		notAfter time.Time
		days     int
		level    string
		text     string
		title    string
	}{
		{"three days expired counts -3", now.Add(-3*day - time.Minute), -3, "cert-red", "expired 3 days ago", "EXPIRED on 2026-11-29"},
		{"expired within the day", now.Add(-time.Hour), 0, "cert-red", "expired today", "EXPIRED"},
		{"one day left", now.Add(day + time.Hour), 1, "cert-red", "1 day", "critical"},
		{"just under a week is critical", now.Add(7*day - time.Minute), 6, "cert-red", "6 days", "critical"},
		{"a week is a warning", now.Add(7 * day), 7, "cert-amber", "7 days", "warning"},
		{"just under three weeks is a warning", now.Add(21*day - time.Minute), 20, "cert-amber", "20 days", "warning"},
		{"three weeks is fine", now.Add(21 * day), 21, "cert-green", "21 days", "(ok)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := daysLeft(tc.notAfter, "autodiscover.contoso.test", now)
			if !d.Known || d.Days != tc.days || d.Level != tc.level || d.Text != tc.text {
				t.Errorf("daysLeft = %+v; want %d days, %s, %q", d, tc.days, tc.level, tc.text)
			}
			if !strings.Contains(d.Title, tc.title) || !strings.Contains(d.Title, "autodiscover.contoso.test") {
				t.Errorf("title %q does not say %q about the host", d.Title, tc.title)
			}
		})
	}
	if d := daysLeft(time.Time{}, "x", now); d.Known || d.Level != "cert-none" {
		t.Errorf("no certificate: %+v", d)
	}
}

func TestLandingCertificateIsTheFirstToEndAnywhereInTheChain(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	cases := []struct {
		name  string
		certs []probe.CertInfo
		days  int
		title string
	}{
		{"the leaf of the second host", []probe.CertInfo{
			{Host: "a.test", NotAfter: now.Add(90 * day)},
			{Host: "b.test", NotAfter: now.Add(10 * day)},
		}, 10, "earliest certificate of the chain, b.test"},
		{"an intermediate ending before its leaf", []probe.CertInfo{
			{Host: "a.test", NotAfter: now.Add(90 * day), ChainNotAfter: now.Add(5 * day)},
			{Host: "b.test", NotAfter: now.Add(30 * day), ChainNotAfter: now.Add(30 * day)},
		}, 5, "an issuing certificate of a.test"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := earliestCertificate(&probe.Result{Certificates: tc.certs}, now)
			if d.Days != tc.days || !strings.HasPrefix(d.Title, tc.title) {
				t.Errorf("earliest = %d days, %q; want %d, %q…", d.Days, d.Title, tc.days, tc.title)
			}
		})
	}
	if d := earliestCertificate(&probe.Result{}, now); d.Known {
		t.Errorf("a chain without TLS: %+v", d)
	}
}

func TestPageTextShowsWhatCouldMisleadAndIsCut(t *testing.T) {
	cases := []struct {
		name, in string
		limit    int
		want     string
	}{
		{"plain text passes", "autodiscover.contoso.test", 255, "autodiscover.contoso.test"},
		{"a bidi override is shown, not obeyed", "moc.\u202eevil", 255, `moc.\u202eevil`},
		{"a zero-width space is shown", "micro\u200bsoft.test", 255, `micro\u200bsoft.test`},
		{"a newline is shown", "a\nb", 255, `a\nb`},
		{"invalid UTF-8 is shown in hex", "a\xffb", 255, `a\xffb`},
		{"long text is cut on a character boundary", strings.Repeat("é", 10), 7, "éé…"},
		{"escapes count against the cap", strings.Repeat("\u202e", 100), 20, `\u202e\u202e…`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := probe.Printable(tc.in, tc.limit)
			if got != tc.want || len(got) > tc.limit {
				t.Errorf("probe.Printable(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
			}
		})
	}
}
