package lab

import (
	"net/http"
	"strconv"
	"strings"
)

// view is what the client asked for with the headers Outlook sends
// ([MS-OXDSCLI] 2.2.2): X-MapiHttpCapability: 1 asks for the MAPI/HTTP
// view, X-ClientCanHandle: ExHttpInfo for its EXHTTP blocks.
type view struct {
	mapiHTTP, exHTTP bool
}

func viewOf(h http.Header) view {
	v := view{mapiHTTP: strings.TrimSpace(h.Get("X-MapiHttpCapability")) == "1"}
	for _, c := range strings.Split(h.Get("X-ClientCanHandle"), ",") {
		if strings.EqualFold(strings.TrimSpace(c), "ExHttpInfo") {
			v.exHTTP = true
		}
	}
	return v
}

// settingsXML is the answer with settings, in the view the client asked
// for and the server can give: Exchange 2013 SP1 and later (and Exchange
// Online) answer a MAPI/HTTP client with a mapiHttp block and no EXCH or
// EXPR block ([MS-OXDSCLI] 3.2.5.1), the EWS URLs then in EXHTTP and WEB.
func settingsXML(address string, s *Settings, v view) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="` + nsBase + `">
  <Response xmlns="` + nsOutlook + `">
`)
	writeUser(&b, address, s)
	online := "False"
	if s.MicrosoftOnline {
		online = "True"
	}
	b.WriteString("    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n      <MicrosoftOnline>" + online + "</MicrosoftOnline>\n")
	switch {
	case len(s.Mail) > 0:
		writeMailServers(&b, s.Mail)
	case v.mapiHTTP && !s.Legacy:
		writeMapiHTTPView(&b, address, s, v.exHTTP && !s.NoEXHTTP)
	default:
		writeLegacyView(&b, address, s)
	}
	b.WriteString("    </Account>\n  </Response>\n</Autodiscover>")
	return b.String()
}

func writeUser(b *strings.Builder, address string, s *Settings) {
	primary := address
	if s.PrimaryAddress != "" {
		primary = s.PrimaryAddress
	}
	b.WriteString(`    <User>
      <DisplayName>` + esc(s.DisplayName) + `</DisplayName>
      <LegacyDN>/o=Lab/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=` + esc(mailboxGUID(s)) + `</LegacyDN>
      <AutoDiscoverSMTPAddress>` + esc(primary) + `</AutoDiscoverSMTPAddress>
      <DeploymentId>0b9c5a44-1d2e-4f60-8a7b-9c0d1e2f3a4b</DeploymentId>
    </User>
`)
}

func mailboxGUID(s *Settings) string {
	if s.MailboxGUID != "" {
		return s.MailboxGUID
	}
	return "5e1f0a9c-7a3b-4d0e-9f21-3c4b5d6e7f80"
}

// writeLegacyView writes the EXCH, EXPR and WEB blocks of the view every
// Exchange gives a client that does not ask for MAPI/HTTP.
func writeLegacyView(b *strings.Builder, address string, s *Settings) {
	domain := address[strings.LastIndexByte(address, '@')+1:]
	guid, base := mailboxGUID(s), "https://"+s.Server
	b.WriteString(`      <Protocol>
        <Type>EXCH</Type>
        <Server>` + esc(guid+"@"+domain) + `</Server>
        <ServerVersion>73C18880</ServerVersion>
        <ASUrl>` + esc(base) + `/EWS/Exchange.asmx</ASUrl>
        <EwsUrl>` + esc(base) + `/EWS/Exchange.asmx</EwsUrl>
        <OOFUrl>` + esc(base) + `/EWS/Exchange.asmx</OOFUrl>
        <OABUrl>` + esc(base) + `/OAB/` + esc(guid) + `/</OABUrl>
      </Protocol>
      <Protocol>
        <Type>EXPR</Type>
        <Server>` + esc(s.Server) + `</Server>
        <SSL>On</SSL>
        <AuthPackage>Negotiate</AuthPackage>
        <ASUrl>` + esc(base) + `/EWS/Exchange.asmx</ASUrl>
        <EwsUrl>` + esc(base) + `/EWS/Exchange.asmx</EwsUrl>
        <OABUrl>` + esc(base) + `/OAB/` + esc(guid) + `/</OABUrl>
      </Protocol>
      <Protocol>
        <Type>WEB</Type>
        <External>
          <OWAUrl AuthenticationMethod="Fba">` + esc(base) + `/owa/</OWAUrl>
        </External>
      </Protocol>
`)
}

// writeMapiHTTPView writes the mapiHttp block, the two EXHTTP blocks
// (internal, then external) when asked for, and the WEB block whose
// nested Protocol blocks carry the EWS and OAB URLs.
func writeMapiHTTPView(b *strings.Builder, address string, s *Settings, exHTTP bool) {
	guid, base := mailboxGUID(s), "https://"+s.Server
	internal := "https://internal." + s.Server
	mailboxID := esc(guid + "@" + address[strings.LastIndexByte(address, '@')+1:])
	b.WriteString(`      <Protocol Type="mapiHttp" Version="1">
        <MailStore>
          <InternalUrl>` + esc(internal) + `/mapi/emsmdb/?MailboxId=` + mailboxID + `</InternalUrl>
          <ExternalUrl>` + esc(base) + `/mapi/emsmdb/?MailboxId=` + mailboxID + `</ExternalUrl>
        </MailStore>
        <AddressBook>
          <InternalUrl>` + esc(internal) + `/mapi/nspi/?MailboxId=` + mailboxID + `</InternalUrl>
          <ExternalUrl>` + esc(base) + `/mapi/nspi/?MailboxId=` + mailboxID + `</ExternalUrl>
        </AddressBook>
      </Protocol>
`)
	if exHTTP {
		for _, host := range []string{"internal." + s.Server, s.Server} {
			b.WriteString(`      <Protocol>
        <Type>EXHTTP</Type>
        <Server>` + esc(host) + `</Server>
        <SSL>On</SSL>
        <AuthPackage>Negotiate</AuthPackage>
        <ASUrl>https://` + esc(host) + `/EWS/Exchange.asmx</ASUrl>
        <EwsUrl>https://` + esc(host) + `/EWS/Exchange.asmx</EwsUrl>
        <OABUrl>https://` + esc(host) + `/OAB/` + esc(guid) + `/</OABUrl>
      </Protocol>
`)
		}
	}
	b.WriteString(`      <Protocol>
        <Type>WEB</Type>
        <Internal>
          <OWAUrl AuthenticationMethod="Basic, Fba">` + esc(internal) + `/owa/</OWAUrl>
          <Protocol>
            <Type>EXCH</Type>
            <ASUrl>` + esc(internal) + `/EWS/Exchange.asmx</ASUrl>
          </Protocol>
        </Internal>
        <External>
          <OWAUrl AuthenticationMethod="Fba">` + esc(base) + `/owa/</OWAUrl>
          <Protocol>
            <Type>EXPR</Type>
            <ASUrl>` + esc(base) + `/EWS/Exchange.asmx</ASUrl>
          </Protocol>
        </External>
      </Protocol>
`)
}

// writeMailServers writes the IMAP, POP3 and SMTP blocks of a mail-only
// provider (automx2, mailcow, hosting providers answer so).
func writeMailServers(b *strings.Builder, servers []MailServer) {
	for _, m := range servers {
		b.WriteString(`      <Protocol>
        <Type>` + esc(m.Type) + `</Type>
        <Server>` + esc(m.Server) + `</Server>
        <Port>` + strconv.Itoa(m.Port) + `</Port>
        <DomainRequired>off</DomainRequired>
        <LoginName>` + esc(m.LoginName) + `</LoginName>
        <SPA>off</SPA>
        <Encryption>` + esc(m.Encryption) + `</Encryption>
        <AuthRequired>on</AuthRequired>
      </Protocol>
`)
	}
}
