package config

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// A configuration built as values, with only what matters to its author
// set, marshals to a file that parses back to the same effective
// configuration.
func TestMarshalWritesWhatParseReadsBack(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pw"), []byte(filePassword+"\n"))
	two := 2
	built := &Config{
		Modules: map[string]*Module{
			"plain": {},
			"onprem": {
				Timeout:        Duration(10 * time.Second),
				Methods:        []probe.Method{probe.MethodAutodiscoverDomain},
				DNS:            DNS{Server: "127.0.0.1:5353"},
				Auth:           Auth{Type: probe.AuthBasic, Username: "u@contoso.test", PasswordFile: "pw"},
				AllowedDomains: []string{"outlook.test"},
				ConnectTo:      map[string]string{"autodiscover.contoso.test:443": "127.0.0.1:8443"},
			},
			"cloud": {
				Methods: []probe.Method{probe.MethodV2JSON},
				Auth:    Auth{Type: probe.AuthOAuth2, ClientID: "app", TokenURL: "https://login.lab.test/t/oauth2/v2.0/token", ClientSecretFile: "pw"},
			},
		},
		Mailboxes: []*Mailbox{
			{Name: "alice", Address: "alice@contoso.test", Module: "onprem", Labels: map[string]string{"site": "hq"}, Expect: &probe.Expectations{MaxRedirects: &two}},
			{Name: "bob", Address: "bob@contoso.test", Module: "plain"},
		},
	}
	data, err := Marshal(built)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, "built.yml", dir)
	if err != nil {
		t.Fatalf("the marshalled configuration does not parse: %v\n%s", err, data)
	}
	plain := cfg.Modules["plain"]
	if !reflect.DeepEqual(stripAuth(plain.Settings()), stripAuth(defaultModule().Settings())) {
		t.Errorf("an empty module did not come back with the defaults: %+v", plain)
	}
	onprem := cfg.Modules["onprem"].Settings()
	if onprem.Timeout != 10*time.Second || onprem.StepTimeout != probe.DefaultStepTimeout || onprem.DNSServer != "127.0.0.1:5353" ||
		onprem.Auth.Password != filePassword || onprem.ConnectTo["autodiscover.contoso.test:443"] != "127.0.0.1:8443" {
		t.Errorf("onprem settings %+v", onprem)
	}
	if c := cfg.Modules["cloud"]; c.V2 == nil || c.Settings().Auth.ClientSecret != filePassword || !slices.Equal(c.Auth.Scopes, []string{probe.DefaultOAuth2Scope}) {
		t.Errorf("cloud module %+v", c)
	}
	if mb, _ := cfg.Mailbox("alice"); mb.Expect == nil || *mb.Expect.MaxRedirects != 2 || mb.Labels["site"] != "hq" {
		t.Errorf("mailbox alice %+v", mb)
	}
	if strings.Contains(string(data), filePassword) {
		t.Error("the marshalled file holds the password")
	}
}

func TestMarshalRefusesInlineSecrets(t *testing.T) {
	for _, a := range []Auth{
		{Type: probe.AuthBasic, Username: "u", Password: Secret("pw-" + inlinePasswordMarker)},
		{Type: probe.AuthOAuth2, ClientID: "app", TokenURL: "https://login.lab.test/t", ClientSecret: Secret("cs-" + inlinePasswordMarker)},
	} {
		_, err := Marshal(&Config{Modules: map[string]*Module{"m": {Auth: a}}})
		if err == nil || !strings.Contains(err.Error(), "inline secret") || strings.Contains(err.Error(), inlinePasswordMarker) {
			t.Errorf("Marshal with an inline %s secret: %v", a.Type, err)
		}
	}
}

// The settings that make the probe ask and read as Outlook does reach the
// probe: mapi_http (on by default), user_agent, continue_after_error and
// expect.smtp_address.
func TestOutlookFidelitySettingsReachTheProbe(t *testing.T) {
	cfg, err := Parse([]byte(`modules:
  default: {}
  legacy: {mapi_http: false, user_agent: "Microsoft Office/14.0 (Windows NT 6.1; Microsoft Outlook 14.0.7015; Pro)", continue_after_error: true}
mailboxes:
  - {name: a, address: al@contoso.test, module: default, expect: {smtp_address: Albert.Long@Contoso.TEST}}
`), "c.yml", "")
	if err != nil {
		t.Fatal(err)
	}
	def, legacy := cfg.Modules["default"].Settings(), cfg.Modules["legacy"].Settings()
	if def.OmitMapiHTTP || def.UserAgent != probe.DefaultUserAgent || def.ContinueAfterError {
		t.Errorf("defaults: %+v", def)
	}
	if !legacy.OmitMapiHTTP || !strings.HasPrefix(legacy.UserAgent, "Microsoft Office/14.0") || !legacy.ContinueAfterError {
		t.Errorf("legacy: omit=%v ua=%q continue=%v", legacy.OmitMapiHTTP, legacy.UserAgent, legacy.ContinueAfterError)
	}
	if mb, _ := cfg.Mailbox("a"); mb.Expect.SMTPAddress != "Albert.Long@contoso.test" {
		t.Errorf("smtp_address %q", mb.Expect.SMTPAddress)
	}
	for _, bad := range []string{"user_agent: \"\"", "user_agent: \"a\\nb\"", "mapi_http: maybe"} {
		if _, err := Parse([]byte("modules:\n  m: {"+bad+"}\n"), "c.yml", ""); err == nil || !strings.Contains(err.Error(), "c.yml:2: modules.m.") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if _, err := Parse([]byte("modules: {m: {}}\nmailboxes:\n  - {name: a, address: a@contoso.test, module: m, expect: {smtp_address: nobody}}\n"), "c.yml", ""); err == nil || !strings.Contains(err.Error(), "smtp_address") {
		t.Errorf("a bad smtp_address: %v", err)
	}
}
