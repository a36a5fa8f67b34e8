package probe_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/idna"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// The hostile estates below each try to walk the mailbox's credentials out
// of the probe (protocol reference §7 and §12). Every verdict is taken
// from what the lab's servers themselves recorded, not from the probe's
// opinion of what it did: an Authorization header may reach only a host in
// the mailbox's domain or an allowed domain, only over HTTPS whose
// certificate passed name, trust and dates, and only in answer to a 401
// that offered a scheme the module's authenticator speaks.

const (
	hostileMailbox  = "alice@contoso.test"
	hostileDomain   = "contoso.test"
	hostileOwnHost  = "autodiscover.contoso.test"
	hostilePassword = "Tr0ub4dor&3-hostile-lab"
	hostileClientID = "app-hostile"
	hostileSecret   = "client-Secret-hostile-7"
	// hostileCyrillicContoso spells contoso with a Cyrillic 'о' (U+043E) first.
	hostileCyrillicContoso = "c\u043entoso.test"
	hostileStepTimeout     = 8 * time.Second
)

// Authenticator kinds a row can configure.
const (
	hostileAuthBasic  = "" // the default
	hostileAuthNTLM   = "ntlm"
	hostileAuthOAuth2 = "oauth2"
)

type hostileCase struct {
	name    string
	mailbox string // default hostileMailbox
	auth    string // hostileAuthBasic (default), hostileAuthNTLM or hostileAuthOAuth2
	allowed []string
	// methods limits the candidate list; nil means probe.DefaultMethods.
	methods  []probe.Method
	insecure bool
	setup    func(t *testing.T, e *lab.Estate)

	// The failed step that says why the credentials stayed home.
	wantHop    int
	wantMethod probe.Method
	wantHost   string // "punycode:<unicode>" for the A-label of a Unicode name
	wantStep   probe.StepName
	wantClass  probe.ErrorClass
	wantDetail string // a substring of the step's Detail

	// credsTo are the servers that legitimately receive credentials in
	// this row (own-domain hosts with good certificates that challenge);
	// every other server must see no Authorization header at all.
	credsTo []string
	// badCert names servers whose certificate fails a check.
	badCert []string
	// untouched servers must receive no HTTP request at all.
	untouched []string
	// neverContacted hosts must not even appear in a step (no DNS lookup,
	// no connection): the domain-tree climb.
	neverContacted []string
	// noCredentialsStep hosts must have no credentials step at all: no 401
	// was sent by them, so there was nothing to answer.
	noCredentialsStep []string

	// bug, when set, skips the row: it documents a known defect.
	bug string
}

// hostileTrap is a hostile Autodiscover server: it challenges (IIS style:
// Negotiate, NTLM, Basic), accepts the mailbox's real credentials for every
// address given and answers settings, so a leak would even look like a
// success.
func hostileTrap(addresses ...string) *lab.Autodiscover {
	if len(addresses) == 0 {
		addresses = []string{hostileMailbox}
	}
	ad := &lab.Autodiscover{Accounts: map[string]string{}, Users: map[string]lab.Reply{}}
	for _, a := range addresses {
		ad.Accounts[a] = hostilePassword
		ad.Accounts[hostileMailbox] = hostilePassword
		ad.Users[strings.ToLower(a)] = lab.Reply{Settings: &lab.Settings{DisplayName: "Phished", Server: "mail.evil.test"}}
	}
	return ad
}

// hostileBasicOnlyTrap challenges with Basic alone (the Guardicore "switcheroo").
func hostileBasicOnlyTrap(host string) *lab.Autodiscover {
	ad := hostileTrap()
	ad.Challenges = []string{`Basic realm="` + host + `"`}
	return ad
}

// hostileOwn is the mailbox's legitimate on-premises server: it challenges, takes
// the real credentials and then answers reply.
func hostileOwn(reply lab.Reply) *lab.Autodiscover {
	return &lab.Autodiscover{
		Accounts: map[string]string{hostileMailbox: hostilePassword},
		Users:    map[string]lab.Reply{hostileMailbox: reply},
	}
}

// hostileOpen answers reply without asking for credentials.
func hostileOpen(reply lab.Reply) *lab.Autodiscover {
	return &lab.Autodiscover{Users: map[string]lab.Reply{hostileMailbox: reply}}
}

// hostileOKWithChallenge answers 200 with a Basic WWW-Authenticate header but no
// 401: nothing a client may answer with credentials.
func hostileOKWithChallenge(contentType, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="sign in"`)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprint(w, body)
	})
}

func hostileADURL(host string) string { return "https://" + host + "/autodiscover/autodiscover.xml" }

func hostilePunycode(t *testing.T, host string) string {
	t.Helper()
	a, err := idna.Lookup.ToASCII(host)
	if err != nil || !strings.Contains(a, "xn--") {
		t.Fatalf("punycode of %q: %q, %v", host, a, err)
	}
	return a
}

// hostileOnlyAD limits a row to the autodiscover.<domain> candidate.
var hostileOnlyAD = []probe.Method{probe.MethodAutodiscoverDomain}

// hostilePast is when the expired certificates of the rows expired.
var hostilePast = time.Now().Add(-48 * time.Hour)

// hostileCases are every row, by theme.
func hostileCases() []hostileCase {
	return slices.Concat(hostileSchemeCases(), hostileForeignHostCases(), hostileLookAlikeCases(), hostileCertificateCases(), hostileSchemeOfferCases())
}

// hostileSchemeCases are the rows that try plain HTTP or a redirect loop to get the credentials out.
func hostileSchemeCases() []hostileCase {
	return []hostileCase{
		{
			name: "01 HTTP redirect method: Location to http://",
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTP(hostileOwnHost, lab.Redirect(http.StatusFound, "http://mail.contoso.test/autodiscover/autodiscover.xml")))
				must(t, e.HTTP("mail.contoso.test", hostileBasicOnlyTrap("mail.contoso.test")))
			},
			wantMethod: probe.MethodHTTPRedirect, wantHost: hostileOwnHost, wantStep: probe.StepRedirect,
			wantClass: "bad_redirect", wantDetail: "only https:// targets",
			untouched: []string{"mail.contoso.test"},
		},
		{
			name:    "02 3xx on the authenticated POST to http://",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{Status: http.StatusFound, Location: "http://mail.contoso.test/autodiscover/autodiscover.xml"})))
				must(t, e.HTTP("mail.contoso.test", hostileBasicOnlyTrap("mail.contoso.test")))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepRedirect,
			wantClass: "bad_redirect", wantDetail: "only https:// targets",
			credsTo: []string{hostileOwnHost}, untouched: []string{"mail.contoso.test"},
		},
		{
			name:    "03 redirectUrl to http://",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectURL: "http://mail.contoso.test/autodiscover/autodiscover.xml"})))
				must(t, e.HTTP("mail.contoso.test", hostileBasicOnlyTrap("mail.contoso.test")))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepRedirect,
			wantClass: "bad_redirect", wantDetail: "only https:// targets",
			credsTo: []string{hostileOwnHost}, untouched: []string{"mail.contoso.test"},
		},
		{
			name: "18 Basic challenge on plain HTTP port 80 of autodiscover.<domain>",
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTP(hostileOwnHost, hostileBasicOnlyTrap(hostileOwnHost)))
			},
			wantMethod: probe.MethodHTTPRedirect, wantHost: hostileOwnHost, wantStep: probe.StepHTTPGet,
			wantClass: "no_redirect", wantDetail: "HTTP 401",
			noCredentialsStep: []string{hostileOwnHost},
		},
		{
			name: "19 redirect loop between the own host and a foreign host",
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectURL: hostileADURL("autodiscover.fabrikam.test")})))
				// Back to the own URL, spelled with another case and :443.
				must(t, e.HTTPS("autodiscover.fabrikam.test", hostileOpen(lab.Reply{Status: http.StatusFound, Location: "https://AUTODISCOVER.contoso.test:443/Autodiscover/Autodiscover.xml"})))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "autodiscover.fabrikam.test", wantStep: probe.StepRedirect,
			wantClass: "loop", wantDetail: "already tried",
			credsTo: []string{hostileOwnHost},
		},
	}
}

// hostileForeignHostCases are the rows that send the probe to a foreign host that challenges.
func hostileForeignHostCases() []hostileCase {
	return []hostileCase{
		{
			name:    "04a 307 to another domain with a valid certificate that challenges",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOpen(lab.Reply{Status: http.StatusTemporaryRedirect, Location: hostileADURL("autodiscover.fabrikam.test")})))
				must(t, e.HTTPS("autodiscover.fabrikam.test", hostileTrap()))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "autodiscover.fabrikam.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test nor in an allowed domain",
		},
		{
			name:    "04b redirectUrl to another domain with a valid certificate that challenges",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectURL: hostileADURL("autodiscover.fabrikam.test")})))
				must(t, e.HTTPS("autodiscover.fabrikam.test", hostileTrap()))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "autodiscover.fabrikam.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test nor in an allowed domain",
			credsTo: []string{hostileOwnHost},
		},
		{
			name: "07 redirectAddr into a foreign domain whose autodiscover host challenges",
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectAddr: "alice@fabrikam.test"})))
				must(t, e.HTTPS("autodiscover.fabrikam.test", hostileTrap("alice@fabrikam.test")))
			},
			wantHop: 1, wantMethod: probe.MethodAutodiscoverDomain, wantHost: "autodiscover.fabrikam.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test",
			credsTo: []string{hostileOwnHost},
		},
		{
			name: "09 SRV record to a foreign host with a valid certificate for itself",
			setup: func(t *testing.T, e *lab.Estate) {
				e.AddSRV("_autodiscover._tcp."+hostileDomain, 0, 0, 443, "mail.hoster.test")
				must(t, e.HTTPS("mail.hoster.test", hostileTrap()))
			},
			wantMethod: probe.MethodSRV, wantHost: "mail.hoster.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test",
		},
		{
			name:    "13 302 after an accepted 401 to a foreign host that challenges too",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{Status: http.StatusFound, Location: hostileADURL("autodiscover.fabrikam.test")})))
				must(t, e.HTTPS("autodiscover.fabrikam.test", hostileTrap()))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "autodiscover.fabrikam.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test",
			credsTo: []string{hostileOwnHost},
		},
		{
			name: "23 HTTP redirect method (spoofable port 80) to a foreign HTTPS host that challenges",
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTP(hostileOwnHost, lab.Redirect(http.StatusFound, hostileADURL("autodiscover.fabrikam.test"))))
				must(t, e.HTTPS("autodiscover.fabrikam.test", hostileTrap()))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "autodiscover.fabrikam.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test",
		},
		{
			name:    "28 scheme-relative Location (//foreign host/…) after an accepted 401",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{Status: http.StatusMovedPermanently, Location: "//autodiscover.fabrikam.test/Autodiscover/Autodiscover.xml"})))
				must(t, e.HTTPS("autodiscover.fabrikam.test", hostileTrap()))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "autodiscover.fabrikam.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test",
			credsTo: []string{hostileOwnHost},
		},
		{
			name:    "30 parser confusion: Location https://own-host\\@foreign-host/…",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{Status: http.StatusFound, Location: `https://autodiscover.contoso.test\@autodiscover.fabrikam.test/autodiscover/autodiscover.xml`})))
				must(t, e.HTTPS("autodiscover.fabrikam.test", hostileTrap()))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepRedirect,
			wantClass: "bad_redirect", wantDetail: "not a URL",
			credsTo: []string{hostileOwnHost}, untouched: []string{"autodiscover.fabrikam.test"},
		},
		{
			name:    "31 SRV target smuggling a port into an own-domain name",
			methods: []probe.Method{probe.MethodSRV},
			setup: func(t *testing.T, e *lab.Estate) {
				e.AddSRV("_autodiscover._tcp."+hostileDomain, 0, 0, 443, hostileOwnHost+":8443")
				must(t, e.HTTPS(hostileOwnHost, hostileTrap()))
			},
			wantMethod: probe.MethodSRV, wantHost: "_autodiscover._tcp." + hostileDomain, wantStep: probe.StepSRVLookup,
			wantClass: "no_usable_srv", wantDetail: "not a DNS host name",
			untouched: []string{hostileOwnHost},
		},
		{
			name:    "32 redirectUrl to another port of an own-domain host",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectURL: "https://mail.contoso.test:8443/autodiscover/autodiscover.xml"})))
				must(t, e.HTTPS("mail.contoso.test", hostileTrap()))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepRedirect,
			wantClass: "bad_redirect", wantDetail: "allowed_ports",
			credsTo: []string{hostileOwnHost}, untouched: []string{"mail.contoso.test"},
		},
	}
}

// hostileLookAlikeCases are the rows that disguise the target: IP literals, look-alike and IDN names, public suffixes, a domain-tree climb.
func hostileLookAlikeCases() []hostileCase {
	return []hostileCase{
		{
			name:    "05a 302 to an IPv4 literal whose certificate names the address",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				ip, err := e.IPOf("ip-trap.evil.test")
				must(t, err)
				must(t, e.HTTPS("ip-trap.evil.test", hostileTrap(), lab.WithCert(lab.CertSpec{Names: []string{ip}})))
				must(t, e.HTTPS(hostileOwnHost, hostileOpen(lab.Reply{Status: http.StatusFound, Location: "https://" + ip + "/autodiscover/autodiscover.xml"})))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepRedirect,
			wantClass: "bad_redirect", wantDetail: "IP address literal",
			untouched: []string{"ip-trap.evil.test"},
		},
		{
			name:    "05b redirectUrl to an IPv4 literal with an explicit :443",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				ip, err := e.IPOf("ip-trap.evil.test")
				must(t, err)
				must(t, e.HTTPS("ip-trap.evil.test", hostileTrap(), lab.WithCert(lab.CertSpec{Names: []string{ip}})))
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectURL: "https://" + ip + ":443/autodiscover/autodiscover.xml"})))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepRedirect,
			wantClass: "bad_redirect", wantDetail: "IP address literal",
			credsTo: []string{hostileOwnHost}, untouched: []string{"ip-trap.evil.test"},
		},
		{
			name:    "06a look-alike domain evilcontoso.test (redirectUrl)",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectURL: hostileADURL("autodiscover.evilcontoso.test")})))
				must(t, e.HTTPS("autodiscover.evilcontoso.test", hostileTrap()))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "autodiscover.evilcontoso.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test",
			credsTo: []string{hostileOwnHost},
		},
		{
			name:    "06b look-alike domain contoso.test.evil.test (302)",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOpen(lab.Reply{Status: http.StatusFound, Location: hostileADURL("autodiscover.contoso.test.evil.test")})))
				must(t, e.HTTPS("autodiscover.contoso.test.evil.test", hostileTrap()))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "autodiscover.contoso.test.evil.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test",
		},
		{
			name: "08a redirectAddr to a bare public suffix (alice@co.uk)",
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectAddr: "alice@co.uk"})))
				must(t, e.HTTPS("co.uk", hostileTrap("alice@co.uk")))
				must(t, e.HTTPS("autodiscover.co.uk", hostileTrap("alice@co.uk")))
				must(t, e.HTTP("autodiscover.co.uk", hostileBasicOnlyTrap("autodiscover.co.uk")))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepRedirect,
			wantClass: "bad_redirect", wantDetail: "public suffix",
			credsTo: []string{hostileOwnHost}, untouched: []string{"co.uk", "autodiscover.co.uk"},
			neverContacted: []string{"co.uk", "autodiscover.co.uk"},
		},
		{
			name: "08b redirectAddr to a single-label domain (alice@corp)",
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectAddr: "alice@corp"})))
				must(t, e.HTTPS("corp", hostileTrap("alice@corp")))
				must(t, e.HTTPS("autodiscover.corp", hostileTrap("alice@corp")))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepRedirect,
			wantClass: "bad_redirect", wantDetail: "single-label",
			credsTo: []string{hostileOwnHost}, untouched: []string{"corp", "autodiscover.corp"},
			neverContacted: []string{"corp", "autodiscover.corp"},
		},
		{
			name:    "15a IDN look-alike with a Cyrillic o, punycode form",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				host := hostilePunycode(t, "autodiscover."+hostileCyrillicContoso)
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectURL: hostileADURL(host)})))
				must(t, e.HTTPS(host, hostileTrap()))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "punycode:autodiscover." + hostileCyrillicContoso, wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test",
			credsTo: []string{hostileOwnHost},
		},
		{
			// Real DNS only holds the A-label; a Unicode host in a redirect
			// must be converted (IDNA, as NormalizeAddress does for
			// addresses) and then judged like any foreign host.
			name:    "15b IDN look-alike with a Cyrillic o, raw Unicode form",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				host := hostilePunycode(t, "autodiscover."+hostileCyrillicContoso)
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectURL: hostileADURL("autodiscover." + hostileCyrillicContoso)})))
				must(t, e.HTTPS(host, hostileTrap()))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "punycode:autodiscover." + hostileCyrillicContoso, wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test",
			credsTo: []string{hostileOwnHost},
		},
		{
			name:    "22 domain-tree climb: only the parent domain exists and challenges",
			mailbox: "alice@sub.contoso.test",
			setup: func(t *testing.T, e *lab.Estate) {
				for _, h := range []string{hostileDomain, hostileOwnHost, "autodiscover.test"} {
					must(t, e.HTTPS(h, hostileTrap("alice@sub.contoso.test")))
					must(t, e.HTTP(h, hostileBasicOnlyTrap(h)))
				}
				e.AddSRV("_autodiscover._tcp."+hostileDomain, 0, 0, 443, hostileOwnHost)
			},
			wantMethod: probe.MethodRootDomain, wantHost: "sub.contoso.test", wantStep: probe.StepDNS,
			wantClass: "nxdomain", wantDetail: "does not exist",
			untouched:      []string{hostileDomain, hostileOwnHost, "autodiscover.test"},
			neverContacted: []string{hostileDomain, hostileOwnHost, "autodiscover.test", "_autodiscover._tcp." + hostileDomain},
		},
		{
			name:    "26 look-alike of an allowed domain (evilpartner.test when partner.test is allowed)",
			allowed: []string{"partner.test"},
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectURL: hostileADURL("pod.evilpartner.test")})))
				must(t, e.HTTPS("pod.evilpartner.test", hostileTrap()))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "pod.evilpartner.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "nor in an allowed domain",
			credsTo: []string{hostileOwnHost},
		},
		{
			name: "29 redirectAddr whose domain only looks like the mailbox's (alice@contoso.test.evil.test)",
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectAddr: "alice@contoso.test.evil.test"})))
				must(t, e.HTTPS("contoso.test.evil.test", hostileTrap("alice@contoso.test.evil.test")))
			},
			wantHop: 1, wantMethod: probe.MethodRootDomain, wantHost: "contoso.test.evil.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test",
			credsTo: []string{hostileOwnHost},
		},
	}
}

// hostileCertificateCases are the rows whose hosts present a certificate that must not pass.
func hostileCertificateCases() []hostileCase {
	return []hostileCase{
		{
			name: "10 SRV target presenting a certificate for the mailbox domain only",
			setup: func(t *testing.T, e *lab.Estate) {
				e.AddSRV("_autodiscover._tcp."+hostileDomain, 0, 0, 443, "mail.hoster.test")
				must(t, e.HTTPS("mail.hoster.test", hostileTrap(), lab.WithCert(lab.CertSpec{Names: []string{hostileDomain, hostileOwnHost, "*." + hostileDomain}})))
			},
			wantMethod: probe.MethodSRV, wantHost: "mail.hoster.test", wantStep: probe.StepCertName,
			wantClass: "name_mismatch", wantDetail: "doesn't match any name on the certificate",
			badCert: []string{"mail.hoster.test"}, untouched: []string{"mail.hoster.test"},
		},
		{
			name:     "16 own domain, rogue-CA certificate, InsecureSkipVerify, challenges",
			insecure: true,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileTrap(), lab.WithUntrustedCert()))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepCredentials,
			wantClass: "withheld_certificate", wantDetail: "failed validation",
			badCert: []string{hostileOwnHost},
		},
		{
			name:     "17 own domain, expired certificate, InsecureSkipVerify, challenges",
			insecure: true,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileTrap(), lab.WithCert(lab.CertSpec{Names: []string{hostileOwnHost}, NotBefore: hostilePast.Add(-24 * time.Hour), NotAfter: hostilePast})))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepCredentials,
			wantClass: "withheld_certificate", wantDetail: "failed validation",
			badCert: []string{hostileOwnHost},
		},
		{
			name:    "20a allowed domain with a name-mismatched certificate",
			allowed: []string{"partner.test"},
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectURL: hostileADURL("pod.partner.test")})))
				must(t, e.HTTPS("pod.partner.test", hostileTrap(), lab.WithCert(lab.CertSpec{Names: []string{"www.partner.test"}})))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "pod.partner.test", wantStep: probe.StepCertName,
			wantClass: "name_mismatch", wantDetail: "doesn't match any name on the certificate",
			credsTo: []string{hostileOwnHost}, badCert: []string{"pod.partner.test"}, untouched: []string{"pod.partner.test"},
		},
		{
			name:     "20b allowed domain with a name-mismatched certificate and InsecureSkipVerify",
			allowed:  []string{"partner.test"},
			insecure: true,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectURL: hostileADURL("pod.partner.test")})))
				must(t, e.HTTPS("pod.partner.test", hostileTrap(), lab.WithCert(lab.CertSpec{Names: []string{"www.partner.test"}})))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "pod.partner.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_certificate", wantDetail: "failed validation",
			credsTo: []string{hostileOwnHost}, badCert: []string{"pod.partner.test"},
		},
		{
			name: "27 autodiscover.<domain> is a CNAME to a foreign host whose certificate names only itself",
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS("autodiscover.hoster.test", hostileTrap()))
				e.AddCNAME(hostileOwnHost, "autodiscover.hoster.test")
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepCertName,
			wantClass: "name_mismatch", wantDetail: "doesn't match any name on the certificate",
			badCert: []string{"autodiscover.hoster.test"}, untouched: []string{"autodiscover.hoster.test"},
		},
	}
}

// hostileSchemeOfferCases are the rows that offer a scheme the module must not answer, or no challenge at all.
func hostileSchemeOfferCases() []hostileCase {
	return []hostileCase{
		{
			name: "11 only Basic offered to an NTLM module",
			auth: hostileAuthNTLM,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileBasicOnlyTrap(hostileOwnHost)))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepCredentials,
			wantClass: "unsupported_scheme", wantDetail: "none of the offered schemes (Basic)",
		},
		{
			name: "12 only Basic offered to an OAuth2 module",
			auth: hostileAuthOAuth2,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileBasicOnlyTrap(hostileOwnHost)))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepCredentials,
			wantClass: "unsupported_scheme", wantDetail: "none of the offered schemes (Basic)",
		},
		{
			name:    "14 Location with user info (https://user:pass@…) on the own domain",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOpen(lab.Reply{Status: http.StatusFound, Location: "https://alice:guess@mail.contoso.test/autodiscover/autodiscover.xml"})))
				must(t, e.HTTPS("mail.contoso.test", hostileTrap()))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepRedirect,
			wantClass: "bad_redirect", wantDetail: "user info",
			untouched: []string{"mail.contoso.test"},
		},
		{
			name:    "21a foreign host answers 200 with a Basic WWW-Authenticate but no 401",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOpen(lab.Reply{RedirectURL: hostileADURL("autodiscover.fabrikam.test")})))
				must(t, e.HTTPS("autodiscover.fabrikam.test", hostileOKWithChallenge("text/html", "<html><body>Please sign in</body></html>")))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "autodiscover.fabrikam.test", wantStep: probe.StepParse,
			wantClass: "bad_content_type", wantDetail: "expected text/xml",
			noCredentialsStep: []string{"autodiscover.fabrikam.test"},
		},
		{
			name:    "21b own host answers 200 with a Basic WWW-Authenticate but no 401",
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOKWithChallenge("text/xml", "<html><body>Please sign in</body></html>")))
			},
			wantMethod: probe.MethodAutodiscoverDomain, wantHost: hostileOwnHost, wantStep: probe.StepParse,
			wantClass: "not_autodiscover", wantDetail: "html",
			noCredentialsStep: []string{hostileOwnHost},
		},
		{
			name:    "24 OAuth2 module redirected to a foreign host offering Bearer",
			auth:    hostileAuthOAuth2,
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOpen(lab.Reply{RedirectURL: hostileADURL("autodiscover.fabrikam.test")})))
				ad := hostileTrap()
				ad.Challenges = []string{`Bearer authorization_uri="https://login.fabrikam.test/common/oauth2/authorize"`}
				must(t, e.HTTPS("autodiscover.fabrikam.test", ad))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "autodiscover.fabrikam.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test",
		},
		{
			name:    "25 NTLM module redirected to a foreign host offering Negotiate and NTLM",
			auth:    hostileAuthNTLM,
			methods: hostileOnlyAD,
			setup: func(t *testing.T, e *lab.Estate) {
				must(t, e.HTTPS(hostileOwnHost, hostileOpen(lab.Reply{Status: http.StatusFound, Location: hostileADURL("autodiscover.fabrikam.test")})))
				ad := hostileTrap()
				ad.Challenges = []string{"Negotiate", "NTLM"}
				must(t, e.HTTPS("autodiscover.fabrikam.test", ad))
			},
			wantHop: 1, wantMethod: probe.MethodRedirect, wantHost: "autodiscover.fabrikam.test", wantStep: probe.StepCredentials,
			wantClass: "withheld_domain", wantDetail: "neither in contoso.test",
		},
	}
}

// hostileResolveHost turns a "punycode:<unicode host>" placeholder into its
// A-label form.
func hostileResolveHost(t *testing.T, h string) string {
	if u, ok := strings.CutPrefix(h, "punycode:"); ok {
		return hostilePunycode(t, u)
	}
	return h
}

// hostileUnderDomain is the label-boundary rule, written again here so the test
// does not trust the code under test.
func hostileUnderDomain(host, domain string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	return domain != "" && (host == domain || strings.HasSuffix(host, "."+domain))
}

func hostileProbeSettings(t *testing.T, e *lab.Estate, tc hostileCase, mailbox string) probe.Settings {
	t.Helper()
	s := settingsFor(e, lab.Mailbox{Address: mailbox, Username: mailbox, Password: hostilePassword, AllowedDomains: tc.allowed})
	s.Methods = tc.methods
	s.InsecureSkipVerify = tc.insecure
	// No row waits on a timeout (every failure is a refusal, an NXDOMAIN or
	// a verdict), so a generous step timeout only keeps a loaded machine
	// from turning a verdict into a "timeout".
	s.StepTimeout = hostileStepTimeout
	switch tc.auth {
	case hostileAuthNTLM:
		s.Auth = probe.AuthSettings{Type: probe.AuthNTLM, Username: `CONTOSO\alice`, Password: hostilePassword, Workstation: "PROBE01"}
	case hostileAuthOAuth2:
		s.Auth = probe.AuthSettings{
			Type:         probe.AuthOAuth2,
			TokenURL:     "https://" + tokenHost + "/tenant/oauth2/v2.0/token",
			ClientID:     hostileClientID,
			ClientSecret: hostileSecret,
		}
	}
	return s
}

// hostileAuthSchemes are the Authorization schemes each authenticator may send.
func hostileAuthSchemes(auth string) []string {
	switch auth {
	case hostileAuthNTLM:
		return []string{"NTLM", "Negotiate"}
	case hostileAuthOAuth2:
		return []string{"Bearer"}
	}
	return []string{"Basic"}
}

func TestHostileEstatesNeverGetCredentials(t *testing.T) {
	cases := hostileCases()
	if len(cases) < 20 {
		t.Fatalf("only %d hostile scenarios, want at least 20", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.bug != "" {
				t.Skip("BUG: " + tc.bug)
			}
			mailbox := tc.mailbox
			if mailbox == "" {
				mailbox = hostileMailbox
			}
			home := mailbox[strings.LastIndexByte(mailbox, '@')+1:]
			e := newEstate(t)
			var ts *lab.TokenServer
			if tc.auth == hostileAuthOAuth2 {
				ts = &lab.TokenServer{Clients: map[string]string{hostileClientID: hostileSecret}}
				must(t, e.HTTPS(tokenHost, ts))
			}
			tc.setup(t, e)
			res := mustRun(t, mailbox, hostileProbeSettings(t, e, tc, mailbox))
			log := res.Log()
			wantHost := hostileResolveHost(t, tc.wantHost)

			// Nothing hostile may end in settings.
			if res.Success {
				t.Errorf("the probe succeeded against a hostile estate (final URL %s)\n%s", res.FinalURL, log)
			}

			// 1. The step that says why, with a reason.
			st, found := findStep(res, tc.wantHop, wantHost, tc.wantStep)
			switch {
			case !found:
				t.Errorf("no %s step on %s at hop %d\n%s", tc.wantStep, wantHost, tc.wantHop, log)
			case st.OK || st.ErrorClass != tc.wantClass || st.Method != tc.wantMethod:
				t.Errorf("step %s = %q (method %s, class %q), want method %s failed with %q\n%s", tc.wantStep, stepLine(st), st.Method, st.ErrorClass, tc.wantMethod, tc.wantClass, log)
			case st.Detail == "" || !strings.Contains(st.Detail, tc.wantDetail):
				t.Errorf("step %s detail %q, want it to mention %q\n%s", tc.wantStep, st.Detail, tc.wantDetail, log)
			case !strings.Contains(log, "FAILED ("+string(tc.wantClass)+"): "+st.Detail):
				t.Errorf("the step log does not show the failure %q with its detail\n%s", tc.wantClass, log)
			}

			// 2. What the servers recorded.
			reqs := e.Requests()
			seenBare := map[string]bool{}
			credsSeen := map[string]int{}
			for _, r := range reqs {
				if r.Authorization == "" {
					seenBare[r.Server] = true
					continue
				}
				credsSeen[r.Server]++
				where := fmt.Sprintf("%s %s://%s%s", r.Method, r.Scheme, r.Server, r.Path)
				if r.Scheme != "https" {
					t.Errorf("%s: Authorization sent over plain HTTP", where)
				}
				inRules := hostileUnderDomain(r.Server, home)
				for _, d := range tc.allowed {
					inRules = inRules || hostileUnderDomain(r.Server, d)
				}
				if !inRules {
					t.Errorf("%s: Authorization sent to a host outside %s and %v", where, home, tc.allowed)
				}
				if slices.Contains(tc.badCert, r.Server) {
					t.Errorf("%s: Authorization sent to a host whose certificate failed", where)
				}
				if !slices.Contains(tc.credsTo, r.Server) {
					t.Errorf("%s: Authorization sent; only %v may receive it in this estate", where, tc.credsTo)
				}
				scheme, _, _ := strings.Cut(r.Authorization, " ")
				if !slices.ContainsFunc(hostileAuthSchemes(tc.auth), func(s string) bool { return strings.EqualFold(s, scheme) }) {
					t.Errorf("%s: Authorization scheme %q, but the module may only speak %v", where, scheme, hostileAuthSchemes(tc.auth))
				}
				if !seenBare[r.Server] {
					t.Errorf("%s: Authorization sent pre-emptively, before any unauthenticated request drew a 401", where)
				}
				if strings.Contains(r.Authorization, hostilePassword) {
					t.Errorf("%s: the password travelled in clear text in the header", where)
				}
			}
			for _, h := range tc.credsTo {
				if credsSeen[h] == 0 {
					t.Errorf("%s should have received the credentials (it is the mailbox's own, valid, challenging host): the row proves nothing otherwise\n%s", h, log)
				}
				if cs, ok := findStep(res, 0, h, probe.StepCredentials); !ok || !cs.OK {
					t.Errorf("credentials step on %s = %+v, want OK", h, cs)
				}
			}
			for _, h := range tc.untouched {
				if n := len(e.RequestsTo(h)); n != 0 {
					t.Errorf("%s received %d request(s), want none: %+v", h, n, e.RequestsTo(h))
				}
			}
			for _, h := range tc.neverContacted {
				for _, s := range res.Steps {
					if strings.EqualFold(s.Host, h) {
						t.Errorf("the probe contacted %s: %s", h, stepLine(s))
					}
				}
			}
			for _, h := range tc.noCredentialsStep {
				for _, s := range res.Steps {
					if s.Host == h && s.Name == probe.StepCredentials {
						t.Errorf("credentials step on %s without a 401: %s", h, stepLine(s))
					}
				}
			}

			// 3. Secrets never reach the log or the steps.
			for _, secret := range []string{hostilePassword, hostileSecret} {
				if strings.Contains(log, secret) {
					t.Errorf("the step log contains a secret")
				}
			}
			if ts != nil {
				t.Logf("token endpoint requests: %d", ts.Requests())
			}
		})
	}
}

func TestHostileSuiteHasAtLeastTwentyScenarios(t *testing.T) {
	cases := hostileCases()
	if len(cases) < 20 {
		t.Fatalf("%d hostile scenarios, want at least 20", len(cases))
	}
	names := map[string]bool{}
	for _, tc := range cases {
		if names[tc.name] {
			t.Errorf("duplicate scenario name %q", tc.name)
		}
		names[tc.name] = true
		if tc.setup == nil || tc.wantStep == "" || tc.wantClass == "" || tc.wantHost == "" || tc.wantMethod == "" || tc.wantDetail == "" {
			t.Errorf("scenario %q does not say which step must fail, how and why", tc.name)
		}
	}
}

// TestHostileRawUnicodeRedirectReachesNoLookAlike: whichever way the probe
// spells a raw Unicode look-alike host (as is, or as its A-label), and even
// when DNS answers for both spellings, the look-alike gets no credentials
// and the run fails at hop 1 on that host with a reason.
func TestHostileRawUnicodeRedirectReachesNoLookAlike(t *testing.T) {
	e := newEstate(t)
	unicodeHost := "autodiscover." + hostileCyrillicContoso
	host := hostilePunycode(t, unicodeHost)
	must(t, e.HTTPS(hostileOwnHost, hostileOwn(lab.Reply{RedirectURL: hostileADURL(unicodeHost)})))
	must(t, e.HTTPS(host, hostileTrap()))
	ip, err := e.IPOf(host)
	must(t, err)
	// The lab's DNS sees a raw UTF-8 question in miekg/dns's escaped form.
	e.AddA(`autodiscover.c\208\190ntoso.test`, ip)
	s := settingsFor(e, lab.Mailbox{Address: hostileMailbox, Username: hostileMailbox, Password: hostilePassword})
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	s.StepTimeout = hostileStepTimeout
	res := mustRun(t, hostileMailbox, s)
	log := res.Log()
	if res.Success {
		t.Fatalf("succeeded through a look-alike host\n%s", log)
	}
	var failed *probe.Step
	for i, st := range res.Steps {
		if st.Hop != 1 || st.OK {
			continue
		}
		if a, err := idna.Lookup.ToASCII(st.Host); err == nil && a == host {
			failed = &res.Steps[i]
		}
	}
	if failed == nil || failed.ErrorClass == "" || failed.Detail == "" {
		t.Fatalf("no failed step with a class and a detail on the look-alike at hop 1\n%s", log)
	}
	t.Logf("the look-alike fails at %s (%s): %s", failed.Name, failed.ErrorClass, failed.Detail)
	for _, r := range e.Requests() {
		if r.Authorization != "" && r.Server != hostileOwnHost {
			t.Errorf("%s %s://%s%s received Authorization", r.Method, r.Scheme, r.Server, r.Path)
		}
	}
	if n := len(e.RequestsTo(hostileOwnHost)); n != 2 {
		t.Errorf("the own host saw %d requests, want the 401 and the authenticated POST", n)
	}
}
