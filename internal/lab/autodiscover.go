package lab

import (
	"crypto/subtle"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
)

// Reply is what an Autodiscover server answers for one mailbox. Exactly one
// field (or group) should be set.
type Reply struct {
	// Settings returns a full Outlook (or MobileSync) configuration.
	Settings *Settings
	// RedirectAddr answers Action=redirectAddr with this address.
	RedirectAddr string
	// RedirectURL answers Action=redirectUrl with this URL.
	RedirectURL string
	// ErrorCode (with ErrorMessage) answers with an Autodiscover Error.
	ErrorCode    string
	ErrorMessage string
	// Status with Location answers an HTTP redirect (or any status).
	Status   int
	Location string
	// Raw answers with this body and content type as it is.
	Raw         string
	ContentType string
}

// Settings describes a mailbox's configuration.
type Settings struct {
	DisplayName string
	// Server is the mail host (EXPR Server, EWS URL host).
	Server string
	// MailboxGUID makes the EXCH Server value <guid>@<domain>.
	MailboxGUID     string
	MicrosoftOnline bool
	// Legacy answers only the legacy view (EXCH, EXPR, WEB) whatever the
	// client asks, as Exchange before 2013 SP1 does.
	Legacy bool
	// NoEXHTTP leaves out the EXHTTP blocks of the MAPI/HTTP view, as a
	// server before 15.00.0995.014 (or a client without ExHttpInfo) gets:
	// the EWS URLs are then only in the WEB block.
	NoEXHTTP bool
	// PrimaryAddress, when set, is the AutoDiscoverSMTPAddress (an alias
	// asked for, the primary address answered).
	PrimaryAddress string
	// Mail, when set, makes the answer a mail-only provider's: IMAP, POP3
	// and SMTP blocks and nothing of Exchange.
	Mail []MailServer
}

// MailServer is an IMAP, POP3 or SMTP block of a mail-only provider.
type MailServer struct {
	Type       string // IMAP, POP3, SMTP
	Server     string
	Port       int
	Encryption string // SSL, TLS, None
	LoginName  string
}

// Autodiscover is an http.Handler that plays an Exchange Autodiscover
// virtual directory.
type Autodiscover struct {
	// Users maps a lower-case address to its reply. Unknown addresses get
	// ErrorCode 500, like Exchange.
	Users map[string]Reply
	// Accounts maps user name to password for HTTP Basic. When Accounts,
	// NTLM or BearerTokens is set, one of them must succeed before any
	// answer; the 401 offers Challenges (default: Negotiate, NTLM and
	// Basic as IIS does, plus Bearer when tokens are accepted).
	Accounts map[string]string
	// NTLM verifies NTLMv2 handshakes (also inside Negotiate).
	NTLM *NTLMVerifier
	// Kerberos verifies Negotiate tokens that carry a Kerberos ticket
	// for the server's service principal; a Negotiate token that is not
	// Kerberos goes to NTLM, as IIS's Negotiate provider does.
	Kerberos *KerberosVerifier
	// Tokens validates OAuth access tokens; BearerChallenge is the
	// parameter list of the Bearer challenge (authorization_uri, …).
	Tokens *TokenServer
	// TokenAudience, when set, refuses tokens issued for another resource,
	// as Exchange Online refuses one whose aud is not its own.
	TokenAudience string
	// RequireDelegated answers an app-only token as Exchange Online's POX
	// Autodiscover does: with Error 500 "The email address can't be
	// found", as if the mailbox did not exist. Only a delegated (user)
	// token gets the settings.
	RequireDelegated bool
	BearerChallenge  string
	Challenges       []string
	// SOAPStatus, when set, is what autodiscover.svc answers instead of
	// SOAP, as when its application pool is down while POX still works.
	SOAPStatus int
	// Federation is what the anonymous GetFederationInformation answers;
	// nil answers NotFederated.
	Federation *Federation
	// WSSecurityOff puts the virtual directory's HTTP authentication in
	// front of autodiscover.svc/WSSecurity, as WSSecurityAuthentication
	// $false does.
	WSSecurityOff bool

	mu sync.Mutex
	// implicitNTLM verifies NTLM for Accounts when the default challenges
	// offer it: IIS offers what it accepts.
	implicitNTLM *NTLMVerifier
}

// SetSOAPStatus makes autodiscover.svc answer status (0 heals it).
func (a *Autodiscover) SetSOAPStatus(status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.SOAPStatus = status
}

// SetWSSecurityOff puts HTTP authentication in front of WSSecurity (true)
// or takes it away.
func (a *Autodiscover) SetWSSecurityOff(off bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.WSSecurityOff = off
}

// SetFederation changes what GetFederationInformation answers.
func (a *Autodiscover) SetFederation(f *Federation) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.Federation = f
}

// SetUser changes the reply for one address while the server runs.
func (a *Autodiscover) SetUser(address string, r Reply) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Users == nil {
		a.Users = map[string]Reply{}
	}
	a.Users[strings.ToLower(address)] = r
}

func (a *Autodiscover) reply(address string) (Reply, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.Users[strings.ToLower(address)]
	return r, ok
}

func (a *Autodiscover) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if path := strings.ToLower(r.URL.Path); strings.HasPrefix(path, "/autodiscover/autodiscover.svc") {
		a.serveSOAP(w, r, path)
		return
	}
	if !a.admit(w, r) {
		return
	}
	if a.needsAuth() && a.appOnlyRefused(r) {
		writeXML(w, errorXML("500", "The email address can't be found."))
		return
	}
	if r.Method != http.MethodPost {
		writeXML(w, errorXML("600", "Invalid Request"))
		return
	}
	address, schema, err := readRequest(r.Body)
	if err != nil {
		writeXML(w, errorXML("600", "Invalid Request"))
		return
	}
	rep, ok := a.reply(address)
	if !ok {
		writeXML(w, errorXML("500", "The email address can't be found."))
		return
	}
	serveReply(w, rep, address, schema, viewOf(r.Header))
}

// admit is the authentication gate IIS puts before every virtual
// directory of the server: true when the request may be answered, else
// the 401 (or the NTLM challenge in progress) has been written.
func (a *Autodiscover) admit(w http.ResponseWriter, r *http.Request) bool {
	if !a.needsAuth() {
		return true
	}
	ok, responded := a.authenticate(w, r)
	if responded {
		return false
	}
	if !ok {
		for _, c := range a.challenges(r) {
			w.Header().Add("WWW-Authenticate", c)
		}
		w.WriteHeader(http.StatusUnauthorized)
		return false
	}
	return true
}

// authenticate checks the Authorization header against every configured
// scheme. responded is true when a scheme wrote the answer itself (the
// NTLM challenge of a handshake in progress).
func (a *Autodiscover) authenticate(w http.ResponseWriter, r *http.Request) (ok, responded bool) {
	h := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(h, " ")
	a.mu.Lock()
	ntlm, tokens, aud, krb := a.NTLM, a.Tokens, a.TokenAudience, a.Kerberos
	if ntlm == nil && a.Challenges == nil && len(a.Accounts) > 0 {
		// The default challenges offer NTLM and Negotiate: accept them
		// for the Basic accounts, as Windows authentication would.
		if a.implicitNTLM == nil {
			a.implicitNTLM = &NTLMVerifier{Accounts: maps.Clone(a.Accounts)}
		}
		ntlm = a.implicitNTLM
	}
	a.mu.Unlock()
	switch {
	case strings.EqualFold(scheme, "Basic"):
		return a.basicOK(r), false
	case strings.EqualFold(scheme, "Negotiate") && krb != nil:
		if _, kerberos, err := krb.Verify(h); kerberos {
			return err == nil, false
		}
		if ntlm != nil {
			return ntlm.Handle(w, r)
		}
		return false, false
	case strings.EqualFold(scheme, "Bearer") && tokens != nil:
		info, valid := tokens.Token(strings.TrimSpace(token))
		return valid && (aud == "" || info.Audience == aud), false
	case (strings.EqualFold(scheme, "NTLM") || strings.EqualFold(scheme, "Negotiate")) && ntlm != nil:
		return ntlm.Handle(w, r)
	}
	return false, false
}

// appOnlyRefused reports a request with an app-only Bearer token where
// only delegated ones get settings.
func (a *Autodiscover) appOnlyRefused(r *http.Request) bool {
	a.mu.Lock()
	require, tokens := a.RequireDelegated, a.Tokens
	a.mu.Unlock()
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !require || tokens == nil || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	info, valid := tokens.Token(strings.TrimSpace(token))
	return valid && !info.Delegated()
}

func (a *Autodiscover) basicOK(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	a.mu.Lock()
	want, known := a.Accounts[user]
	a.mu.Unlock()
	return known && subtle.ConstantTimeCompare([]byte(pass), []byte(want)) == 1
}

func (a *Autodiscover) challenges(r *http.Request) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Challenges != nil {
		return a.Challenges
	}
	out := []string{"Negotiate", "NTLM", `Basic realm="` + hostOnly(r.Host) + `"`}
	if a.Tokens != nil || a.BearerChallenge != "" {
		out = append([]string{strings.TrimSpace("Bearer " + a.BearerChallenge)}, out...)
	}
	return out
}

func (a *Autodiscover) needsAuth() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.Accounts) > 0 || a.NTLM != nil || a.Tokens != nil || a.Kerberos != nil
}

// AddAccount lets one more user authenticate.
func (a *Autodiscover) AddAccount(user, password string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Accounts == nil {
		a.Accounts = map[string]string{}
	}
	a.Accounts[user] = password
	a.implicitNTLM = nil // rebuilt with the new account
}

func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i > 0 && !strings.HasSuffix(h, "]") {
		return h[:i]
	}
	return h
}

func serveReply(w http.ResponseWriter, rep Reply, address, schema string, v view) {
	switch {
	case rep.Location != "" || rep.Status != 0 && rep.Raw == "":
		if rep.Location != "" {
			w.Header().Set("Location", rep.Location)
		}
		status := rep.Status
		if status == 0 {
			status = http.StatusFound
		}
		w.WriteHeader(status)
	case rep.Raw != "":
		if rep.ContentType != "" {
			w.Header().Set("Content-Type", rep.ContentType)
		}
		if rep.Status != 0 {
			w.WriteHeader(rep.Status)
		}
		_, _ = io.WriteString(w, rep.Raw)
	case rep.ErrorCode != "" && strings.Contains(schema, "mobilesync"):
		writeXML(w, mobileActionXML(`<Error><Status>`+esc(rep.ErrorCode)+`</Status><Message>`+esc(rep.ErrorMessage)+`</Message><DebugData>lab</DebugData></Error>`))
	case rep.ErrorCode != "":
		writeXML(w, errorXML(rep.ErrorCode, rep.ErrorMessage))
	case rep.RedirectAddr != "" && strings.Contains(schema, "mobilesync"):
		writeXML(w, mobileActionXML(`<Redirect>`+esc(rep.RedirectAddr)+`</Redirect>`))
	case rep.RedirectAddr != "":
		writeXML(w, redirectXML("redirectAddr", "RedirectAddr", rep.RedirectAddr))
	case rep.RedirectURL != "":
		writeXML(w, redirectXML("redirectUrl", "RedirectUrl", rep.RedirectURL))
	case rep.Settings != nil:
		if strings.Contains(schema, "mobilesync") {
			writeXML(w, mobileSettingsXML(address, rep.Settings))
			return
		}
		writeXML(w, settingsXML(address, rep.Settings, v))
	default:
		w.WriteHeader(http.StatusInternalServerError)
	}
}

// readRequest pulls EMailAddress and AcceptableResponseSchema out of a POX
// request by local name.
func readRequest(body io.Reader) (address, schema string, err error) {
	var req struct {
		Request struct {
			EMailAddress             string `xml:"EMailAddress"`
			AcceptableResponseSchema string `xml:"AcceptableResponseSchema"`
		} `xml:"Request"`
	}
	if err := xml.NewDecoder(io.LimitReader(body, 64<<10)).Decode(&req); err != nil {
		return "", "", err
	}
	if req.Request.EMailAddress == "" {
		return "", "", fmt.Errorf("no EMailAddress")
	}
	return strings.TrimSpace(req.Request.EMailAddress), req.Request.AcceptableResponseSchema, nil
}

func writeXML(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = io.WriteString(w, body)
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

const (
	nsBase    = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	nsOutlook = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	nsMobile  = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
)

func errorXML(code, message string) string {
	return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="` + nsBase + `">
  <Response>
    <Error Time="10:00:00.0000000" Id="2477272213">
      <ErrorCode>` + esc(code) + `</ErrorCode>
      <Message>` + esc(message) + `</Message>
      <DebugData />
    </Error>
  </Response>
</Autodiscover>`
}

func redirectXML(action, element, target string) string {
	return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="` + nsBase + `">
  <Response xmlns="` + nsOutlook + `">
    <Account>
      <Action>` + action + `</Action>
      <` + element + `>` + esc(target) + `</` + element + `>
    </Account>
  </Response>
</Autodiscover>`
}

// mobileActionXML wraps a MobileSync Action body (Redirect or Error).
func mobileActionXML(action string) string {
	return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="` + nsBase + `">
  <Response xmlns="` + nsMobile + `">
    <Culture>en:us</Culture>
    <Action>` + action + `</Action>
  </Response>
</Autodiscover>`
}

func mobileSettingsXML(address string, s *Settings) string {
	url := "https://" + s.Server + "/Microsoft-Server-ActiveSync"
	return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="` + nsBase + `">
  <Response xmlns="` + nsMobile + `">
    <Culture>en:us</Culture>
    <User>
      <DisplayName>` + esc(s.DisplayName) + `</DisplayName>
      <EMailAddress>` + esc(address) + `</EMailAddress>
    </User>
    <Action>
      <Settings>
        <Server>
          <Type>MobileSync</Type>
          <Url>` + esc(url) + `</Url>
          <Name>` + esc(url) + `</Name>
        </Server>
      </Settings>
    </Action>
  </Response>
</Autodiscover>`
}

// Redirect is an http.Handler that answers every request with status and
// Location: the "AutodiscoverRedirection" site on port 80.
func Redirect(status int, location string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", location)
		w.WriteHeader(status)
	})
}

// Static answers every request with status, content type and body: a web
// site on the domain root, an HTML error page, garbage.
func Static(status int, contentType, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}
