package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Fields of auth that belong to one group of types or grants.
var (
	passwordFields = []string{"username", "password", "password_file"}
	oauth2Fields   = []string{"grant", "tenant_id", "client_id", "client_secret", "client_secret_file", "scope", "token_url", "device_authorization_url", "refresh_token_file"}
	// Of kerberos's, those no other type has.
	kerberosFields = []string{"realm", "kdc", "spn", "keytab_file"}
	// Of oauth2Fields, those that belong to one grant only.
	clientSecretFields = []string{"client_secret", "client_secret_file"}
	refreshTokenFields = []string{"device_authorization_url", "refresh_token_file"}
)

const passwordTypes = string(probe.AuthBasic) + " or " + string(probe.AuthNTLM)

// auth reads the auth block into m; the secrets it names are read now,
// so that building the module's prober does no I/O.
func (p *parser) auth(m *Module, n *yaml.Node, path string) {
	fs, ok := p.object(n, path, slices.Concat([]string{"type"}, passwordFields, oauth2Fields, kerberosFields)...)
	if !ok {
		return
	}
	if e, ok := fs["type"]; ok {
		f := child(path, "type")
		s, ok := p.str(e.value, f)
		if !ok {
			return
		}
		if !slices.Contains(probe.AuthTypes, probe.AuthType(s)) {
			p.addf(e.value, f, "unknown auth type %q (valid: %s, %s, %s, %s, %s)", s, probe.AuthNone, probe.AuthBasic, probe.AuthNTLM, probe.AuthOAuth2, probe.AuthKerberos)
			return
		}
		m.Auth.Type = probe.AuthType(s)
	}
	if m.Auth.Type != probe.AuthKerberos {
		p.misplaced(fs, path, kerberosFields, "type: "+string(probe.AuthKerberos))
	}
	switch m.Auth.Type {
	case probe.AuthNone:
		p.misplaced(fs, path, passwordFields, "type: "+passwordTypes)
		p.misplaced(fs, path, oauth2Fields, "type: "+string(probe.AuthOAuth2))
	case probe.AuthBasic, probe.AuthNTLM:
		p.misplaced(fs, path, oauth2Fields, "type: "+string(probe.AuthOAuth2))
		p.passwordAuth(m, n, fs, path)
	case probe.AuthKerberos:
		p.misplaced(fs, path, oauth2Fields, "type: "+string(probe.AuthOAuth2))
		p.kerberosAuth(m, n, fs, path)
	default: // probe.AuthOAuth2
		p.oauth2Auth(m, n, fs, path)
	}
}

// misplaced reports the given fields present in fs: credentials of
// another type or grant (or of none) are almost always a forgotten or
// wrong "type:", and ignoring them would make the probe fail in a
// confusing way later.
func (p *parser) misplaced(fs map[string]entry, path string, fields []string, validWith string) {
	for _, k := range fields {
		if e, ok := fs[k]; ok {
			p.addf(e.key, child(path, k), "only valid with %s", validWith)
		}
	}
}

// passwordAuth reads the username and password of types basic and ntlm
// and of the oauth2 password grant.
func (p *parser) passwordAuth(m *Module, n *yaml.Node, fs map[string]entry, path string) {
	need := "type: " + string(m.Auth.Type)
	if m.Auth.Type == probe.AuthOAuth2 {
		need = "grant: " + string(probe.GrantPassword)
	}
	username, userOK := p.canonField(fs, path, "username", func(s string) (string, error) {
		switch {
		case s == "":
			return "", errors.New("must not be empty")
		case m.Auth.Type == probe.AuthBasic && strings.Contains(s, ":"):
			// RFC 7617: the user-id ends at the first colon.
			return "", errors.New("must not contain ':' with basic authentication")
		case m.Auth.Type == probe.AuthNTLM:
			return s, checkNTLMUser(s)
		case m.Auth.Type == probe.AuthOAuth2:
			return s, checkUPN(s)
		}
		return s, nil
	})
	m.Auth.Username = username
	if _, given := fs["username"]; !given {
		p.addf(n, child(path, "username"), "required with %s", need)
		userOK = false
	}

	inline, file, password, ok := p.secret(n, fs, path, "password", "password_file", "password file", need)
	m.Auth.Password, m.Auth.PasswordFile = inline, file
	if ok && userOK {
		p.secrets(m).password = password
	}
}

// secrets returns m's secrets, creating them.
func (p *parser) secrets(m *Module) *moduleSecrets {
	if m.secrets == nil {
		m.secrets = &moduleSecrets{}
	}
	return m.secrets
}

// secret reads a pair of fields of which exactly one must give a non-empty
// secret: inline in inlineKey or read from the file named in fileKey. It
// returns what goes into the exported fields (the inline secret, the
// resolved file path) and the secret itself; ok is false when a problem
// was reported. what names the file in messages ("password file"); need
// names what requires the secret ("type: basic"), or is empty when the
// secret is optional.
func (p *parser) secret(n *yaml.Node, fs map[string]entry, path, inlineKey, fileKey, what, need string) (inline Secret, file, value string, ok bool) {
	var s, fileName string
	var sOK, fileOK bool
	if e, given := fs[inlineKey]; given {
		// Never echo the value: the scalar helper's messages only name
		// the node kind.
		s, sOK = p.str(e.value, child(path, inlineKey))
	}
	if e, given := fs[fileKey]; given {
		fileName, fileOK = p.str(e.value, child(path, fileKey))
	}
	hasInline, hasFile := sOK && s != "", fileOK && fileName != ""
	switch {
	case hasInline && hasFile:
		p.addf(fs[fileKey].key, child(path, fileKey), "set either %s or %s, not both", inlineKey, fileKey)
		return "", "", "", false
	case hasInline:
		return Secret(s), "", s, true
	case hasFile:
		file = p.resolve(fileName)
		v, err := readSecretFile(file, what)
		if err != nil {
			p.addErr(fs[fileKey].value, child(path, fileKey), err)
			return "", file, "", false
		}
		return "", file, v, true
	}
	_, inlineGiven := fs[inlineKey]
	_, fileGiven := fs[fileKey]
	switch {
	case inlineGiven && !sOK, fileGiven && !fileOK:
		return "", "", "", false // already reported
	case need == "" && !inlineGiven && !fileGiven:
		return "", "", "", true
	case need == "":
		p.addf(n, child(path, inlineKey), "must not be empty (leave %s and %s out when there is none)", inlineKey, fileKey)
		return "", "", "", false
	}
	p.addf(n, child(path, inlineKey), "%s needs a non-empty %s or %s", need, inlineKey, fileKey)
	return "", "", "", false
}

// oauth2Auth reads the settings of type oauth2 for its grant.
func (p *parser) oauth2Auth(m *Module, n *yaml.Node, fs map[string]entry, path string) {
	m.Auth.Grant = probe.GrantClientCredentials
	if g, ok := p.canonField(fs, path, "grant", enumName("grant", grantNames())); ok && g != "" {
		m.Auth.Grant = probe.OAuth2Grant(g)
	} else if !ok {
		return // the rest depends on it
	}
	grant := m.Auth.Grant
	ok := p.oauth2Endpoints(m, n, fs, path)
	m.Auth.ClientID, ok = p.clientID(n, fs, path, ok)
	m.Auth.Scopes = p.scopes(fs, path, grant)

	withGrant := func(g probe.OAuth2Grant) string { return "grant: " + string(g) }
	switch grant {
	case probe.GrantClientCredentials:
		p.misplaced(fs, path, passwordFields, "type: "+passwordTypes+", or grant: "+string(probe.GrantPassword))
		p.misplaced(fs, path, refreshTokenFields, withGrant(probe.GrantRefreshToken))
		p.clientSecret(m, n, fs, path, "type: "+string(probe.AuthOAuth2)+" with grant: "+string(grant), ok)
	case probe.GrantPassword:
		p.misplaced(fs, path, refreshTokenFields, withGrant(probe.GrantRefreshToken))
		p.passwordAuth(m, n, fs, path)
		// A confidential client adds its secret; a public one has none.
		p.clientSecret(m, n, fs, path, "", ok)
	case probe.GrantRefreshToken:
		p.misplaced(fs, path, passwordFields, withGrant(probe.GrantPassword))
		p.misplaced(fs, path, clientSecretFields, withGrant(probe.GrantClientCredentials)+" or "+withGrant(probe.GrantPassword)+" (the device sign-in needs a public client, which has no secret)")
		p.refreshTokenFile(m, n, fs, path)
	}
}

func grantNames() []string {
	names := make([]string, len(probe.OAuth2Grants))
	for i, g := range probe.OAuth2Grants {
		names[i] = string(g)
	}
	return names
}

// oauth2Endpoints reads tenant_id, token_url and device_authorization_url
// and derives the endpoints the file leaves out from the tenant.
func (p *parser) oauth2Endpoints(m *Module, n *yaml.Node, fs map[string]entry, path string) bool {
	grant := m.Auth.Grant
	ok := true
	field := func(key string, check func(string) (string, error)) string {
		v, valid := p.canonField(fs, path, key, check)
		ok = ok && valid
		return v
	}
	m.Auth.TokenURL = field("token_url", func(s string) (string, error) { return s, checkEndpointURL(s, grant) })
	m.Auth.TenantID = field("tenant_id", func(s string) (string, error) { return canonicalTenant(s, grant) })
	_, hasTenant := fs["tenant_id"]
	_, hasTokenURL := fs["token_url"]
	if !hasTenant && !hasTokenURL {
		p.addf(n, child(path, "tenant_id"), "required with type: %s (or give token_url)", probe.AuthOAuth2)
		ok = false
	}
	if m.Auth.TokenURL == "" && m.Auth.TenantID != "" {
		m.Auth.TokenURL = fmt.Sprintf(probe.DefaultOAuth2TokenURL, m.Auth.TenantID)
	}
	if grant != probe.GrantRefreshToken {
		return ok
	}
	m.Auth.DeviceAuthURL = field("device_authorization_url", func(s string) (string, error) { return s, checkEndpointURL(s, grant) })
	_, hasDeviceURL := fs["device_authorization_url"]
	switch {
	case hasDeviceURL:
	case m.Auth.TenantID != "":
		m.Auth.DeviceAuthURL = fmt.Sprintf(probe.DefaultOAuth2DeviceAuthURL, m.Auth.TenantID)
	case hasTokenURL:
		p.addf(n, child(path, "device_authorization_url"), "required with grant: %s and a token_url (or give tenant_id)", grant)
		ok = false
	}
	return ok
}

func (p *parser) clientID(n *yaml.Node, fs map[string]entry, path string, ok bool) (string, bool) {
	id, valid := p.canonField(fs, path, "client_id", func(s string) (string, error) {
		switch {
		case s == "":
			return "", errors.New("must not be empty")
		case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
			return "", fmt.Errorf("client ID %q must not contain white space", s)
		}
		return s, nil
	})
	if _, given := fs["client_id"]; !given {
		p.addf(n, child(path, "client_id"), "required with type: %s", probe.AuthOAuth2)
		valid = false
	}
	return id, ok && valid
}

// scopes reads scope: one scope, or a list of them. Client credentials
// take exactly one (a resource's /.default); the user grants default to
// Exchange Online's delegated scopes, and the refresh-token grant must
// ask for offline_access, without which Entra ID issues no refresh token.
func (p *parser) scopes(fs map[string]entry, path string, grant probe.OAuth2Grant) []string {
	e, given := fs["scope"]
	if !given {
		if grant == probe.GrantClientCredentials {
			return []string{probe.DefaultOAuth2Scope}
		}
		return slices.Clone(probe.DefaultDelegatedScopes)
	}
	f := child(path, "scope")
	var out []string
	if d := deref(e.value); d != nil && d.Kind == yaml.SequenceNode {
		items, _ := p.list(e.value, f)
		if len(items) == 0 {
			p.addf(e.value, f, "must list at least one scope (leave the field out for the default)")
			return nil
		}
		out = p.uniqueItems(items, f, "scope", func(s string) (string, error) { return s, checkScope(s) })
	} else if s, ok := p.str(e.value, f); ok {
		if err := checkScope(s); err != nil {
			p.addErr(e.value, f, err)
			return nil
		}
		out = []string{s}
	}
	switch {
	case grant == probe.GrantClientCredentials && len(out) > 1:
		p.addf(e.value, f, "grant: %s takes exactly one scope, a resource's /.default (%s)", grant, probe.DefaultOAuth2Scope)
	case grant == probe.GrantRefreshToken && len(out) > 0 && !slices.Contains(out, "offline_access"):
		p.addf(e.value, f, "grant: %s needs offline_access among the scopes: without it no refresh token is issued", grant)
	}
	return out
}

func (p *parser) clientSecret(m *Module, n *yaml.Node, fs map[string]entry, path, need string, ok bool) {
	inline, file, secret, secretOK := p.secret(n, fs, path, "client_secret", "client_secret_file", "client secret file", need)
	m.Auth.ClientSecret, m.Auth.ClientSecretFile = inline, file
	if ok && secretOK {
		p.secrets(m).clientSecret = secret
	}
}

// refreshTokenFile reads refresh_token_file. What can be known now is
// checked now: a file that cannot be read, or a directory the rotated
// token cannot be written to, fails the load. A file that does not exist
// yet, or is empty, only means that login has not run: the exporter
// starts (the module's probes say to run it) and Findings reports it.
func (p *parser) refreshTokenFile(m *Module, n *yaml.Node, fs map[string]entry, path string) {
	e, given := fs["refresh_token_file"]
	if !given {
		p.addf(n, child(path, "refresh_token_file"), "required with grant: %s (the file the login command writes)", probe.GrantRefreshToken)
		return
	}
	f := child(path, "refresh_token_file")
	name, ok := p.str(e.value, f)
	if !ok {
		return
	}
	if name == "" {
		p.addf(e.value, f, "must not be empty")
		return
	}
	file := p.resolve(name)
	m.Auth.RefreshTokenFile = file
	if err := checkRefreshTokenFile(file); err != nil {
		p.addErr(e.value, f, err)
	}
}

// checkRefreshTokenFile checks that the file can be read if it exists and
// that its directory takes the rotated token (written next to it and
// renamed over it).
func checkRefreshTokenFile(file string) error {
	dir := filepath.Dir(file)
	switch info, err := os.Stat(dir); {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("refresh token file %q: directory %s does not exist", file, dir)
	case err != nil:
		return fmt.Errorf("refresh token file %q: %w", file, err)
	case !info.IsDir():
		return fmt.Errorf("refresh token file %q: %s is not a directory", file, dir)
	}
	// Creating the temporary file and renaming it need both.
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("refresh token file %q: directory %s is not writable, and every redemption writes the rotated token there", file, dir)
	}
	info, err := os.Stat(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("refresh token file %q: %w", file, err)
	case !info.Mode().IsRegular():
		return fmt.Errorf("refresh token file %q is not a regular file", file)
	}
	r, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("refresh token file %q cannot be read: %w", file, errors.Unwrap(err))
	}
	return r.Close()
}

// checkUPN accepts the user principal name the password grant signs in
// with: user@domain.
func checkUPN(s string) error {
	user, domain, ok := strings.Cut(s, "@")
	switch {
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Errorf("%q must not contain white space", s)
	case !ok || user == "" || domain == "" || strings.Contains(domain, "@"):
		return fmt.Errorf("%q is not a user principal name (user@domain), which the password grant signs in with", s)
	}
	return nil
}
