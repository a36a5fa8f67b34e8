package probe

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Request and response namespaces of the POX protocol (MS-OXDSCLI 2.2.3,
// MS-ASCMD 2.2.3.1).
const (
	outlookRequestNS     = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	outlookResponseNS    = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	mobileSyncRequestNS  = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"
	mobileSyncResponseNS = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
)

// BuildRequest returns the POX request body asking for the settings of
// address in the given schema. Any schema other than SchemaMobileSync gets
// the Outlook flavour, matching the Settings default.
func BuildRequest(schema Schema, address string) []byte {
	requestNS, responseNS := outlookRequestNS, outlookResponseNS
	if schema == SchemaMobileSync {
		requestNS, responseNS = mobileSyncRequestNS, mobileSyncResponseNS
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<Autodiscover xmlns="` + requestNS + `">` + "\n")
	b.WriteString("  <Request>\n    <EMailAddress>")
	// EscapeText only fails when the writer does; bytes.Buffer never does.
	_ = xml.EscapeText(&b, []byte(address))
	b.WriteString("</EMailAddress>\n")
	b.WriteString("    <AcceptableResponseSchema>" + responseNS + "</AcceptableResponseSchema>\n")
	b.WriteString("  </Request>\n</Autodiscover>\n")
	return b.Bytes()
}

// parseErrorf builds the error of an answer that is not a usable
// Autodiscover response; the detail starts with what kind of problem it
// is, because it goes into the step log as it is.
func parseErrorf(class ErrorClass, format string, args ...any) *Error {
	return parseError(class, fmt.Sprintf(format, args...))
}

func parseError(class ErrorClass, detail string) *Error {
	var prefix string
	switch class {
	case ClassEmptyBody:
		prefix = "empty Autodiscover answer"
	case ClassBadXML:
		prefix = "malformed XML"
	case ClassNotAutodiscover:
		prefix = "not an Autodiscover answer"
	case ClassNoAction:
		prefix = "Autodiscover answer without an action"
	case ClassBadAction:
		prefix = "bad Autodiscover action"
	default:
		prefix = "unusable Autodiscover answer"
	}
	if detail == "" {
		return &Error{Class: class, Detail: prefix}
	}
	return &Error{Class: class, Detail: prefix + ": " + detail}
}

// Limits on what ParseResponse will tokenize. The deepest legitimate path
// (Autodiscover/Response/Account/Protocol/Internal/Protocol/ASUrl) is 7
// levels and a large answer is a few thousand tokens, so these only stop
// hostile or broken bodies.
const (
	maxXMLDepth  = 64
	maxXMLTokens = 100000
	// maxProtocols caps the Protocol blocks (and MobileSync Servers) kept
	// from one answer, maxProtocolFields the settings kept from one block:
	// a real answer has fewer than ten blocks of a few dozen settings.
	maxProtocols      = 64
	maxProtocolFields = 256
	// maxQuotedInput bounds how much server text a Detail repeats, so the
	// step log cannot be flooded or spoofed through it.
	maxQuotedInput = 80
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ParseResponse parses a POX Autodiscover answer (Outlook or MobileSync).
// Elements are matched by local name, case-insensitively, because servers
// and older clients disagree on namespaces (http vs https) and on spelling
// (RedirectUrl vs RedirectURL). Every error is an *Error.
func ParseResponse(body []byte) (*Response, error) {
	body = bytes.TrimLeftFunc(bytes.TrimPrefix(body, utf8BOM), unicode.IsSpace)
	if len(body) == 0 {
		return nil, parseError(ClassEmptyBody, "the body is empty")
	}
	root, err := decodeXMLTree(body)
	if err != nil {
		return nil, err
	}
	respNode := root.child("Response")
	if respNode == nil {
		return nil, parseError(ClassNotAutodiscover, "no Response element under Autodiscover")
	}
	resp := &Response{Schema: SchemaOutlook, User: userFromNode(respNode.child("User"))}
	if strings.Contains(strings.ToLower(respNode.space), "mobilesync") {
		resp.Schema = SchemaMobileSync
	}
	if e := respNode.child("Error"); e != nil {
		resp.Error = errorFromNode(e)
	}
	if resp.Schema == SchemaMobileSync {
		err = fillMobileSync(resp, respNode.child("Action"))
	} else {
		err = fillOutlook(resp, respNode.child("Account"))
	}
	if err != nil {
		return nil, err
	}
	if resp.Action == "" && resp.Error == nil {
		return nil, parseError(ClassNoAction, "the Response has neither an Action nor an Error")
	}
	return resp, nil
}

// fillOutlook reads Response/Account of the Outlook schema.
func fillOutlook(resp *Response, account *xnode) error {
	if account == nil {
		return nil
	}
	resp.RedirectAddr = account.childText("RedirectAddr")
	resp.RedirectURL = account.childText("RedirectUrl")
	resp.MicrosoftOnline = strings.EqualFold(account.childText("MicrosoftOnline"), "true")
	if resp.Error == nil {
		if e := account.child("Error"); e != nil {
			resp.Error = errorFromNode(e)
		}
	}
	for _, k := range account.kids {
		if strings.EqualFold(k.local, "Protocol") && len(resp.Protocols) < maxProtocols {
			resp.Protocols = append(resp.Protocols, protocolFromNode(k))
		}
	}
	action, err := normaliseAction(account.childText("Action"))
	if err != nil {
		return err
	}
	resp.Action = action
	return checkRedirectTarget(resp)
}

// normaliseAction maps the wire spelling to the Action* constants. An empty
// or absent Action is not an error here: an Error may stand in for it.
func normaliseAction(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	for _, known := range []string{ActionSettings, ActionRedirectAddr, ActionRedirectURL} {
		if strings.EqualFold(raw, known) {
			return known, nil
		}
	}
	return "", parseErrorf(ClassBadAction, "unknown Action %q", clipInput(raw))
}

// checkRedirectTarget rejects a redirect that does not say where to go:
// following it would have the caller chase an empty address or URL.
func checkRedirectTarget(resp *Response) error {
	switch {
	case resp.Action == ActionRedirectAddr && resp.RedirectAddr == "":
		return parseError(ClassBadAction, "Action redirectAddr without a RedirectAddr")
	case resp.Action == ActionRedirectURL && resp.RedirectURL == "":
		return parseError(ClassBadAction, "Action redirectUrl without a RedirectUrl")
	}
	return nil
}

// fillMobileSync reads Response/Action of the MobileSync schema, where the
// action is told by which child is present rather than by a text value.
func fillMobileSync(resp *Response, action *xnode) error {
	if action == nil {
		return nil
	}
	if resp.Error == nil {
		if e := action.child("Error"); e != nil {
			resp.Error = errorFromNode(e)
		}
	}
	// The first of Settings or Redirect decides, as for a client that acts
	// on the first instruction it reads.
	for _, k := range action.kids {
		if strings.EqualFold(k.local, "Settings") {
			resp.Action = ActionSettings
			resp.MobileServers = mobileServersFromNode(k)
			return nil
		}
		if strings.EqualFold(k.local, "Redirect") {
			if k.text == "" {
				return parseError(ClassBadAction, "Action/Redirect without an address")
			}
			resp.Action, resp.RedirectAddr = ActionRedirectAddr, k.text
			return nil
		}
	}
	if resp.Error == nil && len(action.kids) > 0 {
		return parseError(ClassBadAction, "Action holds no Settings, Redirect or Error")
	}
	return nil
}

func mobileServersFromNode(settings *xnode) []MobileServer {
	var servers []MobileServer
	for _, k := range settings.kids {
		if !strings.EqualFold(k.local, "Server") {
			continue
		}
		if len(servers) == maxProtocols {
			break
		}
		servers = append(servers, MobileServer{
			Type: k.childText("Type"),
			URL:  k.childText("Url"),
			Name: k.childText("Name"),
		})
	}
	return servers
}

// userFromNode reads both schemas' User fields at once: they never clash,
// and an answer in a surprising namespace still yields what it carries.
func userFromNode(n *xnode) User {
	if n == nil {
		return User{}
	}
	return User{
		DisplayName:             n.childText("DisplayName"),
		LegacyDN:                n.childText("LegacyDN"),
		AutoDiscoverSMTPAddress: n.childText("AutoDiscoverSMTPAddress"),
		DeploymentID:            n.childText("DeploymentId"),
		EMailAddress:            n.childText("EMailAddress"),
	}
}

// errorFromNode reads an Outlook Error (ErrorCode) or a MobileSync one
// (Status); a server never sends both.
func errorFromNode(n *xnode) *ResponseError {
	code := n.childText("ErrorCode")
	if code == "" {
		code = n.childText("Status")
	}
	return &ResponseError{
		Code:      code,
		Message:   n.childText("Message"),
		DebugData: n.childText("DebugData"),
		ID:        n.attr("Id"),
		Time:      n.attr("Time"),
	}
}

func protocolFromNode(n *xnode) Protocol {
	p := Protocol{
		// mapiHttp blocks carry Type and Version as attributes, the others
		// as child elements.
		Type:          firstNonEmpty(n.childText("Type"), n.attr("Type")),
		Version:       n.attr("Version"),
		Server:        n.childText("Server"),
		ServerVersion: n.childText("ServerVersion"),
		AuthPackage:   n.childText("AuthPackage"),
		ASUrl:         n.childText("ASUrl"),
		EwsUrl:        n.childText("EwsUrl"),
		OOFUrl:        n.childText("OOFUrl"),
		OABUrl:        n.childText("OABUrl"),
		UMUrl:         n.childText("UMUrl"),
		EcpUrl:        n.childText("EcpUrl"),
		Fields:        map[string]string{},
	}
	if ms := n.child("MailStore"); ms != nil {
		p.MailStoreInternalURL, p.MailStoreExternalURL = ms.childText("InternalUrl"), ms.childText("ExternalUrl")
	}
	if ab := n.child("AddressBook"); ab != nil {
		p.AddressBookInternalURL, p.AddressBookExternalURL = ab.childText("InternalUrl"), ab.childText("ExternalUrl")
	}
	p.Internal, p.External = webScope(n.child("Internal")), webScope(n.child("External"))
	p.OWAUrl = firstNonEmpty(n.child("External").childText("OWAUrl"), n.child("Internal").childText("OWAUrl"))
	if isMailProtocol(p.Type) {
		p.Port, p.Encryption, p.LoginName = portOfNode(n), encryptionOf(n), n.childText("LoginName")
	}
	for _, k := range n.kids {
		if k.text == "" || len(k.kids) > 0 {
			continue
		}
		if _, seen := p.Fields[k.local]; !seen && len(p.Fields) < maxProtocolFields {
			p.Fields[k.local] = k.text
		}
	}
	return p
}

// webScope reads the Internal or External block of a WEB protocol with the
// Protocol blocks nested in it (not deeper: they have no scopes of their
// own).
func webScope(n *xnode) *WebScope {
	if n == nil {
		return nil
	}
	w := &WebScope{OWAUrl: n.childText("OWAUrl")}
	for _, k := range n.kids {
		if strings.EqualFold(k.local, "Protocol") && len(w.Protocols) < maxProtocols {
			nested := Protocol{
				Type:   firstNonEmpty(k.childText("Type"), k.attr("Type")),
				Server: k.childText("Server"),
				ASUrl:  k.childText("ASUrl"),
				EwsUrl: k.childText("EwsUrl"),
				OOFUrl: k.childText("OOFUrl"),
				OABUrl: k.childText("OABUrl"),
				UMUrl:  k.childText("UMUrl"),
			}
			w.Protocols = append(w.Protocols, nested)
		}
	}
	return w
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// clipInput shortens server-supplied text for a Detail and replaces control
// characters so that it cannot break or forge lines in a log.
func clipInput(s string) string {
	if len(s) > maxQuotedInput {
		cut := maxQuotedInput
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
