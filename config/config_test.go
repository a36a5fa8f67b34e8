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

	"go.yaml.in/yaml/v3"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// filePassword is what the password file of good.yml holds (plus a line
// break) in the tests.
const filePassword = "s3cr3t-from-file"

// inlinePasswordMarker is part of every inline password under testdata, so
// a test can grep any output for a leak.
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
		{"default auth type is none", def.Auth.Type, AuthNone},
		{"default allowed_domains is empty", len(def.AllowedDomains), 0},
		{"default connect_to is empty", len(def.ConnectTo), 0},

		{"explicit timeout", onprem.Timeout, Duration(20 * time.Second)},
		{"explicit step_timeout", onprem.StepTimeout, Duration(4 * time.Second)},
		{"explicit methods keep their order", onprem.Methods, []probe.Method{probe.MethodAutodiscoverDomain, probe.MethodSRV}},
		{"explicit max_redirects", onprem.MaxRedirects, 5},
		{"dns server without port gets port 53", onprem.DNS.Server, "192.0.2.53:53"},
		{"explicit ip_version", onprem.DNS.IPVersion, probe.IPv4},
		{"ca_file is resolved against the base directory", onprem.TLS.CAFile, filepath.Join(env.dir, "certs", "internal-ca.pem")},
		{"password_file is resolved against the base directory", onprem.Auth.PasswordFile, filepath.Join(env.dir, "secrets", "probe-password")},
		{"file password is not copied into the exported field", onprem.Auth.Password, Secret("")},
		{"auth type basic", onprem.Auth.Type, AuthBasic},
		{"allowed_domains are lower-cased", onprem.AllowedDomains, []string{"mail.contoso.test", "outlook.test"}},
		{"connect_to is kept in canonical form", onprem.ConnectTo, map[string]string{
			"autodiscover.contoso.test:443": "10.1.2.3:443",
			"[2001:db8::10]:443":            "mail-lb.contoso.test:8443",
		}},

		{"mobilesync schema", mobile.Schema, probe.SchemaMobileSync},
		{"timeout default next to an explicit step_timeout", mobile.Timeout, DefaultTimeout},
		{"bracketed IPv6 dns server keeps its port", mobile.DNS.Server, "[2001:db8::53]:5353"},
		{"ip6", mobile.DNS.IPVersion, probe.IPv6},

		{"mailboxes keep file order", mailboxNames(cfg), []string{"hq-onprem", "branch.mobile", "default_probe"}},
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
		basic, ok := s.Auth.(*probe.Basic)
		if !ok {
			t.Fatalf("Auth is %T, want *probe.Basic", s.Auth)
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
		if s.Auth != nil {
			t.Errorf("Auth = %#v, want a nil interface", s.Auth)
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
		basic, ok := c.Modules["m"].Settings().Auth.(*probe.Basic)
		if !ok || basic.Password != "pw " {
			t.Errorf("inline password not passed through unchanged")
		}
	})

	t.Run("changing the settings does not change the module", func(t *testing.T) {
		m := mustModule(t, cfg, "onprem")
		s := m.Settings()
		s.Methods[0] = probe.MethodRedirect
		s.AllowedDomains[0] = "evil.test"
		s.ConnectTo["x:1"] = "y:1"
		s.Auth.(*probe.Basic).Password = "changed"
		again := m.Settings()
		if again.Methods[0] != probe.MethodAutodiscoverDomain || again.AllowedDomains[0] != "mail.contoso.test" ||
			len(again.ConnectTo) != 2 || again.Auth.(*probe.Basic).Password != filePassword {
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
	basic, ok := cfg.Modules["m"].Settings().Auth.(*probe.Basic)
	if !ok || basic.Password != filePassword {
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
	"bad_auth_type.yml":                {`bad_auth_type.yml:4: modules.hq.auth.type: unknown auth type "ntlm"`},
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
	data := string(readFileT(t, "testdata/good.yml")) + fmt.Sprintf(`
  - name: inline
    address: dave@contoso.test
    module: inline
`)
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

	for _, leak := range []string{inlinePasswordMarker, filePassword} {
		if strings.Contains(text, leak) {
			t.Errorf("Redacted output reveals a secret (%q):\n%s", leak, text)
		}
	}
	for _, want := range []string{
		"password: <secret>",
		"password_file: " + filepath.Join(env.dir, "secrets", "probe-password"),
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
		if name != "inline" && !reflect.DeepEqual(m.Settings().Auth, m2.Settings().Auth) ||
			!reflect.DeepEqual(stripAuth(m.Settings()), stripAuth(m2.Settings())) ||
			m.Timeout != m2.Timeout {
			t.Errorf("module %s changed in the round trip", name)
		}
	}
	if !reflect.DeepEqual(cfg.Mailboxes, again.Mailboxes) {
		t.Error("mailboxes changed in the round trip")
	}
}

// stripAuth drops what cannot survive a redacted round trip unchanged (the
// secret) or compare with DeepEqual (the cert pool).
func stripAuth(s probe.Settings) probe.Settings {
	s.Auth, s.RootCAs = nil, nil
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
