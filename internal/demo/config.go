package demo

import (
	"os"
	"path/filepath"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Files next to the demo configuration, named in it relative to it.
const (
	caFile             = "lab-ca.pem"
	passwordFile       = "demo.password"
	refreshTokenSuffix = ".refresh-token"
)

// LabModule is a module that reaches the estate: its DNS server, its CA
// (written at caPath) as the trusted bundle and its connect_to map. Every
// configuration of the simulated estate — the demo's, the tests', the
// benchmarks' — starts from it.
func LabModule(e *lab.Estate, caPath string) *config.Module {
	return &config.Module{
		DNS:       config.DNS{Server: e.DNSAddr()},
		TLS:       config.TLS{CAFile: caPath},
		ConnectTo: e.ConnectTo(),
	}
}

// WriteConfig marshals cfg into path.
func WriteConfig(path string, cfg *config.Config) error {
	data, err := config.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// writeConfig writes the CA, the password file and a config with one
// module per mailbox (each has its own account and allowed domains).
func (d *Demo) writeConfig() error {
	dir := d.dir
	if err := os.WriteFile(filepath.Join(dir, caFile), d.Estate.CA.PEM(), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, passwordFile), []byte(Password+"\n"), 0o600); err != nil {
		return err
	}
	for _, m := range d.Mailboxes {
		if m.auth != nil && m.auth.RefreshTokenFile != "" {
			if err := os.WriteFile(filepath.Join(dir, m.auth.RefreshTokenFile), []byte(m.Lab.RefreshToken+"\n"), 0o600); err != nil {
				return err
			}
		}
	}
	d.ConfigPath = filepath.Join(dir, "demo.yml")
	return WriteConfig(d.ConfigPath, d.config())
}

// config is the demo's configuration; the paths in it are relative to its
// directory.
func (d *Demo) config() *config.Config {
	cfg := &config.Config{Modules: map[string]*config.Module{}}
	for _, m := range d.Mailboxes {
		module := "demo-" + m.Name
		cfg.Modules[module] = d.module(m)
		cfg.Mailboxes = append(cfg.Mailboxes, &config.Mailbox{Name: m.Name, Address: m.Lab.Address, Module: module, Labels: m.Labels, Expect: m.expect})
	}
	return cfg
}

func (d *Demo) module(m Mailbox) *config.Module {
	mod := LabModule(d.Estate, caFile)
	mod.Timeout = config.Duration(20 * time.Second)
	mod.StepTimeout = config.Duration(5 * time.Second)
	mod.Auth = config.Auth{Type: probe.AuthBasic, Username: m.Lab.Username, PasswordFile: passwordFile}
	if m.auth != nil {
		mod.Auth = *m.auth
	}
	mod.AllowedDomains = m.Lab.AllowedDomains
	if m.tune != nil {
		m.tune(mod)
	}
	return mod
}

// Module is LabModule for the demo's estate, with the CA file next to the
// demo's configuration: the start of a custom configuration that reaches
// the same simulated servers.
func (d *Demo) Module() *config.Module { return LabModule(d.Estate, filepath.Join(d.dir, caFile)) }

// BasicAuth is Basic authentication as user with password, which it
// writes into a new file in dir: configurations hold no inline secret.
func BasicAuth(dir, user, password string) (config.Auth, error) {
	f, err := os.CreateTemp(dir, "password-*")
	if err != nil {
		return config.Auth{}, err
	}
	defer f.Close()
	if _, err := f.WriteString(password + "\n"); err != nil {
		return config.Auth{}, err
	}
	return config.Auth{Type: probe.AuthBasic, Username: user, PasswordFile: f.Name()}, nil
}
