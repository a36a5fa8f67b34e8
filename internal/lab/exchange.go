package lab

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ExchangeBuild is the build the lab's Exchange reports, an Exchange
// Server 2019 cumulative update.
const ExchangeBuild = "15.02.1544.004"

// Exchange is an http.Handler that plays the client access services of
// an Exchange server next to Autodiscover: EWS, MAPI/HTTP (mail store and
// address book), the OAB virtual directory, ActiveSync and Outlook on the
// web. Their answers have the real protocols' shape; the accounts, the
// mailboxes and the authentication are those of Auth, as one IIS
// authenticates every virtual directory of a server alike.
type Exchange struct {
	Auth *Autodiscover

	mu sync.Mutex
	// faults maps a path prefix to the HTTP status it answers instead.
	faults map[string]int
}

// SetFault makes every request whose path starts with prefix (any case)
// answer status, as a broken application pool does; 0 heals it.
func (x *Exchange) SetFault(prefix string, status int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.faults == nil {
		x.faults = map[string]int{}
	}
	if status == 0 {
		delete(x.faults, strings.ToLower(prefix))
		return
	}
	x.faults[strings.ToLower(prefix)] = status
}

func (x *Exchange) fault(path string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	for prefix, status := range x.faults {
		if strings.HasPrefix(path, prefix) {
			return status
		}
	}
	return 0
}

func (x *Exchange) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.ToLower(r.URL.Path)
	if status := x.fault(path); status != 0 {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", status, http.StatusText(status))
		return
	}
	w.Header().Set("X-FEServer", "EXCH01")
	w.Header().Set("request-id", "8c1d5f2e-3a4b-4c6d-9e8f-0a1b2c3d4e5f")
	switch {
	case path == "/owa" || path == "/owa/":
		// Forms-based authentication: the sign-in page, no 401.
		w.Header().Set("Location", "https://"+r.Host+"/owa/auth/logon.aspx?url=https%3a%2f%2f"+r.Host+"%2fowa%2f&reason=0")
		w.WriteHeader(http.StatusFound)
	case strings.HasPrefix(path, "/owa/auth/logon.aspx"):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!DOCTYPE html><html><head><title>Outlook</title></head><body><form action=\"/owa/auth.owa\" method=\"POST\"></form></body></html>")
	case path == "/ews/exchange.asmx":
		if x.Auth.admit(w, r) {
			x.serveEWS(w, r)
		}
	case path == "/mapi/emsmdb/" || path == "/mapi/nspi/" || path == "/mapi/emsmdb" || path == "/mapi/nspi":
		if x.Auth.admit(w, r) {
			serveMAPI(w, r)
		}
	case strings.HasPrefix(path, "/oab/") && strings.HasSuffix(path, "/oab.xml"):
		if x.Auth.admit(w, r) {
			serveOAB(w)
		}
	case path == "/microsoft-server-activesync":
		if x.Auth.admit(w, r) {
			serveActiveSync(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

// ewsRequest is the part of an EWS GetFolder request the lab reads.
type ewsRequest struct {
	Body struct {
		GetFolder *struct {
			FolderIDs struct {
				Distinguished []struct {
					ID      string `xml:"Id,attr"`
					Mailbox string `xml:"Mailbox>EmailAddress"`
				} `xml:"DistinguishedFolderId"`
			} `xml:"FolderIds"`
		} `xml:"GetFolder"`
	} `xml:"Body"`
	Header struct {
		Impersonated string `xml:"ExchangeImpersonation>ConnectingSID>SmtpAddress"`
	} `xml:"Header"`
}

const (
	nsSOAP     = "http://schemas.xmlsoap.org/soap/envelope/"
	nsEWSTypes = "http://schemas.microsoft.com/exchange/services/2006/types"
	nsEWSMsgs  = "http://schemas.microsoft.com/exchange/services/2006/messages"
)

// serveEWS answers GetFolder as Exchange does: a SOAP envelope with the
// server version in the header and a response message whose ResponseCode
// says NoError or why not; a request that is no GetFolder gets the SOAP
// fault of a schema validation error, with HTTP 500.
func (x *Exchange) serveEWS(w http.ResponseWriter, r *http.Request) {
	var req ewsRequest
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if r.Method != http.MethodPost || xml.Unmarshal(body, &req) != nil || req.Body.GetFolder == nil || len(req.Body.GetFolder.FolderIDs.Distinguished) == 0 {
		writeSOAP(w, http.StatusInternalServerError, `<s:Fault><faultcode xmlns:a="`+nsEWSTypes+`">a:ErrorSchemaValidation</faultcode><faultstring xml:lang="en-US">The request failed schema validation.</faultstring><detail><e:ResponseCode xmlns:e="`+nsEWSTypes+`">ErrorSchemaValidation</e:ResponseCode></detail></s:Fault>`)
		return
	}
	id := req.Body.GetFolder.FolderIDs.Distinguished[0]
	mailbox := strings.ToLower(firstNonEmptyString(id.Mailbox, req.Header.Impersonated, r.Header.Get("X-AnchorMailbox")))
	if _, known := x.Auth.reply(mailbox); !known || !strings.EqualFold(id.ID, "inbox") {
		writeSOAP(w, http.StatusOK, `<m:GetFolderResponse xmlns:m="`+nsEWSMsgs+`" xmlns:t="`+nsEWSTypes+`"><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Error"><m:MessageText>The SMTP address has no mailbox associated with it.</m:MessageText><m:ResponseCode>ErrorNonExistentMailbox</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Folders/></m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse>`)
		return
	}
	writeSOAP(w, http.StatusOK, `<m:GetFolderResponse xmlns:m="`+nsEWSMsgs+`" xmlns:t="`+nsEWSTypes+`"><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders><t:Folder><t:FolderId Id="AAMkAGI2TG93AAA=" ChangeKey="AQAAABYAAAA="/></t:Folder></m:Folders></m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse>`)
}

func writeSOAP(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="`+nsSOAP+`"><s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="2" MajorBuildNumber="1544" MinorBuildNumber="4" Version="V2017_07_11" xmlns:h="`+nsEWSTypes+`" xmlns="`+nsEWSTypes+`"/></s:Header><s:Body>`+body+`</s:Body></s:Envelope>`)
}

// mapiRequestTypes are the X-RequestType values of [MS-OXCMAPIHTTP]
// 2.2.3.1.6 the lab knows; it answers PING, the one that needs no session.
var mapiRequestTypes = map[string]bool{"connect": true, "execute": true, "disconnect": true, "notificationwait": true, "bind": true, "unbind": true, "ping": true}

// serveMAPI answers a MAPI/HTTP request as [MS-OXCMAPIHTTP] 2.2.2 frames
// it: HTTP 200 whatever the outcome, X-ResponseCode saying it, the
// request's X-RequestId and X-ClientInfo echoed, and a body of meta-tags
// (PROCESSING, DONE) and the X-ElapsedTime and X-StartTime headers.
func serveMAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/mapi-http")
	h.Set("X-ServerApplication", "Exchange/"+ExchangeBuild)
	h.Set("X-RequestId", r.Header.Get("X-RequestId"))
	h.Set("X-ClientInfo", r.Header.Get("X-ClientInfo"))
	h.Set("X-PendingPeriod", "15000")
	reqType := strings.ToLower(r.Header.Get("X-RequestType"))
	code := 0
	switch {
	case r.Method != http.MethodPost:
		code = 2 // Invalid Verb
	case reqType == "" || r.Header.Get("X-RequestId") == "" || r.Header.Get("X-ClientInfo") == "":
		code = 7 // Missing Header
	case !mapiRequestTypes[reqType]:
		code = 5 // Invalid Request Type
	case reqType != "ping":
		code = 13 // Missing Cookie: the lab keeps no sessions
	}
	h.Set("X-ResponseCode", fmt.Sprint(code))
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, "PROCESSING\r\nDONE\r\nX-ElapsedTime: 1\r\nX-StartTime: %s\r\n\r\n", time.Now().UTC().Format(http.TimeFormat))
}

// serveOAB answers oab.xml: the manifest of one offline address book with
// its full download.
func serveOAB(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/xml")
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>
<OAB>
  <OAL id="4f8a3c2d-1b6e-4a7f-9c0d-2e3f4a5b6c7d" dn="/o=Lab/cn=addrlists/cn=oabs/cn=Default Offline Address Book" name="\Default Offline Address Book">
    <Full seq="42" ver="32" size="20480" uncompressedsize="65536" SHA="3f786850e387550fdab836ed7e6dc881de23001b">4f8a3c2d-1b6e-4a7f-9c0d-2e3f4a5b6c7d-data-42.lzx</Full>
  </OAL>
</OAB>
`)
}

// serveActiveSync answers OPTIONS with the versions and commands the
// server speaks, as an Exchange 2019 mailbox server does.
func serveActiveSync(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodOptions {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Allow", "OPTIONS,POST")
	h.Set("MS-Server-ActiveSync", "15.20")
	h.Set("MS-ASProtocolVersions", "2.0,2.1,2.5,12.0,12.1,14.0,14.1,16.0,16.1")
	h.Set("MS-ASProtocolCommands", "Sync,SendMail,SmartForward,SmartReply,GetAttachment,GetHierarchy,CreateCollection,DeleteCollection,MoveCollection,FolderSync,FolderCreate,FolderDelete,FolderUpdate,MoveItems,GetItemEstimate,MeetingResponse,Search,Settings,Ping,ItemOperations,Provision,ResolveRecipients,ValidateCert,Find")
	w.WriteHeader(http.StatusOK)
}

func firstNonEmptyString(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
