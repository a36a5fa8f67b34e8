package demo

import (
	"net/http"
	"slices"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// entry is a demo mailbox with the builder of its part of the estate.
type entry struct {
	Mailbox
	build func(*lab.Estate) (lab.Mailbox, error)
}

func hops(n int) *int { return &n }

func labels(site, flow string) map[string]string {
	return map[string]string{"site": site, "flow": flow}
}

// table lists the demo mailboxes in the order their servers are started,
// which is also the order of the configuration file.
func table() []entry {
	return append(basicMailboxes(), realEstateMailboxes()...)
}

// basicMailboxes authenticate with Basic and differ in what their chain
// runs into.
func basicMailboxes() []entry {
	expired := time.Now().Add(-72 * time.Hour)
	expiredServer := &sharedOnPremises{domain: "expired.test", notBefore: expired.AddDate(-1, 0, 0), notAfter: expired}
	return []entry{
		{Mailbox: Mailbox{Name: "hybrid-alice", Description: "hybrid: the domain root shows a web host's certificate, on-premises redirects to Exchange Online", Labels: labels("hq", "hybrid"),
			expect: &probe.Expectations{EndpointHost: lab.CloudPod, EWSURLHost: "outlook." + lab.CloudDomain, MaxRedirects: hops(3), Protocols: []string{"mapiHttp", "EXHTTP"}, CertMinDays: 14}},
			build: func(e *lab.Estate) (lab.Mailbox, error) { return e.AddHybrid("contoso.test", "alice", Password) }},
		{Mailbox: Mailbox{Name: "m365-bob", Description: "Microsoft 365: HTTP redirect method to the front door, redirectUrl to a pod", Labels: labels("cloud", "m365")},
			build: func(e *lab.Estate) (lab.Mailbox, error) { return e.AddMicrosoft365("fabrikam.test", "bob", Password) }},
		{Mailbox: Mailbox{Name: "srv-carol", Description: "found only through its DNS SRV record", Labels: labels("branch", "srv")},
			build: func(e *lab.Estate) (lab.Mailbox, error) { return e.AddSRVOnly("srvonly.test", "carol", Password) }},
		{Mailbox: Mailbox{Name: "expiring-frank", Description: "healthy, but the certificate expires in 10 days", Labels: labels("hq", "onprem")},
			build: onPremisesWithCert("expiring.test", "frank", time.Time{}, time.Now().Add(10*24*time.Hour))},
		{Mailbox: Mailbox{Name: "expired-dave", Description: "broken: the autodiscover host's certificate expired three days ago", Labels: labels("branch", "onprem")},
			build: expiredServer.mailbox("dave")},
		{Mailbox: Mailbox{Name: "expired-dora", Description: "broken: dave's colleague on the same server with the expired certificate (one certificate alert for both)", Labels: labels("branch", "onprem")},
			build: expiredServer.mailbox("dora")},
		{Mailbox: Mailbox{Name: "expiring-ivan", Description: "healthy, but the certificate expires in 3 days", Labels: labels("branch", "onprem")},
			build: onPremisesWithCert("lapsing.test", "ivan", time.Time{}, time.Now().Add(3*24*time.Hour))},
		{Mailbox: Mailbox{Name: "longchain-judy", Description: "works, but six redirectUrl hops deep where at most three are expected", Labels: labels("hq", "onprem"),
			expect: &probe.Expectations{MaxRedirects: hops(3)}},
			build: func(e *lab.Estate) (lab.Mailbox, error) { return e.AddLongChain("chain.test", "judy", Password, 6) }},
		{Mailbox: Mailbox{Name: "migrating-hank", Description: "half-migrated: the load balancer's nodes disagree, one answers on premises, one redirects to the new server", Labels: labels("hq", "migration")},
			build: func(e *lab.Estate) (lab.Mailbox, error) { return e.AddMigrating("migrating.test", "hank", Password) }},
		{Mailbox: Mailbox{Name: "loop-erin", Description: "broken: two servers send the client back and forth with redirectUrl", Labels: labels("branch", "onprem")},
			build: func(e *lab.Estate) (lab.Mailbox, error) { return e.AddRedirectLoop("loop.test", "erin", Password) }},
		{Mailbox: Mailbox{Name: "retired-gina", Description: "broken: the server answers Autodiscover error 500, the address can't be found", Labels: labels("hq", "onprem")},
			build: retired("retired.test", "gina")},
	}
}

// realEstateMailboxes need what real estates need beyond Basic: NTLM,
// OAuth2 against a token endpoint, Autodiscover v2, and a name with a dead
// and a stale node behind it checked address by address.
func realEstateMailboxes() []entry {
	return slices.Concat([]entry{
		{Mailbox: Mailbox{Name: "mapi-mia", Description: "on premises, MAPI/HTTP only: no EXHTTP block, the EWS URL only in the WEB block", Labels: labels("hq", "onprem"),
			expect: &probe.Expectations{EWSURLHost: "mail.mapionly.test", Protocols: []string{"mapiHttp", "WEB"}}},
			build: func(e *lab.Estate) (lab.Mailbox, error) { return e.AddMAPIHTTPOnly("mapionly.test", "mia", Password) }},
		{Mailbox: Mailbox{Name: "alias-al", Description: "an alias redirected to its primary address in the same domain (redirectAddr, then settings from the same server)", Labels: labels("hq", "onprem"),
			expect: &probe.Expectations{SMTPAddress: "albert@alias.test"}},
			build: func(e *lab.Estate) (lab.Mailbox, error) { return e.AddAlias("alias.test", "al", "albert", Password) }},
		{Mailbox: Mailbox{Name: "mail-max", Description: "a mail-only hosting provider: IMAP, POP3 and SMTP servers, no Exchange", Labels: labels("branch", "mail"),
			expect: &probe.Expectations{Protocols: []string{"IMAP", "SMTP"}}},
			build: func(e *lab.Estate) (lab.Mailbox, error) { return e.AddMailOnly("mailonly.test", "max", Password) }},
	}, []entry{
		{Mailbox: Mailbox{Name: "ntlm-nina", Description: "on premises with NTLM only, as most Exchange servers are configured", Labels: labels("hq", "onprem"),
			auth: &config.Auth{Type: probe.AuthNTLM, Username: `CONTOSO\nina`, PasswordFile: passwordFile}},
			build: func(e *lab.Estate) (lab.Mailbox, error) {
				return e.AddNTLMOnly("ntlm.test", "CONTOSO", "nina", Password)
			}},
		{Mailbox: Mailbox{Name: "oauth-olga", Description: "OAuth2 only: an app-only token from the token endpoint answers the Bearer challenge", Labels: labels("cloud", "oauth"),
			auth: &config.Auth{Type: probe.AuthOAuth2, ClientID: AppClientID, ClientSecretFile: passwordFile, TokenURL: tokenURL}},
			build: func(e *lab.Estate) (lab.Mailbox, error) {
				mb, _, err := e.AddOAuth2Only("cloudonly.test", "olga", AppClientID, Password)
				return mb, err
			}},
		{Mailbox: Mailbox{Name: "hma-hana", Description: "hybrid with modern authentication: on premises and Exchange Online both take the user's delegated token, redeemed from the refresh token a login wrote; Basic is switched off", Labels: labels("hq", "hybrid"),
			auth:   delegatedAuth("hma-hana"),
			expect: &probe.Expectations{EndpointHost: lab.ModernFrontDoor, EWSURLHost: "outlook." + lab.ModernDomain}},
			build: signedIn(func(e *lab.Estate) (lab.Mailbox, error) { return e.AddHybridModernAuth("hma.test", "hana", Password) })},
		{Mailbox: Mailbox{Name: "apponly-pat", Description: "broken on purpose: an app-only token (client credentials), which Exchange Online's POX Autodiscover answers with error 500 as if the mailbox did not exist", Labels: labels("cloud", "oauth"),
			auth: &config.Auth{Type: probe.AuthOAuth2, ClientID: AppClientID, ClientSecretFile: passwordFile, TokenURL: tokenURL}},
			build: func(e *lab.Estate) (lab.Mailbox, error) {
				mb, err := e.AddExchangeOnline("apponly.test", "pat", Password)
				if err == nil {
					err = registerApp(e)
				}
				return mb, err
			}},
		{Mailbox: Mailbox{Name: "v2-quinn", Description: "Exchange Online through Autodiscover v2 (autodiscover.json), anonymously", Labels: labels("cloud", "v2"),
			auth: &config.Auth{Type: probe.AuthNone},
			tune: func(m *config.Module) {
				m.Methods = []probe.Method{probe.MethodV2JSON}
				m.V2 = &config.V2{Hosts: []string{"outlook.v2cloud.test"}, Protocols: []string{"Ews", "ActiveSync", "AutodiscoverV1"}}
			}},
			build: func(e *lab.Estate) (lab.Mailbox, error) { return e.AddV2("v2.test", "quinn", "outlook.v2cloud.test") }},
		{Mailbox: Mailbox{Name: "pool-oscar", Description: "works through the first node; check_all_addresses shows a dead node and one whose certificate expires in 15 days", Labels: labels("hq", "onprem"),
			tune: func(m *config.Module) { m.CheckAllAddresses = true }},
			build: func(e *lab.Estate) (lab.Mailbox, error) {
				return e.AddDegradedPool("pool.test", "oscar", Password, time.Now().Add(15*24*time.Hour))
			}},
	}, endpointMailboxes(), soapMailboxes())
}

// demoEndpoints are what the endpoint mailboxes check: what Outlook
// connects to after Autodiscover.
var demoEndpoints = []probe.EndpointProtocol{probe.EndpointEWS, probe.EndpointMAPI, probe.EndpointOAB, probe.EndpointOWA}

func checkEndpoints(m *config.Module) {
	m.Endpoints, m.EndpointsScope = demoEndpoints, probe.ScopeExternal
}

// endpointMailboxes have a healthy Autodiscover and trouble behind it, on
// the hosts its answer names.
func endpointMailboxes() []entry {
	return []entry{
		{Mailbox: Mailbox{Name: "endpoints-emma", Description: "Autodiscover healthy; the certificate of mail.endpoints.test, where EWS, MAPI/HTTP, OAB and OWA live, expires in 5 days", Labels: labels("hq", "onprem"),
			tune: checkEndpoints},
			build: func(e *lab.Estate) (lab.Mailbox, error) {
				spec := lab.CertSpec{Names: []string{"mail.endpoints.test"}, NotAfter: time.Now().Add(5 * 24 * time.Hour)}
				mb, _, err := e.AddExchange("endpoints.test", "emma", Password, lab.WithCert(spec))
				return mb, err
			}},
		{Mailbox: Mailbox{Name: "mapidown-mike", Description: "Autodiscover healthy, but MAPI/HTTP answers 503 after a cumulative update; expect.endpoints fails the probe", Labels: labels("hq", "onprem"),
			tune: checkEndpoints, expect: &probe.Expectations{Endpoints: true}},
			build: func(e *lab.Estate) (lab.Mailbox, error) {
				mb, x, err := e.AddExchange("mapidown.test", "mike", Password)
				if err == nil {
					x.SetFault("/mapi/", http.StatusServiceUnavailable)
				}
				return mb, err
			}},
	}
}

// askSOAP adds method soap and the federation check to a module.
func askSOAP(m *config.Module) {
	m.Methods = append(slices.Clone(probe.DefaultMethods), probe.MethodSOAP)
	m.Federation = true
}

// soapMailboxes are hybrids whose SOAP Autodiscover and federation trust
// are watched, as EWS applications and Exchange Online use them.
func soapMailboxes() []entry {
	return []entry{
		{Mailbox: Mailbox{Name: "soap-sara", Description: "hybrid: SOAP Autodiscover (autodiscover.svc) follows the same redirects to the cloud, and the federation trust and WSSecurity endpoint answer", Labels: labels("hq", "hybrid"),
			tune: askSOAP, expect: &probe.Expectations{FederationApplicationURI: lab.HybridApplicationURI("soapfed.test")}},
			build: func(e *lab.Estate) (lab.Mailbox, error) { return e.AddHybrid("soapfed.test", "sara", Password) }},
		{Mailbox: Mailbox{Name: "svcdown-sam", Description: "hybrid: POX works, but autodiscover.svc answers 503 (its application pool is down): EWS applications and hybrid free/busy break", Labels: labels("hq", "hybrid"),
			tune: askSOAP},
			build: func(e *lab.Estate) (lab.Mailbox, error) {
				mb, err := e.AddHybrid("svcdown.test", "sam", Password)
				if err == nil {
					e.HybridServer("svcdown.test").SetSOAPStatus(http.StatusServiceUnavailable)
				}
				return mb, err
			}},
	}
}

// The demo's app registrations in the lab's Entra ID: a confidential
// client for app-only tokens, and a public client (public client flows
// on) for the device sign-in of the login command.
const (
	AppClientID    = "demo-app"
	PublicClientID = "demo-public-app"
	tokenURL       = "https://" + lab.TokenHost + "/demo-tenant/oauth2/v2.0/token"
	deviceAuthURL  = "https://" + lab.TokenHost + "/demo-tenant/oauth2/v2.0/devicecode"
)

// delegatedAuth is the refresh-token grant through the public client,
// with the refresh token file named after the mailbox.
func delegatedAuth(name string) *config.Auth {
	return &config.Auth{Type: probe.AuthOAuth2, Grant: probe.GrantRefreshToken, ClientID: PublicClientID,
		TokenURL: tokenURL, DeviceAuthURL: deviceAuthURL, RefreshTokenFile: name + refreshTokenSuffix}
}

// signedIn builds a mailbox as build does and signs its user in, as the
// login command would have: the returned mailbox carries the refresh
// token the demo writes to the module's refresh token file.
func signedIn(build func(*lab.Estate) (lab.Mailbox, error)) func(*lab.Estate) (lab.Mailbox, error) {
	return func(e *lab.Estate) (lab.Mailbox, error) {
		mb, err := build(e)
		if err != nil {
			return mb, err
		}
		ts, err := e.TokenServer()
		if err != nil {
			return mb, err
		}
		ts.AddPublicClient(PublicClientID)
		mb.RefreshToken = ts.IssueRefreshToken(PublicClientID, mb.Username)
		return mb, nil
	}
}

// registerApp registers the confidential client with the lab's Entra ID.
func registerApp(e *lab.Estate) error {
	ts, err := e.TokenServer()
	if err == nil {
		ts.AddClient(AppClientID, Password)
	}
	return err
}

// onPremisesWithCert builds a plain on-premises domain whose autodiscover
// host has a certificate valid from notBefore (zero: the CA's default) to
// notAfter.
func onPremisesWithCert(domain, user string, notBefore, notAfter time.Time) func(*lab.Estate) (lab.Mailbox, error) {
	return func(e *lab.Estate) (lab.Mailbox, error) {
		spec := lab.CertSpec{Names: []string{"autodiscover." + domain}, NotBefore: notBefore, NotAfter: notAfter}
		mb, _, err := e.AddOnPremises(domain, user, Password, lab.WithCert(spec))
		return mb, err
	}
}

// sharedOnPremises is one on-premises server that several demo mailboxes
// reach, so that an alert about it can be seen to fire once for all.
type sharedOnPremises struct {
	domain              string
	notBefore, notAfter time.Time
	server              *lab.Autodiscover
}

// mailbox builds the server with the first user and adds the others to it.
func (s *sharedOnPremises) mailbox(user string) func(*lab.Estate) (lab.Mailbox, error) {
	return func(e *lab.Estate) (lab.Mailbox, error) {
		if s.server == nil {
			spec := lab.CertSpec{Names: []string{"autodiscover." + s.domain}, NotBefore: s.notBefore, NotAfter: s.notAfter}
			mb, ad, err := e.AddOnPremises(s.domain, user, Password, lab.WithCert(spec))
			s.server = ad
			return mb, err
		}
		address := user + "@" + s.domain
		s.server.AddAccount(address, Password)
		s.server.SetUser(address, lab.Reply{Settings: &lab.Settings{DisplayName: user, Server: "mail." + s.domain}})
		return lab.Mailbox{Address: address, Username: address, Password: Password}, nil
	}
}

// retired builds a mailbox removed after a migration: Exchange answers
// Autodiscover error 500 for it.
func retired(domain, user string) func(*lab.Estate) (lab.Mailbox, error) {
	return func(e *lab.Estate) (lab.Mailbox, error) {
		mb, ad, err := e.AddOnPremises(domain, user, Password)
		if err == nil {
			ad.SetUser(mb.Address, lab.Reply{ErrorCode: "500", ErrorMessage: "The email address can't be found."})
		}
		return mb, err
	}
}

// MailboxCount is how many mailboxes the demo has, for tests that look at
// a running demo from outside.
func MailboxCount() int {
	n := len(table())
	if path, _ := lab.SlapdPath(); path != "" {
		n += len(scpMailboxNames)
	}
	if path, _ := lab.KDCPath(); path != "" {
		n += len(kerberosMailboxNames)
	}
	return n
}
