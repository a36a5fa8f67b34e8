package config

import (
	"bytes"
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Redacted renders the effective configuration (defaults filled in) as YAML
// with every secret replaced by "<secret>".
func (c *Config) Redacted() ([]byte, error) { return encode(c) }

// Marshal renders a configuration built as values — by the demo, the tests
// and the benchmarks — as a file Parse reads back to the same
// configuration: fields left at their zero value get the defaults Parse
// would give them. Secrets must come from files: an inline secret would be
// written as "<secret>", so it is an error.
func Marshal(c *Config) ([]byte, error) {
	out := &Config{Modules: make(map[string]*Module, len(c.Modules)), Mailboxes: c.Mailboxes}
	for name, m := range c.Modules {
		if m.Auth.Password != "" || m.Auth.ClientSecret != "" {
			return nil, fmt.Errorf("module %s: an inline secret cannot be marshalled; name a password_file or client_secret_file", name)
		}
		out.Modules[name] = withDefaults(m)
	}
	if out.Mailboxes == nil {
		out.Mailboxes = []*Mailbox{}
	}
	return encode(out)
}

// withDefaults returns a copy of m with every zero field set as Parse
// sets a field the file leaves out.
func withDefaults(m *Module) *Module {
	d := defaultModule()
	c := *m
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.StepTimeout == 0 {
		c.StepTimeout = min(d.StepTimeout, c.Timeout)
	}
	if len(c.Methods) == 0 {
		c.Methods = d.Methods
	}
	if c.V2 == nil && slices.Contains(c.Methods, probe.MethodV2JSON) {
		c.V2 = &V2{Hosts: []string{probe.DefaultV2Host}, Protocols: slices.Clone(probe.DefaultV2Protocols)}
	}
	if c.MapiHTTP == nil {
		c.MapiHTTP = d.MapiHTTP
	}
	if c.UserAgent == "" {
		c.UserAgent = d.UserAgent
	}
	if c.Schema == "" {
		c.Schema = d.Schema
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = d.MaxRedirects
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.MaxConnectionAttempts == 0 {
		c.MaxConnectionAttempts = d.MaxConnectionAttempts
	}
	if c.MaxDNSQueries == 0 {
		c.MaxDNSQueries = d.MaxDNSQueries
	}
	if c.DNS.IPVersion == "" {
		c.DNS.IPVersion = d.DNS.IPVersion
	}
	if c.Auth.Type == "" {
		c.Auth.Type = d.Auth.Type
	}
	if c.Auth.Type == probe.AuthOAuth2 {
		if c.Auth.Grant == "" {
			c.Auth.Grant = probe.GrantClientCredentials
		}
		if len(c.Auth.Scopes) == 0 {
			c.Auth.Scopes = []string{probe.DefaultOAuth2Scope}
			if c.Auth.Grant != probe.GrantClientCredentials {
				c.Auth.Scopes = slices.Clone(probe.DefaultDelegatedScopes)
			}
		}
	}
	return &c
}

func encode(c *Config) ([]byte, error) {
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
