package main

import (
	"testing"

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
	d, err := startDemo()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return &labEstate{estate: d.estate, configPath: d.configPath, password: demoPassword}
}
