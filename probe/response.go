package probe

import (
	"strconv"
	"strings"
)

// Action values of an Autodiscover answer (compared case-insensitively on
// the wire, normalised to these spellings).
const (
	ActionSettings     = "settings"
	ActionRedirectAddr = "redirectAddr"
	ActionRedirectURL  = "redirectUrl"
)

// Response is a parsed POX Autodiscover answer (Outlook or MobileSync).
type Response struct {
	// Schema the answer was written in (outlook or mobilesync).
	Schema Schema
	// Action is ActionSettings, ActionRedirectAddr or ActionRedirectURL; empty
	// when the answer is an Error.
	Action       string
	RedirectAddr string
	RedirectURL  string
	User         User
	// MicrosoftOnline is true when Account/MicrosoftOnline says True.
	MicrosoftOnline bool
	Protocols       []Protocol
	// MobileServers holds MobileSync Action/Settings/Server entries.
	MobileServers []MobileServer
	Error         *ResponseError
}

// User is the Response/User block.
type User struct {
	DisplayName             string
	LegacyDN                string
	AutoDiscoverSMTPAddress string
	DeploymentID            string
	EMailAddress            string // MobileSync
}

// Protocol is one Account/Protocol block. Fields holds every simple child
// element by local name (first occurrence wins) so that rarely used
// settings are not lost; the named fields are the ones the exporter uses.
type Protocol struct {
	Type          string // EXCH, EXPR, WEB, EXHTTP, mapiHttp, IMAP, POP3, SMTP
	Version       string // the Version attribute of mapiHttp blocks
	Server        string
	ServerVersion string
	AuthPackage   string
	ASUrl         string
	EwsUrl        string
	OOFUrl        string
	OABUrl        string
	UMUrl         string
	EcpUrl        string
	// MAPI/HTTP endpoints (Protocol Type="mapiHttp").
	MailStoreInternalURL   string
	MailStoreExternalURL   string
	AddressBookInternalURL string
	AddressBookExternalURL string
	// OWA URL of a WEB block (External first, else Internal).
	OWAUrl string
	// Internal and External are a WEB block's scopes. In the MAPI/HTTP view
	// their nested Protocol blocks are where the EWS, OAB and availability
	// URLs are (there is no EXCH or EXPR block then).
	Internal *WebScope
	External *WebScope
	// Port, Encryption and LoginName describe an IMAP, POP3 or SMTP server
	// (mail-only providers); Encryption is "ssl", "tls" or "none".
	Port       int
	Encryption string
	LoginName  string
	Fields     map[string]string
}

// WebScope is the Internal or External block of a WEB protocol.
type WebScope struct {
	OWAUrl    string
	Protocols []Protocol
}

// MobileServer is a MobileSync Action/Settings/Server entry.
type MobileServer struct {
	Type string
	URL  string
	Name string
}

// ResponseError is an Autodiscover Error element.
type ResponseError struct {
	Code      string // ErrorCode (Outlook) or Status (MobileSync)
	Message   string
	DebugData string
	ID        string // the Id attribute: a hash of the answering server's name
	Time      string
}

// The sources EWS takes its URL from, in the order EWSURLFrom tries them:
// external before internal, the RPC-proxy blocks (EXPR, EXHTTP) before the
// mailbox block (EXCH), and last the WEB block's nested blocks, which are
// all a MAPI/HTTP view without EXHTTP carries.
const (
	EWSFromEXPR           = "EXPR"
	EWSFromEXHTTPExternal = "EXHTTP external"
	EWSFromEXHTTPInternal = "EXHTTP internal"
	EWSFromEXCH           = "EXCH"
	EWSFromWEBExternal    = "WEB external"
	EWSFromWEBInternal    = "WEB internal"
	EWSFromOther          = "other"
)

// EWSURL is the EWS endpoint of the answer, see EWSURLFrom.
func (r *Response) EWSURL() string {
	u, _ := r.EWSURLFrom()
	return u
}

// EWSURLFrom picks the EWS endpoint the way clients do and says which
// block it came from (one of the EWSFrom… values); "" when there is none.
// Of two EXHTTP blocks the first is the internal one, as Exchange writes
// them.
func (r *Response) EWSURLFrom() (string, string) {
	if r == nil {
		return "", ""
	}
	var exhttp []Protocol
	for _, p := range r.Protocols {
		if strings.EqualFold(p.Type, "EXHTTP") {
			exhttp = append(exhttp, p)
		}
	}
	type source struct {
		name   string
		blocks []Protocol
	}
	sources := []source{{EWSFromEXPR, r.ofType("EXPR")}}
	switch len(exhttp) {
	case 0:
	case 1:
		sources = append(sources, source{EWSFromEXHTTPExternal, exhttp})
	default:
		sources = append(sources, source{EWSFromEXHTTPExternal, exhttp[1:]}, source{EWSFromEXHTTPInternal, exhttp[:1]})
	}
	sources = append(sources, source{EWSFromEXCH, r.ofType("EXCH")})
	for _, web := range r.ofType("WEB") {
		if web.External != nil {
			sources = append(sources, source{EWSFromWEBExternal, web.External.Protocols})
		}
		if web.Internal != nil {
			sources = append(sources, source{EWSFromWEBInternal, web.Internal.Protocols})
		}
	}
	sources = append(sources, source{EWSFromOther, r.Protocols})
	for _, s := range sources {
		for _, p := range s.blocks {
			if u := firstNonEmpty(p.EwsUrl, p.ASUrl); u != "" {
				return u, s.name
			}
		}
	}
	return "", ""
}

func (r *Response) ofType(t string) []Protocol {
	var out []Protocol
	for _, p := range r.Protocols {
		if strings.EqualFold(p.Type, t) {
			out = append(out, p)
		}
	}
	return out
}

// Server names the mailbox server the answer points at, as a host name:
// the EXCH Server when it is one (Exchange 2013 and later write
// <mailbox-guid>@<domain> there, which names a mailbox, not a host), else
// the host of the MAPI/HTTP mail store, else the external EXHTTP server,
// else the EXPR server, else the MobileSync host.
func (r *Response) Server() string {
	if r == nil {
		return ""
	}
	for _, p := range r.ofType("EXCH") {
		if p.Server != "" && !strings.Contains(p.Server, "@") {
			return strings.ToLower(p.Server)
		}
	}
	for _, p := range r.ofType("mapiHttp") {
		if h := hostOf(firstNonEmpty(p.MailStoreExternalURL, p.MailStoreInternalURL)); h != "" {
			return h
		}
	}
	exhttp := r.ofType("EXHTTP")
	for i := len(exhttp) - 1; i >= 0; i-- {
		if exhttp[i].Server != "" {
			return strings.ToLower(exhttp[i].Server)
		}
	}
	for _, p := range r.ofType("EXPR") {
		if p.Server != "" {
			return strings.ToLower(p.Server)
		}
	}
	for _, s := range r.MobileServers {
		if h := hostOf(s.URL); h != "" {
			return h
		}
	}
	return ""
}

// MailProtocols are the IMAP, POP3 and SMTP blocks of the answer, as
// mail-only providers (automx2, mailcow) publish them.
func (r *Response) MailProtocols() []Protocol {
	if r == nil {
		return nil
	}
	var out []Protocol
	for _, p := range r.Protocols {
		if isMailProtocol(p.Type) {
			out = append(out, p)
		}
	}
	return out
}

func isMailProtocol(t string) bool {
	switch strings.ToUpper(t) {
	case "IMAP", "POP3", "SMTP":
		return true
	}
	return false
}

// encryptionOf reads a mail protocol's encryption: the Encryption element
// (automx2 and Thunderbird-style answers: "SSL", "TLS", "None", "Auto") or
// the SSL switch (Exchange's "On"/"Off").
func encryptionOf(n *xnode) string {
	switch strings.ToLower(n.childText("Encryption")) {
	case "ssl":
		return "ssl"
	case "tls", "starttls":
		return "tls"
	case "none":
		return "none"
	}
	switch strings.ToLower(n.childText("SSL")) {
	case "on":
		return "ssl"
	case "off":
		return "none"
	}
	return ""
}

func portOfNode(n *xnode) int {
	p, err := strconv.Atoi(n.childText("Port"))
	if err != nil || p < 1 || p > 65535 {
		return 0
	}
	return p
}

// namesAnEndpoint reports whether a settings answer gives a client
// anything to connect to: an EWS or MAPI/HTTP URL, a server, a mail or
// MobileSync server.
func (r *Response) namesAnEndpoint() bool {
	if r.EWSURL() != "" || r.Server() != "" || len(r.MailProtocols()) > 0 {
		return true
	}
	for _, p := range r.Protocols {
		if firstNonEmpty(p.MailStoreExternalURL, p.MailStoreInternalURL, p.OWAUrl, p.OABUrl) != "" {
			return true
		}
	}
	for _, m := range r.MobileServers {
		if m.URL != "" {
			return true
		}
	}
	return false
}
