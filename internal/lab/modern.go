package lab

import (
	"net/http"
	"strings"
)

// Exchange Online as it is since Basic authentication was switched off
// for Autodiscover (2022): its POX endpoint takes nothing but Bearer
// tokens issued for Exchange Online, and answers an app-only token with
// Error 500, as if the mailbox did not exist.
const (
	ModernDomain       = "office365.test"
	ModernFrontDoor    = "autodiscover-s.office365.test"        // POX: delegated Bearer tokens only
	ModernRedirectHost = "autodiscover-redirect.office365.test" // 443 closed, port 80 redirects
	ModernTenantSuffix = "mail." + ModernDomain                 // tenant routing domains
	// ExchangeOnlineAudience is the resource (aud) of a token Exchange
	// Online accepts: what the scope https://outlook.office365.com/… asks
	// for.
	ExchangeOnlineAudience = "https://outlook.office365.com"
	// ExchangeOnlineChallenge is the Bearer challenge Exchange Online sends
	// (with Basic Realm="", which no longer works).
	ExchangeOnlineChallenge = `Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*", token_types="app_asserted_user_v1 service_asserted_app_v1", authorization_uri="https://` + TokenHost + `/common/oauth2/authorize", error="invalid_token"`
)

// TokenServer returns the estate's Entra ID token endpoint on TokenHost
// (tenant paths under it are all the same tenant), starting it on first
// use. Scenarios register their clients and users with it.
func (e *Estate) TokenServer() (*TokenServer, error) {
	e.mu.Lock()
	ts := e.tokens
	e.mu.Unlock()
	if ts != nil {
		return ts, nil
	}
	ts = &TokenServer{}
	if err := e.HTTPS(TokenHost, ts); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tokens == nil {
		e.tokens = ts
	}
	return e.tokens, nil
}

// modernCloud returns the front door of the estate's modern Exchange
// Online, starting it and its port-80 redirect host on first use.
func (e *Estate) modernCloud() (*Autodiscover, error) {
	e.mu.Lock()
	fd := e.modern
	e.mu.Unlock()
	if fd != nil {
		return fd, nil
	}
	ts, err := e.TokenServer()
	if err != nil {
		return nil, err
	}
	fd = &Autodiscover{
		Tokens:           ts,
		TokenAudience:    ExchangeOnlineAudience,
		RequireDelegated: true,
		Challenges:       []string{ExchangeOnlineChallenge, `Basic Realm=""`},
		Users:            map[string]Reply{},
	}
	cert := WithCert(CertSpec{Names: []string{ModernDomain, "*." + ModernDomain}})
	if err := e.HTTPS(ModernFrontDoor, fd, cert); err != nil {
		return nil, err
	}
	frontURL := "https://" + ModernFrontDoor + "/Autodiscover/Autodiscover.xml"
	if err := e.HTTP(ModernRedirectHost, Redirect(http.StatusFound, frontURL)); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.modern == nil {
		e.modern = fd
	}
	return e.modern, nil
}

// AddExchangeOnline adds user@domain as a cloud mailbox of the modern
// Exchange Online: autodiscover.<domain> is a CNAME to the redirect host,
// whose port 80 sends the client to the front door, which answers
// settings for a delegated token. The user can sign in to the token
// endpoint with password (the password grant); the returned mailbox's
// Username is that user principal name.
func (e *Estate) AddExchangeOnline(domain, user, password string) (Mailbox, error) {
	address := user + "@" + domain
	if err := e.addModernMailbox(address, address, password, displayName(user)); err != nil {
		return Mailbox{}, err
	}
	e.AddCNAME("autodiscover."+domain, ModernRedirectHost)
	return Mailbox{Address: address, Username: address, Password: password, AllowedDomains: []string{ModernDomain}}, nil
}

func (e *Estate) addModernMailbox(address, upn, password, name string) error {
	fd, err := e.modernCloud()
	if err != nil {
		return err
	}
	ts, err := e.TokenServer()
	if err != nil {
		return err
	}
	ts.AddUser(upn, password)
	fd.SetUser(address, Reply{Settings: &Settings{DisplayName: name, Server: "outlook." + ModernDomain, MicrosoftOnline: true}})
	return nil
}

// AddHybridModernAuth builds a hybrid whose on-premises servers run hybrid
// modern authentication, for a mailbox already moved to Exchange Online:
// autodiscover.<domain> (on premises) challenges for Bearer, Negotiate,
// NTLM and Basic, takes the tokens Entra ID issues and answers
// redirectAddr to user@<tenant>.mail.office365.test; that domain's
// autodiscover host leads to the modern Exchange Online, which wants a
// delegated token. The user principal name is user@domain.
func (e *Estate) AddHybridModernAuth(domain, user, password string) (Mailbox, error) {
	address := user + "@" + domain
	tenant := strings.SplitN(domain, ".", 2)[0] + "." + ModernTenantSuffix
	cloudAddress := user + "@" + tenant
	ts, err := e.TokenServer()
	if err != nil {
		return Mailbox{}, err
	}
	onPrem := &Autodiscover{
		Tokens: ts,
		Challenges: []string{
			`Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@lab-tenant", token_types="app_asserted_user_v1 service_asserted_app_v1", authorization_uri="https://` + TokenHost + `/common/oauth2/authorize", issuer_kind="AzureAD"`,
			"Negotiate", "NTLM", `Basic realm="autodiscover.` + domain + `"`,
		},
		Users: map[string]Reply{address: {RedirectAddr: cloudAddress}},
	}
	if err := e.HTTPS("autodiscover."+domain, onPrem); err != nil {
		return Mailbox{}, err
	}
	if err := e.addModernMailbox(cloudAddress, address, password, displayName(user)); err != nil {
		return Mailbox{}, err
	}
	e.AddCNAME("autodiscover."+tenant, ModernRedirectHost)
	return Mailbox{Address: address, Username: address, Password: password, AllowedDomains: []string{ModernDomain}}, nil
}
