package config

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Finding is something about a configuration that loads which the
// operator should hear about: a Problem will make probes fail until
// someone acts (--config.check exits 1 for it); otherwise it is a
// warning.
type Finding struct {
	Module  string
	Problem bool
	Message string
}

func (f Finding) String() string {
	kind := "warning"
	if f.Problem {
		kind = "problem"
	}
	return fmt.Sprintf("%s: module %s: %s", kind, f.Module, f.Message)
}

// Findings looks at the configuration as it stands now: whether the
// refresh token files of the refresh-token grant hold a token (login
// writes them while the exporter runs), and which modules cannot work
// where they are likely used. Sorted by module.
func (c *Config) Findings() []Finding {
	var out []Finding
	names := make([]string, 0, len(c.Modules))
	for name := range c.Modules {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		a := c.Modules[name].Auth
		if a.Type != probe.AuthOAuth2 {
			continue
		}
		switch a.Grant {
		case probe.GrantClientCredentials:
			out = append(out, Finding{Module: name, Message: "grant client_credentials gets app-only tokens, which Exchange Online's POX Autodiscover refuses (Error 500, as if the mailbox did not exist); probe Exchange Online mailboxes with grant refresh_token (see the README's Exchange Online section)"})
		case probe.GrantPassword:
			out = append(out, Finding{Module: name, Message: "grant password (ROPC) is Microsoft's legacy grant: it fails for accounts with multi-factor authentication or federated sign-in; prefer grant refresh_token"})
		case probe.GrantRefreshToken:
			out = append(out, refreshTokenFindings(name, a.RefreshTokenFile)...)
		}
	}
	return out
}

func refreshTokenFindings(module, file string) []Finding {
	login := fmt.Sprintf("run `autodiscover_exporter login %s` to sign in", module)
	info, err := os.Stat(file)
	if err != nil {
		if os.IsNotExist(err) {
			return []Finding{{Module: module, Problem: true, Message: fmt.Sprintf("refresh token file %s does not exist yet: %s", file, login)}}
		}
		return []Finding{{Module: module, Problem: true, Message: fmt.Sprintf("refresh token file: %v", err)}}
	}
	var out []Finding
	data, err := readFile(file, "refresh token file", maxPasswordFile)
	switch {
	case err != nil:
		out = append(out, Finding{Module: module, Problem: true, Message: err.Error()})
	case strings.TrimSpace(string(data)) == "":
		out = append(out, Finding{Module: module, Problem: true, Message: fmt.Sprintf("refresh token file %s is empty: %s", file, login)})
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		out = append(out, Finding{Module: module, Message: fmt.Sprintf("refresh token file %s can be read by others (mode %04o): the token signs in as the user; chmod 600 it", file, perm)})
	}
	return out
}
