package lab

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// The keywords Exchange stamps on its service connection points: a URL SCP
// names an Autodiscover endpoint, a pointer SCP names another directory to
// search (MS-OXDSCLI 2.2.1).
const (
	SCPURLKeyword     = "77378F46-2C66-4aa9-A6A6-3E7A48B19596"
	SCPPointerKeyword = "67661d7F-8FC4-4fa7-BFAC-E1D7794C1F68"
)

// exchangeAdminGroup is the administrative group every Exchange 2007 and
// later server lives in, whatever the organisation.
const exchangeAdminGroup = "Exchange Administrative Group (FYDIBOHF23SPDLT)"

// SlapdPath returns the slapd binary, or "" and a reason when it, the mdb
// backend or the core schema is missing.
func SlapdPath() (string, string) {
	p, err := exec.LookPath("slapd")
	if err != nil {
		p = "/usr/sbin/slapd"
		if _, err := os.Stat(p); err != nil {
			return "", "slapd is not installed (Debian: apt-get install slapd)"
		}
	}
	if coreSchemaPath() == "" {
		return "", "OpenLDAP's core.schema was not found next to slapd"
	}
	return p, ""
}

func coreSchemaPath() string {
	for _, p := range []string{"/etc/ldap/schema/core.schema", "/etc/openldap/schema/core.schema", "/usr/local/etc/openldap/schema/core.schema"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// mdbModuleDir is where back_mdb is found as a loadable module; "" means
// the distribution links it into slapd.
func mdbModuleDir() string {
	for _, d := range []string{"/usr/lib/ldap", "/usr/lib/openldap", "/usr/lib64/openldap", "/usr/libexec/openldap", "/usr/local/libexec/openldap"} {
		if _, err := os.Stat(filepath.Join(d, "back_mdb.la")); err == nil {
			return d
		}
		if _, err := os.Stat(filepath.Join(d, "back_mdb.so")); err == nil {
			return d
		}
	}
	return ""
}

// SCPObject is one serviceConnectionPoint.
type SCPObject struct {
	// Name is the CN of the object (e.g. "EX01"). A URL SCP is placed
	// where Exchange puts it, under the server object of that name:
	// CN=<Name>,CN=Autodiscover,CN=Protocols,CN=<Name>,CN=Servers,
	// CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative
	// Groups,CN=<Org>,CN=Microsoft Exchange,CN=Services,<ConfigDN>. A
	// pointer is placed where Export-AutodiscoverConfig puts it:
	// CN=<Name>,CN=Microsoft Exchange Autodiscover,CN=Services,<ConfigDN>.
	Name string
	// Binding is serviceBindingInformation: an https Autodiscover URL,
	// or for a pointer an LDAP URI "LDAP://host:port". Empty leaves the
	// attribute out, as a half-configured server does.
	Binding string
	// Keywords besides the GUID: "Site=Default-First-Site-Name",
	// "Domain=contoso.com", …
	Keywords []string
	// Pointer stamps SCPPointerKeyword instead of SCPURLKeyword.
	Pointer bool
}

// DirectoryOptions configures StartDirectory.
type DirectoryOptions struct {
	// Dir holds the database, configuration, certificates and socket;
	// a t.TempDir() is right. Required.
	Dir string
	// CA issues the server certificate. Required.
	CA *CA
	// Host is the name the certificate carries besides 127.0.0.1.
	// Default "dc1.corp.contoso.test".
	Host string
	// Suffix is the domain's naming context. Default
	// "DC=corp,DC=contoso,DC=test"; the configuration partition is
	// "CN=Configuration,"+Suffix.
	Suffix string
	// Org is the Exchange organisation's name. Default "Contoso".
	Org string
	// BindDN and BindPassword are an account that may bind and read.
	// Default "CN=svc-monitor,CN=Users,"+Suffix with password "Passw0rd!".
	// Only DNs bind: slapd refuses a UPN or DOMAIN\user name with
	// invalidDNSyntax (34) before anything could map it.
	BindDN, BindPassword string
	// AllowAnonymous lets anonymous clients read the directory. Without
	// it an anonymous search of the directory fails with
	// unwillingToPerform (53, "authentication required"), where AD
	// answers operationsError (1, "a successful bind must be
	// completed"); the rootDSE stays readable, as on AD.
	AllowAnonymous bool
	// RequireTLS refuses simple binds on a connection without TLS
	// (confidentialityRequired, 13), as a DC that enforces LDAP signing
	// and channel binding refuses them (strongerAuthRequired, 8). Default
	// off: a DC out of the box takes simple binds in the clear.
	RequireTLS bool
	// Objects are loaded before the server starts.
	Objects []SCPObject
	// Bulk adds that many URL SCPs named SCPnnnn binding
	// https://scpnnnn.<Host>/autodiscover/autodiscover.xml, to play a
	// directory with thousands.
	Bulk int
}

// Directory is a real OpenLDAP slapd shaped like an Active Directory domain
// controller as far as Autodiscover clients look: a rootDSE naming the
// configuration partition and serviceConnectionPoint objects under it.
type Directory struct {
	o         DirectoryOptions
	configDN  string
	rootDN    string
	rootPW    string
	ldapAddr  string
	ldapsAddr string
	socket    string
	sockDir   string // a short directory made for the socket, removed on Close
	proc      *labProcess

	mu      sync.Mutex
	objects map[string]string // lower-cased name → DN
}

// StartDirectory writes a slapd configuration and database under o.Dir,
// loads the objects and starts slapd on loopback. ctx bounds the start
// only: slapd runs until Close.
func StartDirectory(ctx context.Context, o DirectoryOptions) (*Directory, error) {
	slapd, reason := SlapdPath()
	if slapd == "" {
		return nil, errors.New(reason)
	}
	if o.Dir == "" || o.CA == nil {
		return nil, errors.New("directory: Dir and CA are required")
	}
	if o.Host == "" {
		o.Host = "dc1.corp.contoso.test"
	}
	if o.Suffix == "" {
		o.Suffix = "DC=corp,DC=contoso,DC=test"
	}
	if o.Org == "" {
		o.Org = "Contoso"
	}
	if o.BindDN == "" {
		o.BindDN = "CN=svc-monitor,CN=Users," + o.Suffix
		if o.BindPassword == "" {
			o.BindPassword = "Passw0rd!"
		}
	}
	if o.BindPassword == "" {
		// An empty password makes a simple bind anonymous (RFC 4513 5.1.2).
		return nil, errors.New("directory: BindPassword is required with BindDN")
	}
	if _, err := ldap.ParseDN(o.Suffix); err != nil {
		return nil, fmt.Errorf("directory: suffix %q: %w", o.Suffix, err)
	}
	if !strings.HasSuffix(strings.ToLower(o.BindDN), ","+strings.ToLower(o.Suffix)) {
		return nil, fmt.Errorf("directory: bind DN %q is not under %q", o.BindDN, o.Suffix)
	}
	d := &Directory{
		o:        o,
		configDN: "CN=Configuration," + o.Suffix,
		rootDN:   "CN=lab-root," + o.Suffix,
		rootPW:   randomHex(),
		objects:  map[string]string{},
	}
	if err := d.writeFiles(); err != nil {
		return nil, err
	}
	if err := d.load(ctx, slapd); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		err := d.start(ctx, slapd)
		if err == nil {
			return d, nil
		}
		lastErr = err
		// Another process may take a port between picking and binding.
		if !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			break
		}
	}
	d.removeSockDir()
	return nil, lastErr
}

var errPortTaken = errors.New("port taken")

func (d *Directory) writeFiles() error {
	dir := d.o.Dir
	// A directory started again in the same Dir starts afresh.
	if err := os.RemoveAll(filepath.Join(dir, "db")); err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	cert, err := d.o.CA.Issue(CertSpec{Names: []string{d.o.Host, "127.0.0.1"}})
	if err != nil {
		return fmt.Errorf("directory: issuing the LDAP certificate: %w", err)
	}
	ldif, err := d.initialLDIF()
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return fmt.Errorf("directory: encoding the LDAP key: %w", err)
	}
	files := map[string][]byte{
		"ca.pem":       d.o.CA.PEM(),
		"ldap.pem":     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		"ldap.key":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		"ad.schema":    []byte(adSchema),
		"rootdse.ldif": []byte(d.rootDSE()),
		"slapd.conf":   []byte(d.config()),
		"load.ldif":    ldif,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return fmt.Errorf("directory: writing %s: %w", name, err)
		}
	}
	return nil
}

// adSchema is the part of Active Directory's schema an Autodiscover client
// reads, with AD's OIDs where AD has them. AD defines no schema for the
// rootDSE's naming-context attributes, so those take UUID-derived OIDs
// (X.667, arc 2.25) that cannot clash with anyone's.
const adSchema = `# The Active Directory attributes and classes an Autodiscover client reads.
attributetype ( 1.2.840.113556.1.4.48 NAME 'keywords'
	EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.2.840.113556.1.4.1481 NAME 'serviceBindingInformation'
	EQUALITY caseExactMatch SUBSTR caseExactSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.2.840.113556.1.4.619 NAME 'dNSHostName'
	EQUALITY caseIgnoreMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 2.25.236370372592390871424866745418962883418.1 NAME 'configurationNamingContext'
	DESC 'AD rootDSE: the configuration partition; AD has no schema OID for it'
	EQUALITY distinguishedNameMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 SINGLE-VALUE )
attributetype ( 2.25.236370372592390871424866745418962883418.2 NAME 'defaultNamingContext'
	DESC 'AD rootDSE: the domain partition; AD has no schema OID for it'
	EQUALITY distinguishedNameMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 SINGLE-VALUE )
attributetype ( 2.25.236370372592390871424866745418962883418.3 NAME 'rootDomainNamingContext'
	DESC 'AD rootDSE: the forest root domain; AD has no schema OID for it'
	EQUALITY distinguishedNameMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.67 NAME 'domainDNS' SUP top STRUCTURAL
	MUST dc MAY description )
objectclass ( 1.2.840.113556.1.3.23 NAME 'container' SUP top STRUCTURAL
	MUST cn MAY description )
objectclass ( 1.2.840.113556.1.5.126 NAME 'serviceConnectionPoint' SUP top STRUCTURAL
	MUST cn MAY ( keywords $ serviceBindingInformation $ description ) )
`

func (d *Directory) rootDSE() string {
	var b strings.Builder
	b.WriteString("dn:\n")
	ldifAttr(&b, "configurationNamingContext", d.configDN)
	ldifAttr(&b, "defaultNamingContext", d.o.Suffix)
	ldifAttr(&b, "rootDomainNamingContext", d.o.Suffix)
	ldifAttr(&b, "dNSHostName", d.o.Host)
	return b.String()
}

func (d *Directory) config() string {
	dir := d.o.Dir
	q := func(s string) string { return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"` }
	var b strings.Builder
	fmt.Fprintf(&b, "include %s\ninclude %s\n", q(coreSchemaPath()), q(filepath.Join(dir, "ad.schema")))
	fmt.Fprintf(&b, "pidfile %s\nargsfile %s\n", q(filepath.Join(dir, "slapd.pid")), q(filepath.Join(dir, "slapd.args")))
	if m := mdbModuleDir(); m != "" {
		fmt.Fprintf(&b, "modulepath %s\nmoduleload back_mdb\n", q(m))
	}
	fmt.Fprintf(&b, "TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n",
		q(filepath.Join(dir, "ca.pem")), q(filepath.Join(dir, "ldap.pem")), q(filepath.Join(dir, "ldap.key")))
	fmt.Fprintf(&b, "rootDSE %s\n", q(filepath.Join(dir, "rootdse.ldif")))
	// The client is what caps a hostile directory's answer, so the server
	// must not.
	b.WriteString("sizelimit unlimited\ntimelimit unlimited\n")
	if d.o.RequireTLS {
		// 71 is the strength slapd gives ldapi://, so the lab's own
		// changes over the socket still bind; TLS gives 128 or more.
		b.WriteString("security simple_bind=71\n")
	}
	// No access lines before the database: the rootDSE stays readable by
	// all, as on AD.
	b.WriteString("\ndatabase mdb\n")
	fmt.Fprintf(&b, "suffix %s\nrootdn %s\nrootpw %s\n", q(d.o.Suffix), q(d.rootDN), q(sshaHash(d.rootPW)))
	fmt.Fprintf(&b, "directory %s\n", q(filepath.Join(dir, "db")))
	// mdb maps this much address space, sparse on disk; the default 10 MiB
	// is too little for a Bulk of thousands.
	b.WriteString("maxsize 1073741824\n")
	b.WriteString("sizelimit unlimited\ntimelimit unlimited\n")
	b.WriteString("index objectClass eq\nindex cn eq\nindex keywords eq\n")
	if !d.o.AllowAnonymous {
		b.WriteString("require authc\n")
	}
	readers := "by users read\n\tby * none\n"
	if d.o.AllowAnonymous {
		readers = "by * read\n"
	}
	b.WriteString("access to attrs=userPassword\n\tby anonymous auth\n\tby * none\n")
	b.WriteString("access to *\n\t" + readers)
	return b.String()
}

// sshaHash is slappasswd's default {SSHA}: SHA-1 over password and salt,
// followed by the salt.
func sshaHash(password string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	h := sha1.New()
	h.Write([]byte(password))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}

// ldifEntry is one LDIF record in the order slapadd needs: parents first.
type ldifEntry struct {
	dn    string
	attrs [][2]string
}

func (e ldifEntry) ldif(b *strings.Builder) {
	ldifAttr(b, "dn", e.dn)
	for _, a := range e.attrs {
		ldifAttr(b, a[0], a[1])
	}
	b.WriteString("\n")
}

func (e ldifEntry) request() *ldap.AddRequest {
	r := ldap.NewAddRequest(e.dn, nil)
	vals := map[string][]string{}
	var order []string
	for _, a := range e.attrs {
		if _, ok := vals[a[0]]; !ok {
			order = append(order, a[0])
		}
		vals[a[0]] = append(vals[a[0]], a[1])
	}
	for _, k := range order {
		r.Attribute(k, vals[k])
	}
	return r
}

// ldifAttr writes one attribute line, base64 when RFC 2849 says the value
// is not safe to write as is.
func ldifAttr(b *strings.Builder, name, value string) {
	safe := value == "" || (value[0] != ' ' && value[0] != ':' && value[0] != '<' && value[len(value)-1] != ' ')
	for i := 0; safe && i < len(value); i++ {
		if c := value[i]; c < 0x20 || c > 0x7e {
			safe = false
		}
	}
	if safe {
		if value == "" {
			fmt.Fprintf(b, "%s:\n", name)
		} else {
			fmt.Fprintf(b, "%s: %s\n", name, value)
		}
		return
	}
	fmt.Fprintf(b, "%s:: %s\n", name, base64.StdEncoding.EncodeToString([]byte(value)))
}

func adContainer(dn, cn string) ldifEntry {
	return ldifEntry{dn: dn, attrs: [][2]string{{"objectClass", "top"}, {"objectClass", "container"}, {"cn", cn}}}
}

func (d *Directory) exchangeDN() string {
	return "CN=Microsoft Exchange,CN=Services," + d.configDN
}

func (d *Directory) serversDN() string {
	return "CN=Servers,CN=" + exchangeAdminGroup + ",CN=Administrative Groups,CN=" + ldap.EscapeDN(d.o.Org) + "," + d.exchangeDN()
}

func (d *Directory) pointersDN() string {
	return "CN=Microsoft Exchange Autodiscover,CN=Services," + d.configDN
}

// baseEntries are the domain, the bind account and the containers down to
// the places SCPs live.
func (d *Directory) baseEntries() ([]ldifEntry, error) {
	suffix, err := ldap.ParseDN(d.o.Suffix)
	if err != nil || len(suffix.RDNs) == 0 || len(suffix.RDNs[0].Attributes) == 0 {
		return nil, fmt.Errorf("directory: suffix %q is not a DN", d.o.Suffix)
	}
	first := suffix.RDNs[0].Attributes[0]
	if !strings.EqualFold(first.Type, "dc") {
		return nil, fmt.Errorf("directory: suffix %q must start with DC=", d.o.Suffix)
	}
	es := []ldifEntry{{dn: d.o.Suffix, attrs: [][2]string{{"objectClass", "top"}, {"objectClass", "domainDNS"}, {"dc", first.Value}}}}
	org := ldap.EscapeDN(d.o.Org)
	for _, c := range []struct{ dn, cn string }{
		{"CN=Users," + d.o.Suffix, "Users"},
		{d.configDN, "Configuration"},
		{"CN=Services," + d.configDN, "Services"},
		{d.pointersDN(), "Microsoft Exchange Autodiscover"},
		{d.exchangeDN(), "Microsoft Exchange"},
		{"CN=" + org + "," + d.exchangeDN(), d.o.Org},
		{"CN=Administrative Groups,CN=" + org + "," + d.exchangeDN(), "Administrative Groups"},
		{"CN=" + exchangeAdminGroup + ",CN=Administrative Groups,CN=" + org + "," + d.exchangeDN(), exchangeAdminGroup},
		{d.serversDN(), "Servers"},
	} {
		es = append(es, adContainer(c.dn, c.cn))
	}
	bind, err := ldap.ParseDN(d.o.BindDN)
	if err != nil || len(bind.RDNs) == 0 || len(bind.RDNs[0].Attributes) == 0 {
		return nil, fmt.Errorf("directory: bind DN %q is not a DN", d.o.BindDN)
	}
	cn := bind.RDNs[0].Attributes[0].Value
	// Any containers between the suffix and the account, e.g. an OU the
	// caller chose, are made as containers too.
	parents := len(bind.RDNs) - len(suffix.RDNs) - 1
	for i := parents; i >= 1; i-- {
		dn := dnFrom(bind.RDNs[i:])
		if strings.EqualFold(dn, "CN=Users,"+d.o.Suffix) {
			continue
		}
		es = append(es, adContainer(dn, bind.RDNs[i].Attributes[0].Value))
	}
	es = append(es, ldifEntry{dn: d.o.BindDN, attrs: [][2]string{
		{"objectClass", "top"}, {"objectClass", "person"}, {"cn", cn}, {"sn", cn},
		{"userPassword", sshaHash(d.o.BindPassword)},
	}})
	return es, nil
}

func dnFrom(rdns []*ldap.RelativeDN) string {
	parts := make([]string, len(rdns))
	for i, r := range rdns {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// scpEntries are an SCP and, for a URL SCP, the server object and
// containers Exchange puts above it.
func (d *Directory) scpEntries(o SCPObject) (dn string, es []ldifEntry, err error) {
	if o.Name == "" {
		return "", nil, errors.New("directory: an SCP needs a Name")
	}
	name := ldap.EscapeDN(o.Name)
	guid := SCPURLKeyword
	if o.Pointer {
		guid = SCPPointerKeyword
		dn = "CN=" + name + "," + d.pointersDN()
	} else {
		server := "CN=" + name + "," + d.serversDN()
		es = append(es,
			adContainer(server, o.Name),
			adContainer("CN=Protocols,"+server, "Protocols"),
			adContainer("CN=Autodiscover,CN=Protocols,"+server, "Autodiscover"))
		dn = "CN=" + name + ",CN=Autodiscover,CN=Protocols," + server
	}
	attrs := [][2]string{{"objectClass", "top"}, {"objectClass", "serviceConnectionPoint"}, {"cn", o.Name}, {"keywords", guid}}
	for _, k := range o.Keywords {
		attrs = append(attrs, [2]string{"keywords", k})
	}
	if o.Binding != "" {
		attrs = append(attrs, [2]string{"serviceBindingInformation", o.Binding})
	}
	return dn, append(es, ldifEntry{dn: dn, attrs: attrs}), nil
}

func (d *Directory) bulkObject(i int) SCPObject {
	return SCPObject{
		Name:     fmt.Sprintf("SCP%04d", i),
		Binding:  fmt.Sprintf("https://scp%04d.%s/autodiscover/autodiscover.xml", i, d.o.Host),
		Keywords: []string{"Site=Default-First-Site-Name"},
	}
}

func (d *Directory) initialLDIF() ([]byte, error) {
	var b strings.Builder
	base, err := d.baseEntries()
	if err != nil {
		return nil, err
	}
	for _, e := range base {
		e.ldif(&b)
	}
	objs := append([]SCPObject(nil), d.o.Objects...)
	for i := 0; i < d.o.Bulk; i++ {
		objs = append(objs, d.bulkObject(i))
	}
	for _, o := range objs {
		dn, es, err := d.scpEntries(o)
		if err != nil {
			return nil, err
		}
		// Names are compared as AD compares CNs, ignoring case.
		key := strings.ToLower(o.Name)
		if _, dup := d.objects[key]; dup {
			return nil, fmt.Errorf("directory: two SCPs are named %q", o.Name)
		}
		d.objects[key] = dn
		for _, e := range es {
			e.ldif(&b)
		}
	}
	return []byte(b.String()), nil
}

// load runs slapd in slapadd mode: thousands of entries load in well under
// a second, where adding them over LDAP takes many.
func (d *Directory) load(ctx context.Context, slapd string) error {
	ldif := filepath.Join(d.o.Dir, "load.ldif")
	// -q skips consistency checks slapadd would otherwise make per entry;
	// the LDIF is ours and sorted parents-first.
	cmd := exec.CommandContext(ctx, slapd, "-T", "add", "-q", "-f", filepath.Join(d.o.Dir, "slapd.conf"), "-l", ldif)
	cmd.Dir = d.o.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("directory: slapadd: %w: %s", err, lastBytes(out, 2000))
	}
	return nil
}

func (d *Directory) start(ctx context.Context, slapd string) error {
	ports, err := freeLoopbackPorts("tcp", 2)
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	d.ldapAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	d.ldapsAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
	if d.socket == "" {
		d.socket = filepath.Join(d.o.Dir, "ldapi")
		// A Unix socket's path must fit in 108 bytes.
		if len(d.socket) > 100 {
			sd, err := os.MkdirTemp("", "slapd")
			if err != nil {
				return fmt.Errorf("directory: %w", err)
			}
			d.sockDir = sd
			d.socket = filepath.Join(sd, "ldapi")
		}
	}
	_ = os.Remove(d.socket)
	_ = os.Remove(filepath.Join(d.o.Dir, "slapd.pid"))
	urls := fmt.Sprintf("ldap://%s/ ldaps://%s/ ldapi://%s/", d.ldapAddr, d.ldapsAddr, percentEscape(d.socket))
	// Any -d keeps slapd in the foreground, a child we can stop. Level 0
	// would silence even its fatal errors; 32768 ("none") prints those
	// and nothing per operation.
	cmd := exec.Command(slapd, "-d", "32768", "-h", urls, "-f", filepath.Join(d.o.Dir, "slapd.conf"))
	cmd.Dir = d.o.Dir
	p, err := startLabProcess(cmd)
	if err != nil {
		return fmt.Errorf("directory: starting slapd: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p.exited() {
			msg := p.stderr.String()
			if strings.Contains(msg, "Address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("directory: slapd exited at start (%v): %s", p.waitErr(), msg)
		}
		// slapd writes its pid file only once it holds its ports, so an
		// answer then comes from it and not from whoever else may have
		// taken a port first.
		if p.wrotePIDFile(filepath.Join(d.o.Dir, "slapd.pid")) && d.answers() {
			d.proc = p
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			_ = p.stop()
			if ctx.Err() != nil {
				return fmt.Errorf("directory: slapd start: %w", ctx.Err())
			}
			return fmt.Errorf("directory: slapd did not answer on %s within 10s: %s", d.ldapAddr, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answers reads the rootDSE: slapd listens before it serves, so a
// connection alone does not show it is ready.
func (d *Directory) answers() bool {
	c, err := ldap.DialURL("ldap://"+d.ldapAddr, ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
	if err != nil {
		return false
	}
	defer func() { _ = c.Close() }()
	c.SetTimeout(time.Second)
	_, err = c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 1, false,
		"(objectClass=*)", []string{"configurationNamingContext"}, nil))
	return err == nil
}

// percentEscape writes a socket path as the host part of an ldapi URL.
func percentEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// LDAPURL is the plain port, which offers StartTLS.
func (d *Directory) LDAPURL() string { return "ldap://" + d.ldapAddr }

// LDAPSURL is the LDAP-over-TLS port.
func (d *Directory) LDAPSURL() string { return "ldaps://" + d.ldapsAddr }

// Addr is the plain port's address.
func (d *Directory) Addr() string { return d.ldapAddr }

// LDAPSAddr is the LDAPS port's address.
func (d *Directory) LDAPSAddr() string { return d.ldapsAddr }

// ConfigDN is the configuration partition.
func (d *Directory) ConfigDN() string { return d.configDN }

// Suffix is the domain partition.
func (d *Directory) Suffix() string { return d.o.Suffix }

// BindDN is the account that may read.
func (d *Directory) BindDN() string { return d.o.BindDN }

// BindPassword is BindDN's password.
func (d *Directory) BindPassword() string { return d.o.BindPassword }

// DN is where the SCP of that name lives, or "" when there is none.
func (d *Directory) DN(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.objects[strings.ToLower(name)]
}

// admin is a connection bound as the root DN over the local socket, which
// needs no TLS whatever RequireTLS says.
func (d *Directory) admin() (*ldap.Conn, error) {
	c, err := ldap.DialURL("ldapi://" + percentEscape(d.socket))
	if err != nil {
		return nil, fmt.Errorf("directory: connecting to %s: %w", d.socket, err)
	}
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(d.rootDN, d.rootPW); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("directory: binding as %s: %w", d.rootDN, err)
	}
	return c, nil
}

// Add adds an SCP while the directory runs.
func (d *Directory) Add(o SCPObject) error {
	dn, es, err := d.scpEntries(o)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.objects[strings.ToLower(o.Name)]; dup {
		return fmt.Errorf("directory: an SCP named %q exists", o.Name)
	}
	c, err := d.admin()
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	for _, e := range es {
		if err := c.Add(e.request()); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
			return fmt.Errorf("directory: adding %s: %w", e.dn, err)
		}
	}
	d.objects[strings.ToLower(o.Name)] = dn
	return nil
}

// Remove deletes the SCP of that name and, for a URL SCP, its server
// object.
func (d *Directory) Remove(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	dn, ok := d.objects[strings.ToLower(name)]
	if !ok {
		return fmt.Errorf("directory: no SCP named %q", name)
	}
	c, err := d.admin()
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	top := dn
	if !strings.HasSuffix(dn, ","+d.pointersDN()) {
		top = "CN=" + ldap.EscapeDN(name) + "," + d.serversDN()
	}
	res, err := c.Search(ldap.NewSearchRequest(top, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil))
	if err != nil {
		return fmt.Errorf("directory: listing %s: %w", top, err)
	}
	dns := make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		dns = append(dns, e.DN)
	}
	// Children go before parents: a longer DN in the same subtree is
	// deeper.
	sort.Slice(dns, func(i, j int) bool { return len(dns[i]) > len(dns[j]) })
	for _, x := range dns {
		if err := c.Del(ldap.NewDelRequest(x, nil)); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return fmt.Errorf("directory: deleting %s: %w", x, err)
		}
	}
	delete(d.objects, strings.ToLower(name))
	return nil
}

// Close stops slapd and waits for it.
func (d *Directory) Close() error {
	err := d.proc.stop()
	d.removeSockDir()
	return err
}

func (d *Directory) removeSockDir() {
	if d.sockDir != "" {
		_ = os.RemoveAll(d.sockDir)
	}
}

// TLSConfig is a client configuration trusting the lab CA for the
// directory's certificate.
func (d *Directory) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: d.o.CA.Pool(), ServerName: d.o.Host, MinVersion: tls.VersionTLS12}
}
