package probe

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

// Kerberos answers Negotiate challenges with a Kerberos ticket for the
// host's service principal (SPNEGO, RFC 4559), as a domain-joined Windows
// client does: the way on-premises Exchange is usually reached inside the
// network. Its secret is a password or a keytab; neither ever leaves for
// a web server, which sees only a ticket the KDC issued for it.
//
// Tickets are asked for, and cached, by one gokrb5 client per
// configuration load: the TGT and each host's service ticket are reused
// until they expire, as Windows' ticket cache does.
type Kerberos struct {
	username string
	realm    string
	password string
	keytab   *keytab.Keytab
	spn      string
	// kdcs gives the KDC addresses of the realm to log in with: the
	// configured ones, or its _kerberos._tcp SRV records, resolved by the
	// module's resolver.
	kdcs func(ctx context.Context) ([]string, *Error)
	// sem lets one probe at a time talk to the KDC through the client:
	// gokrb5's login is not safe to run twice at once. What it guards:
	sem chan struct{}
	cl  *client.Client
	// lateRefusal is a refused password the KDC answered after the probe
	// that asked had stopped waiting: the next probe reports it, and so
	// starts the back-off, instead of offering the password again.
	lateRefusal *credentialError
	closed      bool
}

// kerberosConfig is what newKerberos needs.
type kerberosConfig struct {
	Username, Realm, Password, SPN string
	Keytab                         []byte
	KDCs                           func(ctx context.Context) ([]string, *Error)
}

func newKerberos(c kerberosConfig) (*Kerberos, error) {
	k := &Kerberos{username: c.Username, realm: strings.ToUpper(c.Realm), password: c.Password, spn: c.SPN, kdcs: c.KDCs, sem: make(chan struct{}, 1)}
	if k.spn == "" {
		k.spn = DefaultKerberosSPN
	}
	if len(c.Keytab) > 0 {
		kt := keytab.New()
		if err := kt.Unmarshal(c.Keytab); err != nil {
			// gokrb5's message quotes the keytab's bytes: keys.
			return nil, errors.New("kerberos keytab: not a valid keytab")
		}
		k.keytab = kt
	}
	return k, nil
}

// Choose implements Authenticator: Negotiate, or a server's bare
// "Kerberos" scheme. A server offering only NTLM or Basic gets nothing:
// a kerberos module never falls back to a scheme that needs the password.
func (k *Kerberos) Choose(offered []Challenge) (Challenge, bool) {
	return preferredScheme(offered, "Negotiate", "Kerberos")
}

// NewExchange implements Authenticator.
func (k *Kerberos) NewExchange(host string) Exchange {
	return &kerberosExchange{k: k, spn: strings.ReplaceAll(k.spn, "{host}", strings.ToLower(host))}
}

// Identity implements Authenticator.
func (k *Kerberos) Identity() string { return k.username + "@" + k.realm }

// String keeps the secret out of any %v rendering.
func (k *Kerberos) String() string { return "Kerberos(" + k.Identity() + ")" }

// GoString keeps the secret out of %#v as well.
func (k *Kerberos) GoString() string { return k.String() }

type kerberosExchange struct {
	k    *Kerberos
	spn  string
	sent bool
}

// Respond implements Exchange: the first call sends the ticket; a second
// 401 means the server refused it.
func (e *kerberosExchange) Respond(ctx context.Context, ch Challenge) (string, error) {
	if e.sent {
		if isNTLMToken(ch.Params) {
			return "", &credentialError{class: ClassNotKerberos, detail: fmt.Sprintf("the server answered the Kerberos ticket for %s with an NTLM challenge: it does not take Kerberos for this name (is the SPN registered on the account that runs the web site, or is the name served by another host?)", e.spn)}
		}
		// The KDC took the password already; a web server refusing the
		// ticket (a key it lacks, its own clock) is no wrong password, so
		// it starts no back-off.
		return "", &credentialError{class: ClassAuthFailed, detail: fmt.Sprintf("the server refused the Kerberos ticket of %s for %s (HTTP 401 again)", e.k.Identity(), e.spn)}
	}
	e.sent = true
	token, err := e.k.token(ctx, e.spn)
	if err != nil {
		return "", err
	}
	return "Negotiate " + base64.StdEncoding.EncodeToString(token), nil
}

// isNTLMToken reports a Negotiate challenge token that is NTLMSSP: the
// server fell back to NTLM, raw or inside SPNEGO.
func isNTLMToken(params string) bool {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(params))
	if err != nil || len(raw) == 0 {
		return false
	}
	// NTLMSSP's signature, or its mechanism OID 1.3.6.1.4.1.311.2.2.10
	// inside a NegTokenResp.
	return bytes.Contains(raw, []byte("NTLMSSP\x00")) || bytes.Contains(raw, []byte{0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a})
}

// token returns a SPNEGO NegTokenInit carrying an AP-REQ for spn, logging
// in first when the client has no valid TGT. gokrb5 does not take a
// context, so the work runs aside and the probe stops waiting at its
// deadline; gokrb5's own per-KDC timeouts end the work soon after.
func (k *Kerberos) token(ctx context.Context, spn string) ([]byte, error) {
	select {
	case k.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, &credentialError{class: ClassTimeout, detail: "the deadline was reached while another probe talked to the KDC"}
	}
	type result struct {
		token []byte
		err   error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-k.sem }()
		tok, err := k.tokenLocked(ctx, spn)
		var ce *credentialError
		if ctx.Err() != nil && errors.As(err, &ce) && ce.refused {
			k.lateRefusal = ce
		}
		done <- result{tok, err}
	}()
	select {
	case r := <-done:
		return r.token, r.err
	case <-ctx.Done():
		return nil, &credentialError{class: ClassKDCUnreachable, detail: fmt.Sprintf("no ticket for %s before the deadline: the KDCs of %s did not answer in time", spn, k.realm)}
	}
}

// tokenLocked runs with sem held.
func (k *Kerberos) tokenLocked(ctx context.Context, spn string) ([]byte, error) {
	if k.closed {
		return nil, &credentialError{class: ClassAuthError, detail: "the configuration was reloaded while the probe ran"}
	}
	if late := k.lateRefusal; late != nil {
		k.lateRefusal = nil
		return nil, late
	}
	if k.cl == nil {
		cl, err := k.login(ctx)
		if err != nil {
			return nil, err
		}
		k.cl = cl
	}
	tok, err := spnego.SPNEGOClient(k.cl, spn).InitSecContext()
	if err != nil {
		ce := classifyKerberos(err, k, spn, false)
		if ce.class == ClassKDCUnreachable || ce.class == ClassPreauthFailed || ce.class == ClassClockSkew {
			// The next probe logs in afresh, and resolves the KDCs again.
			k.cl.Destroy()
			k.cl = nil
		}
		return nil, ce
	}
	b, err := tok.Marshal()
	if err != nil {
		return nil, &credentialError{class: ClassAuthError, detail: fmt.Sprintf("building the SPNEGO token: %v", err)}
	}
	return b, nil
}

// Close ends the client's tickets and gokrb5's renewal of them: after a
// reload nothing may log in with the old password. It waits for a probe
// talking to the KDC at most a while; such a probe then finds the
// authenticator closed.
func (k *Kerberos) Close() {
	select {
	case k.sem <- struct{}{}:
	case <-time.After(time.Minute):
		return
	}
	defer func() { <-k.sem }()
	if k.cl != nil {
		k.cl.Destroy()
		k.cl = nil
	}
	k.closed = true
}

// maxKDCs bounds the KDC addresses one login tries: gokrb5 gives each up
// to its own timeouts, and the probe waits only until its deadline.
const maxKDCs = 3

// login finds the KDCs and asks for a TGT.
func (k *Kerberos) login(ctx context.Context) (*client.Client, error) {
	kdcs, serr := k.kdcs(ctx)
	if serr != nil {
		return nil, &credentialError{class: ClassKDCUnreachable, detail: "finding the KDCs of " + k.realm + ": " + serr.Detail}
	}
	if len(kdcs) > maxKDCs {
		kdcs = kdcs[:maxKDCs]
	}
	cfg, err := config.NewFromString(krb5Conf(k.realm, kdcs))
	if err != nil {
		return nil, &credentialError{class: ClassAuthError, detail: fmt.Sprintf("kerberos configuration: %v", err)}
	}
	var cl *client.Client
	if k.keytab != nil {
		cl = client.NewWithKeytab(k.username, k.realm, k.keytab, cfg, client.DisablePAFXFAST(true))
	} else {
		cl = client.NewWithPassword(k.username, k.realm, k.password, cfg, client.DisablePAFXFAST(true))
	}
	if err := cl.Login(); err != nil {
		return nil, classifyKerberos(err, k, "krbtgt/"+k.realm, true)
	}
	return cl, nil
}

// krb5Conf is the configuration of one realm and its KDCs, over TCP only
// (udp_preference_limit 1): one connection per exchange, bounded like the
// probe's others, and no lost datagrams to wait out.
func krb5Conf(realm string, kdcs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n dns_lookup_realm = false\n udp_preference_limit = 1\n clockskew = 300\n", realm)
	fmt.Fprintf(&b, "[realms]\n %s = {\n", realm)
	for _, kdc := range kdcs {
		fmt.Fprintf(&b, "  kdc = %s\n", kdc)
	}
	b.WriteString(" }\n")
	return b.String()
}

// krbErrorCode finds the KDC's error code in gokrb5's error text, which
// is all gokrb5 keeps of the KRB-ERROR ("KRB Error: (24) …").
var krbErrorCode = regexp.MustCompile(`KRB Error: \((\d+)\)`)

// Kerberos error codes the probe tells apart (RFC 4120 7.5.9).
const (
	krbCPrincipalUnknown = 6
	krbSPrincipalUnknown = 7
	krbClientRevoked     = 18
	krbKeyExpired        = 23
	krbPreauthFailed     = 24
	krbSkew              = 37
)

// classifyKerberos turns a gokrb5 error into a step error. A refused
// password starts the back-off: it counts as a failed logon on the
// domain controller.
func classifyKerberos(err error, k *Kerberos, spn string, asking bool) *credentialError {
	text := err.Error()
	if m := krbErrorCode.FindStringSubmatch(text); m != nil {
		code, _ := strconv.Atoi(m[1])
		switch code {
		case krbCPrincipalUnknown:
			return &credentialError{class: ClassPrincipalUnknown, detail: fmt.Sprintf("the KDC of %s knows no user %s (KDC_ERR_C_PRINCIPAL_UNKNOWN)", k.realm, k.username)}
		case krbSPrincipalUnknown:
			return &credentialError{class: ClassPrincipalUnknown, detail: fmt.Sprintf("the KDC knows no service principal %s (KDC_ERR_S_PRINCIPAL_UNKNOWN): register it on the account that runs the site (setspn -S) or set auth.spn", spn)}
		case krbPreauthFailed:
			return &credentialError{class: ClassPreauthFailed, refused: true, detail: fmt.Sprintf("the KDC refused the password of %s (KDC_ERR_PREAUTH_FAILED): a wrong password or key", k.Identity())}
		case krbClientRevoked:
			return &credentialError{class: ClassAuthFailed, refused: true, detail: fmt.Sprintf("the KDC refused %s: the account is disabled or locked out (KDC_ERR_CLIENT_REVOKED)", k.Identity())}
		case krbKeyExpired:
			return &credentialError{class: ClassAuthFailed, refused: true, detail: fmt.Sprintf("the password of %s has expired (KDC_ERR_KEY_EXPIRED)", k.Identity())}
		case krbSkew:
			return &credentialError{class: ClassClockSkew, detail: fmt.Sprintf("the KDC of %s and this machine disagree on the time by more than it allows (KRB_AP_ERR_SKEW): fix the exporter's or the domain controller's clock", k.realm)}
		}
		return &credentialError{class: ClassAuthError, detail: "the KDC refused the request: " + truncate(text[strings.Index(text, "KRB Error"):], 200)}
	}
	switch {
	case strings.Contains(text, "clock skew"):
		return &credentialError{class: ClassClockSkew, detail: fmt.Sprintf("the KDC of %s and this machine disagree on the time by more than 5 minutes: fix the exporter's or the domain controller's clock", k.realm)}
	case strings.Contains(text, "Networking_Error") || strings.Contains(text, "communicat") || strings.Contains(text, "no KDC"):
		return &credentialError{class: ClassKDCUnreachable, detail: fmt.Sprintf("no KDC of %s answered: %s", k.realm, truncate(lastCause(text), 300))}
	case asking && strings.Contains(text, "password/keytab incorrect"):
		// Without pre-authentication the KDC answers anyone, and a wrong
		// password shows only when its reply does not decrypt.
		return &credentialError{class: ClassPreauthFailed, refused: true, detail: fmt.Sprintf("the KDC's reply does not decrypt with the password of %s: a wrong password or key", k.Identity())}
	}
	return &credentialError{class: ClassAuthError, detail: "kerberos: " + truncate(lastCause(text), 300)}
}

// lastCause is the innermost part of gokrb5's "[Root cause: …] a < b"
// chain, which says what happened, without the root cause's tag.
func lastCause(text string) string {
	if i := strings.LastIndex(text, " < "); i >= 0 {
		text = text[i+3:]
	}
	if strings.HasPrefix(text, "[Root cause: ") {
		if i := strings.Index(text, "] "); i >= 0 {
			text = text[i+2:]
		}
	}
	return text
}

// kdcResolver gives the KDC addresses of a realm through the module's
// resolver and connect_to overrides, so a lab or split-horizon DNS works
// for the KDC as for Exchange: the configured KDCs, else the realm's
// _kerberos._tcp SRV records.
func (p *Prober) kdcResolver(configured []string, realm string) func(ctx context.Context) ([]string, *Error) {
	return func(ctx context.Context) ([]string, *Error) {
		hosts := configured
		if len(hosts) == 0 {
			name := "_kerberos._tcp." + strings.ToLower(realm)
			records, err := p.dns.lookupSRV(ctx, nil, name)
			if err != nil {
				return nil, &Error{Class: err.Class, Detail: name + ": " + err.Detail}
			}
			for _, rec := range records {
				if rec.Target != "" && rec.Target != "." {
					hosts = append(hosts, net.JoinHostPort(rec.Target, strconv.Itoa(int(rec.Port))))
				}
			}
		}
		var out []string
		for _, hp := range hosts {
			host, port, err := net.SplitHostPort(hp)
			if err != nil {
				host, port = hp, "88"
			}
			n, _ := strconv.Atoi(port)
			if dest, ok := overrideFor(p.s.ConnectTo, host, n); ok {
				out = append(out, dest)
				continue
			}
			if net.ParseIP(host) != nil {
				out = append(out, net.JoinHostPort(host, port))
				continue
			}
			lk, serr := p.dns.lookupHost(ctx, nil, host, p.s.ipVersion())
			if serr != nil {
				continue
			}
			for _, a := range lk.strings() {
				if dest, ok := overrideFor(p.s.ConnectTo, a, n); ok {
					out = append(out, dest)
					continue
				}
				out = append(out, net.JoinHostPort(a, port))
			}
		}
		if len(out) == 0 {
			return nil, failf(ClassKDCUnreachable, "no KDC address for %s", realm)
		}
		return out, nil
	}
}
