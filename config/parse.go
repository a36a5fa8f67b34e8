package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

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

// moduleFields are the keys a module may have.
var moduleFields = []string{"timeout", "step_timeout", "methods", "v2", "schema", "max_redirects",
	"check_all_addresses", "dns", "tls", "auth", "allowed_domains", "connect_to", "max_body_bytes",
	"max_connection_attempts", "max_dns_queries", "allowed_ports", "mapi_http", "user_agent", "continue_after_error",
	"endpoints", "endpoints_scope", "federation", "ldap"}

// defaultModule is a module that sets nothing: every field holds the
// probe's default.
func defaultModule() *Module {
	return &Module{
		Timeout:               Duration(probe.DefaultTimeout),
		StepTimeout:           Duration(probe.DefaultStepTimeout),
		Methods:               slices.Clone(probe.DefaultMethods),
		Schema:                probe.SchemaOutlook,
		MaxRedirects:          probe.DefaultMaxRedirects,
		MaxBodyBytes:          probe.DefaultMaxBodyBytes,
		MaxConnectionAttempts: probe.DefaultMaxConnectionAttempts,
		MaxDNSQueries:         probe.DefaultMaxDNSQueries,
		DNS:                   DNS{IPVersion: probe.IPAny},
		Auth:                  Auth{Type: probe.AuthNone},
		MapiHTTP:              ptr(true),
		UserAgent:             probe.DefaultUserAgent,
	}
}

func (p *parser) module(n *yaml.Node, path string) *Module {
	m := defaultModule()
	fs, ok := p.object(n, path, moduleFields...)
	if !ok {
		return m
	}
	p.timeouts(m, fs, path)
	p.discovery(m, fs, path)
	p.limits(m, fs, path)
	for key, field := range map[string]*bool{"check_all_addresses": &m.CheckAllAddresses, "mapi_http": m.MapiHTTP, "continue_after_error": &m.ContinueAfterError, "federation": &m.Federation} {
		if e, ok := fs[key]; ok {
			*field, _ = p.boolean(e.value, child(path, key))
		}
	}
	p.strField(fs, path, "user_agent", func(s string, n *yaml.Node, f string) {
		if s == "" || strings.ContainsFunc(s, unicode.IsControl) || len(s) > 512 {
			p.addf(n, f, "must be 1 to 512 printable characters (leave the field out for the exporter's own)")
			return
		}
		m.UserAgent = s
	})
	if e, ok := fs["dns"]; ok {
		p.dns(m, e.value, child(path, "dns"))
	}
	if e, ok := fs["tls"]; ok {
		p.tls(m, e.value, child(path, "tls"))
	}
	if e, ok := fs["auth"]; ok {
		p.auth(m, e.value, child(path, "auth"))
	}
	p.scp(m, fs, path)
	if e, ok := fs["allowed_domains"]; ok {
		m.AllowedDomains = p.allowedDomains(e.value, child(path, "allowed_domains"))
	}
	if e, ok := fs["connect_to"]; ok {
		m.ConnectTo = p.connectTo(e.value, child(path, "connect_to"))
	}
	if e, ok := fs["allowed_ports"]; ok {
		m.AllowedPorts = p.ports(e.value, child(path, "allowed_ports"))
	}
	p.endpoints(m, fs, path)
	return m
}

// scp reads the ldap block, which method scp needs and nothing else uses.
func (p *parser) scp(m *Module, fs map[string]entry, path string) {
	e, given := fs["ldap"]
	listed := slices.Contains(m.Methods, probe.MethodSCP)
	switch {
	case given && !listed:
		p.addf(e.key, child(path, "ldap"), "ldap settings given but methods does not include %s", probe.MethodSCP)
	case given:
		p.ldap(m, e.value, child(path, "ldap"))
	case listed:
		p.addf(fs["methods"].value, child(path, "methods"), "method %s needs an ldap block (url, and bind_dn with password_file for Active Directory)", probe.MethodSCP)
	}
}

// endpoints reads the endpoint kinds to check and their scope, which
// means nothing without them.
func (p *parser) endpoints(m *Module, fs map[string]entry, path string) {
	if e, ok := fs["endpoints"]; ok {
		for _, v := range p.nameList(e.value, child(path, "endpoints"), "endpoint", "to check none", enumName("endpoint", endpointNames())) {
			m.Endpoints = append(m.Endpoints, probe.EndpointProtocol(v))
		}
	}
	e, ok := fs["endpoints_scope"]
	switch {
	case ok && len(m.Endpoints) == 0:
		if _, listed := fs["endpoints"]; !listed {
			p.addf(e.key, child(path, "endpoints_scope"), "endpoints_scope given but the module lists no endpoints")
		}
	case ok:
		p.strField(fs, path, "endpoints_scope", func(s string, n *yaml.Node, f string) {
			if !slices.Contains(probe.EndpointScopes, probe.EndpointScope(s)) {
				p.addf(n, f, "unknown endpoints_scope %q (valid: %s)", s, joinNames(probe.EndpointScopes))
				return
			}
			m.EndpointsScope = probe.EndpointScope(s)
		})
	}
	if len(m.Endpoints) > 0 && m.EndpointsScope == "" {
		m.EndpointsScope = probe.ScopeExternal
	}
}

func endpointNames() []string { return joinable(probe.EndpointProtocols) }

func joinable[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func joinNames[T ~string](vs []T) string { return strings.Join(joinable(vs), ", ") }

// ports reads a list of distinct TCP ports other than 443 (which is
// always allowed).
func (p *parser) ports(n *yaml.Node, path string) []int {
	items, ok := p.list(n, path)
	if !ok {
		return nil
	}
	var out []int
	for i, it := range items {
		f := index(path, i)
		v, ok := p.intBetween(it, f, 1, 65535)
		switch {
		case !ok:
		case v == 443:
			p.addf(it, f, "443 is always allowed; list only the other ports")
		case slices.Contains(out, v):
			p.addf(it, f, "duplicate port %d", v)
		default:
			out = append(out, v)
		}
	}
	return out
}

// timeouts reads timeout and step_timeout, which must fit each other.
func (p *parser) timeouts(m *Module, fs map[string]entry, path string) {
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
}

// discovery reads methods, the v2 block that belongs to v2_json, and the
// schema.
func (p *parser) discovery(m *Module, fs map[string]entry, path string) {
	methodsOK := true
	if e, ok := fs["methods"]; ok {
		before := len(p.errs)
		m.Methods = p.methods(e.value, child(path, "methods"))
		methodsOK = len(p.errs) == before
	}
	if slices.Contains(m.Methods, probe.MethodV2JSON) {
		m.V2 = &V2{Hosts: []string{probe.DefaultV2Host}, Protocols: slices.Clone(probe.DefaultV2Protocols)}
	}
	if e, ok := fs["v2"]; ok {
		f := child(path, "v2")
		v2 := p.v2(e.value, f)
		switch {
		case m.V2 != nil:
			m.V2 = v2
		case methodsOK:
			// When methods itself is broken, v2_json may be the entry that
			// was misspelt: one error is enough.
			p.addf(e.key, f, "v2 settings given but methods does not include %s", probe.MethodV2JSON)
		}
	}
	p.strField(fs, path, "schema", func(s string, n *yaml.Node, f string) {
		switch probe.Schema(s) {
		case probe.SchemaOutlook, probe.SchemaMobileSync:
			m.Schema = probe.Schema(s)
		default:
			p.addf(n, f, "unknown schema %q (valid: %s, %s)", s, probe.SchemaOutlook, probe.SchemaMobileSync)
		}
	})
}

// limits reads max_redirects, max_body_bytes and the probe's budget.
func (p *parser) limits(m *Module, fs map[string]entry, path string) {
	if e, ok := fs["max_redirects"]; ok {
		if v, ok := p.intBetween(e.value, child(path, "max_redirects"), 1, probe.MaxRedirectsLimit); ok {
			m.MaxRedirects = v
		}
	}
	if e, ok := fs["max_body_bytes"]; ok {
		if v, ok := p.intBetween(e.value, child(path, "max_body_bytes"), probe.MinBodyBytes, probe.MaxBodyBytesLimit); ok {
			m.MaxBodyBytes = int64(v)
		}
	}
	for key, field := range map[string]*int{"max_connection_attempts": &m.MaxConnectionAttempts, "max_dns_queries": &m.MaxDNSQueries} {
		if e, ok := fs[key]; ok {
			if v, ok := p.intBetween(e.value, child(path, key), 1, probe.MaxBudgetLimit); ok {
				*field = v
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

// intBetween reads an integer that must lie in [lo, hi].
func (p *parser) intBetween(n *yaml.Node, path string, lo, hi int) (int, bool) {
	v, ok := p.integer(n, path)
	if !ok {
		return 0, false
	}
	if v < lo || v > hi {
		p.addf(n, path, "must be between %d and %d, not %d", lo, hi, v)
		return 0, false
	}
	return v, true
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
			p.addf(it, f, "%q is not a discovery method: it names URLs reached through redirects (valid: %s)", s, methodNames(validMethods))
		case !slices.Contains(validMethods, meth):
			p.addf(it, f, "unknown method %q (valid: %s)", s, methodNames(validMethods))
		case seen[meth] != 0:
			p.addf(it, f, "duplicate method %q (first at line %d)", s, seen[meth])
		default:
			seen[meth] = line(it)
			out = append(out, meth)
		}
	}
	return out
}

// validMethods are the values methods accepts.
var validMethods = probe.SelectableMethods

// v2 reads a v2 block; fields left out keep their defaults.
func (p *parser) v2(n *yaml.Node, path string) *V2 {
	v := &V2{Hosts: []string{probe.DefaultV2Host}, Protocols: slices.Clone(probe.DefaultV2Protocols)}
	fs, ok := p.object(n, path, "hosts", "protocols")
	if !ok {
		return v
	}
	if e, ok := fs["hosts"]; ok {
		f := child(path, "hosts")
		if hosts := p.nameList(e.value, f, "host", "for "+probe.DefaultV2Host, canonicalHostName); hosts != nil {
			v.Hosts = hosts
		}
	}
	if e, ok := fs["protocols"]; ok {
		f := child(path, "protocols")
		if protos := p.nameList(e.value, f, "protocol", "for "+strings.Join(probe.DefaultV2Protocols, ", "), enumName("v2 protocol", v2ProtocolNames)); protos != nil {
			v.Protocols = protos
		}
	}
	return v
}

// nameList reads a non-empty list of strings, each normalised by canon,
// without duplicates (compared after normalisation). It returns nil when
// the list is missing, empty or not a list; invalid items are reported and
// left out. ifLeftOut says what leaving the field out means, for the
// message about an empty list.
func (p *parser) nameList(n *yaml.Node, path, what, ifLeftOut string, canon func(string) (string, error)) []string {
	items, ok := p.list(n, path)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.addf(n, path, "must list at least one %s (leave the field out %s)", what, ifLeftOut)
		return nil
	}
	return p.uniqueItems(items, path, what, canon)
}

// uniqueItems canonicalises each item of a list and reports bad and
// duplicate ones (by canonical form) at their own lines.
func (p *parser) uniqueItems(items []*yaml.Node, path, what string, canon func(string) (string, error)) []string {
	var out []string
	seen := make(map[string]int)
	for i, it := range items {
		f := index(path, i)
		s, ok := p.str(it, f)
		if !ok {
			continue
		}
		v, err := canon(s)
		if err != nil {
			p.addErr(it, f, err)
			continue
		}
		if first, dup := seen[v]; dup {
			p.addf(it, f, "duplicate %s %q (first at line %d)", what, v, first)
			continue
		}
		seen[v] = line(it)
		out = append(out, v)
	}
	return out
}

// enumName returns a canon function for nameList that accepts the names
// of a fixed vocabulary in any case and returns their canonical spelling.
func enumName(what string, names []string) func(string) (string, error) {
	return func(s string) (string, error) {
		if v, ok := canonicalName(s, names); ok {
			return v, nil
		}
		return "", fmt.Errorf("unknown %s %q (valid: %s)", what, s, strings.Join(names, ", "))
	}
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
	p.strField(fs, path, "server", func(s string, n *yaml.Node, f string) {
		if hp, err := canonicalDNSServer(s); err != nil {
			p.addErr(n, f, err)
		} else {
			m.DNS.Server = hp
		}
	})
	p.strField(fs, path, "ip_version", func(s string, n *yaml.Node, f string) {
		switch v := probe.IPVersion(s); v {
		case probe.IPAny, probe.IPv4, probe.IPv6:
			m.DNS.IPVersion = v
		default:
			p.addf(n, f, "unknown ip_version %q (valid: %s, %s, %s)", s, probe.IPAny, probe.IPv4, probe.IPv6)
		}
	})
}

// requiredField is strField for a field that must be given: its absence
// is reported at parent.
func (p *parser) requiredField(fs map[string]entry, parent *yaml.Node, path, key string, use func(s string, n *yaml.Node, field string)) {
	if _, ok := fs[key]; !ok {
		p.addf(parent, child(path, key), "required")
		return
	}
	p.strField(fs, path, key, use)
}

// canonField reads the string fs[key] and checks it with canon, which may
// normalise it. It returns "" when the field is missing or invalid, and
// false when it was given but is invalid (reported here).
func (p *parser) canonField(fs map[string]entry, path, key string, canon func(string) (string, error)) (string, bool) {
	e, given := fs[key]
	if !given {
		return "", true
	}
	f := child(path, key)
	s, ok := p.str(e.value, f)
	if !ok {
		return "", false
	}
	v, err := canon(s)
	if err != nil {
		p.addErr(e.value, f, err)
		return "", false
	}
	return v, true
}

// strField hands the string value of fs[key] to use, with its node and
// field path for messages; a missing field or one that is no string
// (already reported) is skipped.
func (p *parser) strField(fs map[string]entry, path, key string, use func(s string, n *yaml.Node, field string)) {
	e, ok := fs[key]
	if !ok {
		return
	}
	f := child(path, key)
	if s, ok := p.str(e.value, f); ok {
		use(s, e.value, f)
	}
}

func (p *parser) tls(m *Module, n *yaml.Node, path string) {
	fs, ok := p.object(n, path, "ca_file", "insecure_skip_verify")
	if !ok {
		return
	}
	p.strField(fs, path, "ca_file", func(s string, n *yaml.Node, f string) {
		if s == "" {
			p.addf(n, f, "must not be empty (leave the field out to use the system roots)")
			return
		}
		m.TLS.CAFile = p.resolve(s)
		pool, err := loadCAFile(m.TLS.CAFile)
		if err != nil {
			p.addErr(n, f, err)
		}
		m.rootCAs = pool
	})
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

func (p *parser) allowedDomains(n *yaml.Node, path string) []string {
	items, ok := p.list(n, path)
	if !ok {
		return nil
	}
	return p.uniqueItems(items, path, "domain", canonicalDomain)
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
		fs, ok := p.object(it, path, "name", "address", "module", "labels", "expect", "min_interval")
		if !ok {
			continue
		}
		mb := &Mailbox{}
		p.requiredField(fs, it, path, "name", func(s string, n *yaml.Node, f string) {
			mb.Name = s
			switch first, dup := firstLine[s]; {
			case !validName(s):
				p.addf(n, f, "invalid mailbox name %q: use 1 to 64 of A-Z a-z 0-9 . _ -", s)
			case dup:
				p.addf(n, f, "duplicate mailbox name %q (first at line %d)", s, first)
			default:
				firstLine[s] = line(n)
				cfg.byName[s] = mb
			}
		})
		p.requiredField(fs, it, path, "address", func(s string, n *yaml.Node, f string) {
			mb.Address = s
			norm, domain, err := probe.NormalizeAddress(s)
			if err != nil {
				p.addErr(n, f, err)
			}
			mb.normalized, mb.domain = norm, domain
		})
		p.requiredField(fs, it, path, "module", func(s string, n *yaml.Node, f string) {
			mb.Module = s
			if _, exists := cfg.Modules[s]; !exists {
				p.addf(n, f, "unknown module %q%s", s, knownModules(cfg))
			}
		})
		if e, ok := fs["labels"]; ok {
			mb.Labels = p.labels(e.value, child(path, "labels"))
		}
		if e, ok := fs["min_interval"]; ok {
			mb.MinInterval, _ = p.positiveDuration(e.value, child(path, "min_interval"))
		}
		if e, ok := fs["expect"]; ok {
			mb.Expect = p.expect(e.value, child(path, "expect"))
			if m := cfg.Modules[mb.Module]; mb.Expect != nil && mb.Expect.Endpoints && m != nil && len(m.Endpoints) == 0 {
				p.addf(keyNode(e.value, probe.ExpectEndpoints), child(child(path, "expect"), probe.ExpectEndpoints), "module %q lists no endpoints to check", mb.Module)
			}
			if m := cfg.Modules[mb.Module]; mb.Expect != nil && len(mb.Expect.SCPHosts) > 0 && m != nil && m.LDAP == nil {
				p.addf(keyNode(e.value, probe.ExpectSCPHosts), child(child(path, "expect"), probe.ExpectSCPHosts), "module %q does not run the SCP lookup (add %s to its methods)", mb.Module, probe.MethodSCP)
			}
			if m := cfg.Modules[mb.Module]; mb.Expect != nil && mb.Expect.FederationApplicationURI != "" && m != nil && !m.Federation {
				p.addf(keyNode(e.value, probe.ExpectFederationAppURI), child(child(path, "expect"), probe.ExpectFederationAppURI), "module %q does not run the federation check (set federation: true)", mb.Module)
			}
		}
		cfg.Mailboxes = append(cfg.Mailboxes, mb)
	}
}

var expectFields = probe.ExpectationNames

// expect reads a mailbox's expect block. An empty block is an error rather
// than a silent "expect nothing": it is most likely a mis-indented one.
func (p *parser) expect(n *yaml.Node, path string) *probe.Expectations {
	before := len(p.errs)
	fs, ok := p.object(n, path, expectFields...)
	if !ok {
		return nil
	}
	if len(fs) == 0 {
		if len(p.errs) > before {
			return nil // an unknown field, already reported, is the cause
		}
		p.addf(n, path, "must set at least one of %s (leave the field out to check nothing)", strings.Join(expectFields, ", "))
		return nil
	}
	x := &probe.Expectations{}
	host := func(key string) string {
		h, _ := p.canonField(fs, path, key, canonicalHostName)
		return h
	}
	x.EndpointHost = host(probe.ExpectEndpointHost)
	x.EWSURLHost = host(probe.ExpectEWSURLHost)
	x.SMTPAddress, _ = p.canonField(fs, path, probe.ExpectSMTPAddress, func(s string) (string, error) {
		norm, _, err := probe.NormalizeAddress(s)
		return norm, err
	})
	if e, ok := fs[probe.ExpectMaxRedirects]; ok {
		if v, ok := p.intBetween(e.value, child(path, probe.ExpectMaxRedirects), 0, probe.MaxRedirectsLimit); ok {
			x.MaxRedirects = &v
		}
	}
	if e, ok := fs[probe.ExpectProtocols]; ok {
		x.Protocols = p.nameList(e.value, child(path, probe.ExpectProtocols), "protocol", "to check none", enumName("protocol", probe.ExpectationProtocols))
	}
	if e, ok := fs[probe.ExpectEndpoints]; ok {
		x.Endpoints, _ = p.boolean(e.value, child(path, probe.ExpectEndpoints))
	}
	x.FederationApplicationURI, _ = p.canonField(fs, path, probe.ExpectFederationAppURI, canonicalApplicationURI)
	if e, ok := fs[probe.ExpectSCPHosts]; ok {
		x.SCPHosts = p.nameList(e.value, child(path, probe.ExpectSCPHosts), "host", "to check none", canonicalHostName)
	}
	if e, ok := fs[probe.ExpectCertMinDays]; ok {
		if v, ok := p.intBetween(e.value, child(path, probe.ExpectCertMinDays), 1, probe.MaxCertMinDays); ok {
			x.CertMinDays = v
		}
	}
	return x
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

// keyNode is the key node of field in mapping n, or n when it has none.
func keyNode(n *yaml.Node, field string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == field {
			return n.Content[i]
		}
	}
	return n
}
