package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"go.yaml.in/yaml/v3"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// filePassword is what the password file of good.yml holds (plus a line
// break) in the tests.
const filePassword = "s3cr3t-from-file"

// fileClientSecret is what the client secret file of good.yml holds (plus
// a line break) in the tests.
const fileClientSecret = "cl13nt-s3cr3t-from-file"

// inlinePasswordMarker is part of every inline password and client secret
// under testdata, so a test can grep any output for a leak.
const inlinePasswordMarker = "hunter2"

// goodEnv holds the files good.yml refers to, generated so that no key
// material is checked in.
type goodEnv struct {
	dir    string
	caCert *x509.Certificate
}

func newGoodEnv(t *testing.T) goodEnv {
	t.Helper()
	dir := t.TempDir()
	cert, certPEM := newCA(t)
	writeFile(t, filepath.Join(dir, "certs", "internal-ca.pem"), certPEM)
	writeFile(t, filepath.Join(dir, "secrets", "probe-password"), []byte(filePassword+"\n"))
	writeFile(t, filepath.Join(dir, "secrets", "client-secret"), []byte(fileClientSecret+"\n"))
	return goodEnv{dir: dir, caCert: cert}
}

func newCA(t *testing.T) (*x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Contoso Test Root CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFileT(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func loadGood(t *testing.T) (*Config, goodEnv) {
	t.Helper()
	env := newGoodEnv(t)
	cfg, err := Parse(readFileT(t, "testdata/good.yml"), "good.yml", env.dir)
	if err != nil {
		t.Fatalf("good.yml does not parse: %v", err)
	}
	return cfg, env
}

func mustModule(t *testing.T, cfg *Config, name string) *Module {
	t.Helper()
	m, ok := cfg.Module(name)
	if !ok {
		t.Fatalf("module %q missing", name)
	}
	return m
}

func TestGoodConfigFillsDefaultsAndKeepsExplicitValues(t *testing.T) {
	cfg, env := loadGood(t)
	def := mustModule(t, cfg, "default")
	onprem := mustModule(t, cfg, "onprem")
	mobile := mustModule(t, cfg, "mobile")
	legacy := mustModule(t, cfg, "legacy")
	online := mustModule(t, cfg, "online")
	sovereign := mustModule(t, cfg, "sovereign")
	dave, _ := cfg.Mailbox("online-dave")
	zero := 0

	tests := []struct {
		name      string
		got, want any
	}{
		{"default timeout is 30s", def.Timeout, Duration(30 * time.Second)},
		{"default step_timeout is 5s", def.StepTimeout, Duration(5 * time.Second)},
		{"default methods are all four in Outlook's order", def.Methods, []probe.Method{
			probe.MethodRootDomain, probe.MethodAutodiscoverDomain, probe.MethodHTTPRedirect, probe.MethodSRV}},
		{"default schema is outlook", def.Schema, probe.SchemaOutlook},
		{"default max_redirects is 10", def.MaxRedirects, 10},
		{"default dns server is the system resolver", def.DNS.Server, ""},
		{"default ip_version is any", def.DNS.IPVersion, probe.IPAny},
		{"default ca_file is none", def.TLS.CAFile, ""},
		{"default insecure_skip_verify is false", def.TLS.InsecureSkipVerify, false},
		{"default auth type is none", def.Auth.Type, probe.AuthNone},
		{"default allowed_domains is empty", len(def.AllowedDomains), 0},
		{"default connect_to is empty", len(def.ConnectTo), 0},
		{"default check_all_addresses is false", def.CheckAllAddresses, false},
		{"no v2 block without v2_json in methods", def.V2, (*V2)(nil)},
		{"default mailbox has no expectations", cfg.Mailboxes[2].Expect, (*probe.Expectations)(nil)},

		{"explicit timeout", onprem.Timeout, Duration(20 * time.Second)},
		{"explicit step_timeout", onprem.StepTimeout, Duration(4 * time.Second)},
		{"explicit methods keep their order", onprem.Methods, []probe.Method{probe.MethodAutodiscoverDomain, probe.MethodSRV}},
		{"explicit max_redirects", onprem.MaxRedirects, 5},
		{"dns server without port gets port 53", onprem.DNS.Server, "192.0.2.53:53"},
		{"explicit ip_version", onprem.DNS.IPVersion, probe.IPv4},
		{"ca_file is resolved against the base directory", onprem.TLS.CAFile, filepath.Join(env.dir, "certs", "internal-ca.pem")},
		{"password_file is resolved against the base directory", onprem.Auth.PasswordFile, filepath.Join(env.dir, "secrets", "probe-password")},
		{"file password is not copied into the exported field", onprem.Auth.Password, Secret("")},
		{"auth type basic", onprem.Auth.Type, probe.AuthBasic},
		{"allowed_domains are lower-cased", onprem.AllowedDomains, []string{"mail.contoso.test", "outlook.test"}},
		{"connect_to is kept in canonical form", onprem.ConnectTo, map[string]string{
			"autodiscover.contoso.test:443": "10.1.2.3:443",
			"[2001:db8::10]:443":            "mail-lb.contoso.test:8443",
		}},

		{"mobilesync schema", mobile.Schema, probe.SchemaMobileSync},
		{"timeout default next to an explicit step_timeout", mobile.Timeout, Duration(probe.DefaultTimeout)},
		{"bracketed IPv6 dns server keeps its port", mobile.DNS.Server, "[2001:db8::53]:5353"},
		{"ip6", mobile.DNS.IPVersion, probe.IPv6},

		{"ntlm auth type", legacy.Auth.Type, probe.AuthNTLM},
		{"ntlm DOMAIN\\user username is kept as written", legacy.Auth.Username, `CONTOSO\svc-probe`},
		{"ntlm password_file is resolved", legacy.Auth.PasswordFile, filepath.Join(env.dir, "secrets", "probe-password")},

		{"v2_json is accepted in methods", online.Methods, []probe.Method{probe.MethodAutodiscoverDomain, probe.MethodV2JSON}},
		{"explicit check_all_addresses", online.CheckAllAddresses, true},
		{"v2 hosts are lower-cased", online.V2.Hosts, []string{"outlook.office365.com", "autodiscover-s.outlook.com"}},
		{"v2 protocols get their canonical spelling", online.V2.Protocols, []string{"Ews", "ActiveSync", "Rest"}},
		{"oauth2 auth type", online.Auth.Type, probe.AuthOAuth2},
		{"oauth2 tenant", online.Auth.TenantID, "contoso.onmicrosoft.com"},
		{"oauth2 client id", online.Auth.ClientID, "6731de76-14a6-49ae-97bc-6eba6914391e"},
		{"oauth2 default scope", online.Auth.Scopes, []string{probe.DefaultOAuth2Scope}},
		{"oauth2 default token url is built from the tenant", online.Auth.TokenURL,
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"},
		{"client_secret_file is resolved against the base directory", online.Auth.ClientSecretFile, filepath.Join(env.dir, "secrets", "client-secret")},
		{"file client secret is not copied into the exported field", online.Auth.ClientSecret, Secret("")},
		{"explicit token_url needs no tenant", sovereign.Auth.TenantID, ""},
		{"explicit token_url is kept", sovereign.Auth.TokenURL, "https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/v2.0/token"},
		{"explicit scope", sovereign.Auth.Scopes, []string{"https://outlook.office365.us/.default"}},

		{"expect is read with canonical hosts and protocols", dave.Expect, &probe.Expectations{
			EndpointHost: "autodiscover-s.outlook.com",
			EWSURLHost:   "outlook.office365.com",
			MaxRedirects: &zero,
			Protocols:    []string{"EXCH", "EXPR", "mapiHttp"},
			CertMinDays:  14,
		}},

		{"mailboxes keep file order", mailboxNames(cfg), []string{"hq-onprem", "branch.mobile", "default_probe", "online-dave"}},
		{"labels", cfg.Mailboxes[0].Labels, map[string]string{"site": "hq", "tier": "gold"}},
		{"address is kept as written", cfg.Mailboxes[1].Address, "bob@Branch.Contoso.test"},
		{"normalized address lower-cases the domain", cfg.Mailboxes[1].NormalizedAddress(), "bob@branch.contoso.test"},
		{"domain", cfg.Mailboxes[1].Domain(), "branch.contoso.test"},
		{"checksum is SHA-256 of the file", cfg.Checksum(), sha256.Sum256(readFileT(t, "testdata/good.yml"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

func mailboxNames(cfg *Config) []string {
	var names []string
	for _, m := range cfg.Mailboxes {
		names = append(names, m.Name)
	}
	return names
}

func TestLookupsFindConfiguredNamesOnly(t *testing.T) {
	cfg, _ := loadGood(t)
	tests := []struct {
		name   string
		lookup func() bool
		want   bool
	}{
		{"existing mailbox", func() bool { m, ok := cfg.Mailbox("branch.mobile"); return ok && m.Module == "mobile" }, true},
		{"unknown mailbox", func() bool { _, ok := cfg.Mailbox("nobody"); return ok }, false},
		{"mailbox names are case-sensitive", func() bool { _, ok := cfg.Mailbox("HQ-ONPREM"); return ok }, false},
		{"existing module", func() bool { m, ok := cfg.Module("onprem"); return ok && m.MaxRedirects == 5 }, true},
		{"unknown module", func() bool { _, ok := cfg.Module("cloud"); return ok }, false},
		{"hand-built config without an index", func() bool {
			c := &Config{Mailboxes: []*Mailbox{{Name: "x"}}}
			_, ok := c.Mailbox("x")
			return ok
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.lookup(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSettingsCarryTheLoadedModule(t *testing.T) {
	cfg, env := loadGood(t)

	t.Run("onprem module", func(t *testing.T) {
		s := mustModule(t, cfg, "onprem").Settings()
		if s.RootCAs == nil {
			t.Fatal("RootCAs is nil although ca_file is set")
		}
		if _, err := env.caCert.Verify(x509.VerifyOptions{Roots: s.RootCAs}); err != nil {
			t.Errorf("RootCAs does not hold the CA from ca_file: %v", err)
		}
		basic := s.Auth
		if basic.Type != probe.AuthBasic {
			t.Fatalf("Auth is %s, want basic", basic)
		}
		if basic.Username != "probe@contoso.test" {
			t.Errorf("username %q", basic.Username)
		}
		if basic.Password != filePassword {
			t.Errorf("password from file not loaded with its line break trimmed (len %d, want %d)", len(basic.Password), len(filePassword))
		}
		checks := []struct {
			name      string
			got, want any
		}{
			{"methods", s.Methods, []probe.Method{probe.MethodAutodiscoverDomain, probe.MethodSRV}},
			{"schema", s.Schema, probe.SchemaOutlook},
			{"max redirects", s.MaxRedirects, 5},
			{"step timeout", s.StepTimeout, 4 * time.Second},
			{"dns server", s.DNSServer, "192.0.2.53:53"},
			{"ip version", s.IPVersion, probe.IPv4},
			{"insecure skip verify", s.InsecureSkipVerify, false},
			{"allowed domains", s.AllowedDomains, []string{"mail.contoso.test", "outlook.test"}},
			{"connect to", s.ConnectTo, map[string]string{
				"autodiscover.contoso.test:443": "10.1.2.3:443",
				"[2001:db8::10]:443":            "mail-lb.contoso.test:8443",
			}},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
			}
		}
	})

	t.Run("default module sends no credentials and uses the system roots", func(t *testing.T) {
		s := mustModule(t, cfg, "default").Settings()
		if s.Auth.Type != probe.AuthNone || s.Auth.Username != "" || s.Auth.Password != "" {
			t.Errorf("Auth = %#v, want no credentials", s.Auth)
		}
		if s.RootCAs != nil {
			t.Error("RootCAs set without ca_file")
		}
		if s.DNSServer != "" {
			t.Errorf("DNSServer = %q, want empty (system resolver)", s.DNSServer)
		}
	})

	t.Run("inline password reaches the authenticator", func(t *testing.T) {
		c, err := Parse([]byte("modules:\n  m:\n    auth: {type: basic, username: u, password: \"pw \"}\n"), "c.yml", "")
		if err != nil {
			t.Fatal(err)
		}
		basic := c.Modules["m"].Settings().Auth
		if basic.Type != probe.AuthBasic || basic.Password != "pw " {
			t.Errorf("inline password not passed through unchanged")
		}
	})

	t.Run("changing the settings does not change the module", func(t *testing.T) {
		m := mustModule(t, cfg, "onprem")
		s := m.Settings()
		s.Methods[0] = probe.MethodRedirect
		s.AllowedDomains[0] = "evil.test"
		s.Auth.Password = "changed"
		again := m.Settings()
		if again.Methods[0] != probe.MethodAutodiscoverDomain || again.AllowedDomains[0] != "mail.contoso.test" ||
			again.Auth.Password != filePassword {
			t.Error("Settings shares mutable state with the module")
		}
	})
}

func TestLoadResolvesPathsAgainstTheConfigDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "conf", "pw"), []byte(filePassword+"\r\n"))
	writeFile(t, filepath.Join(dir, "conf", "config.yml"), []byte(
		"modules:\n  m:\n    auth: {type: basic, username: u, password_file: pw}\n"))
	cfg, err := Load(filepath.Join(dir, "conf", "config.yml"))
	if err != nil {
		t.Fatal(err)
	}
	basic := cfg.Modules["m"].Settings().Auth
	if basic.Type != probe.AuthBasic || basic.Password != filePassword {
		t.Error("password file next to the config was not read, or CRLF not trimmed")
	}
	if len(cfg.Mailboxes) != 0 {
		t.Errorf("zero mailboxes should be allowed, got %d", len(cfg.Mailboxes))
	}
}

func TestLoadOfAMissingFileNamesThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yml")
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want a not-exist error naming %s", err, path)
	}
}

// badConfigs maps each file under testdata/bad to the messages its load
// must produce, each with its file:line: prefix and field path.
var badConfigs = map[string][]string{
	"address_public_suffix.yml":        {`address_public_suffix.yml:5: mailboxes[0].address: invalid mailbox address "alice@co.uk": domain is a public suffix`},
	"allowed_domain_public_suffix.yml": {`allowed_domain_public_suffix.yml:5: modules.hq.allowed_domains[1]: invalid domain "co.uk": domain is a public suffix`},
	"allowed_domain_single_label.yml":  {`allowed_domain_single_label.yml:3: modules.hq.allowed_domains[0]: invalid domain "contoso": single-label domain`},
	"allowed_domain_wildcard.yml":      {`allowed_domain_wildcard.yml:3: modules.hq.allowed_domains[0]: invalid domain "*.contoso.test": no wildcards`},
	"max_body_bytes_too_small.yml":     {`max_body_bytes_too_small.yml:3: modules.m.max_body_bytes: must be between 4096 and 67108864, not 100`},
	"allowed_ports_bad.yml":            {`allowed_ports_bad.yml:3: modules.m.allowed_ports[1]: 443 is always allowed; list only the other ports`, `allowed_ports_bad.yml:3: modules.m.allowed_ports[2]: duplicate port 8443`, `allowed_ports_bad.yml:3: modules.m.allowed_ports[3]: must be between 1 and 65535, not 70000`},
	"budget_out_of_range.yml":          {`budget_out_of_range.yml:3: modules.m.max_connection_attempts: must be between 1 and 1024, not 0`, `budget_out_of_range.yml:4: modules.m.max_dns_queries: must be between 1 and 1024, not 5000`},
	"min_interval_negative.yml":        {`min_interval_negative.yml:7: mailboxes[0].min_interval: `},
	"bad_auth_type.yml":                {`bad_auth_type.yml:4: modules.hq.auth.type: unknown auth type "digest" (valid: none, basic, ntlm, oauth2, kerberos)`},
	"bad_dns_server.yml":               {`bad_dns_server.yml:4: modules.hq.dns.server: port "dns" is not a number`},
	"bad_duration.yml":                 {`bad_duration.yml:3: modules.hq.timeout: invalid duration "30"`},
	"bad_ip_version.yml":               {`bad_ip_version.yml:4: modules.hq.dns.ip_version: unknown ip_version "ipv4" (valid: any, ip4, ip6)`},
	"bad_label_name.yml":               {`bad_label_name.yml:8: mailboxes[0].labels.data-center: invalid label name "data-center"`},
	"bad_mailbox_name.yml":             {`bad_mailbox_name.yml:4: mailboxes[0].name: invalid mailbox name "hq/eu"`},
	"bad_method.yml":                   {`bad_method.yml:3: modules.hq.methods[1]: unknown method "dns_srv"`},
	"bad_schema.yml":                   {`bad_schema.yml:3: modules.hq.schema: unknown schema "activesync" (valid: outlook, mobilesync)`},
	"basic_without_password.yml":       {`basic_without_password.yml:4: modules.hq.auth.password: type: basic needs a non-empty password or password_file`},
	"basic_without_username.yml":       {`basic_without_username.yml:4: modules.hq.auth.username: required with type: basic`},
	// The YAML library places this error at the enclosing block, not at
	// the mis-indented line 4.
	"broken_yaml.yml":          {`broken_yaml.yml:1: invalid YAML: did not find expected key`},
	"ca_file_invalid.yml":      {`ca_file_invalid.yml:4: modules.hq.tls.ca_file: CA file "testdata/bad/not-a-cert.pem": certificate 1: x509:`},
	"ca_file_missing.yml":      {`ca_file_missing.yml:4: modules.hq.tls.ca_file: CA file "testdata/bad/certs/missing-ca.pem": file does not exist`},
	"connect_to_bad_value.yml": {`connect_to_bad_value.yml:4: modules.hq.connect_to["autodiscover.contoso.test:443"]: host "bad host!" is neither an IP address nor a valid host name`},
	"connect_to_duplicate.yml": {`connect_to_duplicate.yml:5: modules.hq.connect_to["Autodiscover.Contoso.test:443"]: duplicate entry for autodiscover.contoso.test:443 (first at line 4)`},
	"connect_to_no_port.yml":   {`connect_to_no_port.yml:4: modules.hq.connect_to["autodiscover.contoso.test"]: invalid key: "autodiscover.contoso.test" is not host:port`},
	"credentials_without_type.yml": {
		`credentials_without_type.yml:4: modules.hq.auth.username: only valid with type: basic`,
		`credentials_without_type.yml:5: modules.hq.auth.password: only valid with type: basic`,
	},
	"dunder_label.yml":           {`dunder_label.yml:8: mailboxes[0].labels.__site: invalid label name "__site": names starting with "__" are reserved`},
	"duplicate_key.yml":          {`duplicate_key.yml:4: modules.hq.timeout: duplicate key (first at line 3)`},
	"duplicate_mailbox.yml":      {`duplicate_mailbox.yml:7: mailboxes[1].name: duplicate mailbox name "hq" (first at line 4)`},
	"duplicate_method.yml":       {`duplicate_method.yml:6: modules.hq.methods[2]: duplicate method "srv" (first at line 4)`},
	"empty.yml":                  {`empty.yml:1: empty configuration`},
	"empty_methods.yml":          {`empty_methods.yml:3: modules.hq.methods: must list at least one method`},
	"empty_password_file.yml":    {`empty_password_file.yml:6: modules.hq.auth.password_file: password file "testdata/bad/empty-password.txt" is empty`},
	"invalid_address.yml":        {`invalid_address.yml:5: mailboxes[0].address: invalid mailbox address "alice.contoso.test": no '@'`},
	"mailbox_missing_module.yml": {`mailbox_missing_module.yml:4: mailboxes[0].module: required`},
	"mailboxes_not_list.yml":     {`mailboxes_not_list.yml:4: mailboxes: must be a list, not a mapping`},
	"max_redirects_not_int.yml":  {`max_redirects_not_int.yml:3: modules.hq.max_redirects: must be an integer, not "ten"`},
	"max_redirects_range.yml":    {`max_redirects_range.yml:3: modules.hq.max_redirects: must be between 1 and 50, not 51`},
	"merge_cycle.yml":            {`merge_cycle.yml:4: modules.base["<<"]: merge key refers to the mapping that contains it`},
	"missing_modules.yml": {
		`missing_modules.yml:1: modules: required`,
		`missing_modules.yml:4: mailboxes[0].module: unknown module "hq"`,
	},
	"missing_password_file.yml": {`missing_password_file.yml:11: modules.hq.auth.password_file: password file "testdata/bad/secrets/does-not-exist": file does not exist`},
	"multiple_errors.yml": {
		`multiple_errors.yml:3: modules.hq.schema: unknown schema "ews"`,
		`multiple_errors.yml:4: modules.hq.max_redirects: must be between 1 and 50, not 0`,
		`multiple_errors.yml:8: mailboxes[0].module: unknown module "nowhere" (defined: hq)`,
	},
	"negative_step_timeout.yml": {`negative_step_timeout.yml:3: modules.hq.step_timeout: must be greater than 0, not -1s`},
	"password_and_file.yml":     {`password_and_file.yml:7: modules.hq.auth.password_file: set either password or password_file, not both`},
	"password_not_string.yml":   {`password_not_string.yml:6: modules.hq.auth.password: must be a string, not a list`},
	"redirect_method.yml":       {`redirect_method.yml:5: modules.hq.methods[1]: "redirect" is not a discovery method`},
	"reserved_label.yml":        {`reserved_label.yml:8: mailboxes[0].labels.instance: label name "instance" is reserved`},
	"step_exceeds_timeout.yml":  {`step_exceeds_timeout.yml:4: modules.hq.step_timeout: must not exceed timeout (10s)`},
	"two_documents.yml":         {`two_documents.yml:3: more than one YAML document`},
	"unknown_field_auth.yml":    {`unknown_field_auth.yml:5: modules.hq.auth.user: unknown field`},
	"unknown_field_dns.yml":     {`unknown_field_dns.yml:5: modules.hq.dns.ipversion: unknown field (valid fields: server, ip_version)`},
	"unknown_field_mailbox.yml": {`unknown_field_mailbox.yml:7: mailboxes[0].target: unknown field`},
	"unknown_field_module.yml":  {`unknown_field_module.yml:4: modules.hq.step_timout: unknown field`},
	"unknown_field_tls.yml":     {`unknown_field_tls.yml:4: modules.hq.tls.insecure: unknown field`},
	"unknown_module.yml":        {`unknown_module.yml:6: mailboxes[0].module: unknown module "branch" (defined: hq)`},
	"unknown_top_level.yml":     {`unknown_top_level.yml:3: mailbox: unknown field (valid fields: modules, mailboxes)`},

	// auth.type: ntlm
	"ntlm_empty_domain.yml":      {`ntlm_empty_domain.yml:5: modules.hq.auth.username: "\\svc-probe" has an empty domain before '\'`},
	"ntlm_empty_user.yml":        {`ntlm_empty_user.yml:5: modules.hq.auth.username: "CONTOSO\\" has an empty user name after '\'`},
	"ntlm_password_and_file.yml": {`ntlm_password_and_file.yml:7: modules.hq.auth.password_file: set either password or password_file, not both`},
	"ntlm_upn_empty_user.yml":    {`ntlm_upn_empty_user.yml:6: modules.hq.auth.username: "@contoso.test" has an empty user name before '@'`},
	"ntlm_without_password.yml":  {`ntlm_without_password.yml:4: modules.hq.auth.password: type: ntlm needs a non-empty password or password_file`},
	"ntlm_without_username.yml":  {`ntlm_without_username.yml:4: modules.hq.auth.username: required with type: ntlm`},

	// auth.type: oauth2
	"basic_with_client_secret.yml": {
		`basic_with_client_secret.yml:7: modules.hq.auth.client_secret: only valid with type: oauth2`,
		`basic_with_client_secret.yml:8: modules.hq.auth.tenant_id: only valid with type: oauth2`,
	},
	"oauth2_bad_tenant.yml":          {`oauth2_bad_tenant.yml:5: modules.cloud.auth.tenant_id: tenant "contoso" is neither a GUID nor a domain`},
	"oauth2_common_tenant.yml":       {`oauth2_common_tenant.yml:7: modules.cloud.auth.tenant_id: "common" is a multi-tenant alias`},
	"oauth2_empty_secret_file.yml":   {`oauth2_empty_secret_file.yml:7: modules.cloud.auth.client_secret_file: client secret file "testdata/bad/empty-password.txt" is empty`},
	"oauth2_missing_secret_file.yml": {`oauth2_missing_secret_file.yml:7: modules.cloud.auth.client_secret_file: client secret file "testdata/bad/secrets/no-client-secret": file does not exist`},
	"oauth2_fields_without_type.yml": {
		`oauth2_fields_without_type.yml:4: modules.cloud.auth.client_id: only valid with type: oauth2`,
		`oauth2_fields_without_type.yml:5: modules.cloud.auth.client_secret_file: only valid with type: oauth2`,
	},
	"oauth2_scope_http.yml":               {`oauth2_scope_http.yml:8: modules.cloud.auth.scope: scope "http://outlook.office365.com/.default" is not an absolute https URL`},
	"oauth2_scope_with_space.yml":         {`oauth2_scope_with_space.yml:8: modules.cloud.auth.scope: scope "EWS.AccessAsUser.All offline_access" contains white space`},
	"oauth2_secret_and_file.yml":          {`oauth2_secret_and_file.yml:8: modules.cloud.auth.client_secret_file: set either client_secret or client_secret_file, not both`},
	"oauth2_secret_not_string.yml":        {`oauth2_secret_not_string.yml:7: modules.cloud.auth.client_secret: must be a string, not a list`},
	"oauth2_token_url_http_localhost.yml": {`oauth2_token_url_http_localhost.yml:7: modules.cloud.auth.token_url: "http://localhost:8080/token" must be an https URL`},
	"oauth2_token_url_http_loopback.yml":  {`oauth2_token_url_http_loopback.yml:7: modules.cloud.auth.token_url: "http://127.0.0.1/token" must be an https URL`},
	"oauth2_token_url_userinfo.yml":       {`oauth2_token_url_userinfo.yml:7: modules.cloud.auth.token_url: "https://exporter:xxxxx@login.example.test/token" must not contain user information`},
	"oauth2_with_password.yml": {
		`oauth2_with_password.yml:8: modules.cloud.auth.username: only valid with type: basic or ntlm`,
		`oauth2_with_password.yml:9: modules.cloud.auth.password: only valid with type: basic or ntlm`,
	},
	"oauth2_without_client_id.yml": {`oauth2_without_client_id.yml:4: modules.cloud.auth.client_id: required with type: oauth2`},
	"oauth2_without_secret.yml":    {`oauth2_without_secret.yml:4: modules.cloud.auth.client_secret: type: oauth2 with grant: client_credentials needs a non-empty client_secret or client_secret_file`},
	"oauth2_without_tenant.yml":    {`oauth2_without_tenant.yml:4: modules.cloud.auth.tenant_id: required with type: oauth2 (or give token_url)`},

	// auth.grant
	"oauth2_unknown_grant.yml":                        {`oauth2_unknown_grant.yml:7: modules.cloud.auth.grant: unknown grant "implicit" (valid: client_credentials, refresh_token, password)`},
	"oauth2_refresh_without_file.yml":                 {`oauth2_refresh_without_file.yml:4: modules.cloud.auth.refresh_token_file: required with grant: refresh_token`},
	"oauth2_refresh_directory_missing.yml":            {`oauth2_refresh_directory_missing.yml:8: modules.cloud.auth.refresh_token_file: refresh token file "testdata/bad/no-such-dir/refresh-token": directory testdata/bad/no-such-dir does not exist`},
	"oauth2_refresh_file_is_directory.yml":            {`oauth2_refresh_file_is_directory.yml:8: modules.cloud.auth.refresh_token_file: refresh token file "testdata/bad" is not a regular file`},
	"oauth2_refresh_parent_is_file.yml":               {`oauth2_refresh_parent_is_file.yml:8: modules.cloud.auth.refresh_token_file: refresh token file "testdata/bad/password.txt/refresh-token": testdata/bad/password.txt is not a directory`},
	"oauth2_refresh_with_secret.yml":                  {`oauth2_refresh_with_secret.yml:9: modules.cloud.auth.client_secret: only valid with grant: client_credentials or grant: password (the device sign-in needs a public client`},
	"oauth2_refresh_scope_without_offline_access.yml": {`oauth2_refresh_scope_without_offline_access.yml:9: modules.cloud.auth.scope: grant: refresh_token needs offline_access among the scopes`},
	"oauth2_client_credentials_two_scopes.yml":        {`oauth2_client_credentials_two_scopes.yml:8: modules.cloud.auth.scope: grant: client_credentials takes exactly one scope`},
	"oauth2_client_credentials_with_refresh_file.yml": {`oauth2_client_credentials_with_refresh_file.yml:9: modules.cloud.auth.refresh_token_file: only valid with grant: refresh_token`},
	"oauth2_password_without_username.yml":            {`oauth2_password_without_username.yml:4: modules.cloud.auth.username: required with grant: password`},
	"oauth2_password_not_upn.yml":                     {`oauth2_password_not_upn.yml:8: modules.cloud.auth.username: "CONTOSO\\probe" is not a user principal name (user@domain)`},
	"oauth2_refresh_token_url_without_device_url.yml": {`oauth2_refresh_token_url_without_device_url.yml:4: modules.cloud.auth.device_authorization_url: required with grant: refresh_token and a token_url (or give tenant_id)`},
	"oauth2_consumers_tenant.yml":                     {`oauth2_consumers_tenant.yml:6: modules.cloud.auth.tenant_id: "consumers" signs in personal Microsoft accounts`},
	"oauth2_device_url_http.yml":                      {`oauth2_device_url_http.yml:9: modules.cloud.auth.device_authorization_url: "http://login.example.test/devicecode" must be an https URL: the refresh token is sent to it`},

	// check_all_addresses and v2
	"check_all_addresses_not_bool.yml": {`check_all_addresses_not_bool.yml:3: modules.hq.check_all_addresses: must be true or false, not "yes please"`},
	"unknown_field_v2.yml":             {`unknown_field_v2.yml:5: modules.cloud.v2.host: unknown field (valid fields: hosts, protocols)`},
	"v2_duplicate_protocol.yml":        {`v2_duplicate_protocol.yml:8: modules.cloud.v2.protocols[2]: duplicate protocol "Ews" (first at line 6)`},
	"v2_empty_hosts.yml":               {`v2_empty_hosts.yml:5: modules.cloud.v2.hosts: must list at least one host`},
	"v2_host_port.yml":                 {`v2_host_port.yml:5: modules.cloud.v2.hosts[0]: "outlook.office365.com:443" has a port`},
	"v2_host_url.yml":                  {`v2_host_url.yml:7: modules.cloud.v2.hosts[1]: "https://autodiscover-s.outlook.com/autodiscover/autodiscover.json" is a URL`},
	"v2_unknown_protocol.yml":          {`v2_unknown_protocol.yml:5: modules.cloud.v2.protocols[1]: unknown v2 protocol "MapiHttp" (valid: AutodiscoverV1, ActiveSync, Ews,`},
	"v2_without_v2_json.yml":           {`v2_without_v2_json.yml:4: modules.hq.v2: v2 settings given but methods does not include v2_json`},

	// mailboxes[].expect
	"expect_bad_host.yml":                      {`expect_bad_host.yml:8: mailboxes[0].expect.endpoint_host: "https://autodiscover.contoso.test/autodiscover/autodiscover.xml" is a URL`},
	"expect_cert_min_days_range.yml":           {`expect_cert_min_days_range.yml:8: mailboxes[0].expect.cert_min_days: must be between 1 and 3650, not 0`},
	"expect_duplicate_protocol.yml":            {`expect_duplicate_protocol.yml:8: mailboxes[0].expect.protocols[2]: duplicate protocol "mapiHttp"`},
	"expect_empty.yml":                         {`expect_empty.yml:7: mailboxes[0].expect: must set at least one of endpoint_host,`},
	"expect_ip_host.yml":                       {`expect_ip_host.yml:8: mailboxes[0].expect.ews_url_host: "192.0.2.10" is an IP address, not a DNS name`},
	"expect_max_redirects_range.yml":           {`expect_max_redirects_range.yml:8: mailboxes[0].expect.max_redirects: must be between 0 and 50, not -1`},
	"expect_unknown_protocol.yml":              {`expect_unknown_protocol.yml:8: mailboxes[0].expect.protocols[1]: unknown protocol "EWS" (valid: EXCH, EXPR, WEB, EXHTTP, mapiHttp, MobileSync, IMAP, POP3, SMTP)`},
	"endpoints_unknown.yml":                    {`endpoints_unknown.yml:3: modules.hq.endpoints[1]: unknown endpoint "smtp" (valid: ews, mapi, oab, activesync, owa)`},
	"endpoints_duplicate.yml":                  {`endpoints_duplicate.yml:3: modules.hq.endpoints[1]: duplicate endpoint "ews" (first at line 3)`},
	"endpoints_scope_unknown.yml":              {`endpoints_scope_unknown.yml:4: modules.hq.endpoints_scope: unknown endpoints_scope "everywhere" (valid: external, internal, both)`},
	"endpoints_scope_alone.yml":                {`endpoints_scope_alone.yml:3: modules.hq.endpoints_scope: endpoints_scope given but the module lists no endpoints`},
	"expect_endpoints_without_endpoints.yml":   {`expect_endpoints_without_endpoints.yml:8: mailboxes[0].expect.endpoints: module "hq" lists no endpoints to check`},
	"expect_federation_without_federation.yml": {`expect_federation_without_federation.yml:8: mailboxes[0].expect.federation_application_uri: module "hq" does not run the federation check (set federation: true)`},
	"federation_not_boolean.yml":               {`federation_not_boolean.yml:3: modules.hq.federation: must be true or false, not "sometimes"`},
	"expect_federation_uri_blank.yml":          {`expect_federation_uri_blank.yml:8: mailboxes[0].expect.federation_application_uri: "FYDIBOHF25SPDLT contoso" holds white space or a control character`},
	"unknown_field_expect.yml":                 {`unknown_field_expect.yml:8: mailboxes[0].expect.endpoint: unknown field (valid fields: endpoint_host,`},

	// method scp, ldap and kerberos
	"scp_without_ldap.yml":             {`scp_without_ldap.yml:3: modules.hq.methods: method scp needs an ldap block`},
	"ldap_without_scp.yml":             {`ldap_without_scp.yml:3: modules.hq.ldap: ldap settings given but methods does not include scp`},
	"ldap_bad_url.yml":                 {`ldap_bad_url.yml:5: modules.hq.ldap.url: "https://dc1.corp.contoso.test": use ldaps://host or ldap://host (StartTLS)`},
	"ldap_url_with_dn.yml":             {`ldap_url_with_dn.yml:5: modules.hq.ldap.url: "ldaps://dc1.corp.contoso.test/CN=Configuration,DC=corp": give scheme, host and port only`},
	"ldap_bind_without_password.yml":   {`ldap_bind_without_password.yml:5: modules.hq.ldap.password: bind_dn needs a non-empty password or password_file`},
	"kerberos_without_realm.yml":       {`kerberos_without_realm.yml:4: modules.hq.auth.realm: required with type: kerberos`},
	"kerberos_password_and_keytab.yml": {`kerberos_password_and_keytab.yml:8: modules.hq.auth.keytab_file: set either a password (password or password_file) or keytab_file, not both`},
	"kerberos_username_with_realm.yml": {`kerberos_username_with_realm.yml:5: modules.hq.auth.username: "svc-monitor@CORP.CONTOSO.TEST": give the user name alone`},
	"realm_without_kerberos.yml":       {`realm_without_kerberos.yml:7: modules.hq.auth.realm: only valid with type: kerberos`},
	"kerberos_bad_spn.yml":             {`kerberos_bad_spn.yml:8: modules.hq.auth.spn: "mail.contoso.test" is not a service principal name`},
	"expect_scp_hosts_without_scp.yml": {`expect_scp_hosts_without_scp.yml:8: mailboxes[0].expect.scp_hosts: module "hq" does not run the SCP lookup`},
}

func TestBadConfigsAreRejectedWithPositionAndField(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := badConfigs[filepath.Base(f)]; !ok {
			t.Errorf("%s has no expectation in badConfigs", f)
		}
	}
	for name, wants := range badConfigs {
		t.Run(strings.TrimSuffix(name, ".yml"), func(t *testing.T) {
			path := filepath.Join("testdata", "bad", name)
			cfg, err := Load(path)
			if err == nil {
				t.Fatalf("loaded without error: %+v", cfg)
			}
			if cfg != nil {
				t.Error("a config was returned along with the error")
			}
			for _, want := range wants {
				if !strings.Contains(err.Error(), "testdata/bad/"+want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
			if lines := strings.Count(err.Error(), "\n") + 1; lines < len(wants) {
				t.Errorf("got %d error lines, want at least %d", lines, len(wants))
			}
			if strings.Contains(err.Error(), inlinePasswordMarker) {
				t.Errorf("error reveals a password:\n%v", err)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Line == 0 && name != "empty.yml" {
				t.Errorf("error is not a positioned *config.Error: %#v", err)
			}
		})
	}
}

func TestMissingPasswordFileNamesThePathButNoSecret(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "good-pw"), []byte(filePassword+"\n"))
	missing := filepath.Join(dir, "missing-pw")
	data := fmt.Sprintf(`modules:
  inline:
    auth: {type: basic, username: u, password: %s-inline}
  fromfile:
    auth: {type: basic, username: u, password_file: good-pw}
  broken:
    auth: {type: basic, username: u, password_file: %s}
`, inlinePasswordMarker, missing)
	_, err := Parse([]byte(data), "c.yml", dir)
	if err == nil {
		t.Fatal("missing password file accepted")
	}
	msg := err.Error()
	want := fmt.Sprintf("c.yml:7: modules.broken.auth.password_file: password file %q: file does not exist", missing)
	if !strings.Contains(msg, want) {
		t.Errorf("error %q does not contain %q", msg, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("error does not wrap fs.ErrNotExist")
	}
	for _, secret := range []string{inlinePasswordMarker, filePassword} {
		if strings.Contains(msg, secret) {
			t.Errorf("error reveals a secret: %s", msg)
		}
	}
}

func TestRedactedShowsEffectiveConfigWithoutSecrets(t *testing.T) {
	env := newGoodEnv(t)
	data := string(readFileT(t, "testdata/good.yml")) + `
  - name: inline
    address: dave@contoso.test
    module: inline
`
	data = strings.Replace(data, "modules:\n", fmt.Sprintf(`modules:
  inline:
    auth: {type: basic, username: svc, password: "%s-inline"}
`, inlinePasswordMarker), 1)
	cfg, err := Parse([]byte(data), "c.yml", env.dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cfg.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)

	for _, leak := range []string{inlinePasswordMarker, filePassword, fileClientSecret} {
		if strings.Contains(text, leak) {
			t.Errorf("Redacted output reveals a secret (%q):\n%s", leak, text)
		}
	}
	for _, want := range []string{
		"password: <secret>",
		"password_file: " + filepath.Join(env.dir, "secrets", "probe-password"),
		"client_secret: <secret>",
		"client_secret_file: " + filepath.Join(env.dir, "secrets", "client-secret"),
		"scope:\n        - " + probe.DefaultOAuth2Scope, // default filled in
		"grant: client_credentials",
		"token_url: https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
		"check_all_addresses: false",
		"check_all_addresses: true",
		"- v2_json",
		"- Rest",
		"username: CONTOSO\\svc-probe",
		"max_redirects: 0", // a zero expectation is kept
		"- mapiHttp",
		"timeout: 30s",     // default filled in
		"step_timeout: 5s", // default filled in
		"max_redirects: 10",
		"schema: outlook",
		"ip_version: any",
		"type: none",
		"- root_domain",
		"address: bob@Branch.Contoso.test",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Redacted output lacks %q:\n%s", want, text)
		}
	}

	// The output is itself a valid configuration with the same effective
	// values, which also proves the YAML tags match the field names the
	// parser accepts.
	again, err := Parse(out, "redacted.yml", "")
	if err != nil {
		t.Fatalf("Redacted output does not parse: %v\n%s", err, text)
	}
	for name, m := range cfg.Modules {
		m2 := again.Modules[name]
		if m2 == nil {
			t.Errorf("module %s lost", name)
			continue
		}
		// An inline secret comes back as "<secret>"; everything else
		// about the credentials must survive.
		inlineSecret := m.Auth.Password != "" || m.Auth.ClientSecret != ""
		if !inlineSecret && !reflect.DeepEqual(m.Settings().Auth, m2.Settings().Auth) ||
			!reflect.DeepEqual(withoutSecrets(m.Auth), withoutSecrets(m2.Auth)) ||
			!reflect.DeepEqual(stripAuth(m.Settings()), stripAuth(m2.Settings())) ||
			!reflect.DeepEqual(m.V2, m2.V2) ||
			m.Timeout != m2.Timeout {
			t.Errorf("module %s changed in the round trip", name)
		}
	}
	if !reflect.DeepEqual(cfg.Mailboxes, again.Mailboxes) {
		t.Error("mailboxes changed in the round trip")
	}

	// The v2 block shows (with its defaults) exactly where v2_json is a
	// method: anywhere else it would be refused on the way back in.
	var tree struct {
		Modules map[string]map[string]any `yaml:"modules"`
	}
	if err := yaml.Unmarshal(out, &tree); err != nil {
		t.Fatal(err)
	}
	for name, m := range cfg.Modules {
		_, hasV2 := tree.Modules[name]["v2"]
		if want := slices.Contains(m.Methods, probe.MethodV2JSON); hasV2 != want {
			t.Errorf("module %s: v2 block shown = %v, want %v", name, hasV2, want)
		}
	}
	v2JSONOnly, err := Parse([]byte("modules:\n  m: {methods: [v2_json]}\n"), "c.yml", "")
	if err != nil {
		t.Fatal(err)
	}
	out, err = v2JSONOnly.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"v2:", "- " + probe.DefaultV2Host, "- " + probe.DefaultV2Protocols[0]} {
		if !strings.Contains(string(out), want) {
			t.Errorf("default v2 settings not shown (no %q):\n%s", want, out)
		}
	}
}

// withoutSecrets blanks the inline secrets, which come back from a
// redacted round trip as "<secret>".
func withoutSecrets(a Auth) Auth {
	a.Password, a.ClientSecret = "", ""
	return a
}

// stripAuth drops what cannot survive a redacted round trip unchanged (the
// secret) or compare with DeepEqual (the cert pool).
func stripAuth(s probe.Settings) probe.Settings {
	s.Auth, s.RootCAs = probe.AuthSettings{}, nil
	return s
}

func TestSecretNeverPrintsItsValue(t *testing.T) {
	const value = "hunter2-top-secret"
	s := Secret(value)
	type holder struct {
		Password Secret
		Ptr      *Secret
	}
	h := holder{Password: s, Ptr: &s}

	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("x", "pw", s)
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "pw", s)
	var jsonOut bytes.Buffer
	enc := json.NewEncoder(&jsonOut)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		t.Fatal(err)
	}
	yamlOut, _ := yaml.Marshal(h)

	renderings := map[string]string{
		"%v":         fmt.Sprintf("%v", s),
		"%s":         fmt.Sprintf("%s", s),
		"%+v":        fmt.Sprintf("%+v", s),
		"%#v":        fmt.Sprintf("%#v", s),
		"%q":         fmt.Sprintf("%q", s),
		"%x":         fmt.Sprintf("%x", s),
		"%v struct":  fmt.Sprintf("%v", h),
		"%+v struct": fmt.Sprintf("%+v", h),
		"%#v struct": fmt.Sprintf("%#v", h),
		"%v ptr":     fmt.Sprintf("%v", &s),
		"Sprint":     fmt.Sprint(s),
		"String":     s.String(),
		"json":       jsonOut.String(),
		"yaml":       string(yamlOut),
		"slog":       logBuf.String(),
	}
	for name, out := range renderings {
		t.Run(name, func(t *testing.T) {
			if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
				t.Errorf("reveals the value: %s", out)
			}
			if name != "%v ptr" && !strings.Contains(out, "<secret>") {
				t.Errorf("does not say <secret>: %s", out)
			}
		})
	}
	if string(s) != value {
		t.Error("the value itself is lost")
	}
}

func TestModuleFormattingDoesNotRevealThePassword(t *testing.T) {
	cfg, _ := loadGood(t)
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		if out := fmt.Sprintf(verb, *cfg.Modules["onprem"]); strings.Contains(out, filePassword) {
			t.Errorf("%s of a Module reveals the password: %s", verb, out)
		}
	}
}

func TestNormalisation(t *testing.T) {
	tests := []struct {
		name   string
		module string
		get    func(*Module) any
		want   any
	}{
		{"dns name without port", "dns: {server: NS1.Contoso.test.}", dnsServer, "ns1.contoso.test:53"},
		{"dns bare IPv6", "dns: {server: \"2001:db8::53\"}", dnsServer, "[2001:db8::53]:53"},
		{"dns bracketed IPv6 without port", "dns: {server: \"[2001:db8::53]\"}", dnsServer, "[2001:db8::53]:53"},
		{"dns IPv4 with port", "dns: {server: \"192.0.2.1:5353\"}", dnsServer, "192.0.2.1:5353"},
		{"connect_to expands IPv6 and drops leading zeros", `connect_to: {"[2001:DB8:0::1]:0443": "MAIL.test:443"}`,
			func(m *Module) any { return m.ConnectTo }, map[string]string{"[2001:db8::1]:443": "mail.test:443"}},
		{"IDN allowed domain becomes an A-label", "allowed_domains: [bücher.test]",
			func(m *Module) any { return m.AllowedDomains }, []string{"xn--bcher-kva.test"}},
		{"default step timeout shrinks to a shorter timeout", "timeout: 2s",
			func(m *Module) any { return m.StepTimeout }, Duration(2 * time.Second)},
		{"step timeout equal to timeout is fine", "{timeout: 3s, step_timeout: 3s}",
			func(m *Module) any { return m.StepTimeout }, Duration(3 * time.Second)},
		{"null field means default", "schema:", func(m *Module) any { return m.Schema }, probe.SchemaOutlook},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.module
			if !strings.HasPrefix(body, "{") {
				body = "\n    " + body
			}
			cfg, err := Parse([]byte("modules:\n  m: "+body+"\n"), "c.yml", "")
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.get(cfg.Modules["m"]); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func dnsServer(m *Module) any { return m.DNS.Server }

func TestAnchorsAndMergeKeysShareModuleSettings(t *testing.T) {
	data := `modules:
  base: &base
    timeout: 10s
    methods: [srv]
  derived:
    <<: *base
    timeout: 20s
`
	cfg, err := Parse([]byte(data), "c.yml", "")
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Modules["derived"]
	if d.Timeout != Duration(20*time.Second) || !slices.Equal(d.Methods, []probe.Method{probe.MethodSRV}) {
		t.Errorf("merge key not applied (explicit keys must win): timeout %s methods %v", d.Timeout, d.Methods)
	}
}

func TestHostileYAMLFinishesQuickly(t *testing.T) {
	// 40 levels of "<<: [*prev, *prev]" is 2^40 merges unless each mapping
	// is expanded once.
	var doubling strings.Builder
	doubling.WriteString("modules:\n  l0: &l0 {timeout: 1s}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&doubling, "  l%d: &l%d {<<: [*l%d, *l%d]}\n", i, i, i-1, i-1)
	}
	tests := []struct {
		name, data string
		wantErr    bool
	}{
		{"self-merging mapping", "modules:\n  a: &a {<<: *a}\n", true},
		{"self-merging through a list", "modules:\n  a: &a {<<: [{timeout: 1s}, *a]}\n", true},
		{"self-referencing value", "modules:\n  a: &a {dns: *a}\n", true},
		{"exponential merge chain", doubling.String(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := Parse([]byte(tt.data), "c.yml", "")
				done <- err
			}()
			select {
			case err := <-done:
				if (err != nil) != tt.wantErr {
					t.Errorf("error = %v, want error: %v", err, tt.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Parse did not finish")
			}
		})
	}
}

func TestChecksumTracksFileContent(t *testing.T) {
	a := []byte("modules: {m: {}}\n")
	b := []byte("modules: {m: {timeout: 10s}}\n")
	ca, err := Parse(a, "a.yml", "")
	if err != nil {
		t.Fatal(err)
	}
	ca2, _ := Parse(slices.Clone(a), "a.yml", "")
	cb, _ := Parse(b, "b.yml", "")
	if ca.Checksum() != ca2.Checksum() {
		t.Error("same bytes, different checksum")
	}
	if ca.Checksum() == cb.Checksum() {
		t.Error("different bytes, same checksum")
	}
}

func TestErrorsAreCappedAndOrdered(t *testing.T) {
	var b strings.Builder
	b.WriteString("modules:\n  m: {}\nmailboxes:\n")
	for i := range maxReported + 10 {
		fmt.Fprintf(&b, "  - {name: m%d, address: a@b.test, module: nope}\n", i)
	}
	_, err := Parse([]byte(b.String()), "c.yml", "")
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxReported+1 || !strings.Contains(lines[len(lines)-1], "and 10 more errors") {
		t.Errorf("got %d lines ending %q", len(lines), lines[len(lines)-1])
	}
	if !strings.HasPrefix(lines[0], "c.yml:4: mailboxes[0].module") {
		t.Errorf("first error %q is not the first in the file", lines[0])
	}
}

func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*.yml", "testdata/bad/*.yml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("modules:\n  a: &a {timeout: 1s}\n  b: {<<: [*a, *a]}\n"))
	// The newer syntax without files behind it, so every seed can load.
	f.Add([]byte("modules:\n  n: {auth: {type: ntlm, username: 'D\\u', password: p}}\n" +
		"  o: {methods: [srv, v2_json], check_all_addresses: true, v2: {hosts: [A.test], protocols: [ews, rest]},\n" +
		"      auth: {type: oauth2, tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47, client_id: c, client_secret: s, scope: x}}\n" +
		"mailboxes:\n  - {name: a, address: a@b.test, module: o, expect: {endpoint_host: h.test, max_redirects: 0, protocols: [exch], cert_min_days: 9}}\n"))
	f.Add([]byte("modules:\n  o: {auth: {type: oauth2, client_id: c, client_secret: s, token_url: 'https://[::1]:8443/t'}}\n"))
	// Relative ca_file/password_file paths of the seeds resolve here, so the
	// fuzzer mostly exercises validation rather than the file system.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yml", dir)
		if err == nil {
			if _, err := cfg.Redacted(); err != nil {
				t.Errorf("Redacted failed on a valid config: %v", err)
			}
		}
	})
}

func TestSettingsCarryTheNewAuthTypes(t *testing.T) {
	cfg, _ := loadGood(t)

	t.Run("ntlm module gets an NTLM authenticator with the file password", func(t *testing.T) {
		s := mustModule(t, cfg, "legacy").Settings()
		n := s.Auth
		want := probe.AuthSettings{Type: probe.AuthNTLM, Username: `CONTOSO\svc-probe`, Password: filePassword}
		if !reflect.DeepEqual(n, want) {
			t.Errorf("got %s with a %d-byte password, want %s with the %d-byte file password", n, len(n.Password), want, len(filePassword))
		}
	})

	t.Run("changing the ntlm settings does not change the module", func(t *testing.T) {
		m := mustModule(t, cfg, "legacy")
		s := m.Settings()
		s.Auth.Password = "changed"
		if got := m.Settings().Auth.Password; got != filePassword {
			t.Error("Settings shares the NTLM credentials with the module")
		}
	})

	for _, name := range []string{"online", "sovereign"} {
		t.Run(name+" module hands its client credentials to the probe and hides them in print", func(t *testing.T) {
			m := mustModule(t, cfg, name)
			a := m.Settings().Auth
			if a.Type != probe.AuthOAuth2 || a.TokenURL != m.Auth.TokenURL || a.ClientID != m.Auth.ClientID || !slices.Equal(a.Scopes, m.Auth.Scopes) {
				t.Errorf("oauth2 settings %s with token URL %q, scopes %v", a, a.TokenURL, a.Scopes)
			}
			if a.ClientSecret == "" {
				t.Error("the client secret did not reach the settings")
			}
			for _, secret := range []string{fileClientSecret, inlinePasswordMarker} {
				for _, shown := range []string{a.String(), fmt.Sprintf("%v %+v %#v", a, a, a), fmt.Sprintf("%v %+v", m, m)} {
					if strings.Contains(shown, secret) {
						t.Errorf("printing the settings or the module reveals the client secret: %s", shown)
					}
				}
			}
			if !strings.Contains(a.String(), m.Auth.ClientID) {
				t.Errorf("String() = %q does not name the client %s", a, m.Auth.ClientID)
			}
		})
	}

	t.Run("v2 and check_all_addresses reach the settings", func(t *testing.T) {
		s := mustModule(t, cfg, "online").Settings()
		checks := []struct {
			name      string
			got, want any
		}{
			{"methods", s.Methods, []probe.Method{probe.MethodAutodiscoverDomain, probe.MethodV2JSON}},
			{"check all addresses", s.CheckAllAddresses, true},
			{"v2 hosts", s.V2Hosts, []string{"outlook.office365.com", "autodiscover-s.outlook.com"}},
			{"v2 protocols", s.V2Protocols, []string{"Ews", "ActiveSync", "Rest"}},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
			}
		}
		s.V2Hosts[0], s.V2Protocols[0] = "evil.test", "Rest"
		if again := mustModule(t, cfg, "online").Settings(); again.V2Hosts[0] != "outlook.office365.com" || again.V2Protocols[0] != "Ews" {
			t.Error("Settings shares the v2 lists with the module")
		}
	})

	t.Run("defaults without v2 or check_all_addresses", func(t *testing.T) {
		s := mustModule(t, cfg, "default").Settings()
		if s.CheckAllAddresses {
			t.Error("CheckAllAddresses is on by default")
		}
		if !slices.Equal(s.V2Hosts, []string{probe.DefaultV2Host}) || !slices.Equal(s.V2Protocols, probe.DefaultV2Protocols) {
			t.Errorf("v2 defaults: hosts %v protocols %v", s.V2Hosts, s.V2Protocols)
		}
		if slices.Contains(s.Methods, probe.MethodV2JSON) {
			t.Error("v2_json is in the default methods; it is opt-in")
		}
		s.V2Protocols[0] = "changed"
		if probe.DefaultV2Protocols[0] == "changed" {
			t.Error("Settings hands out probe.DefaultV2Protocols itself")
		}
	})
}

func TestMailboxExpectations(t *testing.T) {
	cfg, _ := loadGood(t)

	t.Run("no expect block means nil", func(t *testing.T) {
		for _, name := range []string{"hq-onprem", "branch.mobile", "default_probe"} {
			if mb, _ := cfg.Mailbox(name); mb.Expect != nil {
				t.Errorf("%s: Expect = %+v, want nil", name, mb.Expect)
			}
		}
	})

	t.Run("expect block becomes probe expectations", func(t *testing.T) {
		mb, _ := cfg.Mailbox("online-dave")
		e := mb.Expect
		if e == nil {
			t.Fatal("Expect is nil")
		}
		if e.MaxRedirects == nil || *e.MaxRedirects != 0 {
			t.Errorf("max_redirects: 0 must be kept as an expectation, got %v", e.MaxRedirects)
		}
		zero := 0
		want := &probe.Expectations{
			EndpointHost: "autodiscover-s.outlook.com",
			EWSURLHost:   "outlook.office365.com",
			MaxRedirects: &zero,
			Protocols:    []string{"EXCH", "EXPR", "mapiHttp"},
			CertMinDays:  14,
		}
		if !reflect.DeepEqual(e, want) {
			t.Errorf("got %+v, want %+v", e, want)
		}
	})

	tests := []struct {
		name   string
		expect string
		want   *probe.Expectations
	}{
		{"leaving max_redirects out checks no hop count", "{cert_min_days: 1}", &probe.Expectations{CertMinDays: 1}},
		{"limits are inclusive", "{max_redirects: 50, cert_min_days: 3650}", &probe.Expectations{MaxRedirects: ptr(50), CertMinDays: 3650}},
		{"hosts lose a trailing dot and become A-labels", "{endpoint_host: Autodiscover.Bücher.test., ews_url_host: MAIL.contoso.test}",
			&probe.Expectations{EndpointHost: "autodiscover.xn--bcher-kva.test", EWSURLHost: "mail.contoso.test"}},
		{"protocols are case-insensitive", "{protocols: [web, exhttp, mobilesync]}", &probe.Expectations{Protocols: []string{"WEB", "EXHTTP", "MobileSync"}}},
		{"null expect means none", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := "modules: {m: {}}\nmailboxes:\n  - {name: a, address: a@contoso.test, module: m, expect: " + tt.expect + "}\n"
			cfg, err := Parse([]byte(data), "c.yml", "")
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Mailboxes[0].Expect; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNTLMUsernameForms(t *testing.T) {
	tests := []struct {
		username string
		wantErr  string // empty: accepted
	}{
		{`CONTOSO\svc-probe`, ""},
		{`svc-probe@contoso.test`, ""},
		{`svc-probe`, ""}, // the server's domain applies
		{`contoso.test\svc probe`, ""},
		{`CONTOSO\svc@contoso.test`, ""}, // odd, but not clearly wrong
		{`\svc-probe`, "has an empty domain before '\\'"},
		{`CONTOSO\`, "has an empty user name after '\\'"},
		{`\`, "has an empty domain"},
		{`A\B\c`, "has more than one '\\'"},
		{`@contoso.test`, "has an empty user name before '@'"},
		{`svc-probe@`, "has an empty domain after '@'"},
		{`a@b@contoso.test`, "has more than one '@'"},
		{"svc\tprobe", "must not contain control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.username, func(t *testing.T) {
			node, _ := yaml.Marshal(tt.username)
			data := fmt.Sprintf("modules:\n  m:\n    auth:\n      type: ntlm\n      password: %s-x\n      username: %s", inlinePasswordMarker, node)
			cfg, err := Parse([]byte(data), "c.yml", "")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if n := cfg.Modules["m"].Settings().Auth; n.Type != probe.AuthNTLM || n.Username != tt.username {
					t.Errorf("username %q, want %q unchanged", n.Username, tt.username)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if want := "c.yml:6: modules.m.auth.username: "; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q lacks %q and %q", err, want, tt.wantErr)
			}
			if strings.Contains(err.Error(), inlinePasswordMarker) {
				t.Errorf("error reveals the password: %v", err)
			}
		})
	}
}

func TestOAuth2FieldsAreNormalisedAndDefaulted(t *testing.T) {
	base := "type: oauth2, client_id: app, client_secret: " + inlinePasswordMarker + "-cs"
	tests := []struct {
		name      string
		auth      string
		wantAuth  func(a Auth) any
		want      any
		wantError string
	}{
		{"GUID tenant is lower-cased into the token URL", "tenant_id: 72F988BF-86F1-41AF-91AB-2D7CD011DB47",
			func(a Auth) any { return a.TenantID + " " + a.TokenURL },
			"72f988bf-86f1-41af-91ab-2d7cd011db47 https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token", ""},
		{"domain tenant is lower-cased", "tenant_id: Contoso.OnMicrosoft.com.",
			func(a Auth) any { return a.TenantID }, "contoso.onmicrosoft.com", ""},
		{"token_url wins over the tenant's default", "tenant_id: contoso.onmicrosoft.com, token_url: \"https://login.example.test:8443/t?x=1\"",
			func(a Auth) any { return a.TokenURL }, "https://login.example.test:8443/t?x=1", ""},
		{"scope defaults to Exchange Online", "tenant_id: contoso.onmicrosoft.com",
			func(a Auth) any { return a.Scopes }, []string{probe.DefaultOAuth2Scope}, ""},
		{"plain scope string", "tenant_id: contoso.onmicrosoft.com, scope: EWS.AccessAsApp",
			func(a Auth) any { return a.Scopes }, []string{"EWS.AccessAsApp"}, ""},
		{"null scope means default", "tenant_id: contoso.onmicrosoft.com, scope: null",
			func(a Auth) any { return a.Scopes }, []string{probe.DefaultOAuth2Scope}, ""},
		{"empty scope", "tenant_id: contoso.onmicrosoft.com, scope: \"\"", nil, nil, "auth.scope: must not be empty"},
		{"scope URL with another scheme", "tenant_id: contoso.onmicrosoft.com, scope: \"ftp://outlook.office365.com/.default\"", nil, nil, "is not an absolute https URL"},
		{"token_url without scheme", "token_url: login.example.test/token", nil, nil, "auth.token_url: \"login.example.test/token\" is not an absolute https URL"},
		{"token_url with a fragment", "token_url: \"https://login.example.test/token#x\"", nil, nil, "must not have a fragment"},
		{"token_url with a bad port", "token_url: \"https://login.example.test:99999/token\"", nil, nil, "out of range"},
		{"empty client_id", "tenant_id: contoso.onmicrosoft.com, client_id: \"\"", nil, nil, "auth.client_id: must not be empty"},
		{"IP address tenant", "tenant_id: 192.0.2.1", nil, nil, "is neither a GUID nor a domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := base + ", " + tt.auth
			if strings.Contains(tt.auth, "client_id") {
				auth = strings.Replace(auth, "client_id: app, ", "", 1)
			}
			cfg, err := Parse([]byte("modules:\n  m:\n    auth: {"+auth+"}\n"), "c.yml", "")
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), "c.yml:3: modules.m.") || !strings.Contains(err.Error(), tt.wantError) {
					t.Errorf("error %v, want c.yml:3: modules.m.… %q", err, tt.wantError)
				}
				if err != nil && strings.Contains(err.Error(), inlinePasswordMarker) {
					t.Errorf("error reveals the client secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.wantAuth(cfg.Modules["m"].Auth); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestV2SettingsAreNormalisedAndDefaulted(t *testing.T) {
	tests := []struct {
		name   string
		module string
		want   *V2
	}{
		{"v2_json alone gets the default hosts and protocols", "{methods: [v2_json]}",
			&V2{Hosts: []string{probe.DefaultV2Host}, Protocols: probe.DefaultV2Protocols}},
		{"an empty v2 block means the defaults", "{methods: [v2_json], v2: {}}",
			&V2{Hosts: []string{probe.DefaultV2Host}, Protocols: probe.DefaultV2Protocols}},
		{"hosts alone keep the default protocols", "{methods: [srv, v2_json], v2: {hosts: [Autodiscover-S.Outlook.com.]}}",
			&V2{Hosts: []string{"autodiscover-s.outlook.com"}, Protocols: probe.DefaultV2Protocols}},
		{"protocols are matched ignoring case", "{methods: [v2_json], v2: {protocols: [substratesearchservice, OWAPOWEREDEXPERIENCEV2, todo]}}",
			&V2{Hosts: []string{probe.DefaultV2Host}, Protocols: []string{"SubstrateSearchService", "OwaPoweredExperienceV2", "ToDo"}}},
		{"a single-label lab host is a DNS name", "{methods: [v2_json], v2: {hosts: [localhost]}}",
			&V2{Hosts: []string{"localhost"}, Protocols: probe.DefaultV2Protocols}},
		{"no v2_json, no v2 block", "{methods: [srv]}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte("modules:\n  m: "+tt.module+"\n"), "c.yml", "")
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Modules["m"].V2; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}

	t.Run("a broken methods list does not add a v2 error", func(t *testing.T) {
		_, err := Parse([]byte("modules:\n  m: {methods: [v2json], v2: {hosts: [a.test]}}\n"), "c.yml", "")
		if err == nil || !strings.Contains(err.Error(), `unknown method "v2json"`) || strings.Contains(err.Error(), "v2 settings given") {
			t.Errorf("got %v, want only the unknown method", err)
		}
	})
	t.Run("unknown methods list v2_json and soap as valid", func(t *testing.T) {
		_, err := Parse([]byte("modules:\n  m: {methods: [ews]}\n"), "c.yml", "")
		if err == nil || !strings.Contains(err.Error(), "srv, v2_json, soap)") {
			t.Errorf("got %v, want the valid methods including v2_json and soap", err)
		}
	})
}

func TestEndpointsReachTheProbeSettings(t *testing.T) {
	tests := []struct {
		name      string
		module    string
		endpoints []probe.EndpointProtocol
		scope     probe.EndpointScope
	}{
		{"no endpoints by default", "{}", nil, ""},
		{"endpoints default to the external URLs", "{endpoints: [mapi, EWS]}", []probe.EndpointProtocol{probe.EndpointMAPI, probe.EndpointEWS}, probe.ScopeExternal},
		{"a scope is kept", "{endpoints: [owa], endpoints_scope: both}", []probe.EndpointProtocol{probe.EndpointOWA}, probe.ScopeBoth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte("modules:\n  m: "+tt.module+"\nmailboxes:\n  - {name: a, address: a@contoso.test, module: m, expect: {endpoints: true}}\n"), "c.yml", "")
			if len(tt.endpoints) == 0 {
				if err == nil || !strings.Contains(err.Error(), "lists no endpoints") {
					t.Fatalf("expect.endpoints without endpoints: got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := cfg.Modules["m"].Settings()
			if !reflect.DeepEqual(s.Endpoints, tt.endpoints) || s.EndpointsScope != tt.scope {
				t.Errorf("settings have %v %q, want %v %q", s.Endpoints, s.EndpointsScope, tt.endpoints, tt.scope)
			}
			if !cfg.Mailboxes[0].Expect.Endpoints {
				t.Error("expect.endpoints was not kept")
			}
		})
	}
}

func TestSOAPAndFederationReachTheProbeSettings(t *testing.T) {
	cfg, err := Parse([]byte(`modules:
  m: {methods: [autodiscover_domain, soap], federation: true}
  plain: {}
mailboxes:
  - {name: a, address: a@contoso.test, module: m, expect: {federation_application_uri: " FYDIBOHF25SPDLT.contoso.test "}}
`), "c.yml", "")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Modules["m"].Settings()
	if !reflect.DeepEqual(s.Methods, []probe.Method{probe.MethodAutodiscoverDomain, probe.MethodSOAP}) || !s.Federation {
		t.Errorf("settings have methods %v, federation %v; want the soap method and the federation check", s.Methods, s.Federation)
	}
	if got := cfg.Mailboxes[0].Expect.FederationApplicationURI; got != "FYDIBOHF25SPDLT.contoso.test" {
		t.Errorf("expect.federation_application_uri is %q, want it trimmed", got)
	}
	if cfg.Modules["plain"].Settings().Federation {
		t.Error("the federation check is on by default")
	}
}

func TestSCPAndKerberosReachTheProbeSettings(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ldap.pw"), []byte(filePassword+"\n"))
	writeFile(t, filepath.Join(dir, "svc.keytab"), testKeytab(t, "svc-monitor", "CORP.CONTOSO.TEST"))
	cfg, err := Parse([]byte(`modules:
  inside:
    methods: [scp, autodiscover_domain]
    ldap:
      url: LDAPS://DC1.Corp.Contoso.test:3269
      bind_dn: svc-monitor@corp.contoso.test
      password_file: ldap.pw
      site: Default-First-Site-Name
    auth: {type: kerberos, username: svc-monitor, realm: corp.contoso.test, keytab_file: svc.keytab, kdc: [dc1.corp.contoso.test, "127.0.0.1:8800"]}
mailboxes:
  - {name: a, address: a@contoso.test, module: inside, expect: {scp_hosts: [Mail.Contoso.test]}}
`), "c.yml", dir)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Modules["inside"].Settings()
	wantLDAP := probe.LDAPSettings{URL: "ldaps://dc1.corp.contoso.test:3269", BindDN: "svc-monitor@corp.contoso.test", Password: filePassword, Site: "Default-First-Site-Name"}
	if s.LDAP != wantLDAP {
		t.Errorf("ldap settings are %#v, want %#v", s.LDAP, wantLDAP)
	}
	a := s.Auth
	if a.Type != probe.AuthKerberos || a.Realm != "CORP.CONTOSO.TEST" || a.Username != "svc-monitor" || len(a.Keytab) < 40 || a.Password != "" ||
		!reflect.DeepEqual(a.KDCs, []string{"dc1.corp.contoso.test:88", "127.0.0.1:8800"}) {
		t.Errorf("kerberos settings are %+v (keytab %d bytes)", a, len(a.Keytab))
	}
	if got := cfg.Mailboxes[0].Expect.SCPHosts; !reflect.DeepEqual(got, []string{"mail.contoso.test"}) {
		t.Errorf("expect.scp_hosts is %v, want it canonical", got)
	}
	if out := fmt.Sprintf("%v %+v %#v", s.LDAP, s.LDAP, s.LDAP); strings.Contains(out, filePassword) {
		t.Errorf("the ldap password shows in %s", out)
	}
	red, err := cfg.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(red), filePassword) {
		t.Error("the ldap password reached the redacted configuration")
	}
}

func TestClientSecretsNeverLeak(t *testing.T) {
	const inline = inlinePasswordMarker + "-inline-client-secret"
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "cs"), []byte(fileClientSecret+"\n"))
	good := fmt.Sprintf(`modules:
  inline:
    auth: {type: oauth2, tenant_id: contoso.onmicrosoft.com, client_id: app, client_secret: %q}
  file:
    auth: {type: oauth2, tenant_id: contoso.onmicrosoft.com, client_id: app, client_secret_file: cs}
`, inline)
	cfg, err := Parse([]byte(good), "c.yml", dir)
	if err != nil {
		t.Fatal(err)
	}
	redacted, err := cfg.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{"Redacted": string(redacted)}
	for name, m := range cfg.Modules {
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			outputs[name+" module "+verb] = fmt.Sprintf(verb, *m)
			outputs[name+" settings "+verb] = fmt.Sprintf(verb, m.Settings())
		}
		outputs[name+" identity"] = m.Settings().Auth.String()
	}

	// The same secrets next to every kind of mistake.
	broken := []string{
		"{type: oauth2, tenant_id: common, client_id: app, %s}",
		"{type: oauth2, tenant_id: contoso.onmicrosoft.com, client_id: app, scope: \"a b\", %s}",
		"{type: oauth2, client_id: app, token_url: \"http://localhost/t\", %s}",
		"{type: oauth2, client_id: app, %s}",
		"{type: basic, username: u, password: p, %s}",
		"{type: ntlm, username: \"\\\\u\", password: p, %s}",
		"{%s}",
		"{type: oauth2, tenant_id: contoso.onmicrosoft.com, client_id: app, client_secret: %q, client_secret_file: cs}",
	}
	for i, b := range broken {
		for _, secretField := range []string{fmt.Sprintf("client_secret: %q", inline), "client_secret_file: cs"} {
			auth := fmt.Sprintf(b, secretField)
			if strings.Contains(b, "%q") {
				auth = fmt.Sprintf(b, inline)
			}
			_, err := Parse([]byte("modules:\n  m:\n    auth: "+auth+"\n"), "c.yml", dir)
			if err == nil {
				t.Errorf("broken config %d accepted: %s", i, auth)
				continue
			}
			outputs[fmt.Sprintf("error %d (%s)", i, secretField)] = err.Error()
		}
	}

	for name, out := range outputs {
		for _, secret := range []string{inline, fileClientSecret, inlinePasswordMarker} {
			if strings.Contains(out, secret) {
				t.Errorf("%s reveals a client secret: %s", name, out)
			}
		}
	}
	if !strings.Contains(string(redacted), "client_secret: <secret>") {
		t.Errorf("Redacted does not show the inline client secret as <secret>:\n%s", redacted)
	}
}

func TestNewFieldsAppearInFuzzSeeds(t *testing.T) {
	// FuzzParse seeds from testdata; make sure the new syntax is among them.
	var all strings.Builder
	for _, pattern := range []string{"testdata/*.yml", "testdata/bad/*.yml"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			all.Write(readFileT(t, f))
		}
	}
	for _, want := range []string{"type: ntlm", "type: oauth2", "client_secret_file:", "token_url:", "v2_json", "check_all_addresses:", "expect:", "cert_min_days:", "grant: refresh_token", "grant: password", "refresh_token_file:", "device_authorization_url:", "endpoints:", "endpoints_scope:"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no seed contains %q", want)
		}
	}
}

func TestEmptyListsSayWhatLeavingThemOutMeans(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"v2 hosts", "modules:\n  m: {methods: [v2_json], v2: {hosts: []}}\n",
			"c.yml:2: modules.m.v2.hosts: must list at least one host (leave the field out for outlook.office365.com)"},
		{"v2 protocols", "modules:\n  m: {methods: [v2_json], v2: {protocols: []}}\n",
			"c.yml:2: modules.m.v2.protocols: must list at least one protocol (leave the field out for Ews, ActiveSync, AutodiscoverV1)"},
		{"expect protocols", "modules: {m: {}}\nmailboxes:\n  - {name: a, address: a@b.test, module: m, expect: {protocols: []}}\n",
			"c.yml:3: mailboxes[0].expect.protocols: must list at least one protocol (leave the field out to check none)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.data), "c.yml", ""); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMinIntervalIsParsedPerMailbox(t *testing.T) {
	cfg, err := Parse([]byte("modules:\n  m: {}\nmailboxes:\n  - {name: a, address: a@contoso.test, module: m, min_interval: 2m}\n  - {name: b, address: b@contoso.test, module: m}\n"), "mi.yml", "")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := cfg.Mailbox("a")
	b, _ := cfg.Mailbox("b")
	if time.Duration(a.MinInterval) != 2*time.Minute || b.MinInterval != 0 {
		t.Errorf("min_interval a=%v b=%v", a.MinInterval, b.MinInterval)
	}
}

// testKeytab is a keytab holding an AES key of user@realm.
func testKeytab(t *testing.T, user, realm string) []byte {
	t.Helper()
	kt := keytab.New()
	if err := kt.AddEntry(user, realm, "Keytab-pw1", time.Now(), 1, 18); err != nil {
		t.Fatal(err)
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeytabsThatDoNotServeTheUserAreRefusedWithoutQuotingThem(t *testing.T) {
	dir := t.TempDir()
	good := testKeytab(t, "svc-monitor", "CORP.CONTOSO.TEST")
	cases := map[string][]byte{
		// Cut inside the key: gokrb5's own error would quote the bytes.
		"truncated":     append(good[:len(good)-8:len(good)-8], []byte("SECRETKEY")...)[:len(good)-4],
		"another user":  testKeytab(t, "someone-else", "CORP.CONTOSO.TEST"),
		"another realm": testKeytab(t, "svc-monitor", "FABRIKAM.TEST"),
		"no entries":    {0x05, 0x02},
		"not a keytab":  []byte("svc-monitor's password"),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			writeFile(t, filepath.Join(dir, "k"), data)
			_, err := Parse([]byte("modules:\n  m:\n    auth: {type: kerberos, username: svc-monitor, realm: CORP.CONTOSO.TEST, keytab_file: k}\n"), "c.yml", dir)
			if err == nil || !strings.Contains(err.Error(), "modules.m.auth.keytab_file") {
				t.Fatalf("err %v, want the keytab refused", err)
			}
			if strings.Contains(err.Error(), "SECRETKEY") || strings.Contains(err.Error(), "password") {
				t.Errorf("the error quotes the file: %v", err)
			}
		})
	}
}
