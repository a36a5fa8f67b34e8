package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// Bounds on what one directory may make a probe do: a real forest has an
// SCP per Client Access server, tens at most.
const (
	// maxSCPObjects is how many SCP objects one search may return; a
	// directory that returns more is refused rather than half-read.
	maxSCPObjects = 200
	// maxLDAPBytes is how much one directory connection may send: 200
	// real SCPs are about 100 KiB.
	maxLDAPBytes = 1 << 20
	// maxLDAPMessage bounds one LDAP message: an SCP entry is under
	// 2 KiB, and the BER decoder spends far more memory than the bytes it
	// reads on a message of many tiny elements.
	maxLDAPMessage = 16 << 10
	// maxDirectories bounds the directories one lookup asks: the
	// configured one and the ones its SCP pointers name.
	maxDirectories = 4
)

// OIDs and GUIDs of the SCP lookup ([MS-OXDISCO] 2.2.1.2, 3.1.5.1).
const (
	startTLSOID = "1.3.6.1.4.1.1466.20037"
	// scpURLKeyword marks an SCP whose serviceBindingInformation is an
	// Autodiscover URL.
	scpURLKeyword = "77378F46-2C66-4aa9-A6A6-3E7A48B19596"
	// scpPointerKeyword marks an SCP pointer: its serviceBindingInformation
	// is an LDAP URL of a directory to search instead.
	scpPointerKeyword = "67661d7F-8FC4-4fa7-BFAC-E1D7794C1F68"
)

// scpFilter finds both kinds of Autodiscover SCP.
var scpFilter = "(&(objectClass=serviceConnectionPoint)(|(keywords=" + scpPointerKeyword + ")(keywords=" + scpURLKeyword + ")))"

// scpObject is one SCP the search returned.
type scpObject struct {
	dn       string
	bindings []string
	keywords []string
}

// directoryURL reads an ldap:// or ldaps:// URL: the module's, or an SCP
// pointer's ("LDAP://host[:port]", in any case).
func directoryURL(raw string, tlsFromStart bool) (*url.URL, *Error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, failf(ClassBadSCP, "%q is not an LDAP URL: %v", truncate(raw, 120), err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "ldap" && scheme != "ldaps" {
		return nil, failf(ClassBadSCP, "%q is not an ldap:// or ldaps:// URL", truncate(raw, 120))
	}
	if u.User != nil {
		return nil, failf(ClassBadSCP, "an LDAP URL with user info is refused")
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return nil, failf(ClassBadSCP, "%q names no host", truncate(raw, 120))
	}
	if tlsFromStart {
		// A pointer names the directory; how to secure it is the
		// module's choice, never the directory's.
		scheme = "ldaps"
	}
	port := u.Port()
	switch {
	case port == "" && scheme == "ldaps", tlsFromStart && port == "389":
		port = "636"
	case port == "":
		port = "389"
	case tlsFromStart && port == "3268":
		port = "3269" // the global catalog's TLS port
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, failf(ClassBadSCP, "%q has no valid port", truncate(raw, 120))
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}, nil
}

// pointerURL reads an SCP pointer's binding as any host a server names is
// read: a DNS name, no IP literal, and one of a domain controller's LDAP
// ports, reached as the module's directory is.
func pointerURL(raw string, tlsFromStart bool) (*url.URL, *Error) {
	u, err := directoryURL(raw, tlsFromStart)
	if err != nil {
		return nil, err
	}
	if serr := checkServerHost(u.Hostname(), "SCP pointer"); serr != nil {
		return nil, &Error{Class: ClassBadSCP, Detail: serr.Detail}
	}
	if !ldapPorts[u.Port()] {
		return nil, failf(ClassBadSCP, "%q: an SCP pointer may name the LDAP ports 389, 636, 3268 and 3269 only", truncate(raw, 120))
	}
	return u, nil
}

// ldapPorts are the ports of a domain controller's LDAP and global
// catalog services, plain and TLS.
var ldapPorts = map[string]bool{"389": true, "636": true, "3268": true, "3269": true}

// cappedConn fails reads once the peer has sent more than its allowance,
// in all or in one LDAP message: the LDAP library reads whole messages,
// however large, so the caps sit under it. Only the library's reader
// goroutine reads.
type cappedConn struct {
	net.Conn
	budget budgetReader
	msg    berFramer
}

func newCappedConn(c net.Conn, limit int64) *cappedConn {
	cc := &cappedConn{Conn: c}
	cc.budget = budgetReader{r: c, left: limit}
	return cc
}

var errLDAPMessageBig = fmt.Errorf("the directory sent an LDAP message over %d KiB", maxLDAPMessage>>10)

func (c *cappedConn) Read(p []byte) (int, error) {
	n, err := c.budget.Read(p)
	if ferr := c.msg.feed(p[:n], maxLDAPMessage); ferr != nil {
		return 0, ferr
	}
	return n, err
}

// berFramer follows the top-level BER elements of a stream (RFC 4511
// messages: a tag, a definite length, the content) to refuse one whose
// declared length is over the limit before the decoder reads it.
type berFramer struct {
	state     int // 0 tag, 1 first length byte, 2 long length bytes, 3 content
	lenBytes  int
	length    int64
	remaining int64
}

func (f *berFramer) feed(b []byte, limit int64) error {
	for len(b) > 0 {
		switch f.state {
		case 0:
			f.state, b = 1, b[1:]
		case 1:
			l := b[0]
			b = b[1:]
			switch {
			case l < 0x80:
				f.length, f.state = int64(l), 3
			case l == 0x80 || l > 0x84:
				return fmt.Errorf("the directory sent an LDAP message of indefinite or impossible length")
			default:
				f.lenBytes, f.length, f.state = int(l&0x7f), 0, 2
			}
		case 2:
			f.length = f.length<<8 | int64(b[0])
			b = b[1:]
			if f.lenBytes--; f.lenBytes == 0 {
				f.state = 3
			}
		}
		if f.state == 3 {
			if f.length > limit {
				return errLDAPMessageBig
			}
			f.remaining, f.state = f.length, 4
		}
		if f.state == 4 {
			n := min(int64(len(b)), f.remaining)
			b, f.remaining = b[n:], f.remaining-n
			if f.remaining == 0 {
				f.state = 0
			}
		}
	}
	return nil
}

// startTLS asks for TLS on a plain LDAP connection (RFC 4511 4.14), before
// the LDAP library takes the connection over: the handshake that follows
// is then the probe's own, with its verdicts.
func startTLS(ctx context.Context, conn net.Conn, timeout time.Duration) *Error {
	dl := time.Now().Add(timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(dl) {
		dl = cd
	}
	_ = conn.SetDeadline(dl)
	defer conn.SetDeadline(time.Time{})
	msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 1, "MessageID"))
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "Start TLS")
	req.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, startTLSOID, "TLS Extended Command"))
	msg.AppendChild(req)
	if _, err := conn.Write(msg.Bytes()); err != nil {
		return ldapNetError("sending StartTLS", err, timeout)
	}
	resp, err := ber.ReadPacket(io.LimitReader(conn, 64<<10))
	if err != nil {
		return ldapNetError("reading the StartTLS answer", err, timeout)
	}
	if len(resp.Children) < 2 || resp.Children[1].Tag != ldap.ApplicationExtendedResponse || resp.Children[0].Value != int64(1) {
		return failf(ClassLDAPError, "the directory answered StartTLS with something else")
	}
	if err := ldap.GetLDAPError(resp); err != nil {
		return failf(ClassLDAPError, "the directory refused StartTLS: %s", ldapErrorText(err))
	}
	return nil
}

// ldapNetError classifies a failed read or write on the directory
// connection.
func ldapNetError(doing string, err error, timeout time.Duration) *Error {
	var le *ldap.Error
	if errors.As(err, &le) && le.Err != nil {
		err = le.Err
	}
	switch {
	case errors.Is(err, errResponseTooLarge), errors.Is(err, errLDAPMessageBig),
		// go-ldap passes the reader's error on as text only.
		strings.Contains(err.Error(), errResponseTooLarge.Error()), strings.Contains(err.Error(), errLDAPMessageBig.Error()):
		return failf(ClassResponseTooLarge, "%s: %v", doing, err)
	case isTimeout(err):
		return failf(ClassTimeout, "%s: no answer within %s", doing, timeout)
	}
	return failf(ClassConnectionError, "%s: %v", doing, err)
}

// ldapErrorText is an LDAP error in words: the result code's name and the
// server's diagnostic message, without the library's prefixes.
func ldapErrorText(err error) string {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return err.Error()
	}
	text := ldap.LDAPResultCodeMap[le.ResultCode]
	if text == "" {
		text = "result code " + strconv.Itoa(int(le.ResultCode))
	}
	if le.Err != nil && le.Err.Error() != "" {
		text += ": " + le.Err.Error()
	}
	return text
}

// classifyLDAP turns the error of an LDAP operation into a step error.
func classifyLDAP(doing string, err error, timeout time.Duration) *Error {
	var le *ldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case ldap.ErrorNetwork, ldap.ErrorUnexpectedMessage, ldap.ErrorUnexpectedResponse:
			return ldapNetError(doing, err, timeout)
		case ldap.LDAPResultTimeout, ldap.LDAPResultTimeLimitExceeded:
			return failf(ClassTimeout, "%s: no answer within %s", doing, timeout)
		case ldap.LDAPResultInvalidCredentials:
			return failf(ClassLDAPBindFailed, "%s: %s", doing, ldapErrorText(err))
		}
		return failf(ClassLDAPError, "%s: %s", doing, ldapErrorText(err))
	}
	return ldapNetError(doing, err, timeout)
}

// directory is an open LDAP session to one directory server.
type directory struct {
	conn *ldap.Conn
	// tls is the connection under conn: closing it first unblocks the
	// library's goroutines, so that closing the session cannot wait on
	// a directory that stopped reading.
	tls  net.Conn
	stop func() bool
	t    target
	addr string
}

func (d *directory) close() {
	d.stop()
	_ = d.tls.Close()
	_ = d.conn.Close()
}

// openDirectory connects to the directory at u and secures the
// connection, recording dns, tcp, tls_handshake and the certificate
// verdicts under t. It returns nil when the directory cannot be used.
func (r *run) openDirectory(ctx context.Context, t target, u *url.URL) *directory {
	addrs, ok := r.resolve(ctx, t)
	if !ok {
		return nil
	}
	raw, addr := r.connect(ctx, r.rec, t, addrs)
	if raw == nil {
		return nil
	}
	timeout := r.p.s.stepTimeout()
	note := "TLS from the start (ldaps)"
	if u.Scheme == "ldap" {
		started := time.Now()
		if err := startTLS(ctx, raw, timeout); err != nil {
			_ = raw.Close()
			r.rec.record(t, StepTLSHandshake, started, addr, err, "StartTLS")
			return nil
		}
		note = "after StartTLS"
	}
	out := r.handshakeOn(ctx, r.rec, t, raw, addr, nil, note)
	if out == nil {
		return nil
	}
	if !r.certSeen[t.host] {
		r.certSeen[t.host] = true
		r.res.Certificates = append(r.res.Certificates, out.cert)
	}
	if !out.certOK() {
		// No bind password, and no SCP read, over a connection whose
		// certificate failed: a directory spoofed there would send the
		// probe, and its credentials, anywhere.
		_ = out.conn.Close()
		r.rec.record(t, StepLDAPBind, time.Now(), addr, failf(ClassWithheldCertificate, "the directory's certificate failed validation: no bind and no search"), "")
		return nil
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = out.conn.SetDeadline(dl)
	}
	conn := ldap.NewConn(newCappedConn(out.conn, maxLDAPBytes), true)
	conn.Start()
	conn.SetTimeout(timeout)
	// A probe given up on (the scrape went away) ends its LDAP operations
	// at once, not at the deadline.
	stop := context.AfterFunc(ctx, func() { _ = out.conn.SetDeadline(time.Now()) })
	return &directory{conn: conn, tls: out.conn, stop: stop, t: t, addr: addr}
}

// bind authenticates the session with the module's account when the
// rules allow it, and records the ldap_bind step. A refused password
// starts the same back-off as a refused HTTP credential: directory binds
// count toward Active Directory's lockout threshold.
func (r *run) bind(ctx context.Context, d *directory, credentials bool) bool {
	started := time.Now()
	l := r.p.s.LDAP
	if l.BindDN == "" || !credentials {
		detail := "anonymous: the module has no ldap bind account"
		if l.BindDN != "" {
			detail = fmt.Sprintf("anonymous: %s is not the configured directory and is in no paired domain, so the bind password is withheld", d.t.host)
		}
		r.rec.record(d.t, StepLDAPBind, started, d.addr, nil, detail)
		return true
	}
	key := "ldap:" + strings.ToLower(l.BindDN)
	if r.p.guard != nil {
		until, blocked, release, err := r.p.guard.Acquire(ctx, key)
		switch {
		case err != nil:
			r.rec.record(d.t, StepLDAPBind, started, d.addr, failf(ClassTimeout, "%v", err), "")
			return false
		case blocked:
			r.rec.record(d.t, StepLDAPBind, started, d.addr, backoffError(until), "")
			return false
		}
		defer release()
	}
	if err := d.conn.Bind(l.BindDN, l.Password); err != nil {
		serr := classifyLDAP("simple bind as "+l.BindDN, err, r.p.s.stepTimeout())
		if serr.Class == ClassLDAPBindFailed && r.p.guard != nil {
			r.p.guard.Refused(key)
		}
		r.rec.record(d.t, StepLDAPBind, started, d.addr, serr, "")
		return false
	}
	if r.p.guard != nil {
		r.p.guard.Accepted(key)
	}
	r.rec.record(d.t, StepLDAPBind, started, d.addr, nil, "simple bind as "+l.BindDN+" accepted")
	return true
}

// configurationNC reads the configuration naming context from the
// rootDSE, as clients find where the SCPs live.
func (d *directory) configurationNC(timeout time.Duration) (string, *Error) {
	res, err := d.conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(timeout/time.Second), false,
		"(objectClass=*)", []string{"configurationNamingContext"}, nil))
	if err != nil {
		return "", classifyLDAP("reading the rootDSE", err, timeout)
	}
	for _, e := range res.Entries {
		if v := e.GetAttributeValue("configurationNamingContext"); v != "" {
			return v, nil
		}
	}
	return "", failf(ClassLDAPError, "the rootDSE names no configurationNamingContext (not an Active Directory domain controller? set ldap.base_dn)")
}

// searchSCPs returns the Autodiscover SCP objects under base, reading at
// most maxSCPObjects of them.
func (d *directory) searchSCPs(ctx context.Context, base string, timeout time.Duration) ([]scpObject, *Error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, maxSCPObjects+1, int(timeout/time.Second), false,
		scpFilter, []string{"serviceBindingInformation", "keywords"}, nil)
	resp := d.conn.SearchAsync(ctx, req, 16)
	var out []scpObject
	for resp.Next() {
		e := resp.Entry()
		if len(out) == maxSCPObjects {
			cancel()
			return nil, failf(ClassTooManyRecords, "the search under %s returned more than %d SCP objects; a forest has one per Client Access server, so the directory is refused rather than half-read", truncate(base, 120), maxSCPObjects)
		}
		out = append(out, scpObject{dn: e.DN, bindings: capList(e.GetAttributeValues("serviceBindingInformation"), 8), keywords: capList(e.GetAttributeValues("keywords"), 64)})
	}
	if err := resp.Err(); err != nil {
		var le *ldap.Error
		if errors.As(err, &le) && le.ResultCode == ldap.LDAPResultSizeLimitExceeded {
			return nil, failf(ClassTooManyRecords, "the search under %s returned more than %d SCP objects", truncate(base, 120), maxSCPObjects)
		}
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
			return nil, failf(ClassTimeout, "searching for SCP objects: no complete answer within %s", timeout)
		}
		return nil, classifyLDAP("searching for SCP objects", err, timeout)
	}
	if ctx.Err() == context.DeadlineExceeded {
		return nil, failf(ClassTimeout, "searching for SCP objects: no complete answer within %s", timeout)
	}
	return out, nil
}

func capList(vs []string, n int) []string {
	if len(vs) > n {
		return vs[:n]
	}
	return vs
}
