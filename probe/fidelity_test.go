package probe_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// A redirectAddr to another address of the same domain (an alias sent to
// the primary address) POSTs again, to the same URLs, for the new address.
func TestRedirectAddrWithinTheDomainPostsAgainForTheNewAddress(t *testing.T) {
	e := newEstate(t)
	mb, ad, err := e.AddOnPremises("alias.test", "al", "pw")
	must(t, err)
	ad.SetUser("al@alias.test", lab.Reply{RedirectAddr: "albert.long@alias.test"})
	ad.SetUser("albert.long@alias.test", lab.Reply{Settings: &lab.Settings{DisplayName: "Albert", Server: "mail.alias.test"}})
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	res := mustRun(t, mb.Address, s)
	if !res.Success || res.RedirectHops != 1 {
		t.Fatalf("success=%v hops=%d\n%s", res.Success, res.RedirectHops, res.Log())
	}
	if st, ok := findStep(res, 1, "autodiscover.alias.test", probe.StepParse); !ok || !st.OK || st.Mailbox != "albert.long@alias.test" {
		t.Errorf("hop 1 parse %+v", st)
	}
	// A → B → A is still a loop.
	ad.SetUser("albert.long@alias.test", lab.Reply{RedirectAddr: "al@alias.test"})
	res = mustRun(t, mb.Address, s)
	if res.Success || !strings.HasPrefix(res.Reason, "redirect loop") {
		t.Errorf("reason %q\n%s", res.Reason, res.Log())
	}
}

// A redirect that leads nowhere spends no hop: the mailbox's next own
// candidate is tried at hop 0 and the redirect budget is untouched.
func TestARedirectThatLeadsNowhereSpendsNoHop(t *testing.T) {
	e := newEstate(t)
	mb, ad, err := e.AddOnPremises("nowhere.test", "nat", "pw")
	must(t, err)
	// The domain root redirects to a host that does not exist; the
	// autodiscover host answers settings.
	must(t, e.HTTPS("nowhere.test", lab.Redirect(http.StatusFound, "https://gone.nowhere.test/autodiscover/autodiscover.xml")))
	_ = ad
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodRootDomain, probe.MethodAutodiscoverDomain}
	res := mustRun(t, mb.Address, s)
	if !res.Success || res.RedirectHops != 0 {
		t.Fatalf("success=%v hops=%d, want settings at hop 0\n%s", res.Success, res.RedirectHops, res.Log())
	}
	if _, ok := findStep(res, 0, "autodiscover.nowhere.test", probe.StepParse); !ok {
		t.Errorf("the autodiscover host is not at hop 0\n%s", res.Log())
	}
}

// Answers are read by their content: a MobileSync answer sent as
// text/html (Z-Push, grommunio-sync) is accepted, its odd type noted.
func TestAnswersAreReadByTheirContent(t *testing.T) {
	e := newEstate(t)
	mb, ad, err := e.AddOnPremises("zpush.test", "zoe", "pw")
	must(t, err)
	_ = ad
	body := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"><Culture>en:en</Culture><User><DisplayName>Zoe</DisplayName><EMailAddress>zoe@zpush.test</EMailAddress></User><Action><Settings><Server><Type>MobileSync</Type><Url>https://mail.zpush.test/Microsoft-Server-ActiveSync</Url><Name>https://mail.zpush.test/Microsoft-Server-ActiveSync</Name></Server></Settings></Action></Response></Autodiscover>`
	ad.SetUser(mb.Address, lab.Reply{Raw: body, ContentType: "text/html; charset=utf-8"})
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	s.Schema = probe.SchemaMobileSync
	res := mustRun(t, mb.Address, s)
	if !res.Success {
		t.Fatalf("failed\n%s", res.Log())
	}
	if st, _ := findStep(res, 0, "autodiscover.zpush.test", probe.StepParse); !strings.Contains(st.Detail, "text/html") {
		t.Errorf("the parse step does not note the content type: %q", st.Detail)
	}
}

// An HTTP 400 or 500 whose body is an Autodiscover Error is that error,
// code and all; MobileSync's Status is kept apart from POX's ErrorCode.
func TestErrorBodiesOfNonSuccessAnswersAreAutodiscoverErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		schema     probe.Schema
		code       string
	}{
		{"SOGo: HTTP 400 with a 601 body", `<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response><Error Time="1" Id="2"><ErrorCode>601</ErrorCode><Message>Provider is not available</Message></Error></Response></Autodiscover>`, 400, probe.SchemaOutlook, "601"},
		{"HTTP 500 with a 500 body", `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response><Error><ErrorCode>500</ErrorCode><Message>The email address can't be found.</Message></Error></Response></Autodiscover>`, 500, probe.SchemaOutlook, "500"},
		{"MobileSync Status 2 in a 200", `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"><Action><Error><Status>2</Status><Message>Protocol error</Message></Error></Action></Response></Autodiscover>`, 200, probe.SchemaMobileSync, "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			mb, ad, err := e.AddOnPremises("err.test", "eve", "pw")
			must(t, err)
			ad.SetUser(mb.Address, lab.Reply{Raw: tc.body, Status: tc.status, ContentType: "text/xml"})
			s := settingsFor(e, mb)
			s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
			s.Schema = tc.schema
			res := mustRun(t, mb.Address, s)
			if res.ErrorCode != tc.code || res.ErrorSchema != tc.schema {
				t.Errorf("error code %q (schema %s), want %q (%s)\n%s", res.ErrorCode, res.ErrorSchema, tc.code, tc.schema, res.Log())
			}
			if st, _ := findStep(res, 0, "autodiscover.err.test", probe.StepParse); st.ErrorClass != probe.ClassAutodiscoverError {
				t.Errorf("parse step %+v", st)
			}
		})
	}
}

// An Autodiscover Error on an early candidate stops the chain, as Outlook
// stops, and the reason says which candidate answered which error; with
// continue_after_error the later candidates are tried too.
func TestAnErrorOnAnEarlyCandidateStopsUnlessTheModuleGoesOn(t *testing.T) {
	e := newEstate(t)
	mb, _, err := e.AddOnPremises("early.test", "ed", "pw")
	must(t, err)
	must(t, e.HTTPS("early.test", &lab.Autodiscover{Accounts: map[string]string{mb.Address: "pw"}, Users: map[string]lab.Reply{mb.Address: {ErrorCode: "500", ErrorMessage: "The email address can't be found."}}}))
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodRootDomain, probe.MethodAutodiscoverDomain}
	res := mustRun(t, mb.Address, s)
	if res.Success || !strings.Contains(res.Reason, "the domain root") || !strings.Contains(res.Reason, "500") {
		t.Errorf("reason %q", res.Reason)
	}
	if _, ok := findStep(res, 0, "autodiscover.early.test", probe.StepDNS); ok {
		t.Error("the chain went on past the error")
	}
	s.ContinueAfterError = true
	res = mustRun(t, mb.Address, s)
	if !res.Success || res.ErrorCode != "500" {
		t.Errorf("with continue_after_error: success=%v code=%q\n%s", res.Success, res.ErrorCode, res.Log())
	}
}

// A name with neither an A nor an AAAA record says so.
func TestANameWithoutAddressesSaysItHasNoAOrAAAARecord(t *testing.T) {
	e := newEstate(t)
	e.AddTXT("autodiscover.noaddr.test", "exists")
	s := settingsFor(e, lab.Mailbox{})
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	res := mustRun(t, "nia@noaddr.test", s)
	st, _ := findStep(res, 0, "autodiscover.noaddr.test", probe.StepDNS)
	if st.ErrorClass != probe.ClassNoRecords || !strings.Contains(st.Detail, "has no A or AAAA record") {
		t.Errorf("dns step %+v", st)
	}
}

// The TCP line prints its duration once.
func TestTheTCPLinePrintsItsDurationOnce(t *testing.T) {
	e := newEstate(t)
	mb, _, err := e.AddOnPremises("once.test", "oz", "pw")
	must(t, err)
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	for _, line := range strings.Split(mustRun(t, mb.Address, s).Log(), "\n") {
		if strings.Contains(line, "Testing TCP port") && strings.Count(line, " ms)") != 1 {
			t.Errorf("%q", line)
		}
	}
}

// The probe asks as Outlook 2016 and later ask, and reads the MAPI/HTTP
// view they get, EWS URL included; a module can ask as an old Outlook and
// set its own User-Agent.
func TestTheProbeAsksAsOutlookAsksAndReadsTheMAPIHTTPView(t *testing.T) {
	cases := []struct {
		name      string
		omitMapi  bool
		settings  lab.Settings
		protocols string
		ewsFrom   string
	}{
		{"MAPI/HTTP view with EXHTTP", false, lab.Settings{Server: "mail.mapi.test"}, "mapiHttp,EXHTTP,EXHTTP,WEB", probe.EWSFromEXHTTPExternal},
		{"MAPI/HTTP view with EWS only under WEB", false, lab.Settings{Server: "mail.mapi.test", NoEXHTTP: true}, "mapiHttp,WEB", probe.EWSFromWEBExternal},
		{"an old server answers the legacy view", false, lab.Settings{Server: "mail.mapi.test", Legacy: true}, "EXCH,EXPR,WEB", probe.EWSFromEXPR},
		{"mapi_http off asks for the legacy view", true, lab.Settings{Server: "mail.mapi.test"}, "EXCH,EXPR,WEB", probe.EWSFromEXPR},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			mb, ad, err := e.AddOnPremises("mapi.test", "mia", "pw")
			must(t, err)
			st := tc.settings
			ad.SetUser(mb.Address, lab.Reply{Settings: &st})
			s := settingsFor(e, mb)
			s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
			s.OmitMapiHTTP = tc.omitMapi
			s.UserAgent = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)"
			p, err := probe.NewProber(s, probe.Env{})
			must(t, err)
			res, err := p.Run(context.Background(), probe.Target{Address: mb.Address, Expect: &probe.Expectations{EWSURLHost: "mail.mapi.test"}})
			must(t, err)
			if !res.Success {
				t.Fatalf("failed: %s\n%s", res.Reason, res.Log())
			}
			var types []string
			for _, p := range res.Response.Protocols {
				types = append(types, p.Type)
			}
			if got := strings.Join(types, ","); got != tc.protocols {
				t.Errorf("protocols %s, want %s", got, tc.protocols)
			}
			if u, from := res.Response.EWSURLFrom(); u != "https://mail.mapi.test/EWS/Exchange.asmx" || from != tc.ewsFrom {
				t.Errorf("EWS %s from %s, want from %s", u, from, tc.ewsFrom)
			}
			for _, r := range e.RequestsTo("autodiscover.mapi.test") {
				if r.Method != http.MethodPost {
					continue
				}
				want := map[string]string{"X-AnchorMailbox": mb.Address, "User-Agent": s.UserAgent, "X-MapiHttpCapability": "1", "X-ClientCanHandle": "Negotiate,ExHttpInfo"}
				if tc.omitMapi {
					want["X-MapiHttpCapability"], want["X-ClientCanHandle"] = "", ""
				}
				for h, v := range want {
					if got := r.Header.Get(h); got != v {
						t.Errorf("%s: %q, want %q", h, got, v)
					}
				}
			}
		})
	}
}

// A mail-only provider's IMAP and SMTP blocks are read, named in the
// step log and accepted by expect.protocols; a primary address other than
// the one asked for shows and expect.smtp_address catches it.
func TestMailOnlyProvidersAndPrimaryAddressDrift(t *testing.T) {
	e := newEstate(t)
	mb, ad, err := e.AddOnPremises("mailonly.test", "max", "pw")
	must(t, err)
	ad.SetUser(mb.Address, lab.Reply{Settings: &lab.Settings{PrimaryAddress: "maximilian@mailonly.test", Mail: []lab.MailServer{
		{Type: "IMAP", Server: "imap.mailonly.test", Port: 993, Encryption: "SSL", LoginName: mb.Address},
		{Type: "SMTP", Server: "smtp.mailonly.test", Port: 587, Encryption: "TLS", LoginName: mb.Address},
	}}})
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	p, err := probe.NewProber(s, probe.Env{})
	must(t, err)
	res, err := p.Run(context.Background(), probe.Target{Address: mb.Address, Expect: &probe.Expectations{Protocols: []string{"IMAP", "SMTP"}, SMTPAddress: mb.Address}})
	must(t, err)
	mail := res.Response.MailProtocols()
	if len(mail) != 2 || mail[0].Port != 993 || mail[0].Encryption != "ssl" || mail[1].Encryption != "tls" || mail[1].LoginName != mb.Address {
		t.Errorf("mail protocols %+v", mail)
	}
	st, _ := findStep(res, 0, "autodiscover.mailonly.test", probe.StepParse)
	for _, want := range []string{"IMAP imap.mailonly.test:993 ssl", "SMTP smtp.mailonly.test:587 tls", "primary address maximilian@mailonly.test"} {
		if !strings.Contains(st.Detail, want) {
			t.Errorf("parse detail %q lacks %q", st.Detail, want)
		}
	}
	var failed []string
	for _, x := range res.Expectations {
		if !x.OK {
			failed = append(failed, x.Name)
		}
	}
	if strings.Join(failed, ",") != probe.ExpectSMTPAddress || res.Success {
		t.Errorf("failed expectations %v, success %v", failed, res.Success)
	}
}

// With v2_json first, the probe does what Outlook does for Office 365:
// it POSTs to the AutodiscoverV1 URL v2 returns (credentials under the
// usual rules) and takes the chain from there, and tries the on-premises
// candidates only when that leads nowhere. An address Exchange Online
// does not know ends with a class of its own.
func TestV2FirstLeadsTheChainAsInOutlooksOffice365Discovery(t *testing.T) {
	e := newEstate(t)
	mb, err := e.AddMicrosoft365("v2first.test", "vic", "pw")
	must(t, err)
	exo := &lab.V2{
		URLs:    map[string]map[string]string{mb.Address: {"autodiscoverv1": "https://" + lab.CloudPod + "/autodiscover/autodiscover.xml"}},
		Tenants: []string{"v2first.test"},
	}
	must(t, e.HTTPS("outlook.v2front.test", exo))
	s := settingsFor(e, mb)
	s.Methods = append([]probe.Method{probe.MethodV2JSON}, probe.DefaultMethods...)
	s.V2Hosts = []string{"outlook.v2front.test"}
	s.V2Protocols = []string{"AutodiscoverV1"}
	res := mustRun(t, mb.Address, s)
	if !res.Success || res.FinalURL != "https://"+lab.CloudPod+"/autodiscover/autodiscover.xml" || res.RedirectHops != 0 {
		t.Fatalf("success=%v final=%s hops=%d\n%s", res.Success, res.FinalURL, res.RedirectHops, res.Log())
	}
	if st, ok := findStep(res, 0, lab.CloudPod, probe.StepCredentials); !ok || !st.OK || st.Method != probe.MethodV2Endpoint {
		t.Errorf("credentials on the v2 endpoint %+v", st)
	}
	if _, ok := findStep(res, 0, "autodiscover.v2first.test", probe.StepDNS); ok {
		t.Error("the on-premises candidates were tried although the v2 endpoint answered")
	}

	// An address of a domain Exchange Online does not know.
	s.V2Protocols = []string{"Ews"}
	res = mustRun(t, "nobody@notatenant.test", s)
	st, ok := findStep(res, 1, "autodiscover.notatenant.test", probe.StepRedirect)
	if !ok || st.ErrorClass != probe.ClassV2UnknownAddress || !strings.Contains(res.Reason, "does not know nobody@notatenant.test") {
		t.Errorf("step %+v, reason %q\n%s", st, res.Reason, res.Log())
	}
}

// Answers that give a client nothing to work with fail with a class and
// a detail: a MAPI/HTTP view without a URL, a body that is neither XML nor
// JSON, a redirectAddr back to the address being discovered.
func TestAnswersThatGiveNothingFailWithAClass(t *testing.T) {
	const mapiNoURL = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"><Account><AccountType>email</AccountType><Action>settings</Action><Protocol Type="mapiHttp" Version="1"><MailStore/><AddressBook/></Protocol></Account></Response></Autodiscover>`
	for _, tc := range []struct {
		name  string
		reply lab.Reply
		step  probe.StepName
		class probe.ErrorClass
	}{
		{"a MAPI/HTTP view with no URL", lab.Reply{Raw: mapiNoURL, ContentType: "text/xml"}, probe.StepParse, probe.ClassNoSettings},
		{"neither XML nor JSON", lab.Reply{Raw: "\x00\x01 not XML, not JSON {]", ContentType: "application/octet-stream"}, probe.StepParse, probe.ClassBadContentType},
		{"redirectAddr to the address itself", lab.Reply{RedirectAddr: "ned@nothing.test"}, probe.StepRedirect, probe.ClassLoop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			mb, ad, err := e.AddOnPremises("nothing.test", "ned", "pw")
			must(t, err)
			ad.SetUser(mb.Address, tc.reply)
			s := settingsFor(e, mb)
			s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
			res := mustRun(t, mb.Address, s)
			st, _ := findStep(res, 0, "autodiscover.nothing.test", tc.step)
			if res.Success || st.OK || st.ErrorClass != tc.class || st.Detail == "" {
				t.Errorf("step %+v\n%s", st, res.Log())
			}
		})
	}
}
