// Command floor is the least work any client must do to walk the hybrid
// chain of the simulated estate: its DNS lookups, its TLS handshakes with
// the certificate checks, its HTTP exchanges and reading the XML it needs,
// hard-coded, with no recording, no step log and no metrics. bench/scale
// runs it in the same run as the exporter and reads its CPU from /proc,
// so that the exporter's CPU per chain can be given as a multiple of it.
//
// It reads a job (JSON, -job) naming the estate's DNS server, address map
// and CA, and the mailboxes; walks every chain once, spread over -cycle;
// prints "done <chains> <succeeded>" and waits for its standard input to
// close, so that the parent reads its CPU time before it exits.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/autodiscover-exporter/autodiscover_exporter/bench/floorjob"
)

func main() {
	jobFile := flag.String("job", "", "the job file (JSON)")
	cycle := flag.Duration("cycle", 10*time.Second, "the chains are spread over this long")
	flag.Parse()
	if err := run(*jobFile, *cycle); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(jobFile string, cycle time.Duration) error {
	data, err := os.ReadFile(jobFile)
	if err != nil {
		return err
	}
	var job floorjob.Job
	if err := json.Unmarshal(data, &job); err != nil {
		return err
	}
	pem, err := os.ReadFile(job.CAFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return errors.New("no CA in " + job.CAFile)
	}
	c := &client{job: job, roots: roots, auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(job.Username+":"+job.Password))}
	var ok atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	for i, mb := range job.Mailboxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(begin.Add(time.Duration(i) * cycle / time.Duration(len(job.Mailboxes)))))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.chain(ctx, mb); err == nil {
				ok.Add(1)
			} else if i == 0 {
				fmt.Fprintln(os.Stderr, "floor: first chain:", err)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("done %d %d\n", len(job.Mailboxes), ok.Load())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

type client struct {
	job   floorjob.Job
	roots *x509.CertPool
	auth  string
}

// chain is the hybrid flow: the domain root (a web host's certificate),
// autodiscover.<domain> (redirectAddr to the tenant), the tenant's root
// (no such name) and autodiscover host (port 443 closed), the HTTP
// redirect method to the front door (redirectUrl), and the pod (settings).
func (c *client) chain(ctx context.Context, address string) error {
	user, domain, _ := strings.Cut(address, "@")
	if conn, err := c.open(ctx, domain, 443); err == nil {
		_ = conn.Close()
		return errors.New("the domain root's certificate should not verify")
	}
	body, err := c.post(ctx, "autodiscover."+domain, address)
	if err != nil {
		return err
	}
	tenantAddress := element(body, "RedirectAddr")
	if tenantAddress == "" {
		return errors.New("no redirectAddr from " + domain)
	}
	tenant := strings.SplitN(tenantAddress, "@", 2)[1]
	if _, err := c.resolve(ctx, tenant); err == nil {
		return errors.New("the tenant's root should not resolve")
	}
	if conn, err := c.dial(ctx, "autodiscover."+tenant, 443); err == nil {
		_ = conn.Close()
		return errors.New("the tenant's autodiscover host should refuse port 443")
	}
	location, err := c.redirectMethod(ctx, "autodiscover."+tenant)
	if err != nil {
		return err
	}
	front := hostOf(location)
	body, err = c.post(ctx, front, tenantAddress)
	if err != nil {
		return err
	}
	pod := hostOf(element(body, "RedirectUrl"))
	body, err = c.post(ctx, pod, tenantAddress)
	if err != nil {
		return err
	}
	if element(body, "EwsUrl") == "" && element(body, "Server") == "" {
		return fmt.Errorf("no settings for %s (%s)", user, tenantAddress)
	}
	return nil
}

// resolve asks A and AAAA, as a dual-stack client does, and follows a
// CNAME in the answer.
func (c *client) resolve(ctx context.Context, host string) ([]string, error) {
	var addrs []string
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(host), qtype)
		var dc dns.Client
		resp, _, err := dc.ExchangeContext(ctx, m, c.job.DNSServer)
		if err != nil {
			return nil, err
		}
		if resp.Rcode != dns.RcodeSuccess {
			return nil, fmt.Errorf("%s: %s", host, dns.RcodeToString[resp.Rcode])
		}
		for _, rr := range resp.Answer {
			switch a := rr.(type) {
			case *dns.A:
				addrs = append(addrs, a.A.String())
			case *dns.AAAA:
				addrs = append(addrs, a.AAAA.String())
			}
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New(host + ": no address")
	}
	return addrs, nil
}

func (c *client) dial(ctx context.Context, host string, port int) (net.Conn, error) {
	addrs, err := c.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	to := net.JoinHostPort(addrs[0], strconv.Itoa(port))
	if mapped, ok := c.job.ConnectTo[to]; ok {
		to = mapped
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", to)
}

// open is DNS, TCP and a TLS handshake with the certificate verified.
func (c *client) open(ctx context.Context, host string, port int) (*tls.Conn, error) {
	raw, err := c.dial(ctx, host, port)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, &tls.Config{ServerName: host, RootCAs: c.roots, MinVersion: tls.VersionTLS12,
		// What the exporter offers too: classical key exchange.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}})
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return conn, nil
}

const requestXML = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>%s</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`

// post sends the Autodiscover POST, answers the 401 with Basic on the same
// connection, and returns the answer.
func (c *client) post(ctx context.Context, host, address string) ([]byte, error) {
	conn, err := c.open(ctx, host, 443)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	br := bufio.NewReader(conn)
	body := fmt.Sprintf(requestXML, address)
	for _, auth := range []string{"", c.auth} {
		req, _ := http.NewRequest(http.MethodPost, "https://"+host+"/autodiscover/autodiscover.xml", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/xml")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if err := req.Write(conn); err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			continue
		case http.StatusOK:
			return answer, nil
		default:
			return nil, fmt.Errorf("%s: HTTP %d", host, resp.StatusCode)
		}
	}
	return nil, errors.New(host + ": credentials refused")
}

// redirectMethod is the unauthenticated GET on port 80 answered by a 302.
func (c *client) redirectMethod(ctx context.Context, host string) (string, error) {
	conn, err := c.dial(ctx, host, 80)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/autodiscover/autodiscover.xml", nil)
	if err := req.Write(conn); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return "", err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusMovedPermanently {
		return "", fmt.Errorf("%s: HTTP %d, no redirect", host, resp.StatusCode)
	}
	return resp.Header.Get("Location"), nil
}

// element is the text of the first element named local in the answer.
func element(body []byte, local string) string {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == local {
			var s string
			if d.DecodeElement(&s, &se) == nil {
				return strings.TrimSpace(s)
			}
			return ""
		}
	}
}

func hostOf(u string) string {
	rest := strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	host, _, _ := strings.Cut(rest, "/")
	return strings.ToLower(host)
}
