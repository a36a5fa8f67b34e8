package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// ldap reads a module's ldap block, the directory of method scp.
func (p *parser) ldap(m *Module, n *yaml.Node, path string) {
	fs, ok := p.object(n, path, "url", "bind_dn", "password", "password_file", "base_dn", "site")
	if !ok {
		return
	}
	l := &LDAP{}
	m.LDAP = l
	p.requiredField(fs, n, path, "url", func(s string, node *yaml.Node, f string) {
		u, err := canonicalLDAPURL(s)
		if err != nil {
			p.addErr(node, f, err)
			return
		}
		l.URL = u
	})
	printable := func(what string) func(string) (string, error) {
		return func(s string) (string, error) {
			if strings.TrimSpace(s) == "" || strings.ContainsFunc(s, unicode.IsControl) || len(s) > 1024 {
				return "", fmt.Errorf("%s must be 1 to 1024 printable characters", what)
			}
			return s, nil
		}
	}
	l.BindDN, _ = p.canonField(fs, path, "bind_dn", printable("a bind DN or user principal name"))
	l.BaseDN, _ = p.canonField(fs, path, "base_dn", printable("a base DN"))
	l.Site, _ = p.canonField(fs, path, "site", printable("a site name"))
	need := ""
	if l.BindDN != "" {
		need = "bind_dn"
	}
	inline, file, password, ok := p.secret(n, fs, path, "password", "password_file", "password file", need)
	l.Password, l.PasswordFile = inline, file
	switch {
	case !ok:
	case l.BindDN == "" && password != "":
		p.addf(n, child(path, "bind_dn"), "a password without bind_dn: name the account it belongs to")
	default:
		p.secrets(m).ldapPassword = password
	}
}

// canonicalLDAPURL accepts ldaps://host[:port] and ldap://host[:port]
// (which the probe secures with StartTLS) and nothing after the host: the
// base DN has a field of its own.
func canonicalLDAPURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %w", s, err)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "ldap" && scheme != "ldaps":
		return "", fmt.Errorf("%q: use ldaps://host or ldap://host (StartTLS)", s)
	case u.User != nil:
		return "", errors.New("the URL must not carry user info: use bind_dn and password_file")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return "", fmt.Errorf("%q: give scheme, host and port only (the base DN goes in base_dn)", s)
	case u.Hostname() == "":
		return "", fmt.Errorf("%q names no host", s)
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) == nil {
		h, err := canonicalHostName(host)
		if err != nil {
			return "", err
		}
		host = h
	}
	port := u.Port()
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q has no valid port", s)
		}
		return scheme + "://" + net.JoinHostPort(host, port), nil
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, nil
}
