package lab

import (
	"fmt"
	"net/http"
	"strings"
)

// Mailbox is a lab mailbox with what a probe needs to discover it.
type Mailbox struct {
	Address  string
	Username string
	Password string
	// AllowedDomains are the domains outside the mailbox's own where its
	// credentials must go for the flow to succeed.
	AllowedDomains []string
	// RefreshToken, for a mailbox whose user has signed in, is the
	// refresh token a login would have written.
	RefreshToken string
}

// Microsoft cloud host names, modelled on Exchange Online's.
const (
	CloudRedirectHost = "autodiscover-redirect.outlook.test" // 443 closed, port 80 redirects
	CloudCNAMEHost    = "autodiscover.outlook.test"          // 443 with outlook names, port 80 redirects
	CloudFrontDoor    = "autodiscover-s.outlook.test"        // answers redirectUrl to a pod
	CloudPod          = "pod51049.outlook.test"              // answers settings
	CloudDomain       = "outlook.test"
	TenantSuffix      = "mail.onmicrosoft.test"
)

// cloud is the simulated Exchange Online, built once per estate.
type cloud struct {
	frontDoor *Autodiscover
	pod       *Autodiscover
}

// cloud returns the estate's simulated Exchange Online, starting it on
// first use: a front door that sends every known mailbox to a pod, the pod
// that answers settings, and the two redirect hosts of port 80.
func (e *Estate) cloud() (*cloud, error) {
	e.mu.Lock()
	c := e.msCloud
	e.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c = &cloud{
		frontDoor: &Autodiscover{Users: map[string]Reply{}, Accounts: map[string]string{}, Challenges: []string{`Basic Realm=""`}},
		pod:       &Autodiscover{Users: map[string]Reply{}, Accounts: map[string]string{}, Challenges: []string{`Basic Realm=""`}},
	}
	frontURL := "https://" + CloudFrontDoor + "/Autodiscover/Autodiscover.xml"
	cloudCert := WithCert(CertSpec{Names: []string{CloudDomain, "*." + CloudDomain}})
	steps := []func() error{
		func() error { return e.HTTPS(CloudFrontDoor, c.frontDoor, cloudCert) },
		func() error { return e.HTTPS(CloudPod, c.pod, cloudCert) },
		func() error { return e.HTTP(CloudRedirectHost, cloudRedirect(frontURL)) },
		func() error {
			return e.HTTPS(CloudCNAMEHost, Static(http.StatusForbidden, "text/html", "<html><body>403</body></html>"), cloudCert)
		},
		func() error { return e.HTTP(CloudCNAMEHost, cloudRedirect(frontURL)) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.msCloud == nil {
		e.msCloud = c
	}
	return e.msCloud, nil
}

// cloudRedirect is Exchange Online's port 80: every request is sent to the
// front door, a SOAP one (autodiscover.svc) to its SOAP service.
func cloudRedirect(frontURL string) http.Handler {
	soapURL := "https://" + CloudFrontDoor + "/autodiscover/autodiscover.svc"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		to := frontURL
		if strings.HasSuffix(strings.ToLower(r.URL.Path), "/autodiscover.svc") {
			to = soapURL
		}
		w.Header().Set("Location", to)
		w.WriteHeader(http.StatusFound)
	})
}

// addCloudMailbox makes the cloud know address (its tenant address) with
// the given credentials.
func (e *Estate) addCloudMailbox(address, user, password, displayName string) error {
	c, err := e.cloud()
	if err != nil {
		return err
	}
	podURL := "https://" + CloudPod + "/Autodiscover/Autodiscover.xml"
	c.frontDoor.AddAccount(user, password)
	c.frontDoor.SetUser(address, Reply{RedirectURL: podURL})
	c.pod.AddAccount(user, password)
	c.pod.SetUser(address, Reply{Settings: &Settings{DisplayName: displayName, Server: "outlook." + CloudDomain, MicrosoftOnline: true}})
	return nil
}

// AddHybrid builds the hybrid flow of the o365info walk-through for
// user@domain: the domain root answers with a web host's certificate; the
// on-premises autodiscover.<domain> challenges for Basic and answers
// redirectAddr to user@<tenant>.mail.onmicrosoft.test; that domain does
// not resolve; its autodiscover host (a CNAME into the cloud) has 443
// closed and redirects on port 80 to the front door; the front door sends
// a redirectUrl to a pod; the pod returns settings. Three hops.
func (e *Estate) AddHybrid(domain, user, password string) (Mailbox, error) {
	address := user + "@" + domain
	return e.AddHybridMailbox(domain, user, address, password)
}

// AddHybridMailbox adds user@domain to the hybrid flow of domain (building
// the domain's servers on first use), authenticating as username: many
// mailboxes of one domain can share a monitoring account.
func (e *Estate) AddHybridMailbox(domain, user, username, password string) (Mailbox, error) {
	address := user + "@" + domain
	tenant := strings.SplitN(domain, ".", 2)[0] + "." + TenantSuffix
	cloudAddress := user + "@" + tenant
	e.mu.Lock()
	onPrem := e.hybrids[domain]
	e.mu.Unlock()
	if onPrem == nil {
		// The Hybrid Configuration Wizard federates the organisation: its
		// federation organisation identifier is the ApplicationUri.
		onPrem = &Autodiscover{Accounts: map[string]string{}, Users: map[string]Reply{}, Federation: &Federation{
			ApplicationURI: HybridApplicationURI(domain),
			Domains:        []string{domain, tenant},
			TokenIssuers:   []FederationIssuer{MicrosoftFederationGateway},
		}}
		webHost := WithCert(CertSpec{Names: []string{"www.webhost.test", "webhost.test"}})
		if err := e.HTTPS(domain, Static(http.StatusOK, "text/html", "<html><body>Welcome</body></html>"), webHost); err != nil {
			return Mailbox{}, err
		}
		if err := e.HTTPS("autodiscover."+domain, onPrem); err != nil {
			return Mailbox{}, err
		}
		if _, err := e.cloud(); err != nil {
			return Mailbox{}, err
		}
		e.AddCNAME("autodiscover."+tenant, CloudRedirectHost)
		e.mu.Lock()
		if e.hybrids == nil {
			e.hybrids = map[string]*Autodiscover{}
		}
		e.hybrids[domain] = onPrem
		e.mu.Unlock()
	}
	onPrem.AddAccount(username, password)
	onPrem.SetUser(address, Reply{RedirectAddr: cloudAddress})
	if err := e.addCloudMailbox(cloudAddress, username, password, displayName(user)); err != nil {
		return Mailbox{}, err
	}
	return Mailbox{Address: address, Username: username, Password: password, AllowedDomains: []string{TenantSuffix, CloudDomain}}, nil
}

// HybridApplicationURI is the ApplicationUri a hybrid domain's federation
// trust has: the federation organisation identifier under the domain.
func HybridApplicationURI(domain string) string { return "FYDIBOHF25SPDLT." + domain }

// AddMicrosoft365 builds the Exchange Online flow of the o365info
// walk-through for user@domain: no web site on the domain root,
// autodiscover.<domain> is a CNAME to the cloud whose certificate does not
// name it, the HTTP redirect method on port 80 sends the client to the
// front door, which answers redirectUrl to a pod. Two hops.
func (e *Estate) AddMicrosoft365(domain, user, password string) (Mailbox, error) {
	address := user + "@" + domain
	if _, err := e.cloud(); err != nil {
		return Mailbox{}, err
	}
	e.AddCNAME("autodiscover."+domain, CloudCNAMEHost)
	if err := e.addCloudMailbox(address, address, password, displayName(user)); err != nil {
		return Mailbox{}, err
	}
	return Mailbox{Address: address, Username: address, Password: password, AllowedDomains: []string{CloudDomain}}, nil
}

// AddSRVOnly builds a domain found only through its SRV record: neither
// the root nor autodiscover.<domain> exists, and
// _autodiscover._tcp.<domain> points to mail.<domain>:443 (after a record
// on another port that must be skipped).
func (e *Estate) AddSRVOnly(domain, user, password string) (Mailbox, error) {
	address := user + "@" + domain
	host := "mail." + domain
	srv := &Autodiscover{
		Accounts: map[string]string{address: password},
		Users:    map[string]Reply{strings.ToLower(address): {Settings: &Settings{DisplayName: displayName(user), Server: host}}},
	}
	if err := e.HTTPS(host, srv); err != nil {
		return Mailbox{}, err
	}
	e.AddSRV("_autodiscover._tcp."+domain, 0, 0, 8443, "legacy."+domain)
	e.AddSRV("_autodiscover._tcp."+domain, 10, 0, 443, host)
	return Mailbox{Address: address, Username: address, Password: password}, nil
}

// AddOnPremises builds a plain on-premises domain: autodiscover.<domain>
// answers settings after a Basic challenge. opts change its TLS server
// (certificate, client certificates).
func (e *Estate) AddOnPremises(domain, user, password string, opts ...HostOption) (Mailbox, *Autodiscover, error) {
	address := user + "@" + domain
	ad := &Autodiscover{
		Accounts: map[string]string{address: password},
		Users:    map[string]Reply{strings.ToLower(address): {Settings: &Settings{DisplayName: displayName(user), Server: "mail." + domain}}},
	}
	if err := e.HTTPS("autodiscover."+domain, ad, opts...); err != nil {
		return Mailbox{}, nil, err
	}
	return Mailbox{Address: address, Username: address, Password: password}, ad, nil
}

func displayName(user string) string {
	if user == "" {
		return ""
	}
	return fmt.Sprintf("%s%s", strings.ToUpper(user[:1]), user[1:])
}

// AddExchange builds an on-premises Exchange with its client access
// services: autodiscover.<domain> answers settings after a Basic
// challenge, and mail.<domain> (external) and internal.mail.<domain>
// (internal) serve the EWS, MAPI/HTTP, OAB, ActiveSync and OWA URLs the
// settings name, behind the same accounts. mailOpts change mail.<domain>'s
// TLS server (an expiring certificate, say).
func (e *Estate) AddExchange(domain, user, password string, mailOpts ...HostOption) (Mailbox, *Exchange, error) {
	mb, ad, err := e.AddOnPremises(domain, user, password)
	if err != nil {
		return Mailbox{}, nil, err
	}
	x := &Exchange{Auth: ad}
	if err := e.HTTPS("mail."+domain, x, mailOpts...); err != nil {
		return Mailbox{}, nil, err
	}
	if err := e.HTTPS("internal.mail."+domain, x); err != nil {
		return Mailbox{}, nil, err
	}
	return mb, x, nil
}

// HybridServer is the on-premises Autodiscover of a hybrid domain built
// by AddHybrid, nil before.
func (e *Estate) HybridServer(domain string) *Autodiscover {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hybrids[domain]
}
