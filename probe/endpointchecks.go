package probe

import (
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// checkEndpoint runs the protocol check of one endpoint URL on hc: the
// request a client starts with, unauthenticated (auth_methods); the same
// request with credentials where the rules allow them (credentials); and
// the judgement of the protocol's answer (endpoint_answer).
func (r *run) checkEndpoint(ctx context.Context, rec *recorder, t target, hc *httpConn, u *url.URL, addr string, c *EndpointCheck, certOK bool) {
	build, body := r.endpointRequest(c, u)
	started := time.Now()
	resp, err := hc.roundTrip(ctx, build(), body, r.p.s.stepTimeout())
	if err != nil {
		step := StepAuthMethods
		if c.Protocol == EndpointOWA {
			step = StepEndpointAnswer
		}
		rec.record(t, step, started, addr, err, build().Method+" "+c.URL)
		return
	}
	if c.Protocol == EndpointOWA {
		// Outlook on the web is a page for browsers: reachable over TLS
		// with a passed certificate and not a server error is all a client
		// needs before the sign-in form. It never gets credentials.
		var serr *Error
		if resp.status >= 500 {
			serr = failf(ClassServerError, "%s", statusReason(resp))
		}
		detail := describeStatus(resp)
		if loc := resp.header.Get("Location"); loc != "" && isRedirectStatus(resp.status) {
			detail += "; to " + truncate(loc, 160)
		}
		rec.record(t, StepEndpointAnswer, started, addr, serr, detail)
		return
	}
	if resp.status != http.StatusUnauthorized {
		if anonymousAnswerWanted(c.Protocol, resp) {
			rec.record(t, StepAuthMethods, started, addr, nil, describeStatus(resp)+"; no authentication asked")
			r.judgeEndpoint(rec, t, addr, c, resp, time.Now())
			return
		}
		rec.record(t, StepAuthMethods, started, addr, failf(unexpectedStatusClass(resp), "expected HTTP 401 asking for credentials, got %s", statusReason(resp)), describeStatus(resp))
		return
	}
	challenges := ParseChallenges(resp.header)
	offered := fmt.Sprintf("HTTP 401 offering %s", orNone(schemeNames(challenges)))
	if len(challenges) == 0 {
		rec.record(t, StepAuthMethods, started, addr, failf(ClassUnsupportedScheme, "HTTP 401 without a WWW-Authenticate challenge"), "")
		return
	}
	if r.p.auth != nil {
		ch, ok := r.p.auth.Choose(challenges)
		if !ok {
			class, why := ClassUnsupportedScheme, "none of them is the module's scheme"
			if uri := bearerAuthorizationURI(challenges); uri != "" {
				class, why = ClassBearerRequired, "only OAuth would do (authorization_uri="+truncate(uri, 120)+")"
			}
			rec.record(t, StepAuthMethods, started, addr, failf(class, "%s", why), offered)
			return
		}
		offered += "; the module answers " + ch.Scheme
	}
	if why := r.mayAnswer(t, u, challenges, certOK); why != nil {
		// Not a failure of the endpoint: it asks for credentials as it
		// should, and the rules keep them from it.
		rec.record(t, StepAuthMethods, started, addr, nil, offered+"; credentials not sent: "+why.Detail)
		return
	}
	rec.record(t, StepAuthMethods, started, addr, nil, offered)
	authed, ok := r.authenticate(ctx, rec, t, hc, u, addr, build, body, challenges, certOK)
	if r.p.s.Auth.Type == AuthNTLM {
		// NTLM and Negotiate bind the connection to the account: the next
		// URL's unauthenticated request needs a connection of its own.
		// Basic and Bearer authenticate one request and leave it clean.
		hc.Close()
		hc.closed = true
	}
	if !ok {
		return
	}
	r.judgeEndpoint(rec, t, addr, c, authed, time.Now())
}

// anonymousAnswerWanted reports an answer to the unauthenticated request
// that is the protocol's own: ActiveSync's OPTIONS and an OAB published
// without authentication.
func anonymousAnswerWanted(p EndpointProtocol, resp *response) bool {
	if resp.status != http.StatusOK {
		return false
	}
	switch p {
	case EndpointActiveSync:
		return resp.header.Get("MS-ASProtocolVersions") != ""
	case EndpointOAB:
		return true
	}
	return false
}

func unexpectedStatusClass(resp *response) ErrorClass {
	if c := statusClass(resp); c != "" {
		return c
	}
	return ClassHTTPStatus
}

// endpointRequest builds the request a client starts each protocol with.
func (r *run) endpointRequest(c *EndpointCheck, u *url.URL) (func() *http.Request, []byte) {
	s := &r.p.s
	mailbox := r.mailbox
	switch c.Protocol {
	case EndpointEWS:
		body := ewsGetInbox(mailbox, r.p.appOnly())
		return func() *http.Request {
			req := newRequest(http.MethodPost, u, s)
			req.Header.Set("Content-Type", "text/xml; charset=utf-8")
			req.Header.Set("Accept", "text/xml")
			req.Header.Set("X-AnchorMailbox", mailbox)
			return req
		}, body
	case EndpointMAPI:
		// A PING ([MS-OXCMAPIHTTP] 2.2.5.15) needs no session: it asks the
		// endpoint whether it is up, and is what a client may send first.
		clientInfo := "{" + newGUID() + "}-1"
		requestID := "{" + newGUID() + "}:1"
		return func() *http.Request {
			req := newRequest(http.MethodPost, u, s)
			req.Header.Set("Content-Type", "application/mapi-http")
			req.Header.Set("Accept", "application/mapi-http")
			req.Header.Set("X-RequestType", "PING")
			req.Header.Set("X-ClientInfo", clientInfo)
			req.Header.Set("X-RequestId", requestID)
			req.Header.Set("X-ClientApplication", "Outlook/16.0.17928.20114")
			req.Header.Set("X-AnchorMailbox", mailbox)
			return req
		}, nil
	case EndpointActiveSync:
		return func() *http.Request {
			req := newRequest(http.MethodOptions, u, s)
			req.Header.Set("MS-ASProtocolVersion", "16.1")
			return req
		}, nil
	}
	// OAB and OWA: a GET.
	return func() *http.Request { return newRequest(http.MethodGet, u, s) }, nil
}

// ewsGetInbox is the smallest authenticated EWS call that proves the
// mailbox is reachable: GetFolder of its inbox, IdOnly. An app-only token
// acts for the mailbox through ExchangeImpersonation.
func ewsGetInbox(mailbox string, impersonate bool) []byte {
	var esc strings.Builder
	_ = xml.EscapeText(&esc, []byte(mailbox))
	header := `<t:RequestServerVersion Version="Exchange2013"/>`
	if impersonate {
		header += `<t:ExchangeImpersonation><t:ConnectingSID><t:SmtpAddress>` + esc.String() + `</t:SmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>`
	}
	return []byte(`<?xml version="1.0" encoding="utf-8"?>` +
		`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">` +
		`<soap:Header>` + header + `</soap:Header>` +
		`<soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>` +
		`<m:FolderIds><t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>` + esc.String() + `</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId></m:FolderIds>` +
		`</m:GetFolder></soap:Body></soap:Envelope>`)
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// judgeEndpoint records endpoint_answer: whether resp is the protocol's
// own successful answer.
func (r *run) judgeEndpoint(rec *recorder, t target, addr string, c *EndpointCheck, resp *response, started time.Time) {
	detail, err := judgeAnswer(c.Protocol, resp)
	rec.record(t, StepEndpointAnswer, started, addr, err, detail)
}

func judgeAnswer(p EndpointProtocol, resp *response) (string, *Error) {
	switch p {
	case EndpointEWS:
		return judgeEWS(resp)
	case EndpointMAPI:
		return judgeMAPI(resp)
	case EndpointOAB:
		return judgeOAB(resp)
	case EndpointActiveSync:
		if resp.status != http.StatusOK {
			return describeStatus(resp), failf(unexpectedStatusClass(resp), "%s", statusReason(resp))
		}
		v := resp.header.Get("MS-ASProtocolVersions")
		if v == "" {
			return describeStatus(resp), failf(ClassNotProtocol, "the OPTIONS answer has no MS-ASProtocolVersions header: not an ActiveSync server")
		}
		return "protocol versions " + truncate(v, 120), nil
	}
	return describeStatus(resp), nil
}

// judgeEWS reads the GetFolder answer: a SOAP envelope whose response
// message says ResponseCode NoError. EWS reports errors in the envelope,
// faults with HTTP 500.
func judgeEWS(resp *response) (string, *Error) {
	env, err := decodeXMLTreeOf(resp.body, "Envelope")
	if err != nil {
		if resp.status != http.StatusOK {
			return describeStatus(resp), failf(unexpectedStatusClass(resp), "%s", statusReason(resp))
		}
		return describeStatus(resp), notProtocol(err, "the answer is no SOAP envelope")
	}
	body := env.child("Body")
	if f := body.child("Fault"); f != nil {
		code := firstNonEmpty(f.child("detail").childText("ResponseCode"), f.childText("faultcode"))
		return describeStatus(resp), failf(ClassEndpointError, "SOAP fault %s: %s", truncate(code, 80), truncate(f.childText("faultstring"), 200))
	}
	msg := body.child("GetFolderResponse").child("ResponseMessages").child("GetFolderResponseMessage")
	if msg == nil {
		if resp.status != http.StatusOK {
			return describeStatus(resp), failf(unexpectedStatusClass(resp), "%s", statusReason(resp))
		}
		return describeStatus(resp), failf(ClassNotProtocol, "the SOAP answer has no GetFolderResponseMessage")
	}
	code := msg.childText("ResponseCode")
	version := ""
	if sv := env.child("Header").child("ServerVersionInfo"); sv != nil {
		version = fmt.Sprintf("; server version %s.%s.%s.%s", sv.attr("MajorVersion"), sv.attr("MinorVersion"), sv.attr("MajorBuildNumber"), sv.attr("MinorBuildNumber"))
	}
	if code != "NoError" {
		return "", failf(ClassEndpointError, "GetFolder answered ResponseCode %s: %s", truncate(orNone(code), 80), truncate(msg.childText("MessageText"), 200))
	}
	// EWS answers success with 200 only; NoError under any other status
	// is not an answer a client would accept.
	if resp.status != http.StatusOK {
		return describeStatus(resp), failf(unexpectedStatusClass(resp), "%s", statusReason(resp))
	}
	return "GetFolder of the inbox answered ResponseCode NoError" + version, nil
}

// mapiResponseCodes names the X-ResponseCode values of [MS-OXCMAPIHTTP]
// 2.2.3.3.3.
var mapiResponseCodes = map[int]string{
	0: "Success", 1: "Unknown Failure", 2: "Invalid Verb", 3: "Invalid Path", 4: "Invalid Header", 5: "Invalid Request Type",
	6: "Invalid Context Cookie", 7: "Missing Header", 8: "Anonymous Not Allowed", 9: "Too Large", 10: "Context Not Found",
	11: "No Privilege", 12: "Invalid Request Body", 13: "Missing Cookie", 15: "Invalid Sequence", 16: "Endpoint Disabled",
	17: "Invalid Response", 18: "Endpoint Shutting Down",
}

// judgeMAPI reads the PING answer: HTTP 200 with X-ResponseCode 0.
func judgeMAPI(resp *response) (string, *Error) {
	raw := resp.header.Get("X-ResponseCode")
	if raw == "" {
		if resp.status != http.StatusOK {
			return describeStatus(resp), failf(unexpectedStatusClass(resp), "%s", statusReason(resp))
		}
		return describeStatus(resp), failf(ClassNotProtocol, "the answer has no X-ResponseCode header: not a MAPI/HTTP endpoint")
	}
	digits := strings.TrimSpace(raw)
	code, err := strconv.Atoi(digits)
	// Atoi accepts a sign and leading zeros; the header is a bare number.
	if err != nil || strings.TrimLeft(digits, "0123456789") != "" || len(digits) > 1 && digits[0] == '0' {
		return describeStatus(resp), failf(ClassNotProtocol, "X-ResponseCode %q is not a number", truncate(raw, 20))
	}
	name := mapiResponseCodes[code]
	if name == "" {
		name = "unknown code"
	}
	detail := fmt.Sprintf("HTTP %d, X-ResponseCode %d (%s)", resp.status, code, name)
	if srv := resp.header.Get("X-ServerApplication"); srv != "" {
		detail += ", " + truncate(srv, 80)
	}
	if code != 0 || resp.status != http.StatusOK {
		return "", failf(ClassEndpointError, "%s", detail)
	}
	return detail, nil
}

// judgeOAB reads oab.xml: the OAB manifest with at least one address
// list.
func judgeOAB(resp *response) (string, *Error) {
	if resp.status != http.StatusOK {
		return describeStatus(resp), failf(unexpectedStatusClass(resp), "%s", statusReason(resp))
	}
	root, err := decodeXMLTreeOf(resp.body, "OAB")
	if err != nil {
		return describeStatus(resp), notProtocol(err, "oab.xml is no OAB manifest")
	}
	lists := 0
	var names []string
	for _, k := range root.kids {
		if strings.EqualFold(k.local, "OAL") {
			lists++
			if n := k.attr("name"); n != "" && len(names) < 3 {
				names = append(names, n)
			}
		}
	}
	if lists == 0 {
		return describeStatus(resp), failf(ClassNotProtocol, "the OAB manifest lists no address list")
	}
	return fmt.Sprintf("OAB manifest with %d address list(s) %s", lists, strings.Join(names, ", ")), nil
}

// notProtocol maps a parse failure of an endpoint's answer: XML of
// another kind is not the protocol, broken XML keeps its class.
func notProtocol(err error, what string) *Error {
	var pe *Error
	if errors.As(err, &pe) && pe.Class != ClassNotAutodiscover {
		return failf(pe.Class, "%s: %s", what, pe.Detail)
	}
	return failf(ClassNotProtocol, "%s (%v)", what, err)
}
