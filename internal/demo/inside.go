package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// The inside view of the demo: forests whose Active Directory holds the
// Autodiscover SCPs (a real slapd each) and a realm whose web servers
// take Kerberos (a real MIT KDC). Machines without those packages get the
// rest of the demo and a note saying what is missing.
const (
	insideSite    = "HQ"
	healthyForest = "inside.test"
	staleForest   = "stale.test"
	kerberosRealm = "KERBEROS.TEST"
	kerberosHost  = "autodiscover.kerberos.test"
)

// The inside mailboxes, by what they need.
var (
	scpMailboxNames      = []string{"scp-sophie", "stalescp-steve"}
	kerberosMailboxNames = []string{"kerberos-kai"}
)

// inside holds the servers of the inside view while the demo runs.
type inside struct {
	dirs []*lab.Directory
	kdc  *lab.KDC
	// ldapPassword is the bind accounts' password, as the demo's
	// password file holds the mailboxes'.
	ldapPassword string
}

func (in *inside) close() {
	for _, d := range in.dirs {
		_ = d.Close()
	}
	if in.kdc != nil {
		_ = in.kdc.Close()
	}
}

// insideMailboxes starts what the inside mailboxes need under dir and
// returns them, with a note for each part the machine cannot run.
func (d *Demo) insideMailboxes(dir string) ([]entry, []string, error) {
	var entries []entry
	var notes []string
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if path, why := lab.SlapdPath(); path == "" {
		notes = append(notes, "The SCP mailboxes ("+strings.Join(scpMailboxNames, ", ")+") are left out: slapd is not installed here ("+why+"; apt-get install slapd).")
	} else {
		healthy, err := d.startForest(ctx, dir, healthyForest, []lab.SCPObject{
			{Name: "EX01", Binding: "https://mail.corp." + healthyForest + "/Autodiscover/Autodiscover.xml", Keywords: []string{"Site=" + insideSite}},
		})
		if err != nil {
			return nil, nil, err
		}
		stale, err := d.startForest(ctx, dir, staleForest, []lab.SCPObject{
			// Left behind by the Exchange 2010 server decommissioned in
			// the migration: still first, for the same site.
			{Name: "EX2010", Binding: "https://ex2010.corp." + staleForest + "/autodiscover/autodiscover.xml", Keywords: []string{"Site=" + insideSite}},
			{Name: "EX01", Binding: "https://mail.corp." + staleForest + "/Autodiscover/Autodiscover.xml"},
		})
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries,
			entry{Mailbox: Mailbox{Name: scpMailboxNames[0], Description: "inside the network: found through the Active Directory SCP of her site, as domain-joined Outlook finds it", Labels: labels("hq", "inside"),
				tune: readSCP(healthyForest, healthy), expect: &probe.Expectations{SCPHosts: []string{"mail.corp." + healthyForest}}},
				build: internalServer(healthyForest, "sophie")},
			entry{Mailbox: Mailbox{Name: scpMailboxNames[1], Description: "inside the network: a stale SCP of the decommissioned Exchange 2010 server comes first and fails; the next SCP answers (AutodiscoverStaleSCP)", Labels: labels("hq", "inside"),
				tune: readSCP(staleForest, stale)},
				build: func(e *lab.Estate) (lab.Mailbox, error) {
					if _, err := e.IPOf("ex2010.corp." + staleForest); err != nil {
						return lab.Mailbox{}, err
					}
					return internalServer(staleForest, "steve")(e)
				}})
	}
	if path, why := lab.KDCPath(); path == "" {
		notes = append(notes, "The Kerberos mailbox ("+strings.Join(kerberosMailboxNames, ", ")+") is left out: krb5kdc is not installed here ("+why+"; apt-get install krb5-kdc krb5-admin-server).")
	} else {
		kdcDir := filepath.Join(dir, "kdc")
		if err := os.Mkdir(kdcDir, 0o700); err != nil {
			return nil, nil, err
		}
		kdc, err := lab.StartKDC(ctx, lab.KDCOptions{Dir: kdcDir, Realm: kerberosRealm, Users: map[string]string{"kai": Password}, Services: []string{"HTTP/" + kerberosHost}})
		if err != nil {
			return nil, nil, fmt.Errorf("starting the demo's KDC: %w", err)
		}
		d.inside.kdc = kdc
		entries = append(entries, entry{Mailbox: Mailbox{Name: kerberosMailboxNames[0], Description: "inside the network: Windows authentication that takes Kerberos only; the exporter answers Negotiate with a ticket from the realm's KDC", Labels: labels("hq", "inside"),
			auth: &config.Auth{Type: probe.AuthKerberos, Username: "kai", PasswordFile: passwordFile, Realm: kerberosRealm, KDCs: []string{kdc.Addr()}},
			tune: func(m *config.Module) { m.Methods = []probe.Method{probe.MethodAutodiscoverDomain} }},
			build: func(e *lab.Estate) (lab.Mailbox, error) {
				kt, err := kdc.Keytab("HTTP/" + kerberosHost)
				if err != nil {
					return lab.Mailbox{}, err
				}
				v, err := lab.NewKerberosVerifier(kt, "HTTP/"+kerberosHost, kerberosRealm)
				if err != nil {
					return lab.Mailbox{}, err
				}
				address := "kai@kerberos.test"
				if _, err := e.AddKerberosAutodiscover(kerberosHost, address, v); err != nil {
					return lab.Mailbox{}, err
				}
				return lab.Mailbox{Address: address}, nil
			}})
	}
	return entries, notes, nil
}

// startForest starts the domain controller of corp.<forest> holding scps
// and publishes it in the estate.
func (d *Demo) startForest(ctx context.Context, dir, forest string, scps []lab.SCPObject) (*lab.Directory, error) {
	dirPath := filepath.Join(dir, "dc-"+forest)
	if err := os.Mkdir(dirPath, 0o700); err != nil {
		return nil, err
	}
	host := "dc1.corp." + forest
	dc, err := lab.StartDirectory(ctx, lab.DirectoryOptions{Dir: dirPath, CA: d.Estate.CA, Host: host, Suffix: "DC=corp,DC=" + forest[:len(forest)-len(".test")] + ",DC=test",
		BindPassword: Password, Objects: scps})
	if err != nil {
		return nil, fmt.Errorf("starting the demo's directory for %s: %w", forest, err)
	}
	d.inside.dirs = append(d.inside.dirs, dc)
	if err := d.Estate.PublishDirectory(host, dc); err != nil {
		return nil, err
	}
	return dc, nil
}

// readSCP makes a module ask the forest's domain controller for the
// SCPs, as a client of the HQ site.
func readSCP(forest string, dc *lab.Directory) func(*config.Module) {
	return func(m *config.Module) {
		m.Methods = []probe.Method{probe.MethodSCP}
		m.LDAP = &config.LDAP{URL: "ldaps://dc1.corp." + forest, BindDN: dc.BindDN(), PasswordFile: passwordFile, Site: insideSite}
	}
}

// internalServer serves user@<forest>'s Autodiscover on the Client
// Access server the forest's SCP names.
func internalServer(forest, user string) func(*lab.Estate) (lab.Mailbox, error) {
	return func(e *lab.Estate) (lab.Mailbox, error) {
		address := user + "@" + forest
		if _, err := e.AddInternalAutodiscover("mail.corp."+forest, address, Password); err != nil {
			return lab.Mailbox{}, err
		}
		return lab.Mailbox{Address: address, Username: address, Password: Password}, nil
	}
}
