package probe

import "strings"

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
	Type          string // EXCH, EXPR, WEB, EXHTTP, mapiHttp
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
	Fields map[string]string
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

// EWSURL picks the EWS endpoint the way clients do: EXPR first (the
// external block), then EXCH, then any block that has one.
func (r *Response) EWSURL() string {
	if r == nil {
		return ""
	}
	for _, want := range []string{"EXPR", "EXCH", ""} {
		for _, p := range r.Protocols {
			if want != "" && !strings.EqualFold(p.Type, want) {
				continue
			}
			if p.EwsUrl != "" {
				return p.EwsUrl
			}
			if p.ASUrl != "" {
				return p.ASUrl
			}
		}
	}
	return ""
}

// Server names the mailbox server or front end the answer points at: EXCH
// Server, else EXPR Server, else the host of the MAPI/HTTP or MobileSync URL.
func (r *Response) Server() string {
	if r == nil {
		return ""
	}
	for _, want := range []string{"EXCH", "EXPR"} {
		for _, p := range r.Protocols {
			if strings.EqualFold(p.Type, want) && p.Server != "" {
				return p.Server
			}
		}
	}
	for _, p := range r.Protocols {
		if p.MailStoreExternalURL != "" {
			return hostOf(p.MailStoreExternalURL)
		}
	}
	for _, s := range r.MobileServers {
		if s.URL != "" {
			return hostOf(s.URL)
		}
	}
	return ""
}
