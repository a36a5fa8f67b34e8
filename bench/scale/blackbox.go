package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// hop is one HTTP exchange of the hybrid chain, as blackbox_exporter
// would be configured to check it.
type hop struct {
	name, host, scheme string
	port               int
	method             string
	auth               bool
}

// chainHops are the exchanges of the first mailbox's chain.
func (b *bench) chainHops() []hop {
	mb := b.mailboxes[0]
	domain := mb.Address[strings.IndexByte(mb.Address, '@')+1:]
	return []hop{
		{"hop_root", domain, "https", 443, "POST", false},
		{"hop_onprem", "autodiscover." + domain, "https", 443, "POST", true},
		{"hop_http_redirect", lab.CloudRedirectHost, "http", 80, "GET", false},
		{"hop_frontdoor", lab.CloudFrontDoor, "https", 443, "POST", true},
		{"hop_pod", lab.CloudPod, "https", 443, "POST", true},
	}
}

// writeBlackboxConfig writes one http module per hop, POSTing the same
// body as the chain, and returns the "module|target" of each.
func (b *bench) writeBlackboxConfig(hops []hop) (string, []string, error) {
	body := strings.ReplaceAll(string(probe.BuildRequest(probe.SchemaOutlook, b.mailboxes[0].Address)), "'", "''")
	var cfg strings.Builder
	cfg.WriteString("modules:\n")
	ct := b.estate.ConnectTo()
	var targets []string
	for _, h := range hops {
		ip, err := b.estate.IPOf(h.host)
		if err != nil {
			return "", nil, err
		}
		dest := ct[net.JoinHostPort(ip, strconv.Itoa(h.port))]
		fmt.Fprintf(&cfg, "  %s:\n    prober: http\n    timeout: 10s\n    http:\n      method: %s\n      follow_redirects: false\n      preferred_ip_protocol: ip4\n      valid_status_codes: [200, 302]\n", h.name, h.method)
		fmt.Fprintf(&cfg, "      headers: {Host: %q, Content-Type: \"text/xml; charset=utf-8\"}\n", h.host)
		if h.method == "POST" {
			fmt.Fprintf(&cfg, "      body: '%s'\n", body)
		}
		if h.auth {
			fmt.Fprintf(&cfg, "      basic_auth: {username: %q, password: %q}\n", benchAccount, benchPassword)
		}
		if h.scheme == "https" {
			fmt.Fprintf(&cfg, "      tls_config: {ca_file: %q, server_name: %q}\n", b.caPath(), h.host)
		}
		targets = append(targets, h.name+"|"+h.scheme+"://"+dest+"/autodiscover/autodiscover.xml")
	}
	path := filepath.Join(b.dir, "blackbox.yml")
	return path, targets, os.WriteFile(path, []byte(cfg.String()), 0o600)
}

// runBlackbox probes the chain's endpoints with blackbox_exporter, one http
// module per hop, as many requests as the cycle's chains made, and
// compares CPU.
func runBlackbox(ctx context.Context, o options, b *bench, ourCPU time.Duration) (perChain float64, err error) {
	hops := b.chainHops()
	cfgPath, targets, err := b.writeBlackboxConfig(hops)
	if err != nil {
		return 0, err
	}
	addr, err := freePort()
	if err != nil {
		return 0, err
	}
	cmd, bb, err := start(ctx, o.blackbox, "--config.file="+cfgPath, "--web.listen-address="+addr, "--log.level=warn")
	if err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := waitHealthy("http://" + addr + "/-/healthy"); err != nil {
		return 0, err
	}
	probeURL := func(t string) string {
		module, target, _ := strings.Cut(t, "|")
		return "http://" + addr + "/probe?" + url.Values{"module": {module}, "target": {target}}.Encode()
	}
	// Check the modules once: every hop but the root (whose certificate
	// names another host) must succeed.
	for _, t := range targets {
		body, err := get(probeURL(t), 10*time.Second)
		if err != nil {
			return 0, err
		}
		if want := !strings.HasPrefix(t, "hop_root|"); (metric(body, "probe_success") == 1) != want {
			return 0, fmt.Errorf("blackbox module %s: probe_success %v, want %v", t, metric(body, "probe_success"), want)
		}
	}
	var urls []string
	for i := 0; i < o.mailboxes; i++ {
		for _, t := range targets {
			urls = append(urls, probeURL(t))
		}
	}
	cpu0 := bb.cpu()
	spread(urls, o.cycle, o.cycle)
	return printBlackbox(o, len(hops), len(urls), bb.cpu()-cpu0, ourCPU), nil
}

func printBlackbox(o options, hops, requests int, bbCPU, ourCPU time.Duration) float64 {
	perRequest := float64(bbCPU.Microseconds()) / 1000 / float64(requests)
	ours := float64(ourCPU.Microseconds()) / 1000 / float64(o.mailboxes)
	fmt.Printf("\n## blackbox_exporter on the same endpoints (one http module per hop, %d hops per chain)\n\n", hops)
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| requests, spread over %v | %d |\n", o.cycle, requests)
	fmt.Printf("| blackbox CPU per HTTP(S) request | %.2f ms |\n", perRequest)
	fmt.Printf("| blackbox CPU for one chain's %d requests | %.2f ms |\n", hops, perRequest*float64(hops))
	fmt.Printf("| CPU ratio: ours per chain ÷ blackbox per chain | %.2f |\n", ours/(perRequest*float64(hops)))
	return perRequest * float64(hops)
}
