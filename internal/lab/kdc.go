package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
)

// kdcEnctypes are what AD offers for accounts today; the older DES and RC4
// types are left out so that tickets always use AES.
const kdcEnctypes = "aes256-cts-hmac-sha1-96:normal,aes128-cts-hmac-sha1-96:normal"

// KDCPath returns the krb5kdc binary, or "" and a reason when it or the
// tools that make its database are missing.
func KDCPath() (string, string) {
	kdc := findSbinTool("krb5kdc")
	if kdc == "" {
		return "", "krb5kdc is not installed (Debian: apt-get install krb5-kdc)"
	}
	for _, t := range []string{"kdb5_util", "kadmin.local"} {
		if findSbinTool(t) == "" {
			return "", t + " is not installed (Debian: apt-get install krb5-kdc krb5-admin-server)"
		}
	}
	return kdc, ""
}

// findTool looks in PATH and then in the sbin directories, which an
// unprivileged user's PATH often lacks.
func findSbinTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// KDCOptions configures StartKDC.
type KDCOptions struct {
	// Dir holds the database, stash, configuration, keytabs and log; a
	// t.TempDir() is right. Required.
	Dir string
	// Realm. Default "CORP.CONTOSO.TEST".
	Realm string
	// Users maps principal names without the realm to passwords. Each
	// requires pre-authentication, as AD accounts do, so that a wrong
	// password is KDC_ERR_PREAUTH_FAILED (24) rather than a reply the
	// client fails to decrypt.
	Users map[string]string
	// Services are service principals without the realm, e.g.
	// "HTTP/mail.corp.contoso.test", each with a random AES key.
	Services []string
	// Skew, when not zero, shifts the KDC's clock by that much, so that a
	// client's pre-authentication fails with KRB_AP_ERR_SKEW (37) once
	// Skew is beyond the KDC's five minutes' tolerance. krb5kdc's own -T
	// option does it, so no faketime is needed.
	Skew time.Duration
}

// KDC is a real MIT Kerberos KDC on loopback, serving UDP and TCP on one
// port.
type KDC struct {
	o       KDCOptions
	addr    string
	env     []string
	keytabs map[string]string // principal without realm → keytab path
	proc    *labProcess
}

// StartKDC creates a realm database under o.Dir with the users and
// services, writes a keytab for each, and starts krb5kdc. ctx bounds the
// start only: the KDC runs until Close.
func StartKDC(ctx context.Context, o KDCOptions) (*KDC, error) {
	kdc, reason := KDCPath()
	if kdc == "" {
		return nil, errors.New(reason)
	}
	if o.Dir == "" {
		return nil, errors.New("kdc: Dir is required")
	}
	if o.Realm == "" {
		o.Realm = "CORP.CONTOSO.TEST"
	}
	if err := checkKadminWord("realm", o.Realm); err != nil {
		return nil, err
	}
	// Names may come with the realm, as KeytabFile takes them.
	users := make(map[string]string, len(o.Users))
	for u, pw := range o.Users {
		users[strings.TrimSuffix(u, "@"+o.Realm)] = pw
	}
	o.Users = users
	services := make([]string, len(o.Services))
	for i, s := range o.Services {
		services[i] = strings.TrimSuffix(s, "@"+o.Realm)
	}
	o.Services = services
	for u, pw := range o.Users {
		if err := checkKadminWord("user", u); err != nil {
			return nil, err
		}
		if err := checkKadminWord("password of "+u, pw); err != nil {
			return nil, err
		}
	}
	for _, s := range o.Services {
		if err := checkKadminWord("service", s); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("kdc: %w", err)
	}
	// kadmin.local takes keytab paths inside its quotes, too.
	if err := checkKadminWord("directory", dir); err != nil {
		return nil, err
	}
	o.Dir = dir
	k := &KDC{o: o, keytabs: map[string]string{}}
	if err := os.MkdirAll(filepath.Join(dir, "keytabs"), 0o700); err != nil {
		return nil, fmt.Errorf("kdc: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		ports, err := freeLoopbackPorts("udp+tcp", 1)
		if err != nil {
			return nil, fmt.Errorf("kdc: %w", err)
		}
		k.addr = fmt.Sprintf("127.0.0.1:%d", ports[0])
		if err := k.writeConfig(); err != nil {
			return nil, err
		}
		if attempt == 0 {
			// The database does not depend on the port, so a retry keeps it.
			if err := k.createDatabase(ctx); err != nil {
				return nil, err
			}
		}
		err = k.start(ctx, kdc)
		if err == nil {
			return k, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// checkKadminWord refuses what kadmin.local's command line could not carry
// inside double quotes.
func checkKadminWord(what, s string) error {
	if s == "" || strings.ContainsAny(s, "\"\n\r\x00") {
		return fmt.Errorf("kdc: %s %q cannot be given to kadmin.local", what, s)
	}
	return nil
}

func (k *KDC) path(name string) string { return filepath.Join(k.o.Dir, name) }

func (k *KDC) writeConfig() error {
	_, port, _ := net.SplitHostPort(k.addr)
	realm := k.o.Realm
	// kdc_listen (krb5 1.15 and later) keeps the KDC on loopback; an older
	// KDC takes kdc_ports and listens everywhere on that port.
	kdcConf := fmt.Sprintf(`[kdcdefaults]
	kdc_ports = %[1]s
	kdc_tcp_ports = %[1]s
	kdc_listen = %[2]s
	kdc_tcp_listen = %[2]s

[realms]
	%[3]s = {
		database_name = %[4]s
		key_stash_file = %[5]s
		acl_file = %[6]s
		master_key_type = aes256-cts-hmac-sha1-96
		supported_enctypes = %[7]s
		kdc_ports = %[1]s
		kdc_tcp_ports = %[1]s
		kdc_listen = %[2]s
		kdc_tcp_listen = %[2]s
		max_life = 10h
		max_renewable_life = 7d
	}

[logging]
	kdc = FILE:%[8]s
	admin_server = FILE:%[9]s
	default = FILE:%[9]s
`, port, k.addr, realm, k.path("principal"), k.path("stash"), k.path("kadm5.acl"),
		strings.ReplaceAll(kdcEnctypes, ",", " "), k.path("kdc.log"), k.path("kadmin.log"))
	files := map[string]string{
		"kdc.conf":  kdcConf,
		"krb5.conf": k.Krb5Conf(),
		"kadm5.acl": "",
	}
	for name, text := range files {
		if err := os.WriteFile(k.path(name), []byte(text), 0o600); err != nil {
			return fmt.Errorf("kdc: writing %s: %w", name, err)
		}
	}
	// Every MIT tool reads its configuration from these, and a user's own
	// KRB5* settings (a ccache, a trace file, a keytab) must not leak in.
	k.env = nil
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KRB5") {
			k.env = append(k.env, e)
		}
	}
	k.env = append(k.env,
		"KRB5_CONFIG="+k.path("krb5.conf"),
		"KRB5_KDC_PROFILE="+k.path("kdc.conf"),
		"KRB5CCNAME=FILE:"+k.path("ccache"),
		"KRB5_KTNAME=FILE:"+k.path("default.keytab"),
		"KRB5RCACHEDIR="+k.o.Dir,
	)
	return nil
}

// Krb5Conf is a krb5.conf naming the realm and this KDC, for MIT tools and
// for gokrb5's config.NewFromString.
func (k *KDC) Krb5Conf() string {
	return fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	dns_canonicalize_hostname = false

[realms]
	%[1]s = {
		kdc = %[2]s
	}

[domain_realm]
	.%[3]s = %[1]s
	%[3]s = %[1]s
`, k.o.Realm, k.addr, strings.ToLower(k.o.Realm))
}

func (k *KDC) run(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	tool := findSbinTool(name)
	if tool == "" {
		return "", fmt.Errorf("kdc: %s is not installed", name)
	}
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = k.o.Dir
	cmd.Env = k.env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kdc: %s: %w: %s", name, err, lastBytes(out, 2000))
	}
	return string(out), nil
}

func (k *KDC) createDatabase(ctx context.Context) error {
	realm := k.o.Realm
	if _, err := k.run(ctx, "", "kdb5_util", "-r", realm, "-d", k.path("principal"), "-sf", k.path("stash"),
		"-P", randomHex(), "create", "-s"); err != nil {
		return err
	}
	// One kadmin.local reads all the commands from stdin. It exits 0
	// whatever they did, so the result is checked afterwards.
	var cmds strings.Builder
	var want []string
	n := 0
	keytab := func(p string) {
		n++
		file := filepath.Join(k.o.Dir, "keytabs", fmt.Sprintf("%02d-%s.keytab", n, sanitizeFileName(p)))
		k.keytabs[p] = file
		fmt.Fprintf(&cmds, "ktadd -norandkey -k \"%s\" \"%s\"\n", file, p)
	}
	for _, u := range sortedNames(k.o.Users) {
		fmt.Fprintf(&cmds, "addprinc -pw \"%s\" +requires_preauth -e \"%s\" \"%s\"\n", k.o.Users[u], kdcEnctypes, u)
		keytab(u)
		want = append(want, u)
	}
	for _, s := range k.o.Services {
		fmt.Fprintf(&cmds, "addprinc -randkey -e \"%s\" \"%s\"\n", kdcEnctypes, s)
		keytab(s)
		want = append(want, s)
	}
	cmds.WriteString("listprincs\n")
	out, err := k.run(ctx, cmds.String(), "kadmin.local", "-r", realm)
	if err != nil {
		return err
	}
	// listprincs prints bare names, where kadmin.local's echo of the
	// commands and its messages quote them or leave the realm out.
	have := map[string]bool{}
	for _, f := range strings.Fields(out) {
		have[f] = true
	}
	for _, p := range want {
		if !have[p+"@"+realm] {
			return fmt.Errorf("kdc: kadmin.local did not create %s@%s: %s", p, realm, lastBytes([]byte(out), 2000))
		}
		if st, err := os.Stat(k.keytabs[p]); err != nil || st.Size() == 0 {
			return fmt.Errorf("kdc: kadmin.local wrote no keytab for %s: %s", p, lastBytes([]byte(out), 2000))
		}
	}
	return nil
}

func sanitizeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

func sortedNames(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (k *KDC) start(ctx context.Context, kdc string) error {
	_ = os.Remove(k.path("kdc.log"))
	_ = os.Remove(k.path("krb5kdc.pid"))
	args := []string{"-n", "-r", k.o.Realm, "-P", k.path("krb5kdc.pid")}
	if k.o.Skew != 0 {
		args = append(args, "-T", strconv.FormatInt(int64(k.o.Skew/time.Second), 10))
	}
	cmd := exec.Command(kdc, args...)
	cmd.Dir = k.o.Dir
	cmd.Env = k.env
	p, err := startLabProcess(cmd)
	if err != nil {
		return fmt.Errorf("kdc: starting krb5kdc: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p.exited() {
			msg := p.stderr.String() + "\n" + k.logTail()
			if strings.Contains(msg, "in use") {
				return errPortTaken
			}
			return fmt.Errorf("kdc: krb5kdc exited at start (%v): %s", p.waitErr(), msg)
		}
		// krb5kdc writes its pid file once it holds its port.
		if p.wrotePIDFile(k.path("krb5kdc.pid")) && k.answers() {
			k.proc = p
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			_ = p.stop()
			if ctx.Err() != nil {
				return fmt.Errorf("kdc: krb5kdc start: %w", ctx.Err())
			}
			return fmt.Errorf("kdc: krb5kdc did not answer on %s within 10s: %s\n%s", k.addr, p.stderr.String(), k.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (k *KDC) logTail() string {
	b, _ := os.ReadFile(k.path("kdc.log"))
	return lastBytes(b, 2000)
}

// answers makes a real AS exchange for a principal that does not exist:
// only a KDC serving the realm answers it with a Kerberos error.
func (k *KDC) answers() bool {
	c, err := net.DialTimeout("tcp", k.addr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	cfg, err := k.ClientConfig()
	if err != nil {
		return false
	}
	cl := client.NewWithPassword("lab-readiness-check", k.o.Realm, "x", cfg, client.DisablePAFXFAST(true))
	defer cl.Destroy()
	err = cl.Login()
	return err != nil && KDCErrorCode(err) != 0
}

// ClientConfig is Krb5Conf parsed for gokrb5, sending every request over
// TCP.
func (k *KDC) ClientConfig() (*config.Config, error) {
	cfg, err := config.NewFromString(k.Krb5Conf())
	if err != nil {
		return nil, fmt.Errorf("kdc: parsing krb5.conf: %w", err)
	}
	cfg.LibDefaults.UDPPreferenceLimit = 1
	return cfg, nil
}

// KDCErrorCode is the KDC's error code (RFC 4120 7.5.9) carried by an
// error from gokrb5's client, or 0 when it carries none. gokrb5 flattens a
// KDC's KRB-ERROR into the text of a krberror.Krberror, "… KRB Error: (24)
// KDC_ERR_PREAUTH_FAILED …", so the code is read back from that text.
func KDCErrorCode(err error) int32 {
	if err == nil {
		return 0
	}
	s := err.Error()
	const marker = "KRB Error: ("
	i := strings.LastIndex(s, marker)
	if i < 0 {
		return 0
	}
	s = s[i+len(marker):]
	end := strings.IndexByte(s, ')')
	if end <= 0 {
		return 0
	}
	n, err := strconv.ParseInt(s[:end], 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// Addr is the KDC's address, for UDP and TCP.
func (k *KDC) Addr() string { return k.addr }

// Realm is the KDC's realm.
func (k *KDC) Realm() string { return k.o.Realm }

// KeytabFile is the path of the keytab made at start for a user or
// service principal, given with or without "@REALM". A user's keytab
// holds the keys of its password, which keeps working.
func (k *KDC) KeytabFile(principal string) (string, error) {
	p := strings.TrimSuffix(principal, "@"+k.o.Realm)
	f, ok := k.keytabs[p]
	if !ok {
		return "", fmt.Errorf("kdc: no keytab for %q", principal)
	}
	return f, nil
}

// Keytab is the MIT-format keytab of a principal, as KeytabFile holds it.
func (k *KDC) Keytab(principal string) ([]byte, error) {
	f, err := k.KeytabFile(principal)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("kdc: reading keytab: %w", err)
	}
	return b, nil
}

// Log is what the KDC has logged so far: one line per request, with the
// reason of each refusal.
func (k *KDC) Log() string {
	b, _ := os.ReadFile(k.path("kdc.log"))
	return string(b)
}

// Close stops krb5kdc and waits for it.
func (k *KDC) Close() error {
	return k.proc.stop()
}
