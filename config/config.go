package config

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"maps"
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
	// MaxRedirectsLimit caps max_redirects: a longer chain is a loop or an
	// attack, not a deployment.
	MaxRedirectsLimit = 50
)

// Values of auth.type.
const (
	AuthNone  = "none"
	AuthBasic = "basic"
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
	Timeout        Duration          `yaml:"timeout"`
	StepTimeout    Duration          `yaml:"step_timeout"`
	Methods        []probe.Method    `yaml:"methods"`
	Schema         probe.Schema      `yaml:"schema"`
	MaxRedirects   int               `yaml:"max_redirects"`
	DNS            DNS               `yaml:"dns"`
	TLS            TLS               `yaml:"tls"`
	Auth           Auth              `yaml:"auth"`
	AllowedDomains []string          `yaml:"allowed_domains,omitempty"`
	ConnectTo      map[string]string `yaml:"connect_to,omitempty"`

	// Built at load so that Settings does no I/O. basic is a pointer so
	// that %v of a Module prints an address, not the password inside.
	rootCAs *x509.CertPool
	basic   *probe.Basic
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
	Type     string `yaml:"type"`
	Username string `yaml:"username,omitempty"`
	// Password is only the inline password; one read from PasswordFile is
	// kept out of exported fields so it cannot reach Redacted output.
	Password     Secret `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
}

// Mailbox is one configured probe target.
type Mailbox struct {
	// Name is the probe target and the instance label.
	Name string `yaml:"name"`
	// Address is as written in the file.
	Address string            `yaml:"address"`
	Module  string            `yaml:"module"`
	Labels  map[string]string `yaml:"labels,omitempty"`

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

// Settings returns the probe settings of the module. Slices and maps are
// copies, so a probe cannot change the shared configuration.
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
		ConnectTo:          maps.Clone(m.ConnectTo),
	}
	// Only assign a non-nil pointer: a nil *probe.Basic in the interface
	// would read as "credentials configured".
	if m.basic != nil {
		b := *m.basic
		s.Auth = &b
	}
	return s
}
