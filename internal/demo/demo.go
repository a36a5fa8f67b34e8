package demo

import (
	"fmt"
	"os"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Password is the password of every demo mailbox and the OAuth client
// secret. It is not a secret (the estate is simulated) but it is handled
// like one, so that a leak of it in any output is a bug the tests catch.
const Password = "Demo-Passw0rd!"

// Mailbox is one mailbox of the demo configuration.
type Mailbox struct {
	// Name is the configured mailbox name, the target Prometheus scrapes.
	Name        string
	Description string
	Labels      map[string]string
	// Lab is the mailbox in the estate: its address, and the Basic
	// account and allowed domains its module gets unless auth says else.
	Lab lab.Mailbox

	// auth replaces the module's Basic credentials; tune changes the
	// module further; expect is the mailbox's expectations.
	auth   *config.Auth
	tune   func(*config.Module)
	expect *probe.Expectations
}

// Demo is a running simulated estate with the configuration file that
// probes it.
type Demo struct {
	Estate *lab.Estate
	// ConfigPath is the configuration file; the CA bundle and password
	// file it names are next to it.
	ConfigPath string
	Mailboxes  []Mailbox
	// Notes say what the demo left out on this machine, and why.
	Notes []string

	dir    string
	inside inside
}

// Start starts the simulated estate with healthy and broken mailboxes and
// writes a configuration for them into a temporary directory. Close
// removes both.
func Start() (*Demo, error) {
	e, err := lab.New()
	if err != nil {
		return nil, fmt.Errorf("starting the simulated estate: %w", err)
	}
	d := &Demo{Estate: e}
	if err := d.build(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Demo) build() error {
	dir, err := os.MkdirTemp("", "autodiscover_exporter-demo-")
	if err != nil {
		return err
	}
	d.dir = dir
	in, notes, err := d.insideMailboxes(dir)
	if err != nil {
		return err
	}
	d.Notes = notes
	for _, en := range append(table(), in...) {
		mb, err := en.build(d.Estate)
		if err != nil {
			return fmt.Errorf("demo mailbox %s: %w", en.Name, err)
		}
		en.Lab = mb
		d.Mailboxes = append(d.Mailboxes, en.Mailbox)
	}
	return d.writeConfig()
}

// Close stops the estate and removes the temporary files.
func (d *Demo) Close() {
	d.inside.close()
	d.Estate.Close()
	if d.dir != "" {
		_ = os.RemoveAll(d.dir)
	}
}
