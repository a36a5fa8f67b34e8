package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// writeConfig writes the CA, the password file and a config with one
// module per mailbox (each has its own account and allowed domains).
func (d *Demo) writeConfig() error {
	dir, err := os.MkdirTemp("", "autodiscover_exporter-demo-")
	if err != nil {
		return err
	}
	d.dir = dir
	if err := os.WriteFile(filepath.Join(dir, "lab-ca.pem"), d.Estate.CA.PEM(), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "demo.password"), []byte(Password+"\n"), 0o600); err != nil {
		return err
	}
	d.ConfigPath = filepath.Join(dir, "demo.yml")
	return os.WriteFile(d.ConfigPath, []byte(d.render()), 0o600)
}

// render is the configuration file; the paths in it are relative to its
// directory.
func (d *Demo) render() string {
	reach := d.Estate.ModuleYAML("lab-ca.pem", "    ")
	var b strings.Builder
	b.WriteString("# Demo configuration: every host below is simulated on loopback.\nmodules:\n")
	for _, m := range d.Mailboxes {
		writeModule(&b, m, reach)
	}
	b.WriteString("mailboxes:\n")
	for _, m := range d.Mailboxes {
		writeMailbox(&b, m)
	}
	return b.String()
}

func writeModule(b *strings.Builder, m Mailbox, reach string) {
	fmt.Fprintf(b, "  demo-%s:\n    timeout: 20s\n    step_timeout: 5s\n", m.Name)
	b.WriteString(reach)
	if m.auth != "" {
		fmt.Fprintf(b, "    auth: %s\n", m.auth)
	} else {
		fmt.Fprintf(b, "    auth: {type: basic, username: %q, password_file: demo.password}\n", m.Lab.Username)
	}
	for _, line := range m.module {
		fmt.Fprintf(b, "    %s\n", line)
	}
	if len(m.Lab.AllowedDomains) > 0 {
		fmt.Fprintf(b, "    allowed_domains: [%s]\n", strings.Join(m.Lab.AllowedDomains, ", "))
	}
}

func writeMailbox(b *strings.Builder, m Mailbox) {
	fmt.Fprintf(b, "  # %s\n  - name: %s\n    address: %s\n    module: demo-%s\n", m.Description, m.Name, m.Lab.Address, m.Name)
	if m.expect != "" {
		fmt.Fprintf(b, "    expect: %s\n", m.expect)
	}
	if len(m.Labels) == 0 {
		return
	}
	keys := make([]string, 0, len(m.Labels))
	for k := range m.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("    labels: {")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%s: %s", k, m.Labels[k])
	}
	b.WriteString("}\n")
}
