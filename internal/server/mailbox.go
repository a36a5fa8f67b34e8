package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-kit/log/level"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// mailboxTemplate lays the last result of one mailbox out the way Remote
// Connectivity Analyzer does: the test, its hops, each hop's candidates
// and each candidate's steps, folded with <details> so that what passed
// stays out of the way and what failed is open.
var mailboxTemplate = pageTemplate("mailbox", `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Name}} · autodiscover_exporter</title>
{{template "style"}}
<style>
table.summary th { width: 9em; background: none; }
details { margin: .15em 0 .15em 1.1em; }
details.test { margin-left: 0; }
summary { cursor: pointer; padding: .15em 0; }
details.test > summary { font-weight: 600; font-size: 1.05em; }
details.hop-group > summary { font-weight: 600; }
.mark { display: inline-block; width: 1.1em; font-weight: 700; }
.passed > summary > .mark, li.step.passed > .mark, .verdict-ok { color: #1a7f37; }
.failed > summary > .mark, li.step.failed > .mark, .verdict-fail { color: #cf222e; }
ol.steps, ul.lines { list-style: none; margin: .1em 0 .3em 1.1em; padding: 0; }
ol.steps li, ul.lines li { padding: .1em 0; }
li.step .detail { color: #59636e; word-break: break-word; }
li.step .duration { color: #59636e; font-size: .85em; }
li.step.decisive { background: #ffebe9; border-left: 3px solid #cf222e; padding-left: .3em; }
p.verdict-line { margin: .6em 0 .2em; font-weight: 600; }
table#certificates td { font-size: .9em; }
table#certificates td.names { max-width: 26em; overflow-wrap: break-word; }
table#certificates td.host, table#certificates td.not-after, table#certificates td[class^="verdict"] { white-space: nowrap; }
</style>
</head>
<body>
<p><a href="./">← all mailboxes</a></p>
<h1>{{.Name}}</h1>
{{template "banner" .Demo}}<table class="summary">
<tr><th>Module</th><td>{{.Module}}</td></tr>
{{with .Labels}}<tr><th>Labels</th><td>{{.}}</td></tr>{{end}}
{{if .Probed}}<tr><th>Last result</th>{{if .Success}}<td class="ok">success</td>{{else}}<td class="fail">failure<div class="reason">{{.Reason}}</div></td>{{end}}</tr>
<tr><th>Path</th><td>{{template "hops" .Path}}</td></tr>
<tr><th>Certificate</th>{{template "certdays" .Cert}}</tr>
<tr><th>When</th><td><time datetime="{{.When}}">{{.WhenText}}</time> <span class="meta">({{.Duration}}, {{.Hops}} redirect hop(s))</span></td></tr>
{{with .FinalURL}}<tr><th>Final URL</th><td class="url">{{.}}</td></tr>{{end}}
{{end}}</table>
<p><a href="{{.LogURL}}">step log as text</a> · <a href="{{.ProbeURL}}">debug probe</a></p>
{{if not .Probed}}<p class="none" id="not-probed">Not probed yet: the first scrape, the warm-up or a debug probe fills this page in.</p>
{{else}}{{with .Tree}}<h2>Step log</h2>
<details class="test {{if .OK}}passed{{else}}failed{{end}}" open>
<summary><span class="mark">{{if .OK}}✓{{else}}✗{{end}}</span>Testing Autodiscover for <span class="mono">{{.Address}}</span></summary>
{{with .V2}}<ul class="lines v2">{{range .}}<li class="{{if .OK}}passed{{else}}failed{{end}}"><span class="mark {{if .OK}}verdict-ok{{else}}verdict-fail{{end}}">{{if .OK}}✓{{else}}✗{{end}}</span>{{.Text}}</li>{{end}}</ul>{{end}}
{{range .Hops}}{{with .Section}}<h3 class="section">{{.}}</h3>
{{end}}<details class="hop-group {{if .OK}}passed{{else}}failed{{end}}" data-hop="{{.Hop}}"{{if .Open}} open{{end}}>
<summary><span class="mark">{{if .OK}}✓{{else}}✗{{end}}</span>Hop {{.Hop}}: discovering <span class="mono">{{.Mailbox}}</span></summary>
{{range .Candidates}}{{template "candidate" .}}{{end}}</details>
{{end}}{{with .AddressChecks}}<details class="address-checks {{if $.Tree.AddressesOK}}passed{{else}}failed{{end}}"{{if not $.Tree.AddressesOK}} open{{end}}>
<summary><span class="mark">{{if $.Tree.AddressesOK}}✓{{else}}✗{{end}}</span>Every address of every TLS host (the load-balancer node view)</summary>
{{range .}}{{template "candidate" .}}{{end}}</details>
{{end}}{{with .Endpoints}}<details class="endpoints {{if $.Tree.EndpointsOK}}passed{{else}}failed{{end}}"{{if not $.Tree.EndpointsOK}} open{{end}}>
<summary><span class="mark">{{if $.Tree.EndpointsOK}}✓{{else}}✗{{end}}</span>Testing the endpoints Autodiscover returned</summary>
{{range .}}{{template "candidate" .}}{{end}}</details>
{{end}}{{with .Expectations}}<details class="expectations {{if $.Tree.ExpectationsOK}}passed{{else}}failed{{end}}"{{if not $.Tree.ExpectationsOK}} open{{end}}>
<summary><span class="mark">{{if $.Tree.ExpectationsOK}}✓{{else}}✗{{end}}</span>Expectations of this mailbox</summary>
<ul class="lines">{{range .}}<li class="expectation {{if .OK}}passed{{else}}failed{{end}}"><span class="mark {{if .OK}}verdict-ok{{else}}verdict-fail{{end}}">{{if .OK}}✓{{else}}✗{{end}}</span>{{.Name}} … {{if .OK}}met{{else}}NOT MET{{end}}: {{.Detail}}</li>{{end}}</ul>
</details>
{{end}}<p class="verdict-line {{if .OK}}ok{{else}}fail{{end}}">{{.Verdict}}</p>
</details>
{{end}}<h2>Certificates</h2>
<table id="certificates">
<thead><tr><th>Host</th><th>Address</th><th>Subject</th><th>Issuer</th><th>Names</th><th>Not after</th><th>Days left</th><th>Name</th><th>Trust</th><th>Validity</th></tr></thead>
<tbody>
{{range .Certificates}}<tr class="certificate">
<td class="host">{{.Host}}</td><td class="mono">{{.Address}}</td><td class="subject">{{.Subject}}</td><td class="issuer">{{.Issuer}}</td><td class="names mono">{{.Names}}</td><td class="not-after">{{.NotAfter}}</td>{{template "certdays" .Days}}
{{template "verdict" .NameOK}}{{template "verdict" .TrustOK}}{{template "verdict" .ValidityOK}}
</tr>
{{else}}<tr><td colspan="10" class="none">The chain reached no TLS host.</td></tr>
{{end}}</tbody>
</table>
{{end}}</body>
</html>
{{define "candidate"}}<details class="candidate {{if .OK}}passed{{else}}failed{{end}}"{{if .Open}} open{{end}}>
<summary><span class="mark">{{if .OK}}✓{{else}}✗{{end}}</span>{{.Heading}}{{with .URL}} <span class="url">{{.}}</span>{{end}}</summary>
<ol class="steps">{{range .Steps}}<li class="step {{if .OK}}passed{{else}}failed{{end}}{{if .Decisive}} decisive{{end}}" data-step="{{.Name}}"><span class="mark">{{if .OK}}✓{{else}}✗{{end}}</span><span class="phrase">{{.Phrase}}</span> … <span class="verdict">{{if .OK}}OK{{else}}FAILED (<span class="error-class">{{.Class}}</span>){{end}}</span>{{with .Detail}}: <span class="detail">{{.}}</span>{{end}} <span class="duration">({{.Duration}})</span></li>{{end}}</ol>
</details>
{{end}}
{{define "verdict"}}{{if .}}<td class="verdict-ok">✓ passed</td>{{else}}<td class="verdict-fail">✗ failed</td>{{end}}{{end}}
`)

// mailboxPage is what the mailbox template shows.
type mailboxPage struct {
	Demo                     bool
	Name, Module, Labels     string
	LogURL, ProbeURL         string
	Probed, Success          bool
	Reason                   string
	When, WhenText, Duration string
	Hops                     int
	FinalURL                 string
	Path                     []pathHop
	Cert                     certDays
	Tree                     *stepTree
	Certificates             []certificateRow
}

// stepTree is a result's step log, folded.
type stepTree struct {
	Address       string
	OK            bool
	V2            []treeLine
	Hops          []treeHop
	AddressChecks []treeCandidate
	// Endpoints holds each endpoint host's connection, then each URL's
	// checks, in the order of the text step log.
	Endpoints    []treeCandidate
	Expectations []treeExpectation
	// AddressesOK, EndpointsOK and ExpectationsOK sum up their sections.
	AddressesOK, EndpointsOK, ExpectationsOK bool
	Verdict                                  string
}

type treeLine struct {
	OK   bool
	Text string
}

type treeHop struct {
	// Section, on the first hop of SOAP Autodiscover or the federation
	// check, names the discovery the hops below belong to.
	Section    string
	Hop        int
	Mailbox    string
	OK, Open   bool
	Candidates []treeCandidate
}

// treeCandidate is one candidate URL, SRV lookup or v2 query, or one
// address of a TLS host, with its steps.
type treeCandidate struct {
	Heading, URL string
	OK, Open     bool
	Steps        []treeStep
}

type treeStep struct {
	Name                     probe.StepName
	OK, Decisive             bool
	Class                    probe.ErrorClass
	Phrase, Detail, Duration string
}

type treeExpectation struct {
	Name, Detail string
	OK           bool
}

type certificateRow struct {
	Host, Address, Subject, Issuer, Names, NotAfter string
	Days                                            certDays
	NameOK, TrustOK, ValidityOK                     bool
}

func (s *Server) handleMailbox(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the mailbox page takes GET", http.StatusMethodNotAllowed)
		return
	}
	targets := r.URL.Query()["target"]
	switch {
	case len(targets) == 0 || targets[0] == "":
		badRequest(w, "target parameter is missing: give the name of a configured mailbox")
		return
	case len(targets) > 1:
		badRequest(w, "give one target, not %d", len(targets))
		return
	case !looksLikeMailboxName(targets[0]):
		badRequest(w, "target %q is not a mailbox name: names are 1 to 64 letters, digits, '.', '_' and '-'", probe.Printable(targets[0], 64))
		return
	}
	name := targets[0]
	mb, ok := s.Config().Mailbox(name)
	if !ok {
		http.Error(w, fmt.Sprintf("unknown target %q: no mailbox of that name is configured", name), http.StatusNotFound)
		return
	}
	page := mailboxPage{
		Demo:     s.demo,
		Name:     mb.Name,
		Module:   mb.Module,
		Labels:   formatLabels(mb.Labels),
		LogURL:   "logs?" + url.Values{"target": {mb.Name}}.Encode(),
		ProbeURL: "probe?" + url.Values{"target": {mb.Name}, "debug": {"true"}}.Encode(),
	}
	if rec, ok := s.history.lastOf(mb.Name); ok {
		page.fill(rec, time.Now())
	}
	setPageHeaders(w)
	if err := mailboxTemplate.Execute(w, page); err != nil {
		_ = level.Debug(s.logger).Log("msg", "writing the mailbox page failed", "target", name, "err", err)
	}
}

// looksLikeMailboxName admits what the configuration admits as a mailbox
// name, so that anything else is a bad request rather than a miss.
func looksLikeMailboxName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return s != ""
}

// fill shows rec, the mailbox's last result, as seen at now.
func (p *mailboxPage) fill(rec probeRecord, now time.Time) {
	res := rec.Result
	p.Probed = true
	p.Success = res.Success
	p.Reason = failureSentence(res)
	p.When = rec.When.UTC().Format(time.RFC3339)
	p.WhenText = rec.When.UTC().Format(whenLayout)
	p.Duration = res.Duration.Round(time.Millisecond).String()
	p.Hops = res.RedirectHops
	p.FinalURL = probe.Printable(res.FinalURL, maxPageURLBytes)
	p.Path = chainPath(res)
	p.Cert = earliestCertificate(res, now)
	p.Tree = treeOf(res)
	for _, c := range res.Certificates {
		p.Certificates = append(p.Certificates, certificateRowOf(c, now))
	}
}

func certificateRowOf(c probe.CertInfo, now time.Time) certificateRow {
	names := c.DNSNames
	more := ""
	if len(names) > maxPageCertNames {
		names, more = names[:maxPageCertNames], fmt.Sprintf(", … %d more", len(c.DNSNames)-maxPageCertNames)
	}
	shown := make([]string, len(names))
	for i, n := range names {
		shown[i] = probe.Printable(n, maxPageHostBytes)
	}
	notAfter := ""
	if !c.NotAfter.IsZero() {
		notAfter = c.NotAfter.UTC().Format("2006-01-02 15:04 MST")
	}
	return certificateRow{
		Host:       probe.Printable(c.Host, maxPageHostBytes),
		Address:    probe.Printable(c.Address, maxPageHostBytes),
		Subject:    probe.Printable(c.Subject, maxPageSubjectBytes),
		Issuer:     probe.Printable(c.Issuer, maxPageSubjectBytes),
		Names:      strings.Join(shown, ", ") + more,
		NotAfter:   notAfter,
		Days:       daysLeft(c.NotAfter, c.Host, now),
		NameOK:     c.NameOK,
		TrustOK:    c.TrustOK,
		ValidityOK: c.ValidityOK,
	}
}

// sectionTitles head the hops of the discoveries after the POX chain.
var sectionTitles = map[string]string{
	kindSOAP:       "SOAP Autodiscover (autodiscover.svc, GetUserSettings), as EWS applications ask it",
	kindFederation: "Federation information (GetFederationInformation, anonymous) and the WSSecurity endpoint, as Exchange Online asks them for hybrid free/busy",
}

// treeOf folds res's steps: a new hop where the hop or the address being
// discovered changes, a new candidate where the method or URL does, as in
// the text step log.
func treeOf(res *probe.Result) *stepTree {
	t := &stepTree{Address: probe.Printable(res.Mailbox, maxPageHostBytes), OK: res.Success, AddressesOK: true, EndpointsOK: true, ExpectationsOK: true}
	decisive := -1
	if res.Failure != nil {
		decisive = res.Failure.StepIndex
	}
	for _, v := range res.V2 {
		t.V2 = append(t.V2, treeLine{OK: v.OK, Text: v2Line(v)})
	}
	var hop *treeHop
	var cand *treeCandidate
	kind := ""
	for i, st := range res.Steps {
		section := ""
		if k := stepKind(st.Method); k != kind {
			kind, hop = k, nil
			section = sectionTitles[k]
		}
		if hop == nil || st.Hop != hop.Hop || probe.Printable(st.Mailbox, maxPageHostBytes) != hop.Mailbox {
			t.Hops = append(t.Hops, treeHop{Section: section, Hop: st.Hop, Mailbox: probe.Printable(st.Mailbox, maxPageHostBytes)})
			hop, cand = &t.Hops[len(t.Hops)-1], nil
		}
		heading, u := candidateHeading(st)
		if cand == nil || cand.Heading != heading || cand.URL != u {
			hop.Candidates = append(hop.Candidates, treeCandidate{Heading: heading, URL: u, OK: true})
			cand = &hop.Candidates[len(hop.Candidates)-1]
		}
		step := treeStepOf(st, i == decisive)
		cand.Steps = append(cand.Steps, step)
		cand.OK = cand.OK && st.OK
		// Whatever holds a failure starts open, even in a hop that
		// passed: a step that fails while the chain succeeds is what
		// an admin comes to look at.
		cand.Open = cand.Open || !st.OK
		hop.Open = hop.Open || !st.OK
	}
	for i := range t.Hops {
		h := &t.Hops[i]
		// A hop passed when its last candidate did: the earlier ones
		// failing is how Autodiscover is meant to work.
		h.OK = h.Candidates[len(h.Candidates)-1].OK
	}
	for _, ac := range res.AddressChecks {
		c := treeCandidate{Heading: probe.Printable(ac.Host, maxPageHostBytes) + " at " + probe.Printable(ac.Address, maxPageHostBytes), OK: true}
		for _, st := range ac.Steps {
			c.Steps = append(c.Steps, treeStepOf(st, false))
			c.OK = c.OK && st.OK
		}
		c.Open = !c.OK
		t.AddressesOK = t.AddressesOK && c.OK
		t.AddressChecks = append(t.AddressChecks, c)
	}
	t.Endpoints, t.EndpointsOK = endpointTree(res)
	for _, e := range res.Expectations {
		t.Expectations = append(t.Expectations, treeExpectation{Name: e.Name, OK: e.OK, Detail: probe.Printable(e.Detail, maxPageDetailBytes)})
		t.ExpectationsOK = t.ExpectationsOK && e.OK
	}
	t.Verdict = verdictSentence(res)
	return t
}

func v2Line(v probe.V2Result) string {
	proto := probe.Printable(v.Protocol, 64)
	switch {
	case v.OK:
		return fmt.Sprintf("Autodiscover v2 %s: %s (from %s)", proto, probe.Printable(v.URL, maxPageURLBytes), probe.Printable(v.Host, maxPageHostBytes))
	case v.ErrorCode != "":
		return fmt.Sprintf("Autodiscover v2 %s failed: %s %s", proto, probe.Printable(v.ErrorCode, 64), probe.Printable(v.ErrorMessage, maxPageDetailBytes))
	}
	return "Autodiscover v2 " + proto + " failed"
}

func verdictSentence(res *probe.Result) string {
	took := millis(res.Duration)
	switch {
	case res.Success && res.FinalURL == "" && res.SOAP != nil && res.SOAP.OK && len(res.V2) == 0:
		return fmt.Sprintf("SOAP Autodiscover returned settings from %s after %d redirect hop(s) in %s.", probe.Printable(res.SOAP.URL, maxPageURLBytes), res.SOAP.Redirects, took)
	case res.Success && res.FinalURL == "":
		return "Autodiscover v2 returned an endpoint for every protocol asked, in " + took + "."
	case res.Success:
		return fmt.Sprintf("Autodiscover settings were obtained from %s after %d redirect hop(s) in %s.", probe.Printable(res.FinalURL, maxPageURLBytes), res.RedirectHops, took)
	}
	return fmt.Sprintf("Testing Autodiscover failed after %d redirect hop(s) in %s: %s", res.RedirectHops, took, failureSentence(res))
}

// candidateHeading names the candidate a step belongs to, and its URL.
func candidateHeading(st probe.Step) (string, string) {
	u := probe.Printable(st.URL, maxPageURLBytes)
	switch {
	case st.Name == probe.StepWSSecurity:
		return "WSSecurity endpoint Exchange Online calls", u
	case st.Name == probe.StepSRVLookup:
		return "DNS SRV record " + probe.Printable(st.Host, maxPageHostBytes), ""
	case isV2Method(st.Method):
		return "Autodiscover v2 (" + strings.TrimPrefix(string(st.Method), probe.MethodV2Prefix) + ")", u
	case probe.BaseMethod(st.Method) == probe.MethodHTTPRedirect:
		return "HTTP redirect method", u
	}
	return "Potential Autodiscover URL (" + methodWords(st.Method) + ")", u
}

func treeStepOf(st probe.Step, decisive bool) treeStep {
	return treeStep{
		Name:     st.Name,
		OK:       st.OK,
		Decisive: decisive,
		Class:    st.ErrorClass,
		Phrase:   stepWords(st),
		Detail:   probe.Printable(st.Detail, maxPageDetailBytes),
		Duration: millis(st.Duration),
	}
}

// stepWords says what a step checked.
func stepWords(st probe.Step) string {
	host := probe.Printable(st.Host, maxPageHostBytes)
	switch st.Name {
	case probe.StepDNS:
		return "Resolving " + host + " in DNS"
	case probe.StepSRVLookup:
		return "Looking up the SRV record " + host
	case probe.StepTCP:
		return fmt.Sprintf("Connecting to %s on TCP port %d", host, st.Port)
	case probe.StepTLSHandshake:
		return fmt.Sprintf("Obtaining the TLS certificate of %s on port %d", host, st.Port)
	case probe.StepCertName:
		return "Validating the certificate name"
	case probe.StepCertTrust:
		return "Validating the certificate trust"
	case probe.StepCertValidity:
		return "Checking the certificate dates"
	case probe.StepClientCert:
		return "Checking for client certificate authentication"
	case probe.StepHTTPGet:
		return "Asking " + host + " for an HTTP redirect"
	case probe.StepCredentials:
		return "Providing user credentials"
	case probe.StepRequest:
		switch stepKind(st.Method) {
		case kindV2:
			return "Sending the Autodiscover v2 GET to " + host
		case kindSOAP:
			return "Sending the SOAP GetUserSettings request to " + host
		case kindFederation:
			return "Sending the anonymous GetFederationInformation request to " + host
		}
		return "Sending the Autodiscover POST to " + host
	case probe.StepParse:
		if k := stepKind(st.Method); k == kindSOAP || k == kindFederation {
			return "Analyzing the SOAP Autodiscover response"
		}
		return "Analyzing the Autodiscover response"
	case probe.StepWSSecurity:
		return "Testing the WSSecurity endpoint Exchange Online calls"
	case probe.StepRedirect:
		return "Checking the redirect"
	case probe.StepEndpointURL:
		return "Checking the endpoint URL"
	case probe.StepAuthMethods:
		return "Testing the HTTP authentication methods"
	case probe.StepEndpointAnswer:
		return "Testing the protocol's answer"
	}
	return string(st.Name)
}

// endpointTree folds the endpoint checks: one candidate per host with its
// connection steps, then one per URL.
func endpointTree(res *probe.Result) ([]treeCandidate, bool) {
	var out []treeCandidate
	allOK := true
	add := func(heading, u string, steps []probe.Step, ok bool) {
		c := treeCandidate{Heading: heading, URL: probe.Printable(u, maxPageURLBytes), OK: ok}
		for _, st := range steps {
			c.Steps = append(c.Steps, treeStepOf(st, false))
		}
		c.Open = !ok
		allOK = allOK && ok
		out = append(out, c)
	}
	for _, h := range res.EndpointHosts {
		heading := fmt.Sprintf("Endpoint host %s on port %d", probe.Printable(h.Host, maxPageHostBytes), h.Port)
		if h.SharedWithChain {
			heading += ": the certificate was validated while testing Autodiscover"
		}
		add(heading, "", h.Steps, h.OK)
	}
	for _, c := range res.Endpoints {
		add(fmt.Sprintf("%s (%s, from %s)", c.What, c.Scope, probe.Printable(c.Source, 64)), c.URL, c.Steps, c.OK)
	}
	return out, allOK
}
