package demo_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
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
