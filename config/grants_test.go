package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// grantConfig is a one-module configuration of type oauth2 with the given
// extra auth fields.
func grantConfig(fields string) []byte {
	return []byte("modules:\n  m:\n    auth: {type: oauth2, client_id: app, " + fields + "}\n" +
		"mailboxes:\n  - {name: a, address: a@contoso.test, module: m}\n")
}

func TestEachGrantHandsTheProbeWhatItNeeds(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("probe-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "refresh-token")
	tests := []struct {
		name   string
		fields string
		want   probe.AuthSettings
	}{
		{"client credentials by default, with Exchange Online's .default scope",
			"tenant_id: contoso.onmicrosoft.com, client_secret: cs",
			probe.AuthSettings{Type: probe.AuthOAuth2, Grant: probe.GrantClientCredentials, ClientID: "app", ClientSecret: "cs",
				TokenURL: "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
				Scopes:   []string{probe.DefaultOAuth2Scope}}},
		{"refresh token: both Entra endpoints from the tenant, delegated scopes, the resolved file",
			"grant: refresh_token, tenant_id: Contoso.onmicrosoft.com, refresh_token_file: refresh-token",
			probe.AuthSettings{Type: probe.AuthOAuth2, Grant: probe.GrantRefreshToken, ClientID: "app",
				TokenURL:         "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
				DeviceAuthURL:    "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode",
				Scopes:           probe.DefaultDelegatedScopes,
				RefreshTokenFile: tokenFile}},
		{"refresh token with the organizations alias: the sign-in picks the tenant",
			"grant: refresh_token, tenant_id: Organizations, refresh_token_file: refresh-token, scope: [https://outlook.office.de/EWS.AccessAsUser.All, offline_access]",
			probe.AuthSettings{Type: probe.AuthOAuth2, Grant: probe.GrantRefreshToken, ClientID: "app",
				TokenURL:         "https://login.microsoftonline.com/organizations/oauth2/v2.0/token",
				DeviceAuthURL:    "https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode",
				Scopes:           []string{"https://outlook.office.de/EWS.AccessAsUser.All", "offline_access"},
				RefreshTokenFile: tokenFile}},
		{"refresh token with its own endpoints",
			"grant: refresh_token, token_url: 'https://idp.test/token', device_authorization_url: 'https://idp.test/device', refresh_token_file: refresh-token",
			probe.AuthSettings{Type: probe.AuthOAuth2, Grant: probe.GrantRefreshToken, ClientID: "app",
				TokenURL: "https://idp.test/token", DeviceAuthURL: "https://idp.test/device",
				Scopes: probe.DefaultDelegatedScopes, RefreshTokenFile: tokenFile}},
		{"password grant: the user's UPN and password, a public client without a secret",
			"grant: password, tenant_id: contoso.onmicrosoft.com, username: probe@contoso.test, password_file: pw",
			probe.AuthSettings{Type: probe.AuthOAuth2, Grant: probe.GrantPassword, ClientID: "app",
				Username: "probe@contoso.test", Password: "probe-pw",
				TokenURL: "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
				Scopes:   probe.DefaultDelegatedScopes}},
		{"password grant of a confidential client adds its secret",
			"grant: password, tenant_id: contoso.onmicrosoft.com, username: probe@contoso.test, password: pw2, client_secret: cs, scope: EWS.AccessAsUser.All",
			probe.AuthSettings{Type: probe.AuthOAuth2, Grant: probe.GrantPassword, ClientID: "app", ClientSecret: "cs",
				Username: "probe@contoso.test", Password: "pw2",
				TokenURL: "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
				Scopes:   []string{"EWS.AccessAsUser.All"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(grantConfig(tt.fields), "c.yml", dir)
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Modules["m"].Settings().Auth
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("settings\n got %#v\nwant %#v", fields(got), fields(tt.want))
			}
			// What Marshal writes parses back to the same settings.
			text, err := Marshal(withoutInlineSecrets(t, cfg, dir))
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(text, "again.yml", dir)
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			if a := again.Modules["m"].Auth; a.Grant != tt.want.Grant || !slices.Equal(a.Scopes, tt.want.Scopes) || a.DeviceAuthURL != tt.want.DeviceAuthURL || a.RefreshTokenFile != tt.want.RefreshTokenFile {
				t.Errorf("marshalled and parsed again: %+v", a)
			}
		})
	}
}

// fields renders the settings with the secrets, for a test's message:
// AuthSettings' own formatting hides them.
func fields(a probe.AuthSettings) []any {
	return []any{a.Type, a.Grant, a.ClientID, a.ClientSecret, a.Username, a.Password, a.TokenURL, a.DeviceAuthURL, a.Scopes, a.RefreshTokenFile}
}

// withoutInlineSecrets moves cfg's inline secrets into files, which is
// what Marshal accepts.
func withoutInlineSecrets(t *testing.T, cfg *Config, dir string) *Config {
	t.Helper()
	out := *cfg
	out.Modules = map[string]*Module{}
	for name, m := range cfg.Modules {
		c := *m
		if c.Auth.Password != "" {
			c.Auth.PasswordFile = writeSecret(t, dir, name+"-pw", string(c.Auth.Password))
			c.Auth.Password = ""
		}
		if c.Auth.ClientSecret != "" {
			c.Auth.ClientSecretFile = writeSecret(t, dir, name+"-cs", string(c.Auth.ClientSecret))
			c.Auth.ClientSecret = ""
		}
		out.Modules[name] = &c
	}
	return &out
}

func writeSecret(t *testing.T, dir, name, value string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigCheckFindsWhatOnlyAnOperatorCanFix(t *testing.T) {
	tests := []struct {
		name string
		// prepare sets up the refresh token file in dir before the load.
		prepare      func(t *testing.T, file string)
		fields       string
		wantProblem  string
		wantWarnings []string
	}{
		{"a refresh token file login has not written yet: load works, the check says to run login",
			func(*testing.T, string) {}, "grant: refresh_token, tenant_id: contoso.onmicrosoft.com, refresh_token_file: rt",
			"does not exist yet: run `autodiscover_exporter login m` to sign in", nil},
		{"an empty refresh token file",
			func(t *testing.T, f string) { writeMode(t, f, "\n", 0o600) }, "grant: refresh_token, tenant_id: contoso.onmicrosoft.com, refresh_token_file: rt",
			"is empty: run `autodiscover_exporter login m`", nil},
		{"a refresh token file others can read",
			func(t *testing.T, f string) { writeMode(t, f, "rt-1\n", 0o644) }, "grant: refresh_token, tenant_id: contoso.onmicrosoft.com, refresh_token_file: rt",
			"", []string{"can be read by others (mode 0644)"}},
		{"a good refresh token file says nothing",
			func(t *testing.T, f string) { writeMode(t, f, "rt-1\n", 0o600) }, "grant: refresh_token, tenant_id: contoso.onmicrosoft.com, refresh_token_file: rt",
			"", nil},
		{"client credentials cannot authenticate POX against Exchange Online",
			func(*testing.T, string) {}, "tenant_id: contoso.onmicrosoft.com, client_secret: cs",
			"", []string{"app-only tokens, which Exchange Online's POX Autodiscover refuses (Error 500"}},
		{"the password grant is the legacy choice",
			func(*testing.T, string) {}, "grant: password, tenant_id: contoso.onmicrosoft.com, username: u@contoso.test, password: p",
			"", []string{"legacy grant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.prepare(t, filepath.Join(dir, "rt"))
			cfg, err := Parse(grantConfig(tt.fields), "c.yml", dir)
			if err != nil {
				t.Fatal(err)
			}
			var problems, warnings []string
			for _, f := range cfg.Findings() {
				if f.Module != "m" || !strings.Contains(f.String(), "module m: ") {
					t.Errorf("finding %q does not name module m", f)
				}
				if f.Problem {
					problems = append(problems, f.Message)
				} else {
					warnings = append(warnings, f.Message)
				}
			}
			switch {
			case tt.wantProblem == "" && len(problems) > 0:
				t.Errorf("problems %q, want none", problems)
			case tt.wantProblem != "" && (len(problems) != 1 || !strings.Contains(problems[0], tt.wantProblem)):
				t.Errorf("problems %q, want one with %q", problems, tt.wantProblem)
			}
			if len(warnings) != len(tt.wantWarnings) {
				t.Fatalf("warnings %q, want %q", warnings, tt.wantWarnings)
			}
			for i, w := range tt.wantWarnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %q, want %q", warnings[i], w)
				}
			}
			for _, f := range cfg.Findings() {
				if strings.Contains(f.Message, "rt-1") {
					t.Errorf("a finding shows the refresh token: %s", f)
				}
			}
		})
	}
}

func writeMode(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// Permissions bind everyone but root, so these cases are only meaningful
// without it; the file system cases that bind root too are in
// testdata/bad.
func TestRefreshTokenFilesTheExporterCannotUseFailTheLoad(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads and writes whatever the mode says; run without root to check file permissions")
	}
	t.Run("unreadable file", func(t *testing.T) {
		dir := t.TempDir()
		writeMode(t, filepath.Join(dir, "rt"), "rt-1\n", 0o000)
		_, err := Parse(grantConfig("grant: refresh_token, tenant_id: contoso.onmicrosoft.com, refresh_token_file: rt"), "c.yml", dir)
		if err == nil || !strings.Contains(err.Error(), "c.yml:3: modules.m.auth.refresh_token_file: ") || !strings.Contains(err.Error(), "cannot be read") {
			t.Errorf("got %v, want the unreadable file named at its field", err)
		}
	})
	t.Run("directory the rotated token cannot be written to", func(t *testing.T) {
		dir := t.TempDir()
		sub := filepath.Join(dir, "ro")
		if err := os.Mkdir(sub, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(sub, 0o700) })
		_, err := Parse(grantConfig("grant: refresh_token, tenant_id: contoso.onmicrosoft.com, refresh_token_file: ro/rt"), "c.yml", dir)
		if err == nil || !strings.Contains(err.Error(), "is not writable") {
			t.Errorf("got %v, want the directory reported as not writable", err)
		}
	})
}
