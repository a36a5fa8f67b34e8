package probe

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Run discovers the Autodiscover settings of one mailbox the way Outlook
// does, recording every step. It returns an error only when the address or
// the settings are unusable, before any network traffic; every problem met
// on the network is a failed step in the Result. Run returns by ctx's
// deadline with what it has.
func Run(ctx context.Context, address string, s Settings) (*Result, error) {
	mailbox, domain, err := NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	res, err := newResolver(s.DNSServer, s.stepTimeout())
	if err != nil {
		return nil, fmt.Errorf("probe settings: %w", err)
	}
	r := &run{
		s:            &s,
		dns:          res,
		start:        time.Now(),
		homeDomain:   domain,
		res:          &Result{Mailbox: mailbox, Steps: make([]Step, 0, 48)},
		visitedURLs:  map[string]bool{},
		visitedAddrs: map[string]bool{strings.ToLower(mailbox): true},
		certSeen:     map[string]bool{},
		lastFailure:  -1,
		mailbox:      mailbox,
	}
	methods := s.methods()
	v2 := slices.Contains(methods, MethodV2JSON)
	pox := slices.ContainsFunc(methods, func(m Method) bool { return m != MethodV2JSON })
	if v2 && methods[0] == MethodV2JSON {
		r.runV2(ctx, mailbox)
	}
	if pox {
		r.discover(ctx, mailbox, domain)
		r.res.ChainSuccess = r.res.Success
		if !r.res.Success && r.res.Reason == "" {
			r.res.Reason = r.failureSummary(ctx)
		}
	}
	if v2 && methods[0] != MethodV2JSON {
		r.runV2(ctx, mailbox)
	}
	r.res.RedirectHops = r.hop
	if s.CheckAllAddresses {
		r.checkAddresses(ctx)
	}
	r.res.Success = (!pox || r.res.ChainSuccess) && (!v2 || r.v2OK())
	if pox && r.res.ChainSuccess && !r.res.Success && r.res.Reason == "" {
		r.res.Reason = "Autodiscover v2 failed: " + r.v2Failure()
	} else if !pox && !r.res.Success {
		r.res.Reason = "Autodiscover v2 failed: " + r.v2Failure()
	}
	if s.Expect != nil {
		r.checkExpectations()
	}
	if s.Guard != nil {
		if until, blocked := s.Guard.Blocked(s.GuardKey); blocked {
			r.res.AuthBackoff = time.Until(until).Round(time.Second)
		}
	}
	r.res.Duration = time.Since(r.start)
	return r.res, nil
}

// run is the state of one discovery.
type run struct {
	s   *Settings
	dns *resolver
	res *Result

	start      time.Time
	hop        int
	mailbox    string // the address being discovered now
	homeDomain string // the domain of the address the run started with

	visitedURLs  map[string]bool
	visitedAddrs map[string]bool
	certSeen     map[string]bool
	// tlsHosts lists every TLS host the run resolved, in order, with the
	// addresses DNS gave, for the per-address checks.
	tlsHosts    []tlsHost
	lastFailure int // index in res.Steps of the latest failed step, -1 for none
}

// target is the candidate a step belongs to.
type target struct {
	hop    int
	method Method
	host   string
	port   int
	url    string
}

// next says what the chain does after a candidate.
type next int

const (
	nextCandidate next = iota // this candidate failed: try the next one
	stop                      // the run is over (success, Autodiscover error, loop, budget, deadline)
	restart                   // a redirectAddr: discover again for a new address
	follow                    // a URL redirect passed its checks: POST there
)

func (r *run) record(t target, name StepName, started time.Time, addr string, err *stepError, detail string) {
	st := Step{
		Hop:      t.hop,
		Method:   t.method,
		Mailbox:  r.mailbox,
		Host:     t.host,
		Port:     t.port,
		Address:  addr,
		URL:      t.url,
		Name:     name,
		OK:       err == nil,
		Start:    started.Sub(r.start),
		Duration: time.Since(started),
		Detail:   detail,
	}
	if err != nil {
		st.ErrorClass = err.class
		if st.Detail == "" {
			st.Detail = err.detail
		} else {
			st.Detail += ": " + err.detail
		}
	}
	r.res.Steps = append(r.res.Steps, st)
	if err != nil {
		r.lastFailure = len(r.res.Steps) - 1
	}
}

func (r *run) discover(ctx context.Context, mailbox, domain string) {
	for {
		r.mailbox = mailbox
		newAddr, newDomain, again := r.tryMethods(ctx, domain)
		if !again {
			return
		}
		mailbox, domain = newAddr, newDomain
	}
}

// tryMethods walks the candidate list of one address in order.
func (r *run) tryMethods(ctx context.Context, domain string) (string, string, bool) {
	for _, m := range r.s.methods() {
		if ctx.Err() != nil {
			r.res.Reason = "the deadline was reached before every method was tried"
			return "", "", false
		}
		var n next
		var a addrRedirect
		switch m {
		case MethodRootDomain:
			n, a = r.tryURL(ctx, m, autodiscoverURL(domain))
		case MethodAutodiscoverDomain:
			n, a = r.tryURL(ctx, m, autodiscoverURL("autodiscover."+domain))
		case MethodHTTPRedirect:
			n, a = r.tryHTTPRedirect(ctx, domain)
		case MethodSRV:
			n, a = r.trySRV(ctx, domain)
		default:
			continue // v2_json runs outside the POX chain
		}
		switch n {
		case stop:
			return "", "", false
		case restart:
			return a.mailbox, a.domain, true
		}
	}
	return "", "", false
}

// addrRedirect is where a redirectAddr sends the run.
type addrRedirect struct{ mailbox, domain string }

func autodiscoverURL(host string) *url.URL {
	return &url.URL{Scheme: "https", Host: host, Path: "/autodiscover/autodiscover.xml"}
}

// tryURL POSTs to u and follows URL redirects (3xx, redirectUrl) from it.
func (r *run) tryURL(ctx context.Context, method Method, u *url.URL) (next, addrRedirect) {
	key := normalizeURL(u)
	if r.visitedURLs[key] {
		// Already tried for an earlier address of this run: nothing new.
		return nextCandidate, addrRedirect{}
	}
	r.visitedURLs[key] = true
	for {
		n, to, a := r.postTo(ctx, method, u)
		if n != follow {
			return n, a
		}
		method, u = MethodRedirect, to
		r.visitedURLs[normalizeURL(u)] = true
	}
}

// postTo runs DNS, TCP, TLS, certificate checks and the POST against one URL.
func (r *run) postTo(ctx context.Context, method Method, u *url.URL) (next, *url.URL, addrRedirect) {
	t := target{hop: r.hop, method: method, host: strings.ToLower(u.Hostname()), port: portOf(u), url: u.String()}
	addrs, ok := r.resolve(ctx, t)
	if !ok {
		return nextCandidate, nil, addrRedirect{}
	}
	r.noteTLSHost(t, addrs)
	conn, addr := r.connect(ctx, t, addrs)
	if conn == nil {
		return nextCandidate, nil, addrRedirect{}
	}
	tlsOut := r.secure(ctx, t, conn, addr)
	if tlsOut == nil {
		return nextCandidate, nil, addrRedirect{}
	}
	certOK := tlsOut.certOK()
	if !certOK && !r.s.InsecureSkipVerify {
		_ = tlsOut.conn.Close()
		return nextCandidate, nil, addrRedirect{}
	}
	leaf := tlsOut.state.PeerCertificates[0].Raw
	reopen := func(ctx context.Context) (net.Conn, error) {
		return r.reconnect(ctx, t, addr, leaf)
	}
	hc := newHTTPConn(tlsOut.conn, r.s.maxBodyBytes(), reopen)
	defer hc.Close()

	resp := r.post(ctx, t, hc, u, addr, certOK)
	if resp == nil {
		return nextCandidate, nil, addrRedirect{}
	}
	if isRedirectStatus(resp.status) {
		started := time.Now()
		to, err := resolveLocation(u, resp.header.Get("Location"))
		if err != nil {
			r.record(t, StepRedirect, started, addr, err, "")
			return nextCandidate, nil, addrRedirect{}
		}
		return r.followURL(t, started, addr, to, true, fmt.Sprintf("HTTP %d", resp.status)), to, addrRedirect{}
	}
	return r.handleAnswer(t, addr, u, resp)
}

// handleAnswer parses a 200 answer and acts on it.
func (r *run) handleAnswer(t target, addr string, u *url.URL, resp *response) (next, *url.URL, addrRedirect) {
	started := time.Now()
	if ct := resp.header.Get("Content-Type"); ct != "" && !isXMLContentType(ct) {
		r.record(t, StepParse, started, addr, failf("bad_content_type", "expected text/xml, got %s", truncate(ct, 60)), "")
		return nextCandidate, nil, addrRedirect{}
	}
	ans, err := ParseResponse(resp.body)
	if err != nil {
		var pe *ParseError
		class := "bad_payload"
		if errors.As(err, &pe) {
			class = pe.Class
		}
		r.record(t, StepParse, started, addr, failf(class, "%v", err), "")
		return nextCandidate, nil, addrRedirect{}
	}
	if ans.Error != nil {
		r.res.Response = ans
		r.res.FinalURL = u.String()
		r.res.ErrorCode, r.res.ErrorMessage = ans.Error.Code, ans.Error.Message
		r.res.Reason = fmt.Sprintf("Autodiscover error %s from %s: %s", ans.Error.Code, t.host, ans.Error.Message)
		r.record(t, StepParse, started, addr, failf("autodiscover_error", "ErrorCode %s: %s", ans.Error.Code, truncate(ans.Error.Message, 200)), "")
		return stop, nil, addrRedirect{}
	}
	switch ans.Action {
	case ActionSettings:
		r.res.Response = ans
		r.res.FinalURL = u.String()
		r.res.Success = true
		r.record(t, StepParse, started, addr, nil, describeSettings(ans))
		return stop, nil, addrRedirect{}
	case ActionRedirectURL:
		r.record(t, StepParse, started, addr, nil, "redirectUrl "+truncate(ans.RedirectURL, 200))
		started = time.Now()
		to, serr := resolveLocation(u, ans.RedirectURL)
		if serr != nil {
			r.record(t, StepRedirect, started, addr, serr, "")
			return nextCandidate, nil, addrRedirect{}
		}
		return r.followURL(t, started, addr, to, false, "redirectUrl"), to, addrRedirect{}
	case ActionRedirectAddr:
		r.record(t, StepParse, started, addr, nil, "redirectAddr "+truncate(ans.RedirectAddr, 200))
		n, a := r.followAddr(t, addr, ans.RedirectAddr)
		return n, nil, a
	}
	r.record(t, StepParse, started, addr, failf("bad_action", "unexpected action %q", ans.Action), "")
	return nextCandidate, nil, addrRedirect{}
}

func describeSettings(ans *Response) string {
	parts := []string{"settings returned"}
	if ews := ans.EWSURL(); ews != "" {
		parts = append(parts, "EWS "+ews)
	}
	if srv := ans.Server(); srv != "" {
		parts = append(parts, "server "+srv)
	}
	var types []string
	for _, p := range ans.Protocols {
		types = append(types, p.Type)
	}
	for _, m := range ans.MobileServers {
		types = append(types, m.Type)
	}
	if len(types) > 0 {
		parts = append(parts, "protocols "+strings.Join(types, ","))
	}
	return strings.Join(parts, "; ")
}

// followURL checks a URL redirect against the rules, the hop budget and the
// visited set.
func (r *run) followURL(t target, started time.Time, addr string, to *url.URL, pathRule bool, via string) next {
	if err := checkRedirectURL(to, pathRule); err != nil {
		r.record(t, StepRedirect, started, addr, err, via)
		return nextCandidate
	}
	if r.hop+1 > r.s.maxRedirects() {
		err := failf("too_many_redirects", "%s to %s would be hop %d, over the budget of %d", via, redactURL(to), r.hop+1, r.s.maxRedirects())
		r.record(t, StepRedirect, started, addr, err, "")
		r.res.Reason = "redirect budget exhausted: " + err.detail
		return stop
	}
	if r.visitedURLs[normalizeURL(to)] {
		err := failf("loop", "%s points back to %s, which this run already tried", via, redactURL(to))
		r.record(t, StepRedirect, started, addr, err, "")
		r.res.Reason = "redirect loop: " + err.detail
		return stop
	}
	r.record(t, StepRedirect, started, addr, nil, fmt.Sprintf("%s to %s (hop %d of at most %d)", via, redactURL(to), r.hop+1, r.s.maxRedirects()))
	r.hop++
	return follow
}

// followAddr checks a redirectAddr and, when it passes, restarts discovery
// for the new address's domain.
func (r *run) followAddr(t target, addr, newAddr string) (next, addrRedirect) {
	started := time.Now()
	mailbox, domain, err := NormalizeAddress(newAddr)
	if err != nil {
		r.record(t, StepRedirect, started, addr, failf("bad_redirect", "redirectAddr is not a usable address: %v", err), "")
		return nextCandidate, addrRedirect{}
	}
	if r.visitedAddrs[strings.ToLower(mailbox)] {
		serr := failf("loop", "redirectAddr %s was already discovered in this run", mailbox)
		r.record(t, StepRedirect, started, addr, serr, "")
		r.res.Reason = "redirect loop: " + serr.detail
		return stop, addrRedirect{}
	}
	if r.hop+1 > r.s.maxRedirects() {
		serr := failf("too_many_redirects", "redirectAddr to %s would be hop %d, over the budget of %d", mailbox, r.hop+1, r.s.maxRedirects())
		r.record(t, StepRedirect, started, addr, serr, "")
		r.res.Reason = "redirect budget exhausted: " + serr.detail
		return stop, addrRedirect{}
	}
	r.record(t, StepRedirect, started, addr, nil, fmt.Sprintf("redirectAddr to %s: restarting discovery for %s (hop %d of at most %d)", mailbox, domain, r.hop+1, r.s.maxRedirects()))
	r.visitedAddrs[strings.ToLower(mailbox)] = true
	r.hop++
	return restart, addrRedirect{mailbox: mailbox, domain: domain}
}

// tryHTTPRedirect is the third method: an unauthenticated GET on port 80
// whose only useful answer is a redirect to an HTTPS Autodiscover URL.
func (r *run) tryHTTPRedirect(ctx context.Context, domain string) (next, addrRedirect) {
	u := &url.URL{Scheme: "http", Host: "autodiscover." + domain, Path: "/autodiscover/autodiscover.xml"}
	t := target{hop: r.hop, method: MethodHTTPRedirect, host: u.Hostname(), port: 80, url: u.String()}
	addrs, ok := r.resolve(ctx, t)
	if !ok {
		return nextCandidate, addrRedirect{}
	}
	conn, addr := r.connect(ctx, t, addrs)
	if conn == nil {
		return nextCandidate, addrRedirect{}
	}
	hc := newHTTPConn(conn, r.s.maxBodyBytes(), nil)
	defer hc.Close()
	started := time.Now()
	resp, err := hc.roundTrip(ctx, newGET(u, r.s), nil, r.s.stepTimeout())
	if err != nil {
		r.record(t, StepHTTPGet, started, addr, err, "")
		return nextCandidate, addrRedirect{}
	}
	if !isRedirectStatus(resp.status) {
		r.record(t, StepHTTPGet, started, addr, failf("no_redirect", "%s: no redirect", describeStatus(resp)), "")
		return nextCandidate, addrRedirect{}
	}
	r.record(t, StepHTTPGet, started, addr, nil, fmt.Sprintf("HTTP %d, Location %s", resp.status, truncate(resp.header.Get("Location"), 200)))
	started = time.Now()
	to, serr := resolveLocation(u, resp.header.Get("Location"))
	if serr != nil {
		r.record(t, StepRedirect, started, addr, serr, "")
		return nextCandidate, addrRedirect{}
	}
	if r.followURL(t, started, addr, to, true, fmt.Sprintf("HTTP %d", resp.status)) != follow {
		if r.res.Reason != "" {
			return stop, addrRedirect{}
		}
		return nextCandidate, addrRedirect{}
	}
	return r.tryURL(ctx, MethodRedirect, to)
}

// trySRV is the fourth method: _autodiscover._tcp.<domain>, lowest priority
// first, port 443 only.
func (r *run) trySRV(ctx context.Context, domain string) (next, addrRedirect) {
	name := "_autodiscover._tcp." + domain
	t := target{hop: r.hop, method: MethodSRV, host: name}
	started := time.Now()
	records, err := r.dns.lookupSRV(ctx, name)
	if err != nil {
		r.record(t, StepSRVLookup, started, "", err, "")
		return nextCandidate, addrRedirect{}
	}
	var usable []srvTarget
	var notes []string
	for _, rec := range records {
		desc := fmt.Sprintf("%s:%d (priority %d, weight %d)", rec.Target, rec.Port, rec.Priority, rec.Weight)
		switch {
		case rec.Target == "" || rec.Target == ".":
			notes = append(notes, desc+" skipped: target \".\" means no service")
		case rec.Port != 443:
			notes = append(notes, desc+" skipped: only port 443 is used")
		case net.ParseIP(rec.Target) != nil:
			notes = append(notes, desc+" skipped: target is an IP address")
		default:
			notes = append(notes, desc)
			usable = append(usable, rec)
		}
	}
	if len(usable) == 0 {
		r.record(t, StepSRVLookup, started, "", failf("no_usable_srv", "no record with port 443"), strings.Join(notes, "; "))
		return nextCandidate, addrRedirect{}
	}
	r.record(t, StepSRVLookup, started, "", nil, strings.Join(notes, "; "))
	for _, rec := range usable {
		if ctx.Err() != nil {
			break
		}
		if n, a := r.tryURL(ctx, MethodSRV, autodiscoverURL(rec.Target)); n != nextCandidate {
			return n, a
		}
	}
	return nextCandidate, addrRedirect{}
}

// resolve returns the addresses to dial for the target, recording the DNS
// step. A connect_to override by name, or an IP literal, needs no DNS.
func (r *run) resolve(ctx context.Context, t target) ([]string, bool) {
	if _, ok := overrideFor(r.s.ConnectTo, t.host, t.port); ok || net.ParseIP(t.host) != nil {
		return []string{t.host}, true
	}
	started := time.Now()
	lk, err := r.dns.lookupHost(ctx, t.host, r.s.ipVersion())
	if err != nil {
		r.record(t, StepDNS, started, "", err, "")
		return nil, false
	}
	addrs := make([]string, 0, len(lk.addrs))
	for _, a := range lk.addrs {
		addrs = append(addrs, a.String())
	}
	detail := "resolved " + strings.Join(addrs, ", ")
	if len(lk.cnames) > 0 {
		detail += " via CNAME " + strings.Join(lk.cnames, " → ")
	}
	r.record(t, StepDNS, started, "", nil, detail)
	return addrs, true
}

func (r *run) connect(ctx context.Context, t target, addrs []string) (net.Conn, string) {
	started := time.Now()
	conn, attempts := dialEach(ctx, addrs, t.port, r.s.ConnectTo, r.s.stepTimeout())
	var last dialAttempt
	if len(attempts) > 0 {
		last = attempts[len(attempts)-1]
	}
	detail := fmt.Sprintf("port %d: %s", t.port, describeAttempts(attempts))
	if conn == nil {
		err := last.err
		if err == nil {
			err = failf("timeout", "the deadline was reached before a connection was tried")
		}
		r.record(t, StepTCP, started, last.addr, &stepError{class: err.class, detail: "no address accepted the connection"}, detail)
		return nil, ""
	}
	r.record(t, StepTCP, started, last.addr, nil, detail)
	return conn, last.addr
}

// secure runs the TLS handshake and records the handshake, the three
// certificate verdicts and the client-certificate check.
func (r *run) secure(ctx context.Context, t target, conn net.Conn, addr string) *tlsOutcome {
	started := time.Now()
	out, err := handshake(ctx, conn, t.host, r.s.RootCAs, r.s.now(), r.s.stepTimeout())
	if err != nil {
		_ = conn.Close()
		r.record(t, StepTLSHandshake, started, addr, err, "")
		return nil
	}
	r.record(t, StepTLSHandshake, started, addr, nil, fmt.Sprintf("%s; certificate subject %s, issuer %s", tlsVersionName(out.state.Version), out.cert.Subject, out.cert.Issuer))
	now := time.Now()
	r.record(t, StepCertName, now, addr, out.nameErr, nameDetail(out))
	r.record(t, StepCertTrust, now, addr, out.trustErr, trustDetail(out))
	r.record(t, StepCertValidity, now, addr, out.validityErr, fmt.Sprintf("NotBefore %s, NotAfter %s", out.cert.NotBefore.UTC().Format(time.RFC3339), out.cert.NotAfter.UTC().Format(time.RFC3339)))
	var ccErr *stepError
	if out.clientCertRequested {
		ccErr = failf("client_cert_requested", "the server asked for a client certificate (Accept/Require Client Certificates is configured); none was sent")
	}
	r.record(t, StepClientCert, now, addr, ccErr, clientCertDetail(out))
	if !r.certSeen[t.host] {
		r.certSeen[t.host] = true
		ci := out.cert
		ci.Address = addr
		r.res.Certificates = append(r.res.Certificates, ci)
	}
	return out
}

func nameDetail(o *tlsOutcome) string {
	if o.nameErr != nil {
		return ""
	}
	return fmt.Sprintf("host name %s was found on the certificate", o.cert.Host)
}

func trustDetail(o *tlsOutcome) string {
	if o.trustErr != nil {
		return ""
	}
	return "the certificate is trusted and all certificates are present in the chain"
}

func clientCertDetail(o *tlsOutcome) string {
	if o.clientCertRequested {
		return ""
	}
	return "client certificate authentication wasn't detected"
}

func tlsVersionName(v uint16) string {
	switch v {
	case 0x0304:
		return "TLS 1.3"
	case 0x0303:
		return "TLS 1.2"
	case 0x0302:
		return "TLS 1.1"
	case 0x0301:
		return "TLS 1.0"
	}
	return fmt.Sprintf("TLS 0x%04x", v)
}

// reconnect opens a new connection to the address that answered before and
// insists on the same certificate, for a server that closed a keep-alive
// connection between the challenge and the credentials.
func (r *run) reconnect(ctx context.Context, t target, addr string, leaf []byte) (net.Conn, error) {
	conn, attempts := dialEach(ctx, []string{addr}, t.port, r.s.ConnectTo, r.s.stepTimeout())
	if conn == nil {
		if len(attempts) > 0 && attempts[0].err != nil {
			return nil, attempts[0].err
		}
		return nil, errors.New("no connection")
	}
	out, err := handshake(ctx, conn, t.host, r.s.RootCAs, r.s.now(), r.s.stepTimeout())
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	if string(out.state.PeerCertificates[0].Raw) != string(leaf) {
		_ = out.conn.Close()
		return nil, errors.New("the server presented a different certificate on the new connection")
	}
	return out.conn, nil
}

// post sends the Autodiscover POST, answers a 401 challenge when the rules
// allow it, and records the credentials and request steps. It returns the
// final response when it is usable (200 or a redirect).
func (r *run) post(ctx context.Context, t target, hc *httpConn, u *url.URL, addr string, certOK bool) *response {
	started := time.Now()
	body := BuildRequest(r.s.schema(), r.mailbox)
	resp, err := hc.roundTrip(ctx, newPOST(u, r.s, r.mailbox), body, r.s.stepTimeout())
	if err != nil {
		r.record(t, StepRequest, started, addr, err, "POST "+u.String())
		return nil
	}
	var notes []string
	if resp.status == http.StatusUnauthorized {
		challenges := ParseChallenges(resp.header)
		notes = append(notes, fmt.Sprintf("HTTP 401 challenge offering %s", orNone(schemeNames(challenges))))
		authed, ok := r.authenticate(ctx, t, hc, u, addr, body, challenges, certOK)
		if !ok {
			r.record(t, StepRequest, started, addr, failf("unauthorized", "HTTP 401 Unauthorized and no credentials were accepted"), strings.Join(notes, "; "))
			return nil
		}
		resp = authed
		notes = append(notes, "answered with credentials")
	}
	notes = append(notes, describeStatus(resp))
	if d := diagnosticHeaders(resp.header); d != "" {
		notes = append(notes, d)
	}
	detail := strings.Join(notes, "; ")
	if class := statusClass(resp); class != "" {
		r.record(t, StepRequest, started, addr, failf(class, "%s", statusReason(resp)), detail)
		return nil
	}
	r.record(t, StepRequest, started, addr, nil, detail)
	return resp
}

// authenticate answers a 401 challenge, but only over HTTPS whose
// certificate passed, only to the mailbox's domain or an allowed domain,
// and only with a scheme the authenticator supports.
func (r *run) authenticate(ctx context.Context, t target, hc *httpConn, u *url.URL, addr string, body []byte, challenges []Challenge, certOK bool) (*response, bool) {
	started := time.Now()
	fail := func(err *stepError) (*response, bool) {
		r.record(t, StepCredentials, started, addr, err, "")
		return nil, false
	}
	auth := r.s.Auth
	switch {
	case auth == nil && bearerAuthorizationURI(challenges) != "":
		return fail(failf("bearer_required", "the server wants OAuth (hybrid modern auth is enabled: authorization_uri=%s) and the module has no credentials", truncate(bearerAuthorizationURI(challenges), 120)))
	case auth == nil:
		return fail(failf("no_credentials", "the server asks for credentials but the module has none configured"))
	case !strings.EqualFold(u.Scheme, "https"):
		return fail(failf("withheld_plain_http", "credentials are never sent over plain HTTP"))
	case !certOK:
		return fail(failf("withheld_certificate", "credentials withheld: the certificate of %s failed validation", t.host))
	case !r.credentialsAllowed(t.host):
		return fail(failf("withheld_domain", "credentials withheld: %s is neither in %s nor in an allowed domain", t.host, r.homeDomain))
	}
	guard, key := r.s.Guard, r.s.GuardKey
	if guard != nil {
		if until, blocked := guard.Blocked(key); blocked {
			return fail(failf("auth_backoff", "credentials withheld until %s (%s left): the server refused them before, and repeating a stale password locks accounts out", until.UTC().Format(time.RFC3339), time.Until(until).Round(time.Second)))
		}
	}
	ch, ok := auth.Choose(challenges)
	if !ok {
		if uri := bearerAuthorizationURI(challenges); uri != "" {
			return fail(failf("bearer_required", "the server wants OAuth (hybrid modern auth is enabled: authorization_uri=%s); the module's credentials cannot answer it", truncate(uri, 120)))
		}
		return fail(failf("unsupported_scheme", "none of the offered schemes (%s) is one the module may use", orNone(schemeNames(challenges))))
	}
	ex := auth.NewExchange()
	for round := 0; round < 4; round++ {
		hdr, err := ex.Respond(ctx, ch)
		if errors.Is(err, ErrRejected) {
			if guard != nil {
				guard.Refused(key)
			}
			return fail(failf("auth_failed", "the server refused the %s credentials of %s (HTTP 401 again)", ch.Scheme, auth.Identity()))
		}
		if err != nil {
			return fail(failf("auth_error", "%s: %v", ch.Scheme, err))
		}
		req := newPOST(u, r.s, r.mailbox)
		req.Header.Set("Authorization", hdr)
		resp, serr := hc.roundTrip(ctx, req, body, r.s.stepTimeout())
		if serr != nil {
			return fail(serr)
		}
		if resp.status != http.StatusUnauthorized {
			if guard != nil {
				guard.Accepted(key)
			}
			r.record(t, StepCredentials, started, addr, nil, fmt.Sprintf("%s credentials of %s sent; server answered HTTP %d", ch.Scheme, auth.Identity(), resp.status))
			return resp, true
		}
		again, found := sameScheme(ParseChallenges(resp.header), ch.Scheme)
		if !found {
			if guard != nil {
				guard.Refused(key)
			}
			return fail(failf("auth_failed", "the server refused the %s credentials of %s (HTTP 401 without a %s challenge)", ch.Scheme, auth.Identity(), ch.Scheme))
		}
		ch = again
	}
	return fail(failf("auth_failed", "too many authentication rounds"))
}

func (r *run) credentialsAllowed(host string) bool {
	if net.ParseIP(host) != nil {
		return false
	}
	if inDomain(host, r.homeDomain) {
		return true
	}
	for _, d := range r.s.AllowedDomains {
		if inDomain(host, d) {
			return true
		}
	}
	return false
}

// bearerAuthorizationURI returns the authorization_uri of a Bearer
// challenge: Exchange advertises hybrid modern auth (or Exchange Online
// OAuth) that way.
func bearerAuthorizationURI(cs []Challenge) string {
	for _, c := range cs {
		if !strings.EqualFold(c.Scheme, "Bearer") {
			continue
		}
		for _, p := range splitOutsideQuotes(c.Params, ',') {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "authorization_uri") {
				return strings.Trim(strings.TrimSpace(v), `"`)
			}
		}
	}
	return ""
}

// diagnosticHeaders picks the headers Microsoft support asks for and that
// name the answering front and back ends.
func diagnosticHeaders(h http.Header) string {
	var parts []string
	for _, name := range []string{"request-id", "X-FEServer", "X-BEServer", "X-CalculatedBETarget", "X-OWA-Version", "X-DiagInfo", "X-AutoDiscovery-Error"} {
		if v := h.Get(name); v != "" {
			parts = append(parts, name+"="+truncate(v, 80))
		}
	}
	return strings.Join(parts, ", ")
}

func sameScheme(cs []Challenge, scheme string) (Challenge, bool) {
	for _, c := range cs {
		if strings.EqualFold(c.Scheme, scheme) {
			return c, true
		}
	}
	return Challenge{}, false
}

func orNone(s string) string {
	if s == "" {
		return "no scheme"
	}
	return s
}

func isRedirectStatus(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect:
		return true
	}
	return false
}

// statusClass maps an HTTP status to the request step's error class; empty
// means the answer is usable.
func statusClass(resp *response) string {
	switch {
	case resp.status == http.StatusOK || isRedirectStatus(resp.status):
		return ""
	case resp.status == http.StatusUnauthorized:
		return "unauthorized"
	case resp.status == http.StatusForbidden:
		return "forbidden"
	case resp.status == http.StatusNotFound || resp.status == http.StatusMethodNotAllowed:
		return "not_found"
	case resp.status == http.StatusTooManyRequests:
		return "throttled"
	case resp.status == 456:
		return "account_state"
	case resp.status >= 500:
		return "server_error"
	}
	return "http_status"
}

func statusReason(resp *response) string {
	s := fmt.Sprintf("HTTP %d", resp.status)
	if t := http.StatusText(resp.status); t != "" {
		s += " " + t
	}
	if e := resp.header.Get("X-AutoDiscovery-Error"); e != "" {
		s += " (X-AutoDiscovery-Error: " + truncate(e, 120) + ")"
	}
	return s
}

func isXMLContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "text/xml" || mt == "application/xml" || strings.HasSuffix(mt, "+xml")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// failureSummary explains a failed run in one sentence.
func (r *run) failureSummary(ctx context.Context) string {
	prefix := "no method reached an Autodiscover server for " + r.mailbox
	if ctx.Err() != nil {
		prefix = "the deadline was reached"
	}
	if r.lastFailure < 0 {
		return prefix
	}
	f := r.res.Steps[r.lastFailure]
	return fmt.Sprintf("%s; last failure: %s %s on %s (%s)", prefix, f.Method, f.Name, f.Host, f.ErrorClass)
}
