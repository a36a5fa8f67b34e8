package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
)

// labEstate is a simulated estate with the hybrid, Microsoft 365 and
// SRV-only mailboxes, plus the config file that points the exporter at it.
type labEstate struct {
	estate     *lab.Estate
	configPath string
	password   string
}

// startLab builds the estate and writes a config with one module per
// mailbox (each mailbox has its own credentials and allowed domains).
func startLab(t testing.TB) *labEstate {
	t.Helper()
	e, err := lab.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	const password = "Hunter2-lab-secret"
	hybrid, err := e.AddHybrid("contoso.test", "alice", password)
	if err != nil {
		t.Fatal(err)
	}
	m365, err := e.AddMicrosoft365("fabrikam.test", "bob", password)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := e.AddSRVOnly("srvonly.test", "carol", password)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), e.CA.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "password"), []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("modules:\n")
	for _, m := range []struct {
		name string
		mb   lab.Mailbox
	}{{"hybrid", hybrid}, {"m365", m365}, {"srv", srv}} {
		fmt.Fprintf(&b, "  %s:\n    timeout: 20s\n    step_timeout: 2s\n", m.name)
		fmt.Fprintf(&b, "    dns: {server: %q}\n", e.DNSAddr())
		b.WriteString("    tls: {ca_file: ca.pem}\n")
		fmt.Fprintf(&b, "    auth: {type: basic, username: %q, password_file: password}\n", m.mb.Username)
		if len(m.mb.AllowedDomains) > 0 {
			fmt.Fprintf(&b, "    allowed_domains: [%s]\n", strings.Join(m.mb.AllowedDomains, ", "))
		}
		b.WriteString("    connect_to:\n")
		ct := e.ConnectTo()
		keys := make([]string, 0, len(ct))
		for k := range ct {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "      %q: %q\n", k, ct[k])
		}
	}
	fmt.Fprintf(&b, `mailboxes:
  - name: hybrid-alice
    address: %s
    module: hybrid
    labels: {site: hq, flow: hybrid}
  - name: m365-bob
    address: %s
    module: m365
    labels: {site: cloud}
  - name: srv-carol
    address: %s
    module: srv
  - name: unknown-dave
    address: dave@contoso.test
    module: hybrid
`, hybrid.Address, m365.Address, srv.Address)
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return &labEstate{estate: e, configPath: path, password: password}
}
