package probe

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Caps on what an answer can make the probe check: a real answer names
// about ten endpoint URLs on two or three hosts.
const (
	maxEndpointURLs  = 16
	maxEndpointHosts = 8
)

// MethodEndpoint marks the connection steps of an endpoint host; the
// steps of one endpoint URL carry MethodEndpointPrefix+protocol
// ("endpoint_ews").
const (
	MethodEndpoint       Method = "endpoint"
	MethodEndpointPrefix        = "endpoint_"
)

// endpointRule is what an endpoint URL must satisfy: the rules of every
// server-named URL, any path.
var endpointRule = urlRule{what: "endpoint URL"}

// endpointURL is one URL of a selected kind that the answer returned.
type endpointURL struct {
	protocol EndpointProtocol
	what     string
	scope    EndpointScope
	source   string
	raw      string
}

// ProtocolWords names an endpoint protocol for people.
func ProtocolWords(p EndpointProtocol) string {
	switch p {
	case EndpointEWS:
		return "EWS"
	case EndpointMAPI:
		return "MAPI/HTTP"
	case EndpointOAB:
		return "OAB"
	case EndpointActiveSync:
		return "ActiveSync"
	case EndpointOWA:
		return "Outlook on the web"
	}
	return string(p)
}

// endpointURLs lists the distinct URLs of the selected kinds and scopes
// the answer (and Autodiscover v2) returned, in the order of the module's
// list, and the kinds for which it returned none.
func (r *run) endpointURLs() ([]endpointURL, []EndpointProtocol) {
	var resp *Response
	if r.res.ChainSuccess {
		resp = r.res.Response
	}
	scope := r.p.s.endpointsScope()
	var out []endpointURL
	add := func(p EndpointProtocol, what string, sc EndpointScope, source, raw string) {
		raw = strings.TrimSpace(raw)
		if raw == "" || (sc == ScopeExternal && scope == ScopeInternal) || (sc == ScopeInternal && scope == ScopeExternal) {
			return
		}
		for _, e := range out {
			if e.protocol == p && strings.EqualFold(e.raw, raw) {
				return
			}
		}
		out = append(out, endpointURL{protocol: p, what: what, scope: sc, source: source, raw: raw})
	}
	var missing []EndpointProtocol
	for _, p := range EndpointProtocols {
		if !slices.Contains(r.p.s.Endpoints, p) {
			continue
		}
		before := len(out)
		collectEndpoints(resp, r.res.V2, p, add)
		if len(out) == before {
			missing = append(missing, p)
		}
	}
	return out, missing
}

// collectEndpoints hands add every URL of kind p in resp and in v2's
// answers, external ones first.
func collectEndpoints(resp *Response, v2 []V2Result, p EndpointProtocol, add func(p EndpointProtocol, what string, sc EndpointScope, source, raw string)) {
	blocks := func(t string) []Protocol { return nil }
	var exhttpExt, exhttpInt []Protocol
	var webs []Protocol
	if resp != nil {
		blocks = resp.ofType
		exhttp := resp.ofType("EXHTTP")
		// Two EXHTTP blocks are internal then external ([MS-OXDSCLI]
		// 2.2.4.1.1.2.3); a single one is external.
		switch len(exhttp) {
		case 0:
		case 1:
			exhttpExt = exhttp
		default:
			exhttpInt, exhttpExt = exhttp[:1], exhttp[1:]
		}
		webs = resp.ofType("WEB")
	}
	nested := func(external bool) []Protocol {
		var out []Protocol
		for _, w := range webs {
			if s := w.External; external && s != nil {
				out = append(out, s.Protocols...)
			}
			if s := w.Internal; !external && s != nil {
				out = append(out, s.Protocols...)
			}
		}
		return out
	}
	fromV2 := func(name string) {
		for _, v := range v2 {
			if v.OK && strings.EqualFold(v.Protocol, name) {
				add(p, ProtocolWords(p), ScopeExternal, "Autodiscover v2", v.URL)
			}
		}
	}
	switch p {
	case EndpointEWS:
		for _, b := range blocks("EXPR") {
			add(p, "EWS", ScopeExternal, "EXPR", b.EwsUrl)
		}
		for _, b := range exhttpExt {
			add(p, "EWS", ScopeExternal, EWSFromEXHTTPExternal, b.EwsUrl)
		}
		for _, b := range nested(true) {
			add(p, "EWS", ScopeExternal, EWSFromWEBExternal, firstNonEmpty(b.EwsUrl, b.ASUrl))
		}
		fromV2("Ews")
		for _, b := range blocks("EXCH") {
			add(p, "EWS", ScopeInternal, "EXCH", b.EwsUrl)
		}
		for _, b := range exhttpInt {
			add(p, "EWS", ScopeInternal, EWSFromEXHTTPInternal, b.EwsUrl)
		}
		for _, b := range nested(false) {
			add(p, "EWS", ScopeInternal, EWSFromWEBInternal, firstNonEmpty(b.EwsUrl, b.ASUrl))
		}
	case EndpointMAPI:
		for _, b := range blocks("mapiHttp") {
			add(p, "MAPI/HTTP mail store", ScopeExternal, "mapiHttp", b.MailStoreExternalURL)
			add(p, "MAPI/HTTP address book", ScopeExternal, "mapiHttp", b.AddressBookExternalURL)
		}
		for _, b := range blocks("mapiHttp") {
			add(p, "MAPI/HTTP mail store", ScopeInternal, "mapiHttp", b.MailStoreInternalURL)
			add(p, "MAPI/HTTP address book", ScopeInternal, "mapiHttp", b.AddressBookInternalURL)
		}
	case EndpointOAB:
		oab := func(base string) string {
			if base == "" {
				return ""
			}
			return strings.TrimSuffix(base, "/") + "/oab.xml"
		}
		for _, b := range blocks("EXPR") {
			add(p, "OAB", ScopeExternal, "EXPR", oab(b.OABUrl))
		}
		for _, b := range exhttpExt {
			add(p, "OAB", ScopeExternal, EWSFromEXHTTPExternal, oab(b.OABUrl))
		}
		for _, b := range nested(true) {
			add(p, "OAB", ScopeExternal, EWSFromWEBExternal, oab(b.OABUrl))
		}
		for _, b := range blocks("EXCH") {
			add(p, "OAB", ScopeInternal, "EXCH", oab(b.OABUrl))
		}
		for _, b := range exhttpInt {
			add(p, "OAB", ScopeInternal, EWSFromEXHTTPInternal, oab(b.OABUrl))
		}
		for _, b := range nested(false) {
			add(p, "OAB", ScopeInternal, EWSFromWEBInternal, oab(b.OABUrl))
		}
	case EndpointActiveSync:
		if resp != nil {
			for _, m := range resp.MobileServers {
				add(p, "ActiveSync", ScopeExternal, "MobileSync", m.URL)
			}
		}
		fromV2("ActiveSync")
	case EndpointOWA:
		for _, w := range webs {
			if w.External != nil {
				add(p, "Outlook on the web", ScopeExternal, EWSFromWEBExternal, w.External.OWAUrl)
			}
		}
		for _, w := range webs {
			if w.Internal != nil {
				add(p, "Outlook on the web", ScopeInternal, EWSFromWEBInternal, w.Internal.OWAUrl)
			}
		}
	}
}

// checkEndpointURL applies the rules of a server-named URL to an endpoint
// URL; a refused one is never dialled.
func checkEndpointURL(raw string, ports []int) (*url.URL, *Error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, failf(ClassBadURL, "the endpoint URL is not a URL")
	}
	u, perr := asciiHost(u)
	if perr == nil {
		perr = checkServerURL(u, endpointRule, ports)
	}
	if perr != nil {
		return nil, &Error{Class: ClassBadURL, Detail: perr.Detail}
	}
	return u, nil
}

// endpointHostJob is the work of one host:port: its connection and the
// checks of the URLs on it.
type endpointHostJob struct {
	host   string
	port   int
	checks []endpointItem
	result EndpointHost
	// cert is the certificate the host presented, when the chain never
	// met the host.
	cert *CertInfo
}

type endpointItem struct {
	index int // in the run's Endpoints
	u     *url.URL
}

func endpointMethod(p EndpointProtocol) Method { return Method(MethodEndpointPrefix + string(p)) }

// checkEndpoints checks every endpoint URL of the selected kinds, one
// goroutine per host:port, under the probe's deadline and budget.
func (r *run) checkEndpoints(ctx context.Context) {
	if len(r.p.s.Endpoints) == 0 {
		return
	}
	urls, missing := r.endpointURLs()
	r.res.EndpointsMissing = missing
	checks := make([]EndpointCheck, 0, len(urls))
	var jobs []*endpointHostJob
	for _, e := range urls {
		c := EndpointCheck{Protocol: e.protocol, What: e.what, Scope: e.scope, Source: e.source, URL: shownURL(e.raw)}
		t := target{hop: r.hop, method: endpointMethod(e.protocol), mailbox: r.mailbox, url: c.URL}
		u, err := checkEndpointURL(e.raw, r.p.s.AllowedPorts)
		if err == nil && len(checks) >= maxEndpointURLs {
			err = failf(ClassBudgetExhausted, "the answer names more than %d endpoint URLs; the rest are not checked", maxEndpointURLs)
		}
		var job *endpointHostJob
		if err == nil {
			c.URL, c.Host, c.Port = redactURL(u), strings.ToLower(u.Hostname()), portOf(u)
			job = findEndpointHost(jobs, c.Host, c.Port)
			if job == nil && len(jobs) >= maxEndpointHosts {
				err = failf(ClassBudgetExhausted, "the answer names endpoints on more than %d hosts; the rest are not checked", maxEndpointHosts)
			}
		}
		if err != nil {
			rec := newRecorder(r.start, 1)
			t.host = strings.ToLower(hostOf(e.raw))
			c.Host = t.host
			rec.record(t, StepEndpointURL, time.Now(), "", err, "")
			c.Steps = rec.steps
			checks = append(checks, c)
			continue
		}
		if job == nil {
			job = &endpointHostJob{host: c.Host, port: c.Port}
			jobs = append(jobs, job)
		}
		job.checks = append(job.checks, endpointItem{index: len(checks), u: u})
		checks = append(checks, c)
	}
	var wg sync.WaitGroup
	for _, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.checkEndpointHost(ctx, job, checks)
		}()
	}
	wg.Wait()
	r.res.Endpoints = checks
	for _, job := range jobs {
		r.res.EndpointHosts = append(r.res.EndpointHosts, job.result)
		if job.cert != nil && !r.certSeen[job.host] {
			r.certSeen[job.host] = true
			r.res.Certificates = append(r.res.Certificates, *job.cert)
		}
	}
}

func findEndpointHost(jobs []*endpointHostJob, host string, port int) *endpointHostJob {
	for _, j := range jobs {
		if j.host == host && j.port == port {
			return j
		}
	}
	return nil
}

// chainHost returns the addresses the chain resolved for host:port.
func (r *run) chainHost(host string, port int) ([]string, bool) {
	for _, h := range r.tlsHosts {
		if h.host == host && h.port == port {
			return h.addrs, true
		}
	}
	return nil, false
}

// checkEndpointHost connects to one endpoint host once — reusing the
// addresses the chain resolved for it, if any — and runs the checks of
// its URLs one after the other on that connection. It writes only its own
// entries of checks.
func (r *run) checkEndpointHost(ctx context.Context, job *endpointHostJob, checks []EndpointCheck) {
	rec := newRecorder(r.start, 7)
	t := target{hop: r.hop, method: MethodEndpoint, mailbox: r.mailbox, host: job.host, port: job.port}
	started := time.Now()
	addrs, chainMet := r.chainHost(job.host, job.port)
	ok := true
	if !chainMet {
		addrs, ok = r.resolveOn(ctx, rec, t)
	}
	var out *tlsOutcome
	addr := ""
	if ok {
		out, addr = r.openTLS(ctx, rec, t, addrs)
	}
	job.result = EndpointHost{Host: job.host, Port: job.port}
	if out != nil {
		var ccErr *Error
		if out.clientCertRequested {
			ccErr = failf(ClassClientCertRequested, "the server asked for a client certificate (Accept/Require Client Certificates is configured); none was sent")
		}
		rec.record(t, StepClientCert, time.Now(), addr, ccErr, clientCertDetail(out))
		leaf := out.state.PeerCertificates[0].Raw
		job.result.OK = rec.lastFailure < 0
		if chainLeaf, seen := r.chainLeaves[hostPort(job.host, job.port)]; seen && job.result.OK && bytes.Equal(chainLeaf, leaf) {
			job.result.SharedWithChain = true
		}
		if !r.certSeen[job.host] {
			cert := out.cert
			cert.Endpoint = true
			job.cert = &cert
		}
	}
	connection := time.Since(started)
	if !job.result.SharedWithChain {
		job.result.Steps = rec.steps
	}
	if out == nil || (!out.certOK() && !r.p.s.InsecureSkipVerify) {
		if out != nil {
			_ = out.conn.Close()
		}
		for _, it := range job.checks {
			checks[it.index].Duration = connection
		}
		return
	}
	leaf := out.state.PeerCertificates[0].Raw
	reopen := func(ctx context.Context) (net.Conn, error) { return r.reconnect(ctx, t, addr, leaf) }
	hc := newHTTPConn(out.conn, r.p.s.maxBodyBytes(), reopen)
	defer hc.Close()
	for _, it := range job.checks {
		c := &checks[it.index]
		ct := target{hop: r.hop, method: endpointMethod(c.Protocol), mailbox: r.mailbox, host: job.host, port: job.port, url: c.URL}
		own := newRecorder(r.start, 3)
		checkStarted := time.Now()
		r.checkEndpoint(ctx, own, ct, hc, it.u, addr, c, out.certOK())
		c.Steps = own.steps
		c.OK = job.result.OK && own.lastFailure < 0 && len(own.steps) > 0
		c.Duration = connection + time.Since(checkStarted)
	}
}

func hostPort(host string, port int) string { return fmt.Sprintf("%s:%d", host, port) }

// shownURL is how an endpoint URL appears in the step log and the JSON:
// without user info, whatever else is wrong with it.
func shownURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return Printable(redactURL(u), maxFieldBytes)
	}
	if at := strings.LastIndexByte(raw, '@'); at >= 0 {
		raw = raw[at+1:]
	}
	return Printable(raw, maxFieldBytes)
}
