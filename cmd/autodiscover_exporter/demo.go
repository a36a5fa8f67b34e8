package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
)

// demoPassword is the password of every demo mailbox. It is not a secret
// (the estate is simulated) but it is handled like one: it must never show.
const demoPassword = "Demo-Passw0rd!"

// demoMailbox is one mailbox of the demo configuration.
type demoMailbox struct {
	name        string
	mailbox     lab.Mailbox
	labels      map[string]string
	description string
	// auth replaces the module's Basic credentials (a YAML flow mapping);
	// module adds lines to the module; expect is the mailbox's expect block.
	auth   string
	module []string
	expect string
}

// demo is a running simulated estate with the config file that probes it.
type demo struct {
	estate     *lab.Estate
	dir        string
	configPath string
	mailboxes  []demoMailbox
}

// startDemo starts the simulated estate with healthy and broken mailboxes
// and writes a configuration for them into a temporary directory.
func startDemo() (*demo, error) {
	e, err := lab.New()
	if err != nil {
		return nil, fmt.Errorf("starting the simulated estate: %w", err)
	}
	d := &demo{estate: e}
	if err := d.build(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *demo) build() error {
	e := d.estate
	add := func(name, description string, labels map[string]string, mb lab.Mailbox, err error) error {
		if err != nil {
			return fmt.Errorf("demo mailbox %s: %w", name, err)
		}
		d.mailboxes = append(d.mailboxes, demoMailbox{name: name, mailbox: mb, labels: labels, description: description})
		return nil
	}
	last := func() *demoMailbox { return &d.mailboxes[len(d.mailboxes)-1] }
	mb, err := e.AddHybrid("contoso.test", "alice", demoPassword)
	if err := add("hybrid-alice", "hybrid: the domain root shows a web host's certificate, on-premises redirects to Exchange Online", map[string]string{"site": "hq", "flow": "hybrid"}, mb, err); err != nil {
		return err
	}
	last().expect = "{endpoint_host: " + lab.CloudPod + ", ews_url_host: outlook." + lab.CloudDomain + ", max_redirects: 3, protocols: [EXCH, EXPR], cert_min_days: 14}"
	mb, err = e.AddMicrosoft365("fabrikam.test", "bob", demoPassword)
	if err := add("m365-bob", "Microsoft 365: HTTP redirect method to the front door, redirectUrl to a pod", map[string]string{"site": "cloud", "flow": "m365"}, mb, err); err != nil {
		return err
	}
	mb, err = e.AddSRVOnly("srvonly.test", "carol", demoPassword)
	if err := add("srv-carol", "found only through its DNS SRV record", map[string]string{"site": "branch", "flow": "srv"}, mb, err); err != nil {
		return err
	}
	soon := time.Now().Add(10 * 24 * time.Hour)
	mb, _, err = e.AddOnPremises("expiring.test", "frank", demoPassword,
		lab.WithCert(lab.CertSpec{Names: []string{"autodiscover.expiring.test"}, NotAfter: soon}))
	if err := add("expiring-frank", "healthy, but the certificate expires in 10 days", map[string]string{"site": "hq", "flow": "onprem"}, mb, err); err != nil {
		return err
	}
	past := time.Now().Add(-72 * time.Hour)
	mb, _, err = e.AddOnPremises("expired.test", "dave", demoPassword,
		lab.WithCert(lab.CertSpec{Names: []string{"autodiscover.expired.test"}, NotBefore: past.AddDate(-1, 0, 0), NotAfter: past}))
	if err := add("expired-dave", "broken: the autodiscover host's certificate expired three days ago", map[string]string{"site": "branch", "flow": "onprem"}, mb, err); err != nil {
		return err
	}
	mb, _, err = e.AddOnPremises("lapsing.test", "ivan", demoPassword,
		lab.WithCert(lab.CertSpec{Names: []string{"autodiscover.lapsing.test"}, NotAfter: time.Now().Add(3 * 24 * time.Hour)}))
	if err := add("expiring-ivan", "healthy, but the certificate expires in 3 days", map[string]string{"site": "branch", "flow": "onprem"}, mb, err); err != nil {
		return err
	}
	mb, err = e.AddLongChain("chain.test", "judy", demoPassword, 6)
	if err := add("longchain-judy", "works, but six redirectUrl hops deep where at most three are expected", map[string]string{"site": "hq", "flow": "onprem"}, mb, err); err != nil {
		return err
	}
	last().expect = "{max_redirects: 3}"
	mb, err = e.AddMigrating("migrating.test", "hank", demoPassword)
	if err := add("migrating-hank", "half-migrated: the load balancer's nodes disagree, one answers on premises, one redirects to the new server", map[string]string{"site": "hq", "flow": "migration"}, mb, err); err != nil {
		return err
	}
	mb, err = e.AddRedirectLoop("loop.test", "erin", demoPassword)
	if err := add("loop-erin", "broken: two servers send the client back and forth with redirectUrl", map[string]string{"site": "branch", "flow": "onprem"}, mb, err); err != nil {
		return err
	}
	mb, ad, err := e.AddOnPremises("retired.test", "gina", demoPassword)
	if err == nil {
		// The mailbox was removed after a migration: Exchange answers 500.
		ad.SetUser(mb.Address, lab.Reply{ErrorCode: "500", ErrorMessage: "The email address can't be found."})
	}
	if err := add("retired-gina", "broken: the server answers Autodiscover error 500, the address can't be found", map[string]string{"site": "hq", "flow": "onprem"}, mb, err); err != nil {
		return err
	}
	if err := d.addRealEstates(); err != nil {
		return err
	}
	return d.writeConfig()
}

// addRealEstates adds what real estates need beyond Basic: NTLM, OAuth2
// against a token endpoint, Autodiscover v2, and a name with a dead and a
// stale node behind it checked address by address.
func (d *demo) addRealEstates() error {
	e := d.estate
	nina, err := e.AddNTLMOnly("ntlm.test", "CONTOSO", "nina", demoPassword)
	if err != nil {
		return err
	}
	d.mailboxes = append(d.mailboxes, demoMailbox{name: "ntlm-nina", mailbox: nina,
		description: "on premises with NTLM only, as most Exchange servers are configured",
		labels:      map[string]string{"site": "hq", "flow": "onprem"},
		auth:        `{type: ntlm, username: 'CONTOSO\nina', password_file: demo.password}`})

	olga, _, err := e.AddOAuth2Only("cloudonly.test", "olga", "demo-app", demoPassword)
	if err != nil {
		return err
	}
	d.mailboxes = append(d.mailboxes, demoMailbox{name: "oauth-olga", mailbox: olga,
		description: "OAuth2 only: an app-only token from the token endpoint answers the Bearer challenge",
		labels:      map[string]string{"site": "cloud", "flow": "oauth"},
		auth:        `{type: oauth2, client_id: demo-app, client_secret_file: demo.password, token_url: "https://login.lab.test/demo-tenant/oauth2/v2.0/token"}`})

	quinn, err := e.AddV2("v2.test", "quinn", "outlook.v2cloud.test")
	if err != nil {
		return err
	}
	d.mailboxes = append(d.mailboxes, demoMailbox{name: "v2-quinn", mailbox: quinn,
		description: "Exchange Online through Autodiscover v2 (autodiscover.json), anonymously",
		labels:      map[string]string{"site": "cloud", "flow": "v2"},
		auth:        "{type: none}",
		module:      []string{"methods: [v2_json]", "v2: {hosts: [outlook.v2cloud.test], protocols: [Ews, ActiveSync, AutodiscoverV1]}"}})

	oscar, err := e.AddDegradedPool("pool.test", "oscar", demoPassword, time.Now().Add(15*24*time.Hour))
	if err != nil {
		return err
	}
	d.mailboxes = append(d.mailboxes, demoMailbox{name: "pool-oscar", mailbox: oscar,
		description: "works through the first node; check_all_addresses shows a dead node and one whose certificate expires in 15 days",
		labels:      map[string]string{"site": "hq", "flow": "onprem"},
		module:      []string{"check_all_addresses: true"}})
	return nil
}

// writeConfig writes the CA, the password file and a config with one
// module per mailbox (each has its own account and allowed domains).
func (d *demo) writeConfig() error {
	dir, err := os.MkdirTemp("", "autodiscover_exporter-demo-")
	if err != nil {
		return err
	}
	d.dir = dir
	if err := os.WriteFile(filepath.Join(dir, "lab-ca.pem"), d.estate.CA.PEM(), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "demo.password"), []byte(demoPassword+"\n"), 0o600); err != nil {
		return err
	}
	reach := d.estate.ModuleYAML("lab-ca.pem", "    ")
	var b strings.Builder
	b.WriteString("# Demo configuration: every host below is simulated on loopback.\nmodules:\n")
	for _, m := range d.mailboxes {
		fmt.Fprintf(&b, "  demo-%s:\n    timeout: 20s\n    step_timeout: 5s\n", m.name)
		b.WriteString(reach)
		if m.auth != "" {
			fmt.Fprintf(&b, "    auth: %s\n", m.auth)
		} else {
			fmt.Fprintf(&b, "    auth: {type: basic, username: %q, password_file: demo.password}\n", m.mailbox.Username)
		}
		for _, line := range m.module {
			fmt.Fprintf(&b, "    %s\n", line)
		}
		if len(m.mailbox.AllowedDomains) > 0 {
			fmt.Fprintf(&b, "    allowed_domains: [%s]\n", strings.Join(m.mailbox.AllowedDomains, ", "))
		}
	}
	b.WriteString("mailboxes:\n")
	for _, m := range d.mailboxes {
		fmt.Fprintf(&b, "  # %s\n  - name: %s\n    address: %s\n    module: demo-%s\n", m.description, m.name, m.mailbox.Address, m.name)
		if m.expect != "" {
			fmt.Fprintf(&b, "    expect: %s\n", m.expect)
		}
		if len(m.labels) > 0 {
			b.WriteString("    labels: {")
			lk := make([]string, 0, len(m.labels))
			for k := range m.labels {
				lk = append(lk, k)
			}
			sort.Strings(lk)
			for i, k := range lk {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%s: %s", k, m.labels[k])
			}
			b.WriteString("}\n")
		}
	}
	d.configPath = filepath.Join(dir, "demo.yml")
	return os.WriteFile(d.configPath, []byte(b.String()), 0o600)
}

// Close stops the estate and removes the temporary files.
func (d *demo) Close() {
	d.estate.Close()
	if d.dir != "" {
		_ = os.RemoveAll(d.dir)
	}
}

// warmUp probes every mailbox now and then every interval, so a demo
// shows a populated landing page before Prometheus scrapes anything.
func (ex *exporter) warmUp(ctx context.Context, interval time.Duration) {
	probeAll := func() {
		cfg := ex.config()
		for _, mb := range cfg.Mailboxes {
			mod, ok := cfg.Module(mb.Module)
			if !ok {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, time.Duration(mod.Timeout))
			ex.probeMailbox(pctx, mb, mb.Module, mod)
			cancel()
		}
	}
	probeAll()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			probeAll()
		}
	}
}
