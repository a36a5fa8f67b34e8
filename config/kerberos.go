package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"go.yaml.in/yaml/v3"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// maxKeytabFile caps a keytab: one holds a few keys per principal.
const maxKeytabFile = 1 << 20

// kerberosAuth reads type kerberos: the user, its realm, a password or a
// keytab (never both), the KDCs and the SPN template.
func (p *parser) kerberosAuth(m *Module, n *yaml.Node, fs map[string]entry, path string) {
	need := "type: " + string(probe.AuthKerberos)
	m.Auth.Username, _ = p.canonField(fs, path, "username", func(s string) (string, error) {
		switch {
		case s == "":
			return "", errors.New("must not be empty")
		case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
			return "", fmt.Errorf("%q must not contain white space", s)
		case strings.ContainsAny(s, "@\\"):
			return "", fmt.Errorf("%q: give the user name alone (the sAMAccountName); the realm goes in realm", s)
		}
		return s, nil
	})
	if _, given := fs["username"]; !given {
		p.addf(n, child(path, "username"), "required with %s", need)
	}
	m.Auth.Realm, _ = p.canonField(fs, path, "realm", canonicalRealm)
	if _, given := fs["realm"]; !given {
		p.addf(n, child(path, "realm"), "required with %s (the Active Directory domain in capitals, e.g. CORP.CONTOSO.COM)", need)
	}
	if e, ok := fs["kdc"]; ok {
		m.Auth.KDCs = p.kdcs(e.value, child(path, "kdc"))
	}
	m.Auth.SPN, _ = p.canonField(fs, path, "spn", func(s string) (string, error) {
		service, host, ok := strings.Cut(s, "/")
		if !ok || service == "" || host == "" || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return "", fmt.Errorf("%q is not a service principal name (HTTP/host, where {host} stands for the host authenticated to)", s)
		}
		return s, nil
	})

	inline, file, password, pwOK := p.secret(n, fs, path, "password", "password_file", "password file", "")
	m.Auth.Password, m.Auth.PasswordFile = inline, file
	var keytab []byte
	p.strField(fs, path, "keytab_file", func(s string, node *yaml.Node, f string) {
		if s == "" {
			p.addf(node, f, "must not be empty")
			return
		}
		m.Auth.KeytabFile = p.resolve(s)
		data, err := readFile(m.Auth.KeytabFile, "keytab file", maxKeytabFile)
		switch {
		case err != nil:
			p.addErr(node, f, err)
		default:
			if err := checkKeytab(data, m.Auth.Username, m.Auth.Realm); err != nil {
				p.addf(node, f, "keytab file %q %s", m.Auth.KeytabFile, err)
				return
			}
			keytab = data
		}
	})
	_, hasKeytab := fs["keytab_file"]
	hasPassword := password != ""
	switch {
	case hasKeytab && hasPassword:
		p.addf(fs["keytab_file"].key, child(path, "keytab_file"), "set either a password (password or password_file) or keytab_file, not both")
	case !hasKeytab && !hasPassword && pwOK:
		p.addf(n, child(path, "password"), "%s needs a password (password or password_file) or a keytab_file", need)
	case pwOK && (hasPassword || keytab != nil):
		p.secrets(m).password = password
		p.secrets(m).keytab = keytab
	}
}

// canonicalRealm checks a Kerberos realm and returns it in capitals, as
// Active Directory spells it.
func canonicalRealm(s string) (string, error) {
	name, err := canonicalDomain(strings.ToLower(s))
	if err != nil {
		return "", fmt.Errorf("realm %q: %w", s, err)
	}
	return strings.ToUpper(name), nil
}

// kdcs reads kdc: one host[:port] or a list of them, port 88 by default.
func (p *parser) kdcs(n *yaml.Node, path string) []string {
	canon := func(s string) (string, error) {
		host, port := s, "88"
		if h, pt, err := net.SplitHostPort(s); err == nil {
			host, port = h, pt
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q has no valid port", s)
		}
		if net.ParseIP(host) == nil {
			h, err := canonicalHostName(host)
			if err != nil {
				return "", err
			}
			host = h
		}
		return net.JoinHostPort(host, port), nil
	}
	if d := deref(n); d != nil && d.Kind == yaml.SequenceNode {
		items, _ := p.list(n, path)
		if len(items) == 0 {
			p.addf(n, path, "must list at least one KDC (leave the field out to find them in DNS)")
			return nil
		}
		return p.uniqueItems(items, path, "KDC", canon)
	}
	s, ok := p.str(n, path)
	if !ok {
		return nil
	}
	v, err := canon(s)
	if err != nil {
		p.addErr(n, path, err)
		return nil
	}
	return []string{v}
}

// checkKeytab reads the whole keytab and finds a key for user@realm: a
// keytab of another principal fails every probe, and is a mistake to
// report at load. Its words never quote the file: a keytab holds keys.
func checkKeytab(data []byte, user, realm string) error {
	kt := keytab.New()
	if err := kt.Unmarshal(data); err != nil {
		return errors.New("is not a Kerberos keytab (ktutil or ktpass writes one)")
	}
	if user == "" || realm == "" {
		return nil // reported on their own fields
	}
	for _, e := range kt.Entries {
		if strings.EqualFold(e.Principal.Realm, realm) && strings.Join(e.Principal.Components, "/") == user {
			return nil
		}
	}
	return fmt.Errorf("holds no key for %s@%s", user, realm)
}
