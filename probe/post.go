package probe

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// postTo runs DNS, TCP, TLS, certificate checks and the POST against one
// URL, and acts on the answer.
func (r *run) postTo(ctx context.Context, method Method, u *url.URL) outcome {
	t := r.newTarget(method, u)
	addrs, ok := r.resolve(ctx, t)
	if !ok {
		return outcome{next: nextCandidate}
	}
	r.noteTLSHost(t, addrs)
	tlsOut, addr := r.secure(ctx, t, addrs)
	if tlsOut == nil {
		return outcome{next: nextCandidate}
	}
	certOK := tlsOut.certOK()
	if !certOK && !r.p.s.InsecureSkipVerify {
		_ = tlsOut.conn.Close()
		return outcome{next: nextCandidate}
	}
	leaf := tlsOut.state.PeerCertificates[0].Raw
	reopen := func(ctx context.Context) (net.Conn, error) {
		return r.reconnect(ctx, t, addr, leaf)
	}
	hc := newHTTPConn(tlsOut.conn, r.p.s.maxBodyBytes(), reopen)
	defer hc.Close()

	resp := r.post(ctx, t, hc, u, addr, certOK)
	if resp == nil {
		return outcome{next: nextCandidate}
	}
	if isRedirectStatus(resp.status) {
		started := time.Now()
		to, err := resolveLocation(u, resp.header.Get("Location"))
		if err != nil {
			r.rec.record(t, StepRedirect, started, addr, err, "")
			return outcome{next: nextCandidate}
		}
		return r.followURL(t, started, addr, to, r.fl.redirectRule(), fmt.Sprintf("HTTP %d", resp.status))
	}
	if r.fl != flavourPOX {
		out := r.handleSOAPAnswer(t, addr, u, resp)
		if r.fl == flavourFederation && out.next == stop && r.res.Federation.ApplicationURI != "" {
			r.checkWSSecurity(ctx, t, hc, u, addr)
		}
		return out
	}
	return r.handleAnswer(t, addr, u, resp)
}

// handleAnswer parses an answer and acts on it. Answers are read by their
// content: a body that parses as Autodiscover XML is taken whatever its
// content type says (Z-Push and grommunio-sync send text/html), and the
// odd type is noted.
func (r *run) handleAnswer(t target, addr string, u *url.URL, resp *response) outcome {
	started := time.Now()
	ans, err := ParseResponse(resp.body)
	ct := resp.header.Get("Content-Type")
	oddType := ct != "" && !isXMLContentType(ct)
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) {
			pe = failf(ClassBadPayload, "%v", err)
		}
		if oddType {
			pe = failf(ClassBadContentType, "expected text/xml, got %s, and the body is no Autodiscover answer (%s)", truncate(ct, 60), pe.Detail)
		}
		r.rec.record(t, StepParse, started, addr, pe, "")
		return outcome{next: nextCandidate}
	}
	note := ""
	if oddType {
		note = fmt.Sprintf("sent as %s; ", truncate(ct, 60))
	}
	if ans.Error != nil {
		r.res.Response = ans
		r.res.FinalURL = u.String()
		r.res.ErrorCode, r.res.ErrorMessage = Printable(ans.Error.Code, maxFieldBytes), Printable(ans.Error.Message, maxFieldBytes)
		r.res.ErrorSchema = ans.Schema
		r.rec.record(t, StepParse, started, addr, failf(ClassAutodiscoverError, "%s%s %s: %s", note, errorWord(ans.Schema), ans.Error.Code, truncate(ans.Error.Message, 200)), "")
		reason := fmt.Sprintf("Autodiscover error %s from %s (%s): %s", r.res.ErrorCode, t.host, candidateWords(t.method), r.res.ErrorMessage)
		if ans.Error.Code == "500" && resp.authenticated && r.p.appOnly() {
			reason += " (the token was app-only, grant client_credentials: Exchange Online's POX Autodiscover answers every app-only token so, whatever the mailbox; use grant refresh_token)"
		}
		if r.p.s.ContinueAfterError {
			r.errorReason = reason
			return outcome{next: nextCandidate}
		}
		return stopBecause(reason)
	}
	return r.act(t, addr, u, ans, started, note)
}

// act follows the Action of an answer; note starts the parse step's
// detail.
func (r *run) act(t target, addr string, u *url.URL, ans *Response, started time.Time, note string) outcome {
	switch ans.Action {
	case ActionSettings:
		if !ans.namesAnEndpoint() {
			r.rec.record(t, StepParse, started, addr, failf(ClassNoSettings, "%sthe answer says settings but names no server or URL a client could connect to", note), "")
			return outcome{next: nextCandidate}
		}
		r.res.Response = ans
		r.res.FinalURL = u.String()
		r.res.ChainSuccess = true
		r.rec.record(t, StepParse, started, addr, nil, note+r.describeSettings(ans))
		return outcome{next: stop}
	case ActionRedirectURL:
		r.rec.record(t, StepParse, started, addr, nil, note+"redirectUrl "+truncate(ans.RedirectURL, 200))
		started = time.Now()
		to, serr := resolveLocation(u, ans.RedirectURL)
		if serr != nil {
			r.rec.record(t, StepRedirect, started, addr, serr, "")
			return outcome{next: nextCandidate}
		}
		return r.followURL(t, started, addr, to, redirectURLRule, "redirectUrl")
	case ActionRedirectAddr:
		r.rec.record(t, StepParse, started, addr, nil, note+"redirectAddr "+truncate(ans.RedirectAddr, 200))
		return r.followAddr(t, addr, ans.RedirectAddr)
	}
	r.rec.record(t, StepParse, started, addr, failf(ClassBadAction, "unexpected action %q", ans.Action), "")
	return outcome{next: nextCandidate}
}

// describeSettings is the parse step's detail for an answer with
// settings: where EWS is and which block it came from, the server, the
// protocols, the mail-only servers, and the primary address when it is
// not the one asked for.
func (r *run) describeSettings(ans *Response) string {
	parts := []string{"settings returned"}
	if ews, from := ans.EWSURLFrom(); ews != "" {
		parts = append(parts, fmt.Sprintf("EWS %s (from %s)", ews, from))
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
	for _, p := range ans.MailProtocols() {
		parts = append(parts, describeMailServer(p))
	}
	if smtp := ans.User.AutoDiscoverSMTPAddress; smtp != "" && !strings.EqualFold(smtp, r.mailbox) {
		parts = append(parts, fmt.Sprintf("primary address %s (asked for %s)", smtp, r.mailbox))
	}
	return strings.Join(parts, "; ")
}

// describeMailServer reads "IMAP imap.example.com:993 ssl, login user".
func describeMailServer(p Protocol) string {
	s := strings.ToUpper(p.Type) + " " + p.Server
	if p.Port != 0 {
		s += ":" + strconv.Itoa(p.Port)
	}
	if p.Encryption != "" {
		s += " " + p.Encryption
	}
	if p.LoginName != "" {
		s += ", login " + p.LoginName
	}
	return s
}

// post sends the Autodiscover POST, answers a 401 challenge when the rules
// allow it, and records the credentials and request steps. It returns the
// final response when it is usable (200 or a redirect).
func (r *run) post(ctx context.Context, t target, hc *httpConn, u *url.URL, addr string, certOK bool) *response {
	started := time.Now()
	build, body := r.request(u)
	resp, err := hc.roundTrip(ctx, build(), body, r.p.s.stepTimeout())
	if err != nil {
		r.rec.record(t, StepRequest, started, addr, err, "POST "+u.String())
		return nil
	}
	var notes []string
	if resp.status == http.StatusUnauthorized && r.fl.anonymous() {
		challenges := ParseChallenges(resp.header)
		r.rec.record(t, StepRequest, started, addr, failf(ClassUnauthorized, "HTTP 401 offering %s: GetFederationInformation must answer anonymously, and no credentials are sent to it", orNone(schemeNames(challenges))), "")
		return nil
	}
	if resp.status == http.StatusUnauthorized {
		challenges := ParseChallenges(resp.header)
		notes = append(notes, fmt.Sprintf("HTTP 401 challenge offering %s", orNone(schemeNames(challenges))))
		authed, ok := r.authenticate(ctx, r.rec, t, hc, u, addr, build, body, challenges, certOK)
		if !ok {
			r.rec.record(t, StepRequest, started, addr, failf(ClassUnauthorized, "HTTP 401 Unauthorized and no credentials were accepted"), strings.Join(notes, "; "))
			return nil
		}
		resp = authed
		resp.authenticated = true
		notes = append(notes, "answered with credentials")
	}
	notes = append(notes, describeStatus(resp))
	if d := diagnosticHeaders(resp.header); d != "" {
		notes = append(notes, d)
	}
	detail := strings.Join(notes, "; ")
	if class := statusClass(resp); class != "" {
		if class != ClassUnauthorized && r.fl == flavourPOX && looksLikeAutodiscoverError(resp.body) {
			// SOGo answers 400 with a 601 body, some servers 500 with a 500
			// one: the Error inside says more than the status.
			r.rec.record(t, StepRequest, started, addr, nil, detail+"; the body is an Autodiscover Error")
			return resp
		}
		if class == ClassServerError && r.fl != flavourPOX && looksLikeSOAPFault(resp.body) {
			// SOAP reports a fault with HTTP 500; the fault says why.
			r.rec.record(t, StepRequest, started, addr, nil, detail+"; the body is a SOAP fault")
			return resp
		}
		r.rec.record(t, StepRequest, started, addr, failf(class, "%s", statusReason(resp)), detail)
		return nil
	}
	r.rec.record(t, StepRequest, started, addr, nil, detail)
	return resp
}

// request is the flavour's request to u: a builder of its headers (called
// again for each authentication leg) and its body.
func (r *run) request(u *url.URL) (func() *http.Request, []byte) {
	mailbox := r.mailbox
	switch r.fl {
	case flavourSOAP:
		return func() *http.Request { return newSOAPPOST(u, &r.p.s, mailbox, soapActionGetUserSettings) }, buildGetUserSettings(u, mailbox)
	case flavourFederation:
		domain := r.homeDomain
		return func() *http.Request { return newSOAPPOST(u, &r.p.s, "", soapActionGetFederationInformation) }, buildGetFederationInformation(u, domain)
	}
	return func() *http.Request { return newPOST(u, &r.p.s, mailbox) }, BuildRequest(r.p.s.schema(), mailbox)
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

func isRedirectStatus(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect:
		return true
	}
	return false
}

// statusClass maps an HTTP status to the request step's error class; empty
// means the answer is usable.
func statusClass(resp *response) ErrorClass {
	switch {
	case resp.status == http.StatusOK || isRedirectStatus(resp.status):
		return ""
	case resp.status == http.StatusUnauthorized:
		return ClassUnauthorized
	case resp.status == http.StatusForbidden:
		return ClassForbidden
	case resp.status == http.StatusNotFound || resp.status == http.StatusMethodNotAllowed:
		return ClassNotFound
	case resp.status == http.StatusTooManyRequests:
		return ClassThrottled
	case resp.status == 456:
		return ClassAccountState
	case resp.status >= 500:
		return ClassServerError
	}
	return ClassHTTPStatus
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

// looksLikeAutodiscoverError reports a body that is an Autodiscover Error
// answer.
func looksLikeAutodiscoverError(body []byte) bool {
	ans, err := ParseResponse(body)
	return err == nil && ans.Error != nil
}

func errorWord(s Schema) string {
	if s == SchemaMobileSync {
		return "Status"
	}
	return "ErrorCode"
}

// candidateWords names a candidate method for a reason.
func candidateWords(m Method) string {
	switch BaseMethod(m) {
	case MethodRootDomain:
		return "the domain root"
	case MethodAutodiscoverDomain:
		return "the autodiscover host"
	case MethodSRV:
		return "an SRV record"
	case MethodHTTPRedirect:
		return "the HTTP redirect method"
	case MethodRedirect:
		return "a redirect"
	case MethodV2Endpoint:
		return "the URL Autodiscover v2 returned"
	case MethodSCP:
		return "an SCP object"
	}
	return string(m)
}
