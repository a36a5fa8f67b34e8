package config

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Defaults for fields a module leaves out.
const (
	DefaultTimeout      = Duration(30 * time.Second)
	DefaultStepTimeout  = Duration(5 * time.Second)
	DefaultMaxRedirects = 10
	// DefaultMaxBodyBytes caps a response body: a real Autodiscover answer
	// is a few kilobytes.
	DefaultMaxBodyBytes = 1 << 20
	MinBodyBytes        = 4 << 10
	MaxBodyBytesLimit   = 64 << 20
	// MaxRedirectsLimit caps max_redirects: a longer chain is a loop or an
	// attack, not a deployment.
	MaxRedirectsLimit = 50
)

// Values of auth.type.
const (
	AuthNone   = "none"
	AuthBasic  = "basic"
	AuthNTLM   = "ntlm"
	AuthOAuth2 = "oauth2"
)

// Limits of a mailbox's expect block.
const (
	// MaxCertMinDays caps expect.cert_min_days at ten years: no
	// certificate is issued for longer, so a larger value always fails.
	MaxCertMinDays = 3650
)

// DefaultOAuth2TokenURL is the Microsoft identity platform token endpoint;
// %s is the tenant ID or domain.
const DefaultOAuth2TokenURL = "https://login.microsoftonline.com/%s/oauth2/v2.0/token"

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
	// MaxBodyBytes caps every response body the probe reads.
	MaxBodyBytes   int64             `yaml:"max_body_bytes"`
	DNS            DNS               `yaml:"dns"`
	TLS            TLS               `yaml:"tls"`
	Auth           Auth              `yaml:"auth"`
	AllowedDomains []string          `yaml:"allowed_domains,omitempty"`
	ConnectTo      map[string]string `yaml:"connect_to,omitempty"`

	// Built at load so that Settings does no I/O. basic and ntlm are
	// pointers so that %v of a Module prints an address, not the password
	// inside. oauth2 is shared by every Settings call: it caches the access
	// token for the life of the module.
	rootCAs *x509.CertPool
	basic   *probe.Basic
	ntlm    *probe.NTLM
	oauth2  *probe.OAuth2
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
	Type string `yaml:"type"`

	// Username, Password and PasswordFile are for types basic and ntlm.
	Username string `yaml:"username,omitempty"`
	// Password is only the inline password; one read from PasswordFile is
	// kept out of exported fields so it cannot reach Redacted output.
	Password     Secret `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`

	// The rest is for type oauth2 (client-credentials flow).

	// TenantID is a lower-case GUID or tenant domain; empty when only
	// TokenURL was given.
	TenantID string `yaml:"tenant_id,omitempty"`
	ClientID string `yaml:"client_id,omitempty"`
	// ClientSecret is only the inline secret, like Password.
	ClientSecret     Secret `yaml:"client_secret,omitempty"`
	ClientSecretFile string `yaml:"client_secret_file,omitempty"`
	// Scope is the effective scope (DefaultOAuth2Scope when left out).
	Scope string `yaml:"scope,omitempty"`
	// TokenURL is the effective token endpoint: as given, or built from
	// TenantID with DefaultOAuth2TokenURL.
	TokenURL string `yaml:"token_url,omitempty"`
}

// Mailbox is one configured probe target.
type Mailbox struct {
	// Name is the probe target and the instance label.
	Name string `yaml:"name"`
	// Address is as written in the file.
	Address string            `yaml:"address"`
	Module  string            `yaml:"module"`
	Labels  map[string]string `yaml:"labels,omitempty"`
	// Expect is what the probe result must look like; nil checks nothing.
	Expect *Expect `yaml:"expect,omitempty"`
	// MinInterval, when set, serves the last result to scrapes that come
	// sooner (an HA pair of Prometheus servers then costs Exchange one
	// chain, not two).
	MinInterval Duration `yaml:"min_interval,omitempty"`

	normalized string
	domain     string
}

// Expect lists a mailbox's expectations, in their canonical form. Zero
// fields are not checked.
type Expect struct {
	// EndpointHost is the lower-case host of the Autodiscover URL that
	// must answer.
	EndpointHost string `yaml:"endpoint_host,omitempty"`
	// EWSURLHost is the lower-case host the returned EWS URL must name.
	EWSURLHost string `yaml:"ews_url_host,omitempty"`
	// MaxRedirects is a pointer because 0 ("no redirect at all") is a
	// meaningful expectation.
	MaxRedirects *int `yaml:"max_redirects,omitempty"`
	// Protocols must all be among the returned Protocol types, in their
	// canonical spelling (EXCH, EXPR, WEB, EXHTTP, mapiHttp, MobileSync).
	Protocols   []string `yaml:"protocols,omitempty"`
	CertMinDays int      `yaml:"cert_min_days,omitempty"`
}

// Expectations returns the mailbox's expect block for probe.Settings.Expect,
// or nil when it has none. The result is a copy the caller may change.
func (m *Mailbox) Expectations() *probe.Expectations {
	if m.Expect == nil {
		return nil
	}
	e := &probe.Expectations{
		EndpointHost: m.Expect.EndpointHost,
		EWSURLHost:   m.Expect.EWSURLHost,
		Protocols:    slices.Clone(m.Expect.Protocols),
		CertMinDays:  m.Expect.CertMinDays,
	}
	if m.Expect.MaxRedirects != nil {
		n := *m.Expect.MaxRedirects
		e.MaxRedirects = &n
	}
	return e
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

// Redacted renders the effective configuration (defaults filled in) as YAML
// with every secret replaced by "<secret>".
func (c *Config) Redacted() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("rendering configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("rendering configuration: %w", err)
	}
	return buf.Bytes(), nil
}

// Settings returns the probe settings of the module. Slices are copies, so
// a probe cannot change the shared configuration; the connect_to map is
// shared and read-only (it can hold hundreds of entries, and copying it
// for every one of a thousand concurrent probes showed in the memory
// profile; the probe never writes it). An oauth2
// authenticator is the exception: every call returns the same one, so its
// token cache lives as long as the module.
//
// Settings carries no expectations: they belong to a mailbox, see
// Mailbox.Expectations.
func (m *Module) Settings() probe.Settings {
	s := probe.Settings{
		Methods:            slices.Clone(m.Methods),
		Schema:             m.Schema,
		MaxRedirects:       m.MaxRedirects,
		StepTimeout:        time.Duration(m.StepTimeout),
		DNSServer:          m.DNS.Server,
		IPVersion:          m.DNS.IPVersion,
		RootCAs:            m.rootCAs,
		InsecureSkipVerify: m.TLS.InsecureSkipVerify,
		AllowedDomains:     slices.Clone(m.AllowedDomains),
		ConnectTo:          m.ConnectTo,
		CheckAllAddresses:  m.CheckAllAddresses,
		MaxBodyBytes:       m.MaxBodyBytes,
		V2Hosts:            []string{probe.DefaultV2Host},
		V2Protocols:        slices.Clone(probe.DefaultV2Protocols),
	}
	if m.V2 != nil {
		s.V2Hosts = slices.Clone(m.V2.Hosts)
		s.V2Protocols = slices.Clone(m.V2.Protocols)
	}
	// Only assign non-nil pointers: a nil *probe.Basic in the interface
	// would read as "credentials configured".
	switch {
	case m.basic != nil:
		b := *m.basic
		s.Auth = &b
	case m.ntlm != nil:
		n := *m.ntlm
		s.Auth = &n
	case m.oauth2 != nil:
		s.Auth = m.oauth2
	}
	return s
}
