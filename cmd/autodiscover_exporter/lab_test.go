package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// labEstate is the demo estate as the tests use it.
type labEstate struct {
	demo       *demo.Demo
	estate     *lab.Estate
	configPath string
	password   string
}

// startLab starts the demo's simulated estate and its configuration:
// healthy hybrid, Microsoft 365, SRV-only and expiring mailboxes, and the
// broken ones (expired certificate, redirect loop, error 500).
func startLab(t testing.TB) *labEstate {
	t.Helper()
	d, err := demo.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return &labEstate{demo: d, estate: d.Estate, configPath: d.ConfigPath, password: demo.Password}
}

// labModule is a module that reaches the lab estate and tries
// autodiscover.<domain> only, with short timeouts.
func (l *labEstate) labModule() *config.Module {
	m := l.demo.Module()
	m.Timeout = config.Duration(10 * time.Second)
	m.StepTimeout = config.Duration(2 * time.Second)
	m.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	return m
}

// basicModule is labModule with Basic credentials of user.
func (l *labEstate) basicModule(t testing.TB, user, password string) *config.Module {
	t.Helper()
	auth, err := demo.BasicAuth(t.TempDir(), user, password)
	if err != nil {
		t.Fatal(err)
	}
	m := l.labModule()
	m.Auth = auth
	return m
}

// writeLabConfig writes a config of the given modules and mailboxes.
func writeLabConfig(t testing.TB, modules map[string]*config.Module, mailboxes ...*config.Mailbox) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "custom.yml")
	if err := demo.WriteConfig(path, &config.Config{Modules: modules, Mailboxes: mailboxes}); err != nil {
		t.Fatal(err)
	}
	return path
}
