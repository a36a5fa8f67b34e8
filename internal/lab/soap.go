package lab

import (
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
)

// SOAP Autodiscover as Exchange's autodiscover.svc answers it
// ([MS-OXWSADISC]): a WCF service on the same virtual directory as POX,
// SOAP 1.1 with WS-Addressing, GetUserSettings behind the virtual
// directory's authentication, GetFederationInformation anonymous, and
// the WSSecurity endpoint that takes only WS-Security tokens.

const (
	nsAutodiscoverSOAP = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
	nsAddressing       = "http://www.w3.org/2005/08/addressing"
	nsInstance         = "http://www.w3.org/2001/XMLSchema-instance"
	actionBase         = "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/"
)

// Federation is what GetFederationInformation answers for an
// organisation with a federation trust: its ApplicationUri (the
// federation organisation identifier), its federated domains and the
// token issuer (Microsoft's federation gateway).
type Federation struct {
	ApplicationURI string
	Domains        []string
	TokenIssuers   []FederationIssuer
}

// FederationIssuer is one TokenIssuer.
type FederationIssuer struct {
	URI, Endpoint string
}

// MicrosoftFederationGateway is the token issuer a hybrid organisation's
// federation trust names.
var MicrosoftFederationGateway = FederationIssuer{URI: "urn:federation:MicrosoftOnline", Endpoint: "https://login.microsoftonline.test/extSTS.srf"}

// soapRequest is the part of a SOAP Autodiscover request the lab reads,
// by local name.
type soapRequest struct {
	XMLName xml.Name
	Header  struct {
		Action string `xml:"Action"`
	} `xml:"Header"`
	Body struct {
		GetUserSettings *struct {
			Mailboxes []string `xml:"Request>Users>User>Mailbox"`
			Settings  []string `xml:"Request>RequestedSettings>Setting"`
		} `xml:"GetUserSettingsRequestMessage"`
		GetFederationInformation *struct {
			Domain string `xml:"Request>Domain"`
		} `xml:"GetFederationInformationRequestMessage"`
	} `xml:"Body"`
}

// serveSOAP answers a request to autodiscover.svc or one of its
// sub-endpoints (path is lower case).
func (a *Autodiscover) serveSOAP(w http.ResponseWriter, r *http.Request, path string) {
	a.mu.Lock()
	status, fed, wsOff := a.SOAPStatus, a.Federation, a.WSSecurityOff
	a.mu.Unlock()
	if status != 0 {
		// The application pool of the service is down; IIS answers.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", status, http.StatusText(status))
		return
	}
	if r.Method != http.MethodPost {
		// WCF without metadata publishing answers a GET with 405.
		w.Header().Set("Allow", "POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if strings.HasSuffix(path, "/wssecurity") {
		if wsOff {
			// WSSecurityAuthentication off: IIS authenticates the path
			// like the rest of the virtual directory.
			if a.admit(w, r) {
				writeSOAPFault(w, "a:ActionNotSupported", "The message could not be processed at the receiver.")
			}
			return
		}
		// Message security: a call without a token never reaches the
		// service.
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `<s:Envelope xmlns:s="`+nsSOAP+`"><s:Body><s:Fault><faultcode xmlns:a="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">a:InvalidSecurity</faultcode><faultstring xml:lang="en-US">An error occurred when verifying security for the message.</faultstring></s:Fault></s:Body></s:Envelope>`)
		return
	}
	if path != "/autodiscover/autodiscover.svc" {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	var req soapRequest
	if err := xml.Unmarshal(body, &req); err != nil || req.XMLName.Local != "Envelope" || req.XMLName.Space != nsSOAP {
		writeSOAPFault(w, "a:InternalServiceFault", "The server was unable to process the request due to an internal error.")
		return
	}
	action := strings.Trim(firstNonEmptyString(strings.TrimSpace(req.Header.Action), r.Header.Get("SOAPAction")), `"`)
	switch {
	case action == actionBase+"GetFederationInformation" && req.Body.GetFederationInformation != nil:
		// Anonymous by design: no authentication gate.
		writeFederation(w, strings.TrimSpace(req.Body.GetFederationInformation.Domain), fed)
	case action == actionBase+"GetUserSettings" && req.Body.GetUserSettings != nil:
		if !a.admit(w, r) {
			return
		}
		gus := req.Body.GetUserSettings
		if len(gus.Mailboxes) == 0 || len(gus.Settings) == 0 {
			writeSOAPResponse(w, "GetUserSettingsResponse", `<GetUserSettingsResponseMessage xmlns="`+nsAutodiscoverSOAP+`"><Response xmlns:i="`+nsInstance+`"><ErrorCode>InvalidRequest</ErrorCode><ErrorMessage>The request is invalid.</ErrorMessage><UserResponses/></Response></GetUserSettingsResponseMessage>`)
			return
		}
		address := strings.TrimSpace(gus.Mailboxes[0])
		rep, known := a.reply(address)
		a.serveUserSettings(w, r, address, gus.Settings, rep, known)
	default:
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `<s:Envelope xmlns:s="`+nsSOAP+`"><s:Body><s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/ws/2005/05/addressing/none">a:ActionNotSupported</faultcode><faultstring xml:lang="en-US">The message with Action '`+esc(action)+`' cannot be processed at the receiver, due to a ContractFilter mismatch at the EndpointDispatcher.</faultstring></s:Fault></s:Body></s:Envelope>`)
	}
}

var poxPath = regexp.MustCompile(`(?i)autodiscover\.xml$`)

// asSOAP points a POX URL of the lab at the same host's autodiscover.svc.
func asSOAP(u string) string { return poxPath.ReplaceAllString(u, "autodiscover.svc") }

// serveUserSettings answers GetUserSettings for address from its POX
// reply, as one Exchange answers both from the same directory data.
func (a *Autodiscover) serveUserSettings(w http.ResponseWriter, r *http.Request, address string, asked []string, rep Reply, known bool) {
	user := func(code, message, target, inner string) {
		redirect := `<RedirectTarget i:nil="true"/>`
		if target != "" {
			redirect = `<RedirectTarget>` + esc(target) + `</RedirectTarget>`
		}
		writeSOAPResponse(w, "GetUserSettingsResponse", `<GetUserSettingsResponseMessage xmlns="`+nsAutodiscoverSOAP+`"><Response xmlns:i="`+nsInstance+`"><ErrorCode>NoError</ErrorCode><ErrorMessage/><UserResponses><UserResponse><ErrorCode>`+code+`</ErrorCode><ErrorMessage>`+esc(message)+`</ErrorMessage>`+redirect+inner+`</UserResponse></UserResponses></Response></GetUserSettingsResponseMessage>`)
	}
	switch {
	case !known || rep.ErrorCode != "":
		user("InvalidUser", "Invalid user: '"+address+"'", "", `<UserSettingErrors/><UserSettings/>`)
	case rep.Location != "" || rep.Status != 0 && rep.Raw == "":
		if rep.Location != "" {
			w.Header().Set("Location", asSOAP(rep.Location))
		}
		w.WriteHeader(cmp.Or(rep.Status, http.StatusFound))
	case rep.Raw != "":
		serveReply(w, rep, address, "", viewOf(r.Header))
	case rep.RedirectAddr != "":
		user("RedirectAddress", "Redirection address.", rep.RedirectAddr, `<UserSettingErrors/><UserSettings/>`)
	case rep.RedirectURL != "":
		user("RedirectUrl", "Redirection URL.", asSOAP(rep.RedirectURL), `<UserSettingErrors/><UserSettings/>`)
	case rep.Settings != nil:
		have := soapSettings(address, rep.Settings)
		var settings, errs strings.Builder
		for _, name := range asked {
			name = strings.TrimSpace(name)
			value, ok := have[name]
			switch {
			case ok && value != "":
				settings.WriteString(`<UserSetting i:type="StringSetting"><Name>` + esc(name) + `</Name><Value>` + esc(value) + `</Value></UserSetting>`)
			case ok:
				errs.WriteString(`<UserSettingError><ErrorCode>SettingIsNotAvailable</ErrorCode><ErrorMessage>User setting '` + esc(name) + `' is not available. </ErrorMessage><SettingName>` + esc(name) + `</SettingName></UserSettingError>`)
			default:
				errs.WriteString(`<UserSettingError><ErrorCode>InvalidSetting</ErrorCode><ErrorMessage>The requested setting, ` + esc(name) + `, isn't valid or is unknown.</ErrorMessage><SettingName>` + esc(name) + `</SettingName></UserSettingError>`)
			}
		}
		user("NoError", "No error.", "", `<UserSettingErrors>`+errs.String()+`</UserSettingErrors><UserSettings>`+settings.String()+`</UserSettings>`)
	default:
		w.WriteHeader(http.StatusInternalServerError)
	}
}

// soapSettings are the user settings Exchange knows for a mailbox, by
// name; an empty value is a setting that exists but is not available for
// this user (a mail-only provider has no EWS).
func soapSettings(address string, s *Settings) map[string]string {
	primary := address
	if s.PrimaryAddress != "" {
		primary = s.PrimaryAddress
	}
	domain := address[strings.LastIndexByte(address, '@')+1:]
	base, internal := "https://"+s.Server, "https://internal."+s.Server
	mailboxID := mailboxGUID(s) + "@" + domain
	m := map[string]string{
		"UserDisplayName":           s.DisplayName,
		"UserDN":                    "/o=Lab/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=" + mailboxGUID(s),
		"UserDeploymentId":          "0b9c5a44-1d2e-4f60-8a7b-9c0d1e2f3a4b",
		"AutoDiscoverSMTPAddress":   primary,
		"CasVersion":                ExchangeBuild,
		"ExternalEwsUrl":            base + "/EWS/Exchange.asmx",
		"InternalEwsUrl":            internal + "/EWS/Exchange.asmx",
		"EwsSupportedSchemas":       "Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, Exchange2013, Exchange2013_SP1",
		"ExternalMapiHttpServerUrl": base + "/mapi/emsmdb/?MailboxId=" + mailboxID,
		"InternalMapiHttpServerUrl": internal + "/mapi/emsmdb/?MailboxId=" + mailboxID,
		"MapiHttpEnabled":           "True",
		"MailboxDN":                 "/o=Lab/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=" + mailboxID + "/cn=Microsoft Private MDB",
		"ExternalOABUrl":            base + "/OAB/",
		"InternalOABUrl":            internal + "/OAB/",
		"UserMSOnline":              fmt.Sprint(s.MicrosoftOnline),
	}
	if s.Legacy {
		m["MapiHttpEnabled"] = "False"
		m["ExternalMapiHttpServerUrl"], m["InternalMapiHttpServerUrl"] = "", ""
	}
	if len(s.Mail) > 0 {
		for _, k := range []string{"ExternalEwsUrl", "InternalEwsUrl", "ExternalMapiHttpServerUrl", "InternalMapiHttpServerUrl", "ExternalOABUrl", "InternalOABUrl", "CasVersion", "EwsSupportedSchemas"} {
			m[k] = ""
		}
	}
	return m
}

// writeFederation answers GetFederationInformation for domain: the
// organisation's federation information when domain is one of its
// federated domains, NotFederated when it has no trust.
func writeFederation(w http.ResponseWriter, domain string, fed *Federation) {
	response := func(inner string) {
		writeSOAPResponse(w, "GetFederationInformationResponse", `<GetFederationInformationResponseMessage xmlns="`+nsAutodiscoverSOAP+`"><Response xmlns:i="`+nsInstance+`">`+inner+`</Response></GetFederationInformationResponseMessage>`)
	}
	if fed == nil {
		response(`<ErrorCode>NotFederated</ErrorCode><ErrorMessage>The organization isn't federated.</ErrorMessage>`)
		return
	}
	federated := false
	var domains strings.Builder
	for _, d := range fed.Domains {
		federated = federated || strings.EqualFold(d, domain)
		domains.WriteString(`<Domain>` + esc(d) + `</Domain>`)
	}
	if !federated {
		response(`<ErrorCode>InvalidDomain</ErrorCode><ErrorMessage>The domain ` + esc(domain) + ` isn't a federated domain.</ErrorMessage>`)
		return
	}
	var issuers strings.Builder
	for _, ti := range fed.TokenIssuers {
		issuers.WriteString(`<TokenIssuer><Endpoint>` + esc(ti.Endpoint) + `</Endpoint><Uri>` + esc(ti.URI) + `</Uri></TokenIssuer>`)
	}
	response(`<ErrorCode>NoError</ErrorCode><ErrorMessage/><ApplicationUri>` + esc(fed.ApplicationURI) + `</ApplicationUri><Domains>` + domains.String() + `</Domains><TokenIssuers>` + issuers.String() + `</TokenIssuers>`)
}

// writeSOAPResponse writes a SOAP Autodiscover answer: the WS-Addressing
// action and the server version in the header, the message in the body.
func writeSOAPResponse(w http.ResponseWriter, action, message string) {
	major, minor, build, rev := exchangeBuildParts()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = io.WriteString(w, `<s:Envelope xmlns:s="`+nsSOAP+`" xmlns:a="`+nsAddressing+`"><s:Header><a:Action s:mustUnderstand="1">`+actionBase+action+`</a:Action><h:ServerVersionInfo xmlns:h="`+nsAutodiscoverSOAP+`" xmlns:i="`+nsInstance+`"><h:MajorVersion>`+major+`</h:MajorVersion><h:MinorVersion>`+minor+`</h:MinorVersion><h:MajorBuildNumber>`+build+`</h:MajorBuildNumber><h:MinorBuildNumber>`+rev+`</h:MinorBuildNumber><h:Version>Exchange2015</h:Version></h:ServerVersionInfo></s:Header><s:Body>`+message+`</s:Body></s:Envelope>`)
}

// writeSOAPFault writes a WCF fault with HTTP 500.
func writeSOAPFault(w http.ResponseWriter, code, text string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = io.WriteString(w, `<s:Envelope xmlns:s="`+nsSOAP+`"><s:Body><s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher">`+esc(code)+`</faultcode><faultstring xml:lang="en-US">`+esc(text)+`</faultstring></s:Fault></s:Body></s:Envelope>`)
}

// exchangeBuildParts splits ExchangeBuild into the numbers of
// ServerVersionInfo, without their leading zeros.
func exchangeBuildParts() (major, minor, build, rev string) {
	parts := strings.Split(ExchangeBuild, ".")
	for i, p := range parts {
		parts[i] = strings.TrimLeft(p, "0")
		if parts[i] == "" {
			parts[i] = "0"
		}
	}
	return parts[0], parts[1], parts[2], parts[3]
}
