package demo_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

func TestTheDemoConfigurationLoadsAndCloseRemovesIt(t *testing.T) {
	d, err := demo.Start()
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			d.Close()
		}
	}()
	cfg, err := config.Load(d.ConfigPath)
	if err != nil {
		t.Fatalf("the demo configuration does not load: %v", err)
	}
	if len(cfg.Mailboxes) != len(d.Mailboxes) || len(cfg.Modules) != len(d.Mailboxes) {
		t.Errorf("%d mailboxes and %d modules configured for %d demo mailboxes", len(cfg.Mailboxes), len(cfg.Modules), len(d.Mailboxes))
	}
	for _, m := range d.Mailboxes {
		mb, ok := cfg.Mailbox(m.Name)
		if !ok || mb.Module != "demo-"+m.Name || mb.Labels["site"] != m.Labels["site"] {
			t.Errorf("demo mailbox %s configured as %+v (present %v)", m.Name, mb, ok)
		}
	}
	text, err := os.ReadFile(d.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(text), demo.Password) {
		t.Error("the configuration holds the password instead of naming the password file")
	}
	dir := filepath.Dir(d.ConfigPath)
	d.Close()
	closed = true
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Close left %s behind (%v)", dir, err)
	}
}

func TestTheInsideMailboxesNeedSlapdAndAKDCAndSaySoWithout(t *testing.T) {
	d, err := demo.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cfg, err := config.Load(d.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	slapd, _ := lab.SlapdPath()
	kdc, _ := lab.KDCPath()
	sophie, hasSCP := cfg.Mailbox("scp-sophie")
	_, hasKerberos := cfg.Mailbox("kerberos-kai")
	if hasSCP != (slapd != "") || hasKerberos != (kdc != "") {
		t.Errorf("scp mailbox %v with slapd %q, kerberos mailbox %v with krb5kdc %q", hasSCP, slapd, hasKerberos, kdc)
	}
	if want := map[bool]int{true: 0, false: 1}; len(d.Notes) != want[slapd != ""]+want[kdc != ""] {
		t.Errorf("notes %q do not match what is missing", d.Notes)
	}
	if hasSCP {
		m := cfg.Modules[sophie.Module]
		if m.LDAP == nil || m.LDAP.Site == "" || m.Methods[0] != probe.MethodSCP {
			t.Errorf("scp-sophie's module %+v does not read the SCPs of a site", m)
		}
	}
	if len(cfg.Mailboxes) != demo.MailboxCount() {
		t.Errorf("%d mailboxes, MailboxCount says %d", len(cfg.Mailboxes), demo.MailboxCount())
	}
}
