package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// validName checks mailbox and module names: they travel as the ?target=
// parameter and the instance label, so they stay URL- and label-safe.
func validName(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// reservedLabel lists the label names the exporter sets itself; a mailbox
// label with one of these names would collide on every series.
func reservedLabel(name string) bool {
	switch name {
	case "instance", "job", "target", "module", "hop", "method", "host", "step", "address", "expectation":
		return true
	}
	return false
}

func checkLabelName(name string) error {
	if name == "" {
		return errors.New("label name must not be empty")
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || i > 0 && r >= '0' && r <= '9') {
			return fmt.Errorf("invalid label name %q: must match [a-zA-Z_][a-zA-Z0-9_]*", name)
		}
	}
	if strings.HasPrefix(name, "__") {
		return fmt.Errorf("invalid label name %q: names starting with \"__\" are reserved for Prometheus", name)
	}
	if reservedLabel(name) {
		return fmt.Errorf("label name %q is reserved: the exporter sets it itself", name)
	}
	return nil
}

// canonicalDomain checks an allowed_domains entry with the probe's own
// address rules (IDNA, no IP literals, no single labels, no bare public
// suffix), so a domain is accepted here exactly when a mailbox in it would
// be, and comes out in the lower-case A-label form the probe compares with.
func canonicalDomain(s string) (string, error) {
	switch {
	case s == "":
		return "", errors.New("must not be empty")
	case strings.Contains(s, "*"):
		return "", fmt.Errorf("invalid domain %q: no wildcards needed, a domain already covers its subdomains", s)
	case strings.ContainsAny(s, "@/: "):
		return "", fmt.Errorf("invalid domain %q: must be a bare domain name", s)
	}
	_, domain, err := probe.NormalizeAddress("probe@" + s)
	if err != nil {
		if ae, ok := errAs[*probe.AddressError](err); ok {
			return "", fmt.Errorf("invalid domain %q: %s", s, ae.Reason)
		}
		return "", fmt.Errorf("invalid domain %q: %w", s, err)
	}
	return domain, nil
}

// canonicalHostPort checks "host:port" and returns it in the form the probe
// compares with: IP addresses as netip prints them, names lower-cased
// without a trailing dot, ports without leading zeros.
func canonicalHostPort(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", s)
	}
	return joinCanonical(host, port)
}

// canonicalDNSServer is canonicalHostPort with the port optional: resolvers
// are nearly always on 53.
func canonicalDNSServer(s string) (string, error) {
	host, port := s, "53"
	switch {
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		host = s[1 : len(s)-1]
	case strings.Contains(s, ":"):
		if _, err := netip.ParseAddr(s); err == nil {
			break // a bare IPv6 address
		}
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", fmt.Errorf("%q is neither host nor host:port", s)
		}
		host, port = h, p
	}
	return joinCanonical(host, port)
}

func joinCanonical(host, port string) (string, error) {
	h, err := canonicalHost(host)
	if err != nil {
		return "", err
	}
	p, err := canonicalPort(port)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(h, p), nil
}

func canonicalHost(h string) (string, error) {
	if h == "" {
		return "", errors.New("empty host")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String(), nil
	}
	name := strings.ToLower(strings.TrimSuffix(h, "."))
	if !isDNSName(name) {
		return "", fmt.Errorf("host %q is neither an IP address nor a valid host name", h)
	}
	return name, nil
}

func canonicalPort(p string) (string, error) {
	if p == "" || strings.Trim(p, "0123456789") != "" {
		return "", fmt.Errorf("port %q is not a number", p)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q is out of range 1-65535", p)
	}
	return strconv.Itoa(n), nil
}

// isDNSName accepts lower-case LDH host names (RFC 1123).
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// Limits on files read at load. A password or CA bundle larger than this is
// the wrong file.
const (
	maxPasswordFile = 64 << 10
	maxCAFile       = 16 << 20
)

// readFile reads a small regular file. It refuses anything else because
// opening a FIFO blocks and /dev/zero never ends, either of which would hang
// a reload.
func readFile(path, what string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s %q: %w", what, path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %q is not a regular file", what, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s %q is larger than %d bytes", what, path, limit)
	}
	return data, nil
}

// readPasswordFile returns the password with its trailing line break
// removed: editors and "echo" add one, and no real password ends in one.
// Errors name the path only, never the content.
func readPasswordFile(path string) (string, error) {
	data, err := readFile(path, "password file", maxPasswordFile)
	if err != nil {
		return "", err
	}
	pw := strings.TrimRight(string(data), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("password file %q is empty", path)
	}
	return pw, nil
}

// loadCAFile builds a pool from a PEM bundle. Unlike
// x509.CertPool.AppendCertsFromPEM it fails on a certificate that does not
// parse, instead of quietly trusting fewer roots than the operator meant.
func loadCAFile(path string) (*x509.CertPool, error) {
	data, err := readFile(path, "CA file", maxCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA file %q: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("CA file %q holds no PEM certificate", path)
	}
	return pool, nil
}
