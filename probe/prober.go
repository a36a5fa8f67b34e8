package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Prober runs the chain for the mailboxes of one module. It is built once
// per configuration load: the resolver (with /etc/resolv.conf read then),
// the authenticator with its token cache, the credential guard and the
// clock live as long as the module; Run takes only what belongs to one
// mailbox. Safe for concurrent use.
type Prober struct {
	s      Settings
	dns    *resolver
	auth   Authenticator
	guard  CredentialGuard
	now    func() time.Time
	tokens *TokenStore
	// credentialKey names the account for the guard.
	credentialKey string
}

// Env is what a Prober shares with the rest of the process.
type Env struct {
	// Guard withholds credentials after the server refused them (account
	// lockout protection); nil withholds nothing.
	Guard CredentialGuard
	// Now is the clock for certificate dates; nil means time.Now.
	Now func() time.Time
	// Tokens keeps refresh tokens across configuration loads; nil gives
	// the prober a store of its own.
	Tokens *TokenStore
}

// Target is the per-mailbox part of a probe.
type Target struct {
	// Address is the mailbox's e-mail address.
	Address string
	// Expect lists what the result must look like; nil checks nothing.
	Expect *Expectations
}

// NewProber checks s and builds what its probes share. It fails only on
// settings that cannot work (no resolver, an unknown auth type).
func NewProber(s Settings, env Env) (*Prober, error) {
	// The prober keeps its own copies: a caller changing its slices later
	// must not change probes in flight.
	s.Methods = slices.Clone(s.Methods)
	s.AllowedDomains = slices.Clone(s.AllowedDomains)
	s.AllowedPorts = slices.Clone(s.AllowedPorts)
	s.V2Hosts = slices.Clone(s.V2Hosts)
	s.V2Protocols = slices.Clone(s.V2Protocols)
	s.Auth.Scopes = slices.Clone(s.Auth.Scopes)
	s.Auth.KDCs = slices.Clone(s.Auth.KDCs)
	if s.Auth.Grant == "" {
		s.Auth.Grant = GrantClientCredentials
	}
	p := &Prober{s: s, guard: env.Guard, now: env.Now, tokens: env.Tokens}
	if p.now == nil {
		p.now = time.Now
	}
	if p.tokens == nil {
		p.tokens = NewTokenStore()
	}
	dns, err := newResolver(s.DNSServer, s.stepTimeout())
	if err != nil {
		return nil, fmt.Errorf("probe settings: %w", err)
	}
	p.dns = dns
	if p.auth, err = p.newAuthenticator(); err != nil {
		return nil, fmt.Errorf("probe settings: %w", err)
	}
	p.credentialKey = credentialKey(s.Auth)
	return p, nil
}

// CredentialKey names the module's account: the auth type and the
// identity (the user name, or the client ID at its token endpoint), never
// the secret. Every module with the same account has the same key, so
// they share one back-off; "" when the module has no credentials.
func (p *Prober) CredentialKey() string { return p.credentialKey }

// appOnly reports a module whose tokens stand for the app, not a user.
func (p *Prober) appOnly() bool {
	return p.s.Auth.Type == AuthOAuth2 && p.s.Auth.Grant == GrantClientCredentials
}

func credentialKey(a AuthSettings) string {
	switch a.Type {
	case AuthBasic, AuthNTLM:
		return string(a.Type) + ":" + strings.ToLower(a.Username)
	case AuthKerberos:
		return string(a.Type) + ":" + strings.ToLower(a.Username) + "@" + strings.ToUpper(a.Realm)
	case AuthOAuth2:
		switch a.Grant {
		case GrantPassword:
			return string(a.Type) + ":" + strings.ToLower(a.Username) + "@" + a.TokenURL
		case GrantRefreshToken:
			return string(a.Type) + ":" + a.RefreshTokenFile
		}
		return string(a.Type) + ":" + a.ClientID + "@" + a.TokenURL
	}
	return ""
}

// Close releases what the prober holds beyond memory: a Kerberos
// client's tickets and their renewal. A reload closes the probers it
// replaces.
func (p *Prober) Close() {
	if k, ok := p.auth.(*Kerberos); ok {
		k.Close()
	}
}

// Timeout is the module's bound on one chain.
func (p *Prober) Timeout() time.Duration { return p.s.timeout() }

func (p *Prober) newAuthenticator() (Authenticator, error) {
	a := p.s.Auth
	switch a.Type {
	case "", AuthNone:
		return nil, nil
	case AuthBasic:
		return &Basic{Username: a.Username, Password: a.Password}, nil
	case AuthNTLM:
		return &NTLM{Username: a.Username, Password: a.Password, Workstation: a.Workstation}, nil
	case AuthKerberos:
		return newKerberos(kerberosConfig{
			Username: a.Username,
			Realm:    a.Realm,
			Password: a.Password,
			SPN:      a.SPN,
			Keytab:   a.Keytab,
			KDCs:     p.kdcResolver(a.KDCs, a.Realm),
		})
	case AuthOAuth2:
		return newOAuth2(oauth2Config{
			Grant:            a.Grant,
			TokenURL:         a.TokenURL,
			ClientID:         a.ClientID,
			ClientSecret:     a.ClientSecret,
			Scopes:           a.Scopes,
			Username:         a.Username,
			Password:         a.Password,
			RefreshTokenFile: a.RefreshTokenFile,
			Store:            p.tokens,
			Client:           p.sideClient(),
		}), nil
	}
	return nil, fmt.Errorf("unknown auth type %q", a.Type)
}

// sideTimeout bounds one request of a side channel.
const sideTimeout = 10 * time.Second

// sideClient is the HTTP client of side channels such as an OAuth token
// endpoint: reached the way the module reaches Exchange (its DNS server,
// its connect_to overrides, its CA bundle), never through a proxy, and
// never following a redirect, because the secret is in the body.
func (p *Prober) sideClient() *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: p.s.RootCAs, MinVersion: tls.VersionTLS12}
	transport.Proxy = nil
	transport.DialContext = p.dial
	return &http.Client{
		Transport:     transport,
		Timeout:       sideTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// dial connects to host:port through the module's resolver and connect_to
// overrides, for side channels such as an OAuth token endpoint.
func (p *Prober) dial(ctx context.Context, _, addr string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", portText, err)
	}
	addrs := []string{host}
	if _, byName := overrideFor(p.s.ConnectTo, host, port); !byName && net.ParseIP(host) == nil {
		lk, serr := p.dns.lookupHost(ctx, nil, host, p.s.ipVersion())
		if serr != nil {
			return nil, fmt.Errorf("resolving %s: %s", host, serr.Detail)
		}
		addrs = lk.strings()
	}
	conn, attempts := dialEach(ctx, nil, addrs, port, p.s.ConnectTo, p.s.stepTimeout())
	if conn == nil {
		if n := len(attempts); n > 0 && attempts[n-1].err != nil {
			return nil, fmt.Errorf("connecting to %s: %s", addr, attempts[n-1].err.Detail)
		}
		return nil, fmt.Errorf("connecting to %s: no address", addr)
	}
	return conn, nil
}
