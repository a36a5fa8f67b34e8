package probe

import (
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	parseTestBaseNS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	parseTestOutNS  = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	parseTestMobNS  = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
)

// parseFixture reads testdata/<name>.xml.
func parseFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".xml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseOutlookAccountXML wraps Account children in an Outlook success envelope.
func parseOutlookAccountXML(account string) []byte {
	return []byte(`<Autodiscover xmlns="` + parseTestBaseNS + `"><Response xmlns="` + parseTestOutNS + `"><Account>` +
		account + `</Account></Response></Autodiscover>`)
}

// parseMobileActionXML wraps Action children in a MobileSync envelope.
func parseMobileActionXML(action string) []byte {
	return []byte(`<Autodiscover xmlns="` + parseTestBaseNS + `"><Response xmlns="` + parseTestMobNS + `"><Action>` +
		action + `</Action></Response></Autodiscover>`)
}

func parseWant[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// parseProtocols checks the protocol count and returns them for indexing.
func parseProtocols(t *testing.T, r *Response, n int) []Protocol {
	t.Helper()
	if len(r.Protocols) != n {
		t.Fatalf("got %d protocols, want %d: %+v", len(r.Protocols), n, r.Protocols)
	}
	return r.Protocols
}

func TestParseResponseAcceptsAnswers(t *testing.T) {
	bom := "\xEF\xBB\xBF"
	tests := []struct {
		name  string
		body  []byte
		check func(t *testing.T, r *Response)
	}{
		{
			name: "on-prem settings with EXCH, EXPR and WEB blocks",
			body: parseFixture(t, "f1_onprem_settings"),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "Schema", r.Schema, SchemaOutlook)
				parseWant(t, "Action", r.Action, ActionSettings)
				parseWant(t, "User.DisplayName", r.User.DisplayName, "Jane Doe")
				parseWant(t, "User.LegacyDN", r.User.LegacyDN, "/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=0a1b2c3d-jane")
				parseWant(t, "User.AutoDiscoverSMTPAddress", r.User.AutoDiscoverSMTPAddress, "jane.doe@contoso.com")
				parseWant(t, "User.DeploymentID", r.User.DeploymentID, "6f0c41a2-55d3-4c8e-9b1e-2f7a9d3e8c10")
				parseWant(t, "MicrosoftOnline", r.MicrosoftOnline, false)
				if r.Error != nil {
					t.Errorf("Error = %+v, want nil", r.Error)
				}
				p := parseProtocols(t, r, 3)
				parseWant(t, "EXCH Type", p[0].Type, "EXCH")
				parseWant(t, "EXCH Server", p[0].Server, "1d2e3f40-aaaa-bbbb-cccc-0123456789ab@contoso.com")
				parseWant(t, "EXCH ServerVersion", p[0].ServerVersion, "73C0834F")
				parseWant(t, "EXCH ASUrl", p[0].ASUrl, "https://mail.contoso.com/EWS/Exchange.asmx")
				parseWant(t, "EXCH EwsUrl", p[0].EwsUrl, "https://mail.contoso.com/EWS/Exchange.asmx")
				parseWant(t, "EXCH OOFUrl", p[0].OOFUrl, "https://mail.contoso.com/EWS/Exchange.asmx")
				parseWant(t, "EXCH OABUrl", p[0].OABUrl, "https://mail.contoso.com/OAB/9e8d7c6b-1111-2222-3333-444455556666/")
				parseWant(t, "EXCH EcpUrl", p[0].EcpUrl, "https://mail.contoso.com/ecp/")
				parseWant(t, "EXCH Fields[MdbDN] has the MDB", strings.HasSuffix(p[0].Fields["MdbDN"], "/cn=Microsoft Private MDB"), true)
				parseWant(t, "EXPR Type", p[1].Type, "EXPR")
				parseWant(t, "EXPR Server", p[1].Server, "mail.contoso.com")
				parseWant(t, "EXPR AuthPackage", p[1].AuthPackage, "Negotiate")
				parseWant(t, "EXPR UMUrl", p[1].UMUrl, "https://mail.contoso.com/EWS/UM2007Legacy.asmx")
				parseWant(t, "EXPR Fields[SSL]", p[1].Fields["SSL"], "On")
				parseWant(t, "EXPR Fields[CertPrincipalName]", p[1].Fields["CertPrincipalName"], "None")
				parseWant(t, "EXPR Fields[ServerExclusiveConnect]", p[1].Fields["ServerExclusiveConnect"], "on")
				parseWant(t, "WEB Type", p[2].Type, "WEB")
				parseWant(t, "WEB OWAUrl (External preferred)", p[2].OWAUrl, "https://mail.contoso.com/owa/")
				// Internal/External have children, so only Type is simple.
				parseWant(t, "WEB len(Fields)", len(p[2].Fields), 1)
				parseWant(t, "WEB nested ASUrl not hoisted", p[2].ASUrl, "")
			},
		},
		{
			name: "mapiHttp block with Type and Version attributes",
			body: parseFixture(t, "f2_mapihttp"),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "Action", r.Action, ActionSettings)
				parseWant(t, "MicrosoftOnline", r.MicrosoftOnline, true)
				p := parseProtocols(t, r, 3)
				parseWant(t, "Type", p[0].Type, "mapiHttp")
				parseWant(t, "Version", p[0].Version, "1")
				parseWant(t, "MailStoreInternalURL", p[0].MailStoreInternalURL, "https://mail-int.contoso.com/mapi/emsmdb/?MailboxId=1d2e3f40-aaaa-bbbb-cccc-0123456789ab@contoso.com")
				parseWant(t, "MailStoreExternalURL", p[0].MailStoreExternalURL, "https://mail.contoso.com/mapi/emsmdb/?MailboxId=1d2e3f40-aaaa-bbbb-cccc-0123456789ab@contoso.com")
				parseWant(t, "AddressBookInternalURL", p[0].AddressBookInternalURL, "https://mail-int.contoso.com/mapi/nspi/?MailboxId=1d2e3f40-aaaa-bbbb-cccc-0123456789ab@contoso.com")
				parseWant(t, "AddressBookExternalURL", p[0].AddressBookExternalURL, "https://mail.contoso.com/mapi/nspi/?MailboxId=1d2e3f40-aaaa-bbbb-cccc-0123456789ab@contoso.com")
				parseWant(t, "EXHTTP[0] Server (internal first)", p[1].Type+" "+p[1].Server, "EXHTTP mail-int.contoso.com")
				parseWant(t, "EXHTTP[1] Server (external second)", p[2].Type+" "+p[2].Server, "EXHTTP mail.contoso.com")
				parseWant(t, "EXHTTP[1] AuthPackage", p[2].AuthPackage, "Negotiate")
			},
		},
		{
			name: "redirectAddr carries the new address",
			body: parseFixture(t, "f3_redirect_addr"),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "Action", r.Action, ActionRedirectAddr)
				parseWant(t, "RedirectAddr", r.RedirectAddr, "jane.doe@contoso.mail.onmicrosoft.com")
				parseWant(t, "User", r.User, User{})
				parseWant(t, "len(Protocols)", len(r.Protocols), 0)
			},
		},
		{
			name: "redirectUrl carries the new URL",
			body: parseFixture(t, "f4_redirect_url"),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "Action", r.Action, ActionRedirectURL)
				parseWant(t, "RedirectURL", r.RedirectURL, "https://mail2.contoso.com/autodiscover/autodiscover.xml")
			},
		},
		{
			name: "RedirectURL capitalisation and Action case are normalised",
			body: parseFixture(t, "f4_redirect_url_upper"),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "Action", r.Action, ActionRedirectURL)
				parseWant(t, "RedirectURL", r.RedirectURL, "https://mail2.contoso.com/autodiscover/autodiscover.xml")
			},
		},
		{
			name: "https namespace variant",
			body: parseFixture(t, "https_namespaces"),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "Schema", r.Schema, SchemaOutlook)
				parseWant(t, "Action", r.Action, ActionSettings)
				parseWant(t, "User.DisplayName", r.User.DisplayName, "Jane Doe")
				p := parseProtocols(t, r, 1)
				parseWant(t, "EwsUrl", p[0].EwsUrl, "https://mail.contoso.com/EWS/Exchange.asmx")
			},
		},
		{
			name: "UTF-8 BOM and leading whitespace are skipped",
			body: append([]byte(bom+" \r\n\t"), parseFixture(t, "f3_redirect_addr")...),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "RedirectAddr", r.RedirectAddr, "jane.doe@contoso.mail.onmicrosoft.com")
			},
		},
		{
			name: "us-ascii declaration is accepted",
			body: []byte(`<?xml version="1.0" encoding="US-ASCII"?>` + string(parseOutlookAccountXML(`<Action>redirectAddr</Action><RedirectAddr>a@b.example</RedirectAddr>`))),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "RedirectAddr", r.RedirectAddr, "a@b.example")
			},
		},
		{
			name: "error 500 under Response in the base namespace",
			body: parseFixture(t, "f6_error_500"),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "Schema", r.Schema, SchemaOutlook)
				parseWant(t, "Action", r.Action, "")
				if r.Error == nil {
					t.Fatal("Error = nil")
				}
				parseWant(t, "Error", *r.Error, ResponseError{
					Code:    "500",
					Message: "The email address can't be found.",
					ID:      "4130155072",
					Time:    "21:25:04.8897083",
				})
			},
		},
		{
			name: "error under Account",
			body: parseFixture(t, "account_error"),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "Action", r.Action, "")
				if r.Error == nil {
					t.Fatal("Error = nil")
				}
				parseWant(t, "Error", *r.Error, ResponseError{
					Code:      "603",
					Message:   "Server Error",
					DebugData: "backend unavailable",
					ID:        "1234567890",
					Time:      "08:01:02.0000001",
				})
			},
		},
		{
			name: "error next to an action keeps both",
			body: parseOutlookAccountXML(`<Action>settings</Action><Error><ErrorCode>602</ErrorCode></Error>`),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "Action", r.Action, ActionSettings)
				if r.Error == nil {
					t.Fatal("Error = nil")
				}
				parseWant(t, "Error.Code", r.Error.Code, "602")
			},
		},
		{
			name: "WEB block without External takes the Internal OWAUrl",
			body: parseOutlookAccountXML(`<Action>settings</Action><Protocol><Type>WEB</Type><Internal><OWAUrl>https://int.example/owa/</OWAUrl></Internal></Protocol>`),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "OWAUrl", parseProtocols(t, r, 1)[0].OWAUrl, "https://int.example/owa/")
			},
		},
		{
			name: "Fields keep the first occurrence and the spelling as written",
			body: parseOutlookAccountXML(`<Action>settings</Action><Protocol><Type>EXPR</Type><Server>first.example</Server>` +
				`<Server>second.example</Server><EcpUrl-mt>options/ecp/</EcpUrl-mt><ttl>1</ttl><Empty/></Protocol>`),
			check: func(t *testing.T, r *Response) {
				p := parseProtocols(t, r, 1)[0]
				parseWant(t, "Server", p.Server, "first.example")
				parseWant(t, "Fields[Server]", p.Fields["Server"], "first.example")
				parseWant(t, "Fields[EcpUrl-mt]", p.Fields["EcpUrl-mt"], "options/ecp/")
				parseWant(t, "Fields[ttl]", p.Fields["ttl"], "1")
				_, hasEmpty := p.Fields["Empty"]
				parseWant(t, "Fields has Empty", hasEmpty, false)
			},
		},
		{
			name: "child Type wins over the Type attribute",
			body: parseOutlookAccountXML(`<Action>settings</Action><Protocol Type="mapiHttp"><Type>EXCH</Type></Protocol>`),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "Type", parseProtocols(t, r, 1)[0].Type, "EXCH")
			},
		},
		{
			name: "MobileSync settings list the servers",
			body: parseFixture(t, "f8_mobilesync_settings"),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "Schema", r.Schema, SchemaMobileSync)
				parseWant(t, "Action", r.Action, ActionSettings)
				parseWant(t, "User.DisplayName", r.User.DisplayName, "Jane Doe")
				parseWant(t, "User.EMailAddress", r.User.EMailAddress, "jane.doe@contoso.com")
				if len(r.MobileServers) != 1 {
					t.Fatalf("MobileServers = %+v, want 1 entry", r.MobileServers)
				}
				parseWant(t, "MobileServers[0]", r.MobileServers[0], MobileServer{
					Type: "MobileSync",
					URL:  "https://mail.contoso.com/Microsoft-Server-ActiveSync",
					Name: "https://mail.contoso.com/Microsoft-Server-ActiveSync",
				})
			},
		},
		{
			name: "MobileSync redirect is an address redirect",
			body: parseFixture(t, "f8_mobilesync_redirect"),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "Schema", r.Schema, SchemaMobileSync)
				parseWant(t, "Action", r.Action, ActionRedirectAddr)
				parseWant(t, "RedirectAddr", r.RedirectAddr, "other@fabrikam.com")
			},
		},
		{
			name: "MobileSync error takes Status as the code",
			body: parseFixture(t, "f8_mobilesync_error"),
			check: func(t *testing.T, r *Response) {
				parseWant(t, "Schema", r.Schema, SchemaMobileSync)
				parseWant(t, "Action", r.Action, "")
				if r.Error == nil {
					t.Fatal("Error = nil")
				}
				parseWant(t, "Error", *r.Error, ResponseError{
					Code:      "2",
					Message:   "The directory service could not be reached.",
					DebugData: "MailUser",
				})
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseResponse(tc.body)
			if err != nil {
				t.Fatalf("ParseResponse: %v", err)
			}
			tc.check(t, r)
		})
	}
}

func TestParseResponseRejectsNonAnswers(t *testing.T) {
	nested := "<Autodiscover><Response>" + strings.Repeat("<a>", 98) + strings.Repeat("</a>", 98) + "</Response></Autodiscover>"
	manyTokens := "<Autodiscover><Response>" + strings.Repeat("<x/>", 60000) + "</Response></Autodiscover>"
	tests := []struct {
		name       string
		body       string
		wantClass  ErrorClass
		wantDetail string // substring of Detail
	}{
		{"empty body", "", ClassEmptyBody, "empty"},
		{"whitespace and BOM only", "\xEF\xBB\xBF \n\t", ClassEmptyBody, "empty"},
		{
			"HTML page is named by its root",
			"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Contoso</title></head><body>&nbsp;<br></body></html>",
			ClassNotAutodiscover, "root element is html",
		},
		{"SOAP envelope", `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>`, ClassNotAutodiscover, "root element is Envelope"},
		{"JSON body", `{"Protocol":"Ews","Url":"https://outlook.office365.com/EWS/Exchange.asmx"}`, ClassBadXML, "text outside the root element"},
		{"garbage bytes", "\x00\x01\x02\xff\xfe not xml at all", ClassBadXML, ""},
		{"comment only", "<!-- nothing here -->", ClassBadXML, "no root element"},
		{"truncated XML", string(parseFixture(t, "f1_onprem_settings")[:400]), ClassBadXML, "unexpected EOF"},
		{"mismatched end tag", "<Autodiscover><Response></Autodiscover>", ClassBadXML, "line 1"},
		{"Autodiscover without Response", `<Autodiscover xmlns="` + parseTestBaseNS + `"><Foo/></Autodiscover>`, ClassNotAutodiscover, "no Response"},
		{"Account without Action or Error", string(parseOutlookAccountXML(`<AccountType>email</AccountType>`)), ClassNoAction, "neither"},
		{"Response without Account", `<Autodiscover><Response><User><DisplayName>x</DisplayName></User></Response></Autodiscover>`, ClassNoAction, "neither"},
		{"unknown Action", string(parseOutlookAccountXML(`<Action>frobnicate</Action>`)), ClassBadAction, `"frobnicate"`},
		{"redirectUrl without RedirectUrl", string(parseOutlookAccountXML(`<Action>redirectUrl</Action><RedirectAddr>a@b.example</RedirectAddr>`)), ClassBadAction, "without a RedirectUrl"},
		{"redirectAddr without RedirectAddr", string(parseOutlookAccountXML(`<Action>redirectAddr</Action><RedirectAddr> </RedirectAddr>`)), ClassBadAction, "without a RedirectAddr"},
		{"MobileSync Redirect without address", string(parseMobileActionXML(`<Redirect/>`)), ClassBadAction, "without an address"},
		{"MobileSync Action with unknown content", string(parseMobileActionXML(`<Reboot/>`)), ClassBadAction, "no Settings"},
		{
			"DOCTYPE with an entity",
			`<?xml version="1.0"?><!DOCTYPE Autodiscover [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` +
				`<Autodiscover><Response><Error><Message>&xxe;</Message></Error></Response></Autodiscover>`,
			ClassBadXML, "DOCTYPE",
		},
		{"DOCTYPE inside the document", `<Autodiscover><!DOCTYPE x><Response/></Autodiscover>`, ClassBadXML, "not allowed"},
		{"undefined entity", string(parseOutlookAccountXML(`<Action>redirectAddr</Action><RedirectAddr>&lol;</RedirectAddr>`)), ClassBadXML, "entity"},
		{"nesting 100 deep", nested, ClassBadXML, "deeper than 64"},
		{"too many tokens", manyTokens, ClassBadXML, "tokens"},
		{
			"ISO-8859-1 declared charset",
			`<?xml version="1.0" encoding="ISO-8859-1"?>` + string(parseOutlookAccountXML(`<Action>settings</Action>`)),
			ClassBadXML, "charset",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseResponse([]byte(tc.body))
			if err == nil {
				t.Fatalf("ParseResponse succeeded: %+v", r)
			}
			if r != nil {
				t.Errorf("Response = %+v, want nil with an error", r)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			parseWant(t, "Class", pe.Class, tc.wantClass)
			if !strings.Contains(pe.Detail, tc.wantDetail) {
				t.Errorf("Detail = %q, want it to contain %q", pe.Detail, tc.wantDetail)
			}
		})
	}
}

func TestParseErrorMessageNamesTheProblem(t *testing.T) {
	_, err := ParseResponse([]byte("<html><body>It works!</body></html>"))
	parseWant(t, "Error()", err.Error(), "not an Autodiscover answer: root element is html")
	parseWant(t, "bare class", parseError(ClassEmptyBody, "").Error(), "empty Autodiscover answer")
}

func TestParseErrorDetailClipsServerInput(t *testing.T) {
	long := strings.Repeat("é", 300)
	tests := []struct {
		name string
		body string
	}{
		{"long root element name", "<" + strings.Repeat("a", 5000) + "/>"},
		{"long unknown Action", string(parseOutlookAccountXML("<Action>" + long + "</Action>"))},
		{"long text before the root", strings.Repeat("x", 5000)},
		{"newline in Action cannot forge log lines", string(parseOutlookAccountXML("<Action>evil\nlevel=error msg=forged</Action>"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseResponse([]byte(tc.body))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not an *Error", err)
			}
			// 80 bytes of input plus the fixed wording and quoting.
			if len(pe.Detail) > 160 {
				t.Errorf("Detail is %d bytes: %q", len(pe.Detail), pe.Detail)
			}
			if strings.ContainsAny(pe.Detail, "\n\r") {
				t.Errorf("Detail holds a line break: %q", pe.Detail)
			}
		})
	}
}

func TestBuildRequestRoundTrips(t *testing.T) {
	tests := []struct {
		name       string
		schema     Schema
		address    string
		wantNS     string
		wantSchema string
		wantRaw    string // must appear in the raw bytes
	}{
		{
			name: "outlook", schema: SchemaOutlook, address: "jane.doe@contoso.com",
			wantNS:     "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006",
			wantSchema: "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
			wantRaw:    "<EMailAddress>jane.doe@contoso.com</EMailAddress>",
		},
		{
			name: "mobilesync", schema: SchemaMobileSync, address: "jane.doe@contoso.com",
			wantNS:     "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006",
			wantSchema: "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006",
			wantRaw:    "<EMailAddress>jane.doe@contoso.com</EMailAddress>",
		},
		{
			name: "unset schema means outlook", schema: "", address: "jane.doe@contoso.com",
			wantNS:     "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006",
			wantSchema: "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
		},
		{
			name: "ampersand and angle brackets are escaped", schema: SchemaOutlook, address: `a&b<c>"d"@contoso.com`,
			wantNS:     "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006",
			wantSchema: "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
			wantRaw:    "a&amp;b&lt;c&gt;",
		},
		{
			name: "mobilesync escapes too", schema: SchemaMobileSync, address: "x&y@contoso.com",
			wantNS:     "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006",
			wantSchema: "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006",
			wantRaw:    "x&amp;y@contoso.com",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := BuildRequest(tc.schema, tc.address)
			if !strings.HasPrefix(string(raw), `<?xml version="1.0" encoding="utf-8"?>`) {
				t.Errorf("no XML declaration: %q", raw)
			}
			if !strings.Contains(string(raw), tc.wantRaw) {
				t.Errorf("body lacks %q:\n%s", tc.wantRaw, raw)
			}
			var req struct {
				XMLName xml.Name
				Request struct {
					EMailAddress             string
					AcceptableResponseSchema string
				}
			}
			if err := xml.Unmarshal(raw, &req); err != nil {
				t.Fatalf("request does not parse back: %v\n%s", err, raw)
			}
			parseWant(t, "root", req.XMLName, xml.Name{Space: tc.wantNS, Local: "Autodiscover"})
			parseWant(t, "EMailAddress", req.Request.EMailAddress, tc.address)
			parseWant(t, "AcceptableResponseSchema", req.Request.AcceptableResponseSchema, tc.wantSchema)
		})
	}
}

func FuzzParseResponse(f *testing.F) {
	for _, name := range []string{"f1_onprem_settings", "f2_mapihttp", "f3_redirect_addr", "f6_error_500", "f8_mobilesync_settings", "f8_mobilesync_error"} {
		f.Add(parseFixture(f, name))
	}
	f.Add([]byte(""))
	f.Add([]byte("<html><body>hi</body></html>"))
	f.Add(parseOutlookAccountXML(`<Action>redirectUrl</Action>`))
	f.Add(parseMobileActionXML(`<Redirect>a@b.example</Redirect>`))
	// The shapes real servers get wrong: neither XML nor JSON, a MAPI/HTTP
	// view with no URL, conflicting internal and external blocks, a mail
	// provider's blocks with odd ports.
	f.Add([]byte("\x00\x01 HTTP/1.1 200 OK, not XML and not JSON {]"))
	f.Add(parseOutlookAccountXML(`<Action>settings</Action><Protocol Type="mapiHttp" Version="1"><MailStore/><AddressBook/></Protocol>`))
	f.Add(parseOutlookAccountXML(`<Action>settings</Action><Protocol><Type>EXHTTP</Type><Server>a.test</Server></Protocol><Protocol><Type>EXHTTP</Type><Server>b.test</Server></Protocol><Protocol><Type>EXHTTP</Type><Server>c.test</Server></Protocol><Protocol><Type>WEB</Type><Internal><Protocol><Type>EXCH</Type><ASUrl>https://x.test/EWS</ASUrl></Protocol></Internal><Internal><Protocol><Type>EXPR</Type><ASUrl>https://y.test/EWS</ASUrl></Protocol></Internal></Protocol>`))
	f.Add(parseOutlookAccountXML(`<Action>settings</Action><Protocol><Type>IMAP</Type><Server>imap.test</Server><Port>99999</Port><Encryption>weird</Encryption></Protocol>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseResponse(body)
		if err != nil {
			return
		}
		if r == nil {
			t.Fatal("nil Response without an error")
		}
		if r.Action == "" && r.Error == nil {
			t.Fatalf("Response has neither Action nor Error: %+v", r)
		}
		// What the probe derives from an answer must hold up as well.
		ews, from := r.EWSURLFrom()
		if (ews == "") != (from == "") {
			t.Fatalf("EWS %q from %q", ews, from)
		}
		_ = r.Server()
		_ = r.namesAnEndpoint()
		for _, p := range r.MailProtocols() {
			if p.Port < 0 || p.Port > 65535 {
				t.Fatalf("mail port %d", p.Port)
			}
		}
	})
}
