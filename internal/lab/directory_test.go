package lab_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
)

// needServer skips a test whose external server is not installed, with the
// reason; under CI=true it fails, because CI installs every one of them.
func needServer(t *testing.T, find func() (string, string)) string {
	t.Helper()
	path, reason := find()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s, and CI must run this test", reason)
		}
		t.Skip(reason)
	}
	return path
}

const testSuffix = "DC=corp,DC=contoso,DC=test"

var scpFilter = fmt.Sprintf("(&(objectClass=serviceConnectionPoint)(|(keywords=%s)(keywords=%s)))", lab.SCPPointerKeyword, lab.SCPURLKeyword)

func startDirectory(t *testing.T, o lab.DirectoryOptions) *lab.Directory {
	t.Helper()
	needServer(t, lab.SlapdPath)
	if o.CA == nil {
		ca, err := lab.NewCA("lab directory CA")
		if err != nil {
			t.Fatal(err)
		}
		o.CA = ca
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Suffix == "" {
		o.Suffix = testSuffix
	}
	if o.BindDN == "" {
		o.BindDN = "CN=svc-monitor,CN=Users," + o.Suffix
		o.BindPassword = "Monitor-1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := lab.StartDirectory(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

func dialLDAPS(t *testing.T, d *lab.Directory) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(d.LDAPSURL(), ldap.DialWithTLSConfig(d.TLSConfig()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	c.SetTimeout(10 * time.Second)
	return c
}

func dialStartTLS(t *testing.T, d *lab.Directory) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(d.LDAPURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	c.SetTimeout(10 * time.Second)
	if err := c.StartTLS(d.TLSConfig()); err != nil {
		t.Fatal(err)
	}
	return c
}

func searchSCPs(c *ldap.Conn, base, filter string) ([]*ldap.Entry, error) {
	res, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		filter, []string{"cn", "keywords", "serviceBindingInformation"}, nil))
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}

func rootDSE(t *testing.T, c *ldap.Conn) *ldap.Entry {
	t.Helper()
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"configurationNamingContext", "defaultNamingContext"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 {
		t.Fatalf("rootDSE: %d entries", len(res.Entries))
	}
	return res.Entries[0]
}

func TestDirectoryServesSCPsLikeActiveDirectory(t *testing.T) {
	d := startDirectory(t, lab.DirectoryOptions{
		Host: "dc1.corp.contoso.test",
		Objects: []lab.SCPObject{
			{Name: "EX01", Binding: "https://ex01.corp.contoso.test/Autodiscover/Autodiscover.xml", Keywords: []string{"Site=Default-First-Site-Name"}},
			{Name: "EX02", Binding: "https://ex02.corp.contoso.test/Autodiscover/Autodiscover.xml", Keywords: []string{"Site=Branch"}},
			{Name: "fabrikam", Binding: "LDAP://dc1.fabrikam.test:389", Keywords: []string{"Domain=fabrikam.test"}, Pointer: true},
		},
	})
	want := map[string]struct {
		binding  string
		keywords []string
	}{
		"EX01":     {"https://ex01.corp.contoso.test/Autodiscover/Autodiscover.xml", []string{lab.SCPURLKeyword, "Site=Default-First-Site-Name"}},
		"EX02":     {"https://ex02.corp.contoso.test/Autodiscover/Autodiscover.xml", []string{lab.SCPURLKeyword, "Site=Branch"}},
		"fabrikam": {"LDAP://dc1.fabrikam.test:389", []string{lab.SCPPointerKeyword, "Domain=fabrikam.test"}},
	}
	if got, wantDN := d.ConfigDN(), "CN=Configuration,"+testSuffix; got != wantDN {
		t.Fatalf("ConfigDN = %q, want %q", got, wantDN)
	}

	for _, tc := range []struct {
		name string
		dial func(*testing.T, *lab.Directory) *ldap.Conn
	}{{"ldaps", dialLDAPS}, {"starttls", dialStartTLS}} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.dial(t, d)
			if st, ok := c.TLSConnectionState(); !ok || !st.HandshakeComplete {
				t.Fatal("no TLS")
			}
			// The rootDSE is readable before binding, as on AD.
			if got := rootDSE(t, c).GetAttributeValue("configurationNamingContext"); got != d.ConfigDN() {
				t.Fatalf("configurationNamingContext = %q, want %q", got, d.ConfigDN())
			}
			if err := c.Bind(d.BindDN(), d.BindPassword()); err != nil {
				t.Fatal(err)
			}
			es, err := searchSCPs(c, d.ConfigDN(), scpFilter)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != len(want) {
				t.Fatalf("%d SCPs, want %d", len(es), len(want))
			}
			for _, e := range es {
				w, ok := want[e.GetAttributeValue("cn")]
				if !ok {
					t.Fatalf("unexpected SCP %s", e.DN)
				}
				if got := e.GetAttributeValue("serviceBindingInformation"); got != w.binding {
					t.Errorf("%s: binding %q, want %q", e.DN, got, w.binding)
				}
				got := e.GetAttributeValues("keywords")
				sort.Strings(got)
				sort.Strings(w.keywords)
				if strings.Join(got, "|") != strings.Join(w.keywords, "|") {
					t.Errorf("%s: keywords %q, want %q", e.DN, got, w.keywords)
				}
			}
			if dn := d.DN("EX01"); !strings.HasPrefix(dn, "CN=EX01,CN=Autodiscover,CN=Protocols,CN=EX01,CN=Servers,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),") {
				t.Errorf("EX01 lives at %q, not where Exchange puts it", dn)
			}

			// AD matches keywords ignoring case, and clients send the
			// GUIDs in either case.
			lower := fmt.Sprintf("(&(objectClass=serviceConnectionPoint)(keywords=%s))", strings.ToLower(lab.SCPURLKeyword))
			es, err = searchSCPs(c, d.ConfigDN(), lower)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 2 {
				t.Fatalf("lower-cased GUID found %d SCPs, want 2", len(es))
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		c := dialLDAPS(t, d)
		err := c.Bind(d.BindDN(), "wrong")
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Fatalf("bind with a wrong password: %v, want invalidCredentials (49)", err)
		}
	})

	t.Run("bind names", func(t *testing.T) {
		c := dialLDAPS(t, d)
		// DNs compare ignoring case, as on AD.
		if err := c.Bind(strings.ToLower(d.BindDN()), d.BindPassword()); err != nil {
			t.Fatal(err)
		}
		// AD takes these; slapd cannot, and says so.
		for _, name := range []string{"svc-monitor@corp.contoso.test", `CORP\svc-monitor`} {
			if err := c.Bind(name, d.BindPassword()); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidDNSyntax) {
				t.Errorf("bind as %s: %v, want invalidDNSyntax (34)", name, err)
			}
		}
	})

	t.Run("anonymous", func(t *testing.T) {
		c := dialLDAPS(t, d)
		es, err := searchSCPs(c, d.ConfigDN(), scpFilter)
		if err == nil && len(es) > 0 {
			t.Fatalf("anonymous search found %d SCPs", len(es))
		}
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform) {
			t.Fatalf("anonymous search: %v, want unwillingToPerform (53)", err)
		}
	})

	t.Run("plain bind allowed by default", func(t *testing.T) {
		c, err := ldap.DialURL(d.LDAPURL())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		if err := c.Bind(d.BindDN(), d.BindPassword()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("add and remove", func(t *testing.T) {
		c := dialLDAPS(t, d)
		if err := c.Bind(d.BindDN(), d.BindPassword()); err != nil {
			t.Fatal(err)
		}
		count := func() int {
			t.Helper()
			es, err := searchSCPs(c, d.ConfigDN(), scpFilter)
			if err != nil {
				t.Fatal(err)
			}
			return len(es)
		}
		if err := d.Add(lab.SCPObject{Name: "EX03", Binding: "https://ex03.corp.contoso.test/Autodiscover/Autodiscover.xml"}); err != nil {
			t.Fatal(err)
		}
		if err := d.Add(lab.SCPObject{Name: "ex03"}); err == nil {
			t.Error("a second SCP named ex03 was added")
		}
		if n := count(); n != 4 {
			t.Fatalf("%d SCPs after Add, want 4", n)
		}
		if err := d.Remove("EX01"); err != nil {
			t.Fatal(err)
		}
		if err := d.Remove("fabrikam"); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 2 {
			t.Fatalf("%d SCPs after Remove, want 2", n)
		}
		if err := d.Remove("EX01"); err == nil {
			t.Error("removing EX01 twice did not fail")
		}
		// The server object went with its SCP, so it can come back.
		if err := d.Add(lab.SCPObject{Name: "EX01", Binding: "https://new.corp.contoso.test/Autodiscover/Autodiscover.xml"}); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 3 {
			t.Fatalf("%d SCPs after re-adding, want 3", n)
		}
	})
}

func TestDirectoryAnonymousAndRequireTLS(t *testing.T) {
	d := startDirectory(t, lab.DirectoryOptions{
		AllowAnonymous: true,
		RequireTLS:     true,
		Objects:        []lab.SCPObject{{Name: "EX01", Binding: "https://ex01.corp.contoso.test/Autodiscover/Autodiscover.xml"}},
	})
	c := dialLDAPS(t, d)
	es, err := searchSCPs(c, d.ConfigDN(), scpFilter)
	if err != nil || len(es) != 1 {
		t.Fatalf("anonymous search with AllowAnonymous: %d entries, %v", len(es), err)
	}
	if err := c.Bind(d.BindDN(), d.BindPassword()); err != nil {
		t.Fatalf("bind over TLS: %v", err)
	}

	if err := dialStartTLS(t, d).Bind(d.BindDN(), d.BindPassword()); err != nil {
		t.Fatalf("bind after StartTLS: %v", err)
	}
	// The lab's own changes go over the local socket, which needs no TLS.
	if err := d.Add(lab.SCPObject{Name: "EX02", Binding: "https://ex02.corp.contoso.test/Autodiscover/Autodiscover.xml"}); err != nil {
		t.Fatal(err)
	}
	if es, err := searchSCPs(c, d.ConfigDN(), scpFilter); err != nil || len(es) != 2 {
		t.Fatalf("after Add: %d entries, %v", len(es), err)
	}

	plain, err := ldap.DialURL(d.LDAPURL())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = plain.Close() }()
	err = plain.Bind(d.BindDN(), d.BindPassword())
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultConfidentialityRequired) {
		t.Fatalf("simple bind in the clear with RequireTLS: %v, want confidentialityRequired (13)", err)
	}
}

func TestDirectoryBulk(t *testing.T) {
	const bulk = 2000
	start := time.Now()
	d := startDirectory(t, lab.DirectoryOptions{
		Bulk:    bulk,
		Objects: []lab.SCPObject{{Name: "EX01", Binding: "https://ex01.corp.contoso.test/Autodiscover/Autodiscover.xml"}},
	})
	took := time.Since(start)
	t.Logf("a directory with %d SCPs started in %v", bulk+1, took)
	if took > 15*time.Second {
		t.Errorf("starting took %v", took)
	}
	c := dialLDAPS(t, d)
	if err := c.Bind(d.BindDN(), d.BindPassword()); err != nil {
		t.Fatal(err)
	}
	es, err := searchSCPs(c, d.ConfigDN(), scpFilter)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != bulk+1 {
		t.Fatalf("%d SCPs, want %d", len(es), bulk+1)
	}
	// A client's own size limit is what stops a hostile directory.
	res, err := c.Search(ldap.NewSearchRequest(d.ConfigDN(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 100, 0, false,
		scpFilter, []string{"cn"}, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		t.Fatalf("search with a size limit of 100: %v", err)
	}
	if res == nil || len(res.Entries) != 100 {
		t.Fatalf("search with a size limit of 100 returned %v", res)
	}
}

func TestDirectoryRefusesBadOptions(t *testing.T) {
	needServer(t, lab.SlapdPath)
	ca, err := lab.NewCA("lab directory CA")
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]lab.DirectoryOptions{
		"no CA":          {Dir: t.TempDir()},
		"duplicate name": {Dir: t.TempDir(), CA: ca, Objects: []lab.SCPObject{{Name: "EX01"}, {Name: "ex01"}}},
		"empty name":     {Dir: t.TempDir(), CA: ca, Objects: []lab.SCPObject{{Binding: "https://x/"}}},
		"bad suffix":     {Dir: t.TempDir(), CA: ca, Suffix: "corp.contoso.test"},
	} {
		d, err := lab.StartDirectory(context.Background(), o)
		if err == nil {
			_ = d.Close()
			t.Errorf("%s: started", name)
		}
	}
}

// The TLS handshake is what a client checks first; a wrong name must fail.
func TestDirectoryCertificateNames(t *testing.T) {
	d := startDirectory(t, lab.DirectoryOptions{Host: "dc1.corp.contoso.test"})
	for _, name := range []string{"dc1.corp.contoso.test", "127.0.0.1"} {
		cfg := d.TLSConfig()
		cfg.ServerName = name
		c, err := ldap.DialURL(d.LDAPSURL(), ldap.DialWithTLSConfig(cfg))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = c.Close()
	}
	cfg := d.TLSConfig()
	cfg.ServerName = "dc2.corp.contoso.test"
	c, err := ldap.DialURL(d.LDAPSURL(), ldap.DialWithTLSConfig(cfg))
	var verr *tls.CertificateVerificationError
	if err == nil {
		_ = c.Close()
		t.Fatal("a wrong server name was accepted")
	} else if !errors.As(err, &verr) {
		t.Logf("wrong name: %v", err)
	}
}
