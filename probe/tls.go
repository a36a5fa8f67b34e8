package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// tlsOutcome is what one handshake showed about a server.
type tlsOutcome struct {
	conn                *tls.Conn
	state               tls.ConnectionState
	clientCertRequested bool
	cert                CertInfo
	nameErr             *Error
	trustErr            *Error
	validityErr         *Error
}

// certOK reports whether all three certificate verdicts passed.
func (o *tlsOutcome) certOK() bool {
	return o.nameErr == nil && o.trustErr == nil && o.validityErr == nil
}

// handshake runs TLS without letting crypto/tls verify, so that name, trust
// and dates can be judged (and reported) separately, as ExRCA does. The
// verdicts are computed right after the handshake; nothing is sent before.
// alpn is the application protocol offered (none for LDAP).
func handshake(ctx context.Context, raw net.Conn, host string, alpn []string, roots *x509.CertPool, now time.Time, timeout time.Duration) (*tlsOutcome, *Error) {
	var requested atomic.Bool
	cfg := &tls.Config{
		ServerName: host,
		// Verification happens below, split into three verdicts.
		InsecureSkipVerify: true, //nolint:gosec
		NextProtos:         alpn,
		// Classical key exchange only: the post-quantum hybrid share Go
		// offers by default costs an ML-KEM key per handshake (the largest
		// allocation of a chain in the heap profile, and CPU), and Exchange
		// front ends negotiate X25519 or P-256 anyway.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			requested.Store(true)
			return &tls.Certificate{}, nil
		},
	}
	conn := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		if isTimeout(err) || hctx.Err() != nil {
			return nil, failf(ClassTimeout, "no TLS handshake within %s", timeout)
		}
		return nil, failf(ClassHandshakeFailed, "%v", err)
	}
	state := conn.ConnectionState()
	if len(state.PeerCertificates) == 0 {
		return nil, failf(ClassHandshakeFailed, "server sent no certificate")
	}
	out := &tlsOutcome{conn: conn, state: state, clientCertRequested: requested.Load()}
	judgeCertificate(out, host, roots, now)
	return out, nil
}

// openTLS is the one way the probe reaches a TLS host: it dials the
// addresses in turn, runs the handshake and judges the certificate,
// recording the tcp, tls_handshake and three certificate steps on rec. Whether the server asked for a client
// certificate is in the outcome; only the chain records it as a step.
func (r *run) openTLS(ctx context.Context, rec *recorder, t target, addrs []string) (*tlsOutcome, string) {
	conn, addr := r.connect(ctx, rec, t, addrs)
	if conn == nil {
		return nil, ""
	}
	out := r.handshakeOn(ctx, rec, t, conn, addr, httpALPN, "")
	if out == nil {
		return nil, ""
	}
	return out, addr
}

// httpALPN is what an HTTPS client offers.
var httpALPN = []string{"http/1.1"}

// handshakeOn runs TLS on conn, which is open to addr, and records the
// tls_handshake step (note, when set, says how TLS came about) and the
// three certificate verdicts. It closes conn when the handshake fails.
func (r *run) handshakeOn(ctx context.Context, rec *recorder, t target, conn net.Conn, addr string, alpn []string, note string) *tlsOutcome {
	started := time.Now()
	out, err := handshake(ctx, conn, t.host, alpn, r.p.s.RootCAs, r.p.now(), r.p.s.stepTimeout())
	if err != nil {
		_ = conn.Close()
		rec.record(t, StepTLSHandshake, started, addr, err, note)
		return nil
	}
	detail := fmt.Sprintf("%s; certificate subject %s, issuer %s", tlsVersionName(out.state.Version), out.cert.Subject, out.cert.Issuer)
	if note != "" {
		detail = note + "; " + detail
	}
	rec.record(t, StepTLSHandshake, started, addr, nil, detail)
	now := time.Now()
	rec.record(t, StepCertName, now, addr, out.nameErr, nameDetail(out))
	rec.record(t, StepCertTrust, now, addr, out.trustErr, trustDetail(out))
	rec.record(t, StepCertValidity, now, addr, out.validityErr, fmt.Sprintf("NotBefore %s, NotAfter %s", out.cert.NotBefore.UTC().Format(time.RFC3339), out.cert.NotAfter.UTC().Format(time.RFC3339)))
	out.cert.Address = addr
	return out
}

// secure opens a TLS connection for a candidate of the chain: besides
// openTLS's steps it records the client-certificate check and keeps the
// certificate of each host the first time it is seen.
func (r *run) secure(ctx context.Context, t target, addrs []string) (*tlsOutcome, string) {
	out, addr := r.openTLS(ctx, r.rec, t, addrs)
	if out == nil {
		return nil, ""
	}
	var ccErr *Error
	if out.clientCertRequested {
		ccErr = failf(ClassClientCertRequested, "the server asked for a client certificate (Accept/Require Client Certificates is configured); none was sent")
	}
	r.rec.record(t, StepClientCert, time.Now(), addr, ccErr, clientCertDetail(out))
	if k := hostPort(t.host, t.port); r.chainLeaves[k] == nil {
		r.chainLeaves[k] = out.state.PeerCertificates[0].Raw
	}
	if !r.certSeen[t.host] {
		r.certSeen[t.host] = true
		r.res.Certificates = append(r.res.Certificates, out.cert)
	}
	return out, addr
}

// reconnect opens a new connection to the address that answered before and
// insists on the same certificate, for a server that closed a keep-alive
// connection between the challenge and the credentials. Its steps are
// not part of the run: the first connection already vouched for the host.
func (r *run) reconnect(ctx context.Context, t target, addr string, leaf []byte) (net.Conn, error) {
	quiet := newRecorder(r.start, 5)
	out, _ := r.openTLS(ctx, quiet, t, []string{addr})
	if out == nil {
		if i := quiet.lastFailure; i >= 0 {
			return nil, errors.New(quiet.steps[i].Detail)
		}
		return nil, errors.New("no connection")
	}
	if string(out.state.PeerCertificates[0].Raw) != string(leaf) {
		_ = out.conn.Close()
		return nil, errors.New("the server presented a different certificate on the new connection")
	}
	return out.conn, nil
}

func nameDetail(o *tlsOutcome) string {
	if o.nameErr != nil {
		return ""
	}
	return fmt.Sprintf("host name %s was found on the certificate", o.cert.Host)
}

func trustDetail(o *tlsOutcome) string {
	if o.trustErr != nil {
		return ""
	}
	return "the certificate is trusted and all certificates are present in the chain"
}

func clientCertDetail(o *tlsOutcome) string {
	if o.clientCertRequested {
		return ""
	}
	return "client certificate authentication wasn't detected"
}

func tlsVersionName(v uint16) string {
	switch v {
	case 0x0304:
		return "TLS 1.3"
	case 0x0303:
		return "TLS 1.2"
	case 0x0302:
		return "TLS 1.1"
	case 0x0301:
		return "TLS 1.0"
	}
	return fmt.Sprintf("TLS 0x%04x", v)
}

func judgeCertificate(out *tlsOutcome, host string, roots *x509.CertPool, now time.Time) {
	peers := out.state.PeerCertificates
	leaf := peers[0]
	out.cert = CertInfo{
		Host:      host,
		Subject:   leaf.Subject.String(),
		Issuer:    leaf.Issuer.String(),
		DNSNames:  leaf.DNSNames,
		NotBefore: leaf.NotBefore,
		NotAfter:  leaf.NotAfter,
	}
	if err := leaf.VerifyHostname(host); err != nil {
		out.nameErr = failf(ClassNameMismatch, "host name %s doesn't match any name on the certificate (%s)", host, certNames(leaf))
	}
	intermediates := x509.NewCertPool()
	for _, c := range peers[1:] {
		intermediates.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: intermediates, CurrentTime: now}
	chains, verr := leaf.Verify(opts)
	if verr == nil {
		out.cert.ChainNotAfter = earliestNotAfter(chains)
	} else {
		// Judge trust at a moment inside the leaf's validity so an expired
		// but otherwise trusted certificate fails on dates, not on trust.
		opts.CurrentTime = clampTime(now, leaf.NotBefore, leaf.NotAfter)
		if _, terr := leaf.Verify(opts); terr != nil && !isDateError(terr) {
			out.trustErr = failf(ClassUntrusted, "no trusted chain: %s", trustReason(terr))
		}
	}
	switch {
	case now.After(leaf.NotAfter):
		out.validityErr = failf(ClassExpired, "certificate expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		out.validityErr = failf(ClassNotYetValid, "certificate is valid only from %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	case verr != nil && out.trustErr == nil:
		// The leaf is in date but a chain certificate is not.
		out.validityErr = failf(ClassExpired, "a certificate of the chain is out of its validity period")
	}
	out.cert.NameOK = out.nameErr == nil
	out.cert.TrustOK = out.trustErr == nil
	out.cert.ValidityOK = out.validityErr == nil
}

// isDateError reports a chain that failed only because a certificate in it
// is out of its validity period: that is the dates verdict's business.
func isDateError(err error) bool {
	var ci x509.CertificateInvalidError
	return errors.As(err, &ci) && ci.Reason == x509.Expired
}

func clampTime(t, lo, hi time.Time) time.Time {
	if t.Before(lo) {
		return lo.Add(time.Second)
	}
	if t.After(hi) {
		return hi.Add(-time.Second)
	}
	return t
}

func earliestNotAfter(chains [][]*x509.Certificate) time.Time {
	var earliest time.Time
	for _, chain := range chains {
		for _, c := range chain {
			if earliest.IsZero() || c.NotAfter.Before(earliest) {
				earliest = c.NotAfter
			}
		}
	}
	return earliest
}

func certNames(c *x509.Certificate) string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, "CN="+c.Subject.CommonName)
	}
	if len(names) > 8 {
		names = append(names[:8], fmt.Sprintf("and %d more", len(names)-8))
	}
	return strings.Join(names, ", ")
}

func trustReason(err error) string {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) && ua.Cert != nil {
		return "issued by an unknown authority (" + ua.Cert.Issuer.String() + ")"
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) {
		return ci.Error()
	}
	return err.Error()
}
