package config

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Config is a loaded, validated configuration. Treat it as read-only: it is
// shared by concurrent scrapes.
type Config struct {
	Modules   map[string]*Module `yaml:"modules"`
	Mailboxes []*Mailbox         `yaml:"mailboxes"`

	byName   map[string]*Mailbox
	checksum [32]byte
}

// Module is one way of probing: timeouts, discovery methods, DNS, TLS and
// credentials. After Parse every field holds its effective value (defaults
// filled in, relative paths resolved).
type Module struct {
	// Timeout bounds the whole discovery chain; the HTTP handler further
	// caps it with the scrape timeout Prometheus sends.
	Timeout     Duration       `yaml:"timeout"`
	StepTimeout Duration       `yaml:"step_timeout"`
	Methods     []probe.Method `yaml:"methods"`
	// V2 configures method v2_json. It is set (to its effective value)
	// exactly when Methods includes v2_json, and nil otherwise: the
	// settings would be unused, and a v2 block without v2_json is refused.
	V2                *V2          `yaml:"v2,omitempty"`
	Schema            probe.Schema `yaml:"schema"`
	MaxRedirects      int          `yaml:"max_redirects"`
	CheckAllAddresses bool         `yaml:"check_all_addresses"`
	// MapiHTTP asks for the MAPI/HTTP view as Outlook 2016 and later do
	// (default true); false asks as Outlook 2010. A pointer, so that a
	// configuration built as a value leaves it to the default.
	MapiHTTP *bool `yaml:"mapi_http"`
	// UserAgent is sent with every request; servers branch on it.
	UserAgent string `yaml:"user_agent"`
	// ContinueAfterError tries later candidates after an Autodiscover
	// Error, where Outlook stops.
	ContinueAfterError bool `yaml:"continue_after_error"`
	// MaxBodyBytes caps every response body the probe reads.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxConnectionAttempts and MaxDNSQueries are one probe's budget.
	MaxConnectionAttempts int      `yaml:"max_connection_attempts"`
	MaxDNSQueries         int      `yaml:"max_dns_queries"`
	DNS                   DNS      `yaml:"dns"`
	TLS                   TLS      `yaml:"tls"`
	Auth                  Auth     `yaml:"auth"`
	AllowedDomains        []string `yaml:"allowed_domains,omitempty"`
	// AllowedPorts are the ports besides 443 a server-named URL may use.
	AllowedPorts []int             `yaml:"allowed_ports,omitempty"`
	ConnectTo    map[string]string `yaml:"connect_to,omitempty"`
	// Endpoints are the kinds of URL the answer returns that are checked
	// after the chain; EndpointsScope (set when Endpoints is) selects the
	// external URLs, the internal ones or both.
	Endpoints      []probe.EndpointProtocol `yaml:"endpoints,omitempty"`
	EndpointsScope probe.EndpointScope      `yaml:"endpoints_scope,omitempty"`
	// Federation runs the anonymous GetFederationInformation for the
	// mailbox's domain and checks the WSSecurity endpoint.
	Federation bool `yaml:"federation,omitempty"`
	// LDAP is set exactly when Methods includes scp.
	LDAP *LDAP `yaml:"ldap,omitempty"`

	// Read at load so that building a prober does no I/O, and kept out of
	// the exported fields so that they cannot reach Redacted output. The
	// secrets sit behind a pointer because fmt prints unexported fields
	// without their String method: %v of a Module shows an address.
	rootCAs *x509.CertPool
	secrets *moduleSecrets
}

// moduleSecrets are the effective secrets of a module, inline or read
// from their files.
type moduleSecrets struct {
	password     string
	clientSecret string
	ldapPassword string
	keytab       []byte
}

// V2 configures Autodiscover v2 (method v2_json).
type V2 struct {
	// Hosts are asked in turn: lower-case DNS names, no scheme or port.
	Hosts []string `yaml:"hosts"`
	// Protocols are asked for, each in its canonical spelling ("Ews").
	Protocols []string `yaml:"protocols"`
}

// DNS selects the resolver and address families.
type DNS struct {
	// Server is host:port; empty means the system resolvers.
	Server    string          `yaml:"server,omitempty"`
	IPVersion probe.IPVersion `yaml:"ip_version"`
}

// TLS configures certificate verification.
type TLS struct {
	// CAFile is a PEM bundle that replaces the system roots.
	CAFile             string `yaml:"ca_file,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Auth configures the credentials sent in answer to a 401.
type Auth struct {
	Type probe.AuthType `yaml:"type"`

	// Username, Password and PasswordFile are for types basic and ntlm.
	Username string `yaml:"username,omitempty"`
	// Password is only the inline password; one read from PasswordFile is
	// kept out of exported fields so it cannot reach Redacted output.
	Password     Secret `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`

	// The rest is for type oauth2. Grant is the effective grant
	// (probe.GrantClientCredentials when left out); the password grant
	// also takes Username and Password(File).
	Grant probe.OAuth2Grant `yaml:"grant,omitempty"`

	// TenantID is a lower-case GUID or tenant domain; empty when only
	// TokenURL was given.
	TenantID string `yaml:"tenant_id,omitempty"`
	ClientID string `yaml:"client_id,omitempty"`
	// ClientSecret is only the inline secret, like Password.
	ClientSecret     Secret `yaml:"client_secret,omitempty"`
	ClientSecretFile string `yaml:"client_secret_file,omitempty"`
	// Scopes are the effective scopes: as given, or the grant's default
	// (probe.DefaultOAuth2Scope for client credentials,
	// probe.DefaultDelegatedScopes for the others).
	Scopes []string `yaml:"scope,omitempty"`
	// TokenURL is the effective token endpoint: as given, or built from
	// TenantID with probe.DefaultOAuth2TokenURL.
	TokenURL string `yaml:"token_url,omitempty"`
	// DeviceAuthURL is the effective device authorization endpoint of the
	// refresh-token grant (the login command's), like TokenURL.
	DeviceAuthURL string `yaml:"device_authorization_url,omitempty"`
	// RefreshTokenFile is the resolved path of the refresh-token grant's
	// token file, which the login command writes and every redemption
	// rewrites.
	RefreshTokenFile string `yaml:"refresh_token_file,omitempty"`

	// Realm, KDCs, SPN and KeytabFile are for type kerberos, with
	// Username and either a password or a keytab. Realm is upper-case;
	// KDCs are host:port (port 88 when left out); SPN is the service
	// principal template, probe.DefaultKerberosSPN when left out.
	Realm      string   `yaml:"realm,omitempty"`
	KDCs       []string `yaml:"kdc,omitempty"`
	SPN        string   `yaml:"spn,omitempty"`
	KeytabFile string   `yaml:"keytab_file,omitempty"`
}

// LDAP is the directory method scp reads the Autodiscover SCPs from.
type LDAP struct {
	// URL is ldaps://host[:port] or ldap://host[:port] (StartTLS).
	URL string `yaml:"url"`
	// BindDN is a distinguished name or a user principal name; empty
	// reads anonymously.
	BindDN string `yaml:"bind_dn,omitempty"`
	// Password is only the inline password, like Auth's.
	Password     Secret `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
	// BaseDN is the configuration naming context; empty reads it from the
	// rootDSE.
	BaseDN string `yaml:"base_dn,omitempty"`
	// Site is the Active Directory site the exporter speaks for.
	Site string `yaml:"site,omitempty"`
}

// Mailbox is one configured probe target.
type Mailbox struct {
	// Name is the probe target and the instance label.
	Name string `yaml:"name"`
	// Address is as written in the file.
	Address string            `yaml:"address"`
	Module  string            `yaml:"module"`
	Labels  map[string]string `yaml:"labels,omitempty"`
	// Expect is what the probe result must look like, in its canonical
	// form; nil checks nothing. Treat it as read-only: probes share it.
	Expect *probe.Expectations `yaml:"expect,omitempty"`
	// MinInterval, when set, serves the last result to scrapes that come
	// sooner (an HA pair of Prometheus servers then costs Exchange one
	// chain, not two).
	MinInterval Duration `yaml:"min_interval,omitempty"`

	normalized string
	domain     string
}

// NormalizedAddress is the address with its domain in lower-case A-label
// form, as probe.NormalizeAddress returns it.
func (m *Mailbox) NormalizedAddress() string { return m.normalized }

// Domain is the normalized domain of the address.
func (m *Mailbox) Domain() string { return m.domain }

// Load reads and parses the configuration file at path. Relative paths in
// it are resolved against the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return Parse(data, path, filepath.Dir(path))
}

// Parse parses a configuration. filename is used in error messages only;
// baseDir resolves relative ca_file and password_file paths (empty means the
// working directory). The error, if any, lists every problem found, one
// *Error per line, ordered by line.
func Parse(data []byte, filename, baseDir string) (*Config, error) {
	p := &parser{file: filename, baseDir: baseDir}
	cfg := p.parse(data)
	if err := joinErrors(p.errs); err != nil {
		return nil, err
	}
	cfg.checksum = sha256.Sum256(data)
	return cfg, nil
}

// Mailbox returns the mailbox with the given name.
func (c *Config) Mailbox(name string) (*Mailbox, bool) {
	if c.byName != nil {
		m, ok := c.byName[name]
		return m, ok
	}
	// A Config built by hand rather than by Parse has no index.
	for _, m := range c.Mailboxes {
		if m.Name == name {
			return m, true
		}
	}
	return nil, false
}

// Module returns the module with the given name.
func (c *Config) Module(name string) (*Module, bool) {
	m, ok := c.Modules[name]
	return m, ok
}

// Checksum is the SHA-256 of the file the configuration was parsed from, so
// a reload of an unchanged file can be skipped.
func (c *Config) Checksum() [32]byte { return c.checksum }

// Settings returns the module as probe settings, plain data from which
// probe.NewProber builds the module's prober. Slices are copies, so a
// caller cannot change the shared configuration; the connect_to map is
// shared and read-only (it can hold hundreds of entries, and copying it
// for every probe showed in the memory profile; the probe never writes
// it). The settings carry the module's secrets: never print them.
func (m *Module) Settings() probe.Settings {
	s := probe.Settings{
		Timeout:               time.Duration(m.Timeout),
		Methods:               slices.Clone(m.Methods),
		Schema:                m.Schema,
		MaxRedirects:          m.MaxRedirects,
		StepTimeout:           time.Duration(m.StepTimeout),
		DNSServer:             m.DNS.Server,
		IPVersion:             m.DNS.IPVersion,
		RootCAs:               m.rootCAs,
		InsecureSkipVerify:    m.TLS.InsecureSkipVerify,
		AllowedDomains:        slices.Clone(m.AllowedDomains),
		AllowedPorts:          slices.Clone(m.AllowedPorts),
		ConnectTo:             m.ConnectTo,
		CheckAllAddresses:     m.CheckAllAddresses,
		OmitMapiHTTP:          m.MapiHTTP != nil && !*m.MapiHTTP,
		UserAgent:             m.UserAgent,
		ContinueAfterError:    m.ContinueAfterError,
		MaxBodyBytes:          m.MaxBodyBytes,
		MaxConnectionAttempts: m.MaxConnectionAttempts,
		MaxDNSQueries:         m.MaxDNSQueries,
		V2Hosts:               []string{probe.DefaultV2Host},
		V2Protocols:           slices.Clone(probe.DefaultV2Protocols),
		Auth:                  probe.AuthSettings{Type: m.Auth.Type},
		Endpoints:             slices.Clone(m.Endpoints),
		EndpointsScope:        m.EndpointsScope,
		Federation:            m.Federation,
	}
	if m.LDAP != nil {
		s.LDAP = probe.LDAPSettings{URL: m.LDAP.URL, BindDN: m.LDAP.BindDN, Password: m.secrets.get().ldapPassword, BaseDN: m.LDAP.BaseDN, Site: m.LDAP.Site}
	}
	if m.V2 != nil {
		s.V2Hosts = slices.Clone(m.V2.Hosts)
		s.V2Protocols = slices.Clone(m.V2.Protocols)
	}
	switch m.Auth.Type {
	case probe.AuthBasic, probe.AuthNTLM:
		s.Auth.Username = m.Auth.Username
		s.Auth.Password = m.secrets.get().password
	case probe.AuthKerberos:
		s.Auth.Username = m.Auth.Username
		s.Auth.Password = m.secrets.get().password
		s.Auth.Keytab = m.secrets.get().keytab
		s.Auth.Realm = m.Auth.Realm
		s.Auth.KDCs = slices.Clone(m.Auth.KDCs)
		s.Auth.SPN = m.Auth.SPN
	case probe.AuthOAuth2:
		a := m.Auth
		s.Auth.Grant = a.Grant
		s.Auth.TokenURL = a.TokenURL
		s.Auth.DeviceAuthURL = a.DeviceAuthURL
		s.Auth.ClientID = a.ClientID
		s.Auth.ClientSecret = m.secrets.get().clientSecret
		s.Auth.Scopes = slices.Clone(a.Scopes)
		s.Auth.RefreshTokenFile = a.RefreshTokenFile
		if a.Grant == probe.GrantPassword {
			s.Auth.Username = a.Username
			s.Auth.Password = m.secrets.get().password
		}
	}
	return s
}

func (s *moduleSecrets) get() moduleSecrets {
	if s == nil {
		return moduleSecrets{}
	}
	return *s
}
