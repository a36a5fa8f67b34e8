package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
)

// labEstate is the demo estate as the tests use it.
type labEstate struct {
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
	return &labEstate{estate: d.Estate, configPath: d.ConfigPath, password: demo.Password}
}

// labModule renders a module that reaches the lab estate, with extra YAML
// lines (auth, methods…) indented under it.
func (l *labEstate) labModule(name string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s:\n    timeout: 10s\n    step_timeout: 2s\n    methods: [autodiscover_domain]\n", name)
	b.WriteString(l.estate.ModuleYAML(filepath.Join(filepath.Dir(l.configPath), "lab-ca.pem"), "    "))
	for _, e := range extra {
		fmt.Fprintf(&b, "    %s\n", e)
	}
	return b.String()
}

// writeLabConfig writes a config of the given modules and mailboxes.
func writeLabConfig(t testing.TB, modules, mailboxes string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "custom.yml")
	if err := os.WriteFile(path, []byte("modules:\n"+modules+"mailboxes:\n"+mailboxes), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
