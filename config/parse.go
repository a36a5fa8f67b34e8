package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

func (p *parser) parse(data []byte) *Config {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.addf(&yaml.Node{Line: 1}, "", "empty configuration: a top-level \"modules\" mapping is required")
		} else {
			p.addYAMLError(err)
		}
		return nil
	}
	// A second document would be silently ignored by a plain decode, and
	// an operator who concatenated two files deserves to know.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			p.addYAMLError(err)
		} else {
			p.addf(&extra, "", "more than one YAML document: the configuration must be a single document")
		}
		return nil
	}
	var root *yaml.Node
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if isNull(root) {
		p.addf(&doc, "", "empty configuration: a top-level \"modules\" mapping is required")
		return nil
	}
	if r := deref(root); r.Kind != yaml.MappingNode {
		p.addf(root, "", "the configuration must be a mapping with \"modules\" and \"mailboxes\", not a %s", kindName(r))
		return nil
	}
	top, ok := p.object(root, "", "modules", "mailboxes")
	if !ok {
		return nil
	}
	cfg := &Config{Modules: map[string]*Module{}, Mailboxes: []*Mailbox{}}
	if e, ok := top["modules"]; ok {
		p.modules(cfg, e.value)
	} else {
		p.addf(root, "modules", "required: define at least one module")
	}
	if e, ok := top["mailboxes"]; ok {
		p.mailboxes(cfg, e.value)
	}
	return cfg
}

func (p *parser) modules(cfg *Config, n *yaml.Node) {
	es, ok := p.entries(n, "modules")
	if !ok {
		return
	}
	if len(es) == 0 {
		p.addf(n, "modules", "required: define at least one module")
	}
	for _, e := range es {
		path := child("modules", e.name)
		// Module names show up in URLs and logs; keeping them to the
		// mailbox name alphabet avoids quoting surprises there.
		if !validName(e.name) {
			p.addf(e.key, path, "invalid module name %q: use 1 to 64 of A-Z a-z 0-9 . _ -", e.name)
		}
		cfg.Modules[e.name] = p.module(e.value, path)
	}
}

func (p *parser) module(n *yaml.Node, path string) *Module {
	m := &Module{
		Timeout:      DefaultTimeout,
		StepTimeout:  DefaultStepTimeout,
		Methods:      slices.Clone(probe.DefaultMethods),
		Schema:       probe.SchemaOutlook,
		MaxRedirects: DefaultMaxRedirects,
		DNS:          DNS{IPVersion: probe.IPAny},
		Auth:         Auth{Type: AuthNone},
	}
	fs, ok := p.object(n, path, "timeout", "step_timeout", "methods", "schema", "max_redirects",
		"dns", "tls", "auth", "allowed_domains", "connect_to")
	if !ok {
		return m
	}
	timeoutOK := true
	if e, ok := fs["timeout"]; ok {
		m.Timeout, timeoutOK = p.positiveDuration(e.value, child(path, "timeout"))
	}
	if e, ok := fs["step_timeout"]; ok {
		f := child(path, "step_timeout")
		if d, ok := p.positiveDuration(e.value, f); ok {
			m.StepTimeout = d
			if timeoutOK && d > m.Timeout {
				p.addf(e.value, f, "must not exceed timeout (%s)", m.Timeout)
			}
		}
	} else if timeoutOK && m.StepTimeout > m.Timeout {
		// The default must not turn a short but valid timeout into an error.
		m.StepTimeout = m.Timeout
	}
	if e, ok := fs["methods"]; ok {
		m.Methods = p.methods(e.value, child(path, "methods"))
	}
	if e, ok := fs["schema"]; ok {
		f := child(path, "schema")
		if s, ok := p.str(e.value, f); ok {
			switch probe.Schema(s) {
			case probe.SchemaOutlook, probe.SchemaMobileSync:
				m.Schema = probe.Schema(s)
			default:
				p.addf(e.value, f, "unknown schema %q (valid: %s, %s)", s, probe.SchemaOutlook, probe.SchemaMobileSync)
			}
		}
	}
	if e, ok := fs["max_redirects"]; ok {
		f := child(path, "max_redirects")
		if v, ok := p.integer(e.value, f); ok {
			if v < 1 || v > MaxRedirectsLimit {
				p.addf(e.value, f, "must be between 1 and %d, not %d", MaxRedirectsLimit, v)
			} else {
				m.MaxRedirects = v
			}
		}
	}
	if e, ok := fs["dns"]; ok {
		p.dns(m, e.value, child(path, "dns"))
	}
	if e, ok := fs["tls"]; ok {
		p.tls(m, e.value, child(path, "tls"))
	}
	if e, ok := fs["auth"]; ok {
		p.auth(m, e.value, child(path, "auth"))
	}
	if e, ok := fs["allowed_domains"]; ok {
		m.AllowedDomains = p.allowedDomains(e.value, child(path, "allowed_domains"))
	}
	if e, ok := fs["connect_to"]; ok {
		m.ConnectTo = p.connectTo(e.value, child(path, "connect_to"))
	}
	return m
}

func (p *parser) methods(n *yaml.Node, path string) []probe.Method {
	items, ok := p.list(n, path)
	if !ok {
		return slices.Clone(probe.DefaultMethods)
	}
	if len(items) == 0 {
		p.addf(n, path, "must list at least one method (leave the field out for the default %s)", methodNames(probe.DefaultMethods))
		return slices.Clone(probe.DefaultMethods)
	}
	var out []probe.Method
	seen := make(map[probe.Method]int)
	for i, it := range items {
		f := index(path, i)
		s, ok := p.str(it, f)
		if !ok {
			continue
		}
		meth := probe.Method(s)
		switch {
		case meth == probe.MethodRedirect:
			p.addf(it, f, "%q is not a discovery method: it names URLs reached through redirects (valid: %s)", s, methodNames(probe.DefaultMethods))
		case !slices.Contains(probe.DefaultMethods, meth):
			p.addf(it, f, "unknown method %q (valid: %s)", s, methodNames(probe.DefaultMethods))
		case seen[meth] != 0:
			p.addf(it, f, "duplicate method %q (first at line %d)", s, seen[meth])
		default:
			seen[meth] = line(it)
			out = append(out, meth)
		}
	}
	return out
}

func methodNames(ms []probe.Method) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}

func (p *parser) dns(m *Module, n *yaml.Node, path string) {
	fs, ok := p.object(n, path, "server", "ip_version")
	if !ok {
		return
	}
	if e, ok := fs["server"]; ok {
		f := child(path, "server")
		if s, ok := p.str(e.value, f); ok {
			if hp, err := canonicalDNSServer(s); err != nil {
				p.addErr(e.value, f, err)
			} else {
				m.DNS.Server = hp
			}
		}
	}
	if e, ok := fs["ip_version"]; ok {
		f := child(path, "ip_version")
		if s, ok := p.str(e.value, f); ok {
			switch v := probe.IPVersion(s); v {
			case probe.IPAny, probe.IPv4, probe.IPv6:
				m.DNS.IPVersion = v
			default:
				p.addf(e.value, f, "unknown ip_version %q (valid: %s, %s, %s)", s, probe.IPAny, probe.IPv4, probe.IPv6)
			}
		}
	}
}

func (p *parser) tls(m *Module, n *yaml.Node, path string) {
	fs, ok := p.object(n, path, "ca_file", "insecure_skip_verify")
	if !ok {
		return
	}
	if e, ok := fs["ca_file"]; ok {
		f := child(path, "ca_file")
		if s, ok := p.str(e.value, f); ok {
			if s == "" {
				p.addf(e.value, f, "must not be empty (leave the field out to use the system roots)")
			} else {
				m.TLS.CAFile = p.resolve(s)
				pool, err := loadCAFile(m.TLS.CAFile)
				if err != nil {
					p.addErr(e.value, f, err)
				}
				m.rootCAs = pool
			}
		}
	}
	if e, ok := fs["insecure_skip_verify"]; ok {
		m.TLS.InsecureSkipVerify, _ = p.boolean(e.value, child(path, "insecure_skip_verify"))
	}
}

// resolve makes a path from the file relative to the file's directory, so
// the configuration means the same whatever the exporter's working
// directory.
func (p *parser) resolve(path string) string {
	if filepath.IsAbs(path) || p.baseDir == "" {
		return path
	}
	return filepath.Join(p.baseDir, path)
}

func (p *parser) auth(m *Module, n *yaml.Node, path string) {
	fs, ok := p.object(n, path, "type", "username", "password", "password_file")
	if !ok {
		return
	}
	if e, ok := fs["type"]; ok {
		f := child(path, "type")
		if s, ok := p.str(e.value, f); ok {
			switch s {
			case AuthNone, AuthBasic:
				m.Auth.Type = s
			default:
				p.addf(e.value, f, "unknown auth type %q (valid: %s, %s)", s, AuthNone, AuthBasic)
				return
			}
		} else {
			return
		}
	}
	var username, password, passwordFile string
	var userOK, pwOK, fileOK bool
	if e, ok := fs["username"]; ok {
		username, userOK = p.str(e.value, child(path, "username"))
	}
	if e, ok := fs["password"]; ok {
		// Never echo the value: the scalar helper's messages only name the
		// node kind.
		password, pwOK = p.str(e.value, child(path, "password"))
	}
	if e, ok := fs["password_file"]; ok {
		passwordFile, fileOK = p.str(e.value, child(path, "password_file"))
	}

	if m.Auth.Type == AuthNone {
		// Credentials with no type are almost always a forgotten
		// "type: basic"; ignoring them would make the probe fail in a
		// confusing way later.
		for _, k := range []string{"username", "password", "password_file"} {
			if e, ok := fs[k]; ok {
				p.addf(e.key, child(path, k), "only valid with type: %s", AuthBasic)
			}
		}
		return
	}

	m.Auth.Username = username
	if userOK {
		if username == "" {
			p.addf(fs["username"].value, child(path, "username"), "must not be empty")
		} else if strings.Contains(username, ":") {
			// RFC 7617: the user-id ends at the first colon.
			p.addf(fs["username"].value, child(path, "username"), "must not contain ':' with basic authentication")
		}
	} else if _, given := fs["username"]; !given {
		p.addf(n, child(path, "username"), "required with type: %s", AuthBasic)
	}

	hasPW, hasFile := pwOK && password != "", fileOK && passwordFile != ""
	switch {
	case hasPW && hasFile:
		p.addf(fs["password_file"].key, child(path, "password_file"), "set either password or password_file, not both")
		return
	case !hasPW && !hasFile:
		if _, given := fs["password"]; given && !pwOK {
			return // already reported
		}
		if _, given := fs["password_file"]; given && !fileOK {
			return
		}
		p.addf(n, child(path, "password"), "type: %s needs a non-empty password or password_file", AuthBasic)
		return
	case hasPW:
		m.Auth.Password = Secret(password)
	case hasFile:
		m.Auth.PasswordFile = p.resolve(passwordFile)
		pw, err := readPasswordFile(m.Auth.PasswordFile)
		if err != nil {
			p.addErr(fs["password_file"].value, child(path, "password_file"), err)
			return
		}
		password = pw
	}
	if userOK && username != "" && !strings.Contains(username, ":") {
		m.basic = &probe.Basic{Username: username, Password: password}
	}
}

func (p *parser) allowedDomains(n *yaml.Node, path string) []string {
	items, ok := p.list(n, path)
	if !ok {
		return nil
	}
	var out []string
	seen := make(map[string]int)
	for i, it := range items {
		f := index(path, i)
		s, ok := p.str(it, f)
		if !ok {
			continue
		}
		d, err := canonicalDomain(s)
		if err != nil {
			p.addErr(it, f, err)
			continue
		}
		if first, dup := seen[d]; dup {
			p.addf(it, f, "duplicate domain %q (first at line %d)", d, first)
			continue
		}
		seen[d] = line(it)
		out = append(out, d)
	}
	return out
}

func (p *parser) connectTo(n *yaml.Node, path string) map[string]string {
	es, ok := p.entries(n, path)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(es))
	seen := make(map[string]int)
	for _, e := range es {
		f := child(path, e.name)
		from, err := canonicalHostPort(e.name)
		if err != nil {
			p.addErr(e.key, f, fmt.Errorf("invalid key: %w", err))
			continue
		}
		v, ok := p.str(e.value, f)
		if !ok {
			continue
		}
		to, err := canonicalHostPort(v)
		if err != nil {
			p.addErr(e.value, f, err)
			continue
		}
		// "Autodiscover.Test:443" and "autodiscover.test:443" are the same
		// endpoint; two entries for it would make the winner arbitrary.
		if first, dup := seen[from]; dup {
			p.addf(e.key, f, "duplicate entry for %s (first at line %d)", from, first)
			continue
		}
		seen[from] = line(e.key)
		out[from] = to
	}
	return out
}

func (p *parser) mailboxes(cfg *Config, n *yaml.Node) {
	items, ok := p.list(n, "mailboxes")
	if !ok {
		return
	}
	cfg.byName = make(map[string]*Mailbox, len(items))
	firstLine := make(map[string]int)
	for i, it := range items {
		path := index("mailboxes", i)
		fs, ok := p.object(it, path, "name", "address", "module", "labels")
		if !ok {
			continue
		}
		mb := &Mailbox{}
		if e, ok := fs["name"]; ok {
			f := child(path, "name")
			if s, ok := p.str(e.value, f); ok {
				mb.Name = s
				switch first, dup := firstLine[s]; {
				case !validName(s):
					p.addf(e.value, f, "invalid mailbox name %q: use 1 to 64 of A-Z a-z 0-9 . _ -", s)
				case dup:
					p.addf(e.value, f, "duplicate mailbox name %q (first at line %d)", s, first)
				default:
					firstLine[s] = line(e.value)
					cfg.byName[s] = mb
				}
			}
		} else {
			p.addf(it, child(path, "name"), "required")
		}
		if e, ok := fs["address"]; ok {
			f := child(path, "address")
			if s, ok := p.str(e.value, f); ok {
				mb.Address = s
				norm, domain, err := probe.NormalizeAddress(s)
				if err != nil {
					p.addErr(e.value, f, err)
				}
				mb.normalized, mb.domain = norm, domain
			}
		} else {
			p.addf(it, child(path, "address"), "required")
		}
		if e, ok := fs["module"]; ok {
			f := child(path, "module")
			if s, ok := p.str(e.value, f); ok {
				mb.Module = s
				if _, exists := cfg.Modules[s]; !exists {
					p.addf(e.value, f, "unknown module %q%s", s, knownModules(cfg))
				}
			}
		} else {
			p.addf(it, child(path, "module"), "required")
		}
		if e, ok := fs["labels"]; ok {
			mb.Labels = p.labels(e.value, child(path, "labels"))
		}
		cfg.Mailboxes = append(cfg.Mailboxes, mb)
	}
}

func knownModules(cfg *Config) string {
	if len(cfg.Modules) == 0 {
		return ""
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range cfg.Modules {
			if !yield(k) {
				return
			}
		}
	})
	return " (defined: " + strings.Join(names, ", ") + ")"
}

func (p *parser) labels(n *yaml.Node, path string) map[string]string {
	es, ok := p.entries(n, path)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(es))
	for _, e := range es {
		f := child(path, e.name)
		if err := checkLabelName(e.name); err != nil {
			p.addErr(e.key, f, err)
			continue
		}
		if isNull(e.value) {
			out[e.name] = ""
			continue
		}
		if v, ok := p.str(e.value, f); ok {
			out[e.name] = v
		}
	}
	return out
}
