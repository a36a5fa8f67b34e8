package probe

import (
	"bytes"
	"cmp"
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
)

// SOAP Autodiscover ([MS-OXWSADISC]): GetUserSettings for the mailbox and
// the anonymous GetFederationInformation for its domain, both POSTed to
// autodiscover.svc as SOAP 1.1 envelopes with WS-Addressing headers.
const (
	nsSOAP11        = "http://schemas.xmlsoap.org/soap/envelope/"
	nsSOAP12        = "http://www.w3.org/2003/05/soap-envelope"
	nsAutodiscover  = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
	nsWSAddressing  = "http://www.w3.org/2005/08/addressing"
	soapActionBase  = "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/"
	soapServerAsked = "Exchange2013"

	soapActionGetUserSettings          = soapActionBase + "GetUserSettings"
	soapActionGetFederationInformation = soapActionBase + "GetFederationInformation"
)

// RequestedUserSettings are the settings the SOAP discovery asks for:
// what an EWS client needs to connect, and what tells an admin where it
// would go.
var RequestedUserSettings = []string{
	"UserDisplayName", "UserDN", "AutoDiscoverSMTPAddress", "CasVersion",
	"ExternalEwsUrl", "InternalEwsUrl", "EwsSupportedSchemas",
	"ExternalMapiHttpServerUrl", "InternalMapiHttpServerUrl", "MapiHttpEnabled",
}

// Caps on what one SOAP answer may bring into a Result: the XML parser
// already bounds the tokens, these bound what is kept.
const (
	maxSOAPSettings     = 64
	maxFederationValues = 16
)

// newSOAPPOST builds a SOAP Autodiscover POST. mailbox, when set, routes
// it with X-AnchorMailbox as the EWS Managed API does.
func newSOAPPOST(u *url.URL, s *Settings, mailbox, action string) *http.Request {
	req := newRequest(http.MethodPost, u, s)
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("Accept", "text/xml")
	req.Header.Set("SOAPAction", `"`+action+`"`)
	if mailbox != "" {
		req.Header.Set("X-AnchorMailbox", mailbox)
	}
	return req
}

// soapEnvelope wraps body in the envelope Exchange expects: the requested
// server version, the action and the endpoint in the header.
func soapEnvelope(u *url.URL, action string, body func(*bytes.Buffer)) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<soap:Envelope xmlns:soap="` + nsSOAP11 + `" xmlns:a="` + nsAutodiscover + `" xmlns:wsa="` + nsWSAddressing + `" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`)
	b.WriteString(`<soap:Header><a:RequestedServerVersion>` + soapServerAsked + `</a:RequestedServerVersion>`)
	b.WriteString(`<wsa:Action>` + action + `</wsa:Action><wsa:To>`)
	writeEscaped(&b, redactURL(u))
	b.WriteString(`</wsa:To></soap:Header><soap:Body>`)
	body(&b)
	b.WriteString(`</soap:Body></soap:Envelope>`)
	return b.Bytes()
}

// buildGetUserSettings is the GetUserSettings request for mailbox.
func buildGetUserSettings(u *url.URL, mailbox string) []byte {
	return soapEnvelope(u, soapActionGetUserSettings, func(b *bytes.Buffer) {
		b.WriteString(`<a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>`)
		writeEscaped(b, mailbox)
		b.WriteString(`</a:Mailbox></a:User></a:Users><a:RequestedSettings>`)
		for _, s := range RequestedUserSettings {
			b.WriteString(`<a:Setting>` + s + `</a:Setting>`)
		}
		b.WriteString(`</a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage>`)
	})
}

// buildGetFederationInformation is the anonymous request for domain's
// federation information.
func buildGetFederationInformation(u *url.URL, domain string) []byte {
	return soapEnvelope(u, soapActionGetFederationInformation, func(b *bytes.Buffer) {
		b.WriteString(`<a:GetFederationInformationRequestMessage><a:Request><a:Domain>`)
		writeEscaped(b, domain)
		b.WriteString(`</a:Domain></a:Request></a:GetFederationInformationRequestMessage>`)
	})
}

// soapFault is a SOAP 1.1 Fault.
type soapFault struct {
	code, text string
}

func (f *soapFault) String() string {
	if f.code == "" && f.text == "" {
		return "a SOAP fault with neither a fault code nor a fault string"
	}
	return fmt.Sprintf("SOAP fault %s: %s", truncate(orNone(f.code), 80), truncate(orNone(f.text), 200))
}

// soapAnswer is a parsed SOAP Autodiscover answer: a fault, or the
// response message asked for.
type soapAnswer struct {
	fault         *soapFault
	serverVersion string
	// message is the response message element (GetUserSettings…, or
	// GetFederationInformationResponseMessage).
	message *xnode
}

// parseSOAPAnswer reads a SOAP Autodiscover answer with the one XML parser
// and its caps. The envelope must be SOAP 1.1's and the message
// Autodiscover 2010's, named want.
func parseSOAPAnswer(body []byte, want string) (*soapAnswer, *Error) {
	body = bytes.TrimLeftFunc(bytes.TrimPrefix(body, utf8BOM), unicode.IsSpace)
	if len(body) == 0 {
		return nil, failf(ClassEmptyBody, "the answer is empty: no SOAP envelope")
	}
	env, err := decodeXMLTreeOf(body, "Envelope")
	if err != nil {
		return nil, asError(err, "the answer is no SOAP envelope")
	}
	switch env.space {
	case nsSOAP11:
	case nsSOAP12:
		return nil, failf(ClassNotAutodiscover, "a SOAP 1.2 envelope: Exchange's autodiscover.svc answers SOAP 1.1")
	default:
		return nil, failf(ClassNotAutodiscover, "the Envelope is in namespace %q, not SOAP 1.1's", truncate(env.space, 100))
	}
	ans := &soapAnswer{serverVersion: serverVersion(env.child("Header").child("ServerVersionInfo"))}
	bodyNode := env.child("Body")
	if bodyNode == nil {
		return nil, failf(ClassNotAutodiscover, "the SOAP envelope has no Body")
	}
	if f := bodyNode.child("Fault"); f != nil {
		code := f.childText("faultcode")
		if code == "" {
			// SOAP 1.2 style Code/Value, which some proxies send.
			code = f.child("Code").childText("Value")
		}
		ans.fault = &soapFault{code: code, text: cmp.Or(f.childText("faultstring"), f.child("Reason").childText("Text"))}
		return ans, nil
	}
	msg := bodyNode.child(want)
	if msg == nil {
		got := "nothing"
		if len(bodyNode.children()) > 0 {
			got = bodyNode.children()[0].local
		}
		return nil, failf(ClassNotAutodiscover, "the SOAP Body holds %s, not a %s", truncate(got, 80), want)
	}
	if msg.space != nsAutodiscover {
		return nil, failf(ClassNotAutodiscover, "%s is in namespace %q, not Autodiscover's (%s)", want, truncate(msg.space, 100), nsAutodiscover)
	}
	ans.message = msg
	return ans, nil
}

// asError keeps a parser error's class, naming what was expected.
func asError(err error, what string) *Error {
	if pe, ok := err.(*Error); ok {
		return failf(pe.Class, "%s: %s", what, pe.Detail)
	}
	return failf(ClassBadXML, "%s: %v", what, err)
}

// looksLikeSOAPFault reports a body that is a SOAP fault, for the HTTP 500
// every SOAP fault comes with. A fault is read before the message, so the
// message asked for does not matter.
func looksLikeSOAPFault(body []byte) bool {
	ans, err := parseSOAPAnswer(body, "")
	return err == nil && ans.fault != nil
}

// serverVersion reads ServerVersionInfo: "15.2.1544.4 (Exchange2015)".
func serverVersion(n *xnode) string {
	if n == nil {
		return ""
	}
	parts := []string{n.childText("MajorVersion"), n.childText("MinorVersion"), n.childText("MajorBuildNumber"), n.childText("MinorBuildNumber")}
	v := ""
	if parts[0] != "" {
		v = strings.Join(parts, ".")
	}
	if label := n.childText("Version"); label != "" {
		v = strings.TrimSpace(v + " (" + label + ")")
	}
	return Printable(v, 80)
}

// soapErrorClass maps an Autodiscover SOAP ErrorCode to its class.
func soapErrorClass(code string) ErrorClass {
	switch code {
	case "InvalidUser":
		return ClassInvalidUser
	case "InvalidRequest", "InvalidSetting":
		return ClassInvalidRequest
	case "ServerBusy":
		return ClassServerBusy
	case "NotFederated":
		return ClassNotFederated
	}
	return ClassSOAPError
}

// handleSOAPAnswer parses the answer of a SOAP flavour and acts on it.
func (r *run) handleSOAPAnswer(t target, addr string, u *url.URL, resp *response) outcome {
	started := time.Now()
	want := "GetUserSettingsResponseMessage"
	if r.fl == flavourFederation {
		want = "GetFederationInformationResponseMessage"
	}
	ans, err := parseSOAPAnswer(resp.body, want)
	if err != nil {
		r.rec.record(t, StepParse, started, addr, err, "")
		return outcome{next: nextCandidate}
	}
	if ans.fault != nil {
		r.rec.record(t, StepParse, started, addr, failf(ClassSOAPFault, "%s", ans.fault), "")
		return outcome{next: nextCandidate}
	}
	if r.fl == flavourFederation {
		return r.actFederation(t, addr, u, ans, started)
	}
	return r.actUserSettings(t, addr, u, ans, started)
}

// soapError ends a SOAP discovery on an ErrorCode (or, with
// ContinueAfterError, goes on to the next candidate).
func (r *run) soapError(t target, addr string, started time.Time, code, message, note string) outcome {
	code, message = Printable(code, maxFieldBytes), Printable(message, maxFieldBytes)
	r.rec.record(t, StepParse, started, addr, failf(soapErrorClass(code), "%sErrorCode %s: %s", note, code, truncate(message, 200)), "")
	reason := fmt.Sprintf("SOAP Autodiscover error %s from %s (%s): %s", code, t.host, candidateWords(t.method), message)
	if r.fl == flavourSOAP {
		r.res.SOAP.ErrorCode, r.res.SOAP.ErrorMessage = code, message
	} else {
		r.res.Federation.ErrorCode, r.res.Federation.ErrorMessage = code, message
	}
	if r.p.s.ContinueAfterError {
		r.errorReason = reason
		return outcome{next: nextCandidate}
	}
	return stopBecause(reason)
}

// actUserSettings follows a GetUserSettings answer: settings, a
// RedirectAddress, a RedirectUrl or an error, at the request's level or
// the user's.
func (r *run) actUserSettings(t target, addr string, u *url.URL, ans *soapAnswer, started time.Time) outcome {
	resp := ans.message.child("Response")
	if code := resp.childText("ErrorCode"); code != "" && code != "NoError" {
		return r.soapError(t, addr, started, code, resp.childText("ErrorMessage"), "the request was refused: ")
	}
	user := resp.child("UserResponses").child("UserResponse")
	if user == nil {
		r.rec.record(t, StepParse, started, addr, failf(ClassNotAutodiscover, "the GetUserSettings answer holds no UserResponse"), "")
		return outcome{next: nextCandidate}
	}
	code := user.childText("ErrorCode")
	target := strings.TrimSpace(user.childText("RedirectTarget"))
	switch code {
	case "NoError":
	case "RedirectAddress":
		if target == "" {
			r.rec.record(t, StepParse, started, addr, failf(ClassBadAction, "ErrorCode RedirectAddress without a RedirectTarget"), "")
			return outcome{next: nextCandidate}
		}
		r.rec.record(t, StepParse, started, addr, nil, "RedirectAddress "+truncate(target, 200))
		return r.followAddr(t, addr, target)
	case "RedirectUrl":
		if target == "" {
			r.rec.record(t, StepParse, started, addr, failf(ClassBadAction, "ErrorCode RedirectUrl without a RedirectTarget"), "")
			return outcome{next: nextCandidate}
		}
		r.rec.record(t, StepParse, started, addr, nil, "RedirectUrl "+truncate(target, 200))
		started = time.Now()
		to, err := resolveLocation(u, target)
		if err != nil {
			r.rec.record(t, StepRedirect, started, addr, err, "")
			return outcome{next: nextCandidate}
		}
		return r.followURL(t, started, addr, to, soapRedirect, "RedirectUrl")
	default:
		return r.soapError(t, addr, started, cmp.Or(code, "(none)"), user.childText("ErrorMessage"), "")
	}
	settings, settingErrors := readUserSettings(user)
	res := r.res.SOAP
	ews, from := "", ""
	for _, name := range []string{"ExternalEwsUrl", "InternalEwsUrl"} {
		for _, s := range settings {
			if ews == "" && strings.EqualFold(s.Name, name) && s.Value != "" {
				ews, from = s.Value, name
			}
		}
	}
	if ews == "" {
		missing := []string{}
		for _, want := range RequestedUserSettings {
			if !slices.ContainsFunc(settings, func(s UserSetting) bool { return strings.EqualFold(s.Name, want) }) {
				missing = append(missing, want)
			}
		}
		r.rec.record(t, StepParse, started, addr, failf(ClassNoSettings, "NoError, but the answer names no EWS URL (missing %s%s)", strings.Join(missing, ", "), describeSettingErrors(settingErrors)), "")
		return outcome{next: nextCandidate}
	}
	res.OK = true
	// An earlier candidate's ErrorCode (with continue_after_error) is not
	// this answer's.
	res.ErrorCode, res.ErrorMessage = "", ""
	res.URL = u.String()
	res.Mailbox = r.mailbox
	res.EWSURL, res.EWSSource = Printable(ews, maxFieldBytes), from
	res.Settings, res.SettingErrors = settings, settingErrors
	res.ServerVersion = ans.serverVersion
	r.rec.record(t, StepParse, started, addr, nil, r.describeSOAPSettings(res))
	return outcome{next: stop}
}

// readUserSettings keeps the StringSetting values of a UserResponse, and
// its per-setting errors, capped.
func readUserSettings(user *xnode) ([]UserSetting, []UserSettingError) {
	var settings []UserSetting
	for _, k := range user.child("UserSettings").children() {
		if len(settings) == maxSOAPSettings {
			break
		}
		if !strings.EqualFold(k.local, "UserSetting") {
			continue
		}
		name := k.childText("Name")
		if name == "" {
			continue
		}
		settings = append(settings, UserSetting{Name: Printable(name, 80), Value: Printable(k.childText("Value"), maxFieldBytes)})
	}
	var errs []UserSettingError
	for _, k := range user.child("UserSettingErrors").children() {
		if len(errs) == maxSOAPSettings {
			break
		}
		if strings.EqualFold(k.local, "UserSettingError") {
			errs = append(errs, UserSettingError{Name: Printable(k.childText("SettingName"), 80), ErrorCode: Printable(k.childText("ErrorCode"), 80), ErrorMessage: Printable(k.childText("ErrorMessage"), 200)})
		}
	}
	return settings, errs
}

func describeSettingErrors(errs []UserSettingError) string {
	if len(errs) == 0 {
		return ""
	}
	var parts []string
	for _, e := range errs {
		parts = append(parts, e.Name+" "+e.ErrorCode)
	}
	return "; setting errors: " + strings.Join(parts, ", ")
}

// describeSOAPSettings is the parse step's detail for settings.
func (r *run) describeSOAPSettings(res *SOAPResult) string {
	parts := []string{fmt.Sprintf("settings returned; EWS %s (from %s)", res.EWSURL, res.EWSSource)}
	if v := res.Setting("CasVersion"); v != "" {
		parts = append(parts, "CasVersion "+v)
	}
	if v := res.Setting("ExternalMapiHttpServerUrl"); v != "" {
		parts = append(parts, "MAPI/HTTP "+v)
	}
	if v := res.Setting("MapiHttpEnabled"); v != "" {
		parts = append(parts, "MapiHttpEnabled "+v)
	}
	if smtp := res.Setting("AutoDiscoverSMTPAddress"); smtp != "" && !strings.EqualFold(smtp, r.mailbox) {
		parts = append(parts, fmt.Sprintf("primary address %s (asked for %s)", smtp, r.mailbox))
	}
	if res.ServerVersion != "" {
		parts = append(parts, "server version "+res.ServerVersion)
	}
	return strings.Join(parts, "; ") + describeSettingErrors(res.SettingErrors)
}

// sub is a discovery of another flavour inside this run: its own hops,
// visited sets and address being discovered; the same deadline, budget,
// recorder, certificates and credential rules.
func (r *run) sub(fl flavour) *run {
	s := *r
	s.fl = fl
	s.hop = 0
	s.mailbox = r.res.Mailbox
	s.visitedURLs = map[string]bool{}
	s.visitedAddrs = map[string]bool{strings.ToLower(r.res.Mailbox): true}
	s.errorReason = ""
	return &s
}

// runSOAP runs SOAP Autodiscover over the POX chain's candidates.
func (r *run) runSOAP(ctx context.Context) {
	r.res.SOAP = &SOAPResult{}
	s := r.sub(flavourSOAP)
	out := s.discover(ctx)
	r.tlsHosts = s.tlsHosts
	res := r.res.SOAP
	res.Redirects = s.hop
	if !res.OK {
		res.Reason = Printable(cmp.Or(out.reason, s.errorReason, s.failureSummary(ctx)), maxReasonBytes)
	}
}

// candidateMethods are the candidates of the POX chain, in its order,
// which the SOAP flavours walk too; when the module lists none (soap or
// v2_json alone), the default order.
func (r *run) candidateMethods() []Method {
	var out []Method
	for _, m := range r.p.s.methods() {
		if slices.Contains(DefaultMethods, m) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return DefaultMethods
	}
	return out
}

// writeEscaped writes s as XML character data.
func writeEscaped(b *bytes.Buffer, s string) {
	// EscapeText only fails when the writer does; bytes.Buffer never does.
	_ = xml.EscapeText(b, []byte(s))
}
