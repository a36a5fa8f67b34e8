package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// exporterBinary builds the real binary once per test run.
func exporterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "autodiscover_exporter-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, exporterName)
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runningExporter is the binary serving on loopback.
type runningExporter struct {
	cmd  *exec.Cmd
	base string
	logs *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startExporter(t *testing.T, configPath string) *runningExporter {
	t.Helper()
	return startExporterArgs(t, "--config.file="+configPath)
}

// startExporterArgs runs the binary on a free loopback port with args.
func startExporterArgs(t *testing.T, args ...string) *runningExporter {
	t.Helper()
	addr := freeAddr(t)
	logs := &lockedBuffer{}
	cmd := exec.Command(exporterBinary(t), append(args, "--web.listen-address="+addr, "--log.level=debug")...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	re := &runningExporter{cmd: cmd, base: "http://" + addr, logs: logs}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(re.base + "/-/healthy"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return re
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("exporter did not become healthy; logs:\n%s", logs.String())
	return nil
}

func (re *runningExporter) get(t *testing.T, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, re.base+path, nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "15")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing metrics: %v\n%s", err, text)
	}
	return mfs
}

func series(mf *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	if mf == nil {
		return out
	}
	for _, m := range mf.Metric {
		var parts []string
		for _, lp := range m.Label {
			parts = append(parts, lp.GetName()+"="+lp.GetValue())
		}
		out[strings.Join(parts, ",")] = m.GetGauge().GetValue()
	}
	return out
}

func TestEndToEndHybridScrapeAgainstTheRealBinary(t *testing.T) {
	l := startLab(t)
	re := startExporter(t, l.configPath)

	code, body := re.get(t, "/probe?target=hybrid-alice")
	if code != http.StatusOK {
		t.Fatalf("/probe = %d: %s", code, body)
	}
	mfs := parseMetrics(t, body)
	if v := series(mfs["autodiscover_probe_success"])[""]; v != 1 {
		t.Fatalf("autodiscover_probe_success %v\n%s\nlogs:\n%s", v, body, re.logs.String())
	}
	if v := series(mfs["autodiscover_redirect_hops"])[""]; v != 3 {
		t.Errorf("autodiscover_redirect_hops %v, want 3", v)
	}
	// One step series per step of every candidate (labels sort: hop, host, method, step).
	steps := series(mfs["autodiscover_step_success"])
	want := map[string]float64{
		"hop=0,host=contoso.test,method=root_domain,step=cert_name":                                 0,
		"hop=0,host=contoso.test,method=root_domain,step=cert_trust":                                1,
		"hop=0,host=autodiscover.contoso.test,method=autodiscover_domain,step=credentials":          1,
		"hop=0,host=autodiscover.contoso.test,method=autodiscover_domain,step=redirect":             1,
		"hop=1,host=contoso.mail.onmicrosoft.test,method=root_domain,step=dns":                      0,
		"hop=1,host=autodiscover.contoso.mail.onmicrosoft.test,method=autodiscover_domain,step=dns": 1,
		"hop=1,host=autodiscover.contoso.mail.onmicrosoft.test,method=autodiscover_domain,step=tcp": 0,
		"hop=1,host=autodiscover.contoso.mail.onmicrosoft.test,method=http_redirect,step=http_get":  1,
		"hop=2,host=" + lab.CloudFrontDoor + ",method=redirect,step=parse":                          1,
		"hop=3,host=" + lab.CloudPod + ",method=redirect,step=cert_validity":                        1,
		"hop=3,host=" + lab.CloudPod + ",method=redirect,step=parse":                                1,
	}
	for k, v := range want {
		got, ok := steps[k]
		if !ok || got != v {
			t.Errorf("step series {%s} = %v (present %v), want %v", k, got, ok, v)
		}
	}
	// root 7 + on-premises 11 + tenant root 1 + tenant autodiscover 2 +
	// HTTP redirect 4 + front door 11 + pod 10.
	if len(steps) != 46 {
		t.Errorf("%d step series, want 46 (every step of the hybrid chain once)", len(steps))
	}
	if len(series(mfs["autodiscover_step_duration_seconds"])) != len(steps) {
		t.Error("step duration and step success series differ")
	}
	certs := series(mfs["autodiscover_cert_not_after_timestamp_seconds"])
	for _, host := range []string{"contoso.test", "autodiscover.contoso.test", lab.CloudFrontDoor, lab.CloudPod} {
		ts, ok := certs["host="+host]
		if !ok || ts < float64(time.Now().Unix()) {
			t.Errorf("certificate expiry of %s: %v (present %v)", host, ts, ok)
		}
	}
	if len(certs) != 4 {
		t.Errorf("%d certificate series, want 4: %v", len(certs), certs)
	}
	info := series(mfs["autodiscover_result_info"])
	if len(info) != 1 {
		t.Errorf("result_info %v", info)
	}
	for k := range info {
		if !strings.Contains(k, "endpoint=https://"+lab.CloudPod+"/Autodiscover/Autodiscover.xml") {
			t.Errorf("result_info labels %s", k)
		}
	}
	if v := series(mfs["autodiscover_probe_timeout_seconds"])[""]; v != 14.5 {
		t.Errorf("probe timeout %v, want 14.5 (scrape timeout minus offset)", v)
	}

	// Lint both outputs as promtool check metrics would.
	_, own := re.get(t, "/metrics")
	for name, text := range map[string]string{"/probe": body, "/metrics": own} {
		problems, err := promlint.New(strings.NewReader(text)).Lint()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range problems {
			t.Errorf("lint %s: %s: %s", name, p.Metric, p.Text)
		}
	}
	for _, want := range []string{"autodiscover_exporter_build_info{", `autodiscover_exporter_probes_total{result="success"} 1`, "autodiscover_exporter_config_last_reload_successful 1", "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(own, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(own, "autodiscover_probe_success") {
		t.Error("/metrics carries probe metrics: they belong to /probe only")
	}

	code, sd := re.get(t, "/sd")
	for _, name := range []string{"hybrid-alice", "m365-bob", "srv-carol", "expiring-frank", "expired-dave", "loop-erin", "retired-gina", "expiring-ivan", "longchain-judy", "migrating-hank", "ntlm-nina", "oauth-olga", "v2-quinn", "pool-oscar"} {
		if code != http.StatusOK || !strings.Contains(sd, `"`+name+`"`) {
			t.Errorf("/sd lacks %s: %s", name, sd)
		}
	}
	if strings.Contains(re.logs.String(), l.password) {
		t.Error("the password appears in the exporter's logs")
	}
}

func TestEndToEndBrokenReloadBySIGHUPKeepsServing(t *testing.T) {
	l := startLab(t)
	re := startExporter(t, l.configPath)
	if err := os.WriteFile(l.configPath, []byte("modules:\n  x:\n    timeout: forever\nmailboxes: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := re.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, own := re.get(t, "/metrics")
		if strings.Contains(own, "autodiscover_exporter_config_last_reload_successful 0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reload gauge never went to 0; logs:\n%s", re.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body := re.get(t, "/probe?target=srv-carol")
	if code != http.StatusOK || !strings.Contains(body, "autodiscover_probe_success 1") {
		t.Errorf("the old configuration stopped serving: %d\n%s", code, body)
	}
	if !strings.Contains(re.logs.String(), "demo.yml:3: modules.x.timeout") {
		t.Errorf("the rejection does not name file:line; logs:\n%s", re.logs.String())
	}
}

func TestCommandLineCheckAndProbe(t *testing.T) {
	l := startLab(t)
	bin := exporterBinary(t)
	run := func(args ...string) (int, string) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	if code, out := run("--config.file="+l.configPath, "--config.check"); code != 0 || !strings.Contains(out, fmt.Sprintf("valid, %d module(s), %d mailbox(es)", demo.MailboxCount(), demo.MailboxCount())) {
		t.Errorf("--config.check on a good file = %d %q", code, out)
	}
	broken := filepath.Join(t.TempDir(), "broken.yml")
	if err := os.WriteFile(broken, []byte("modules:\n  m:\n    step_timeout: 5s\n    bogus: 1\nmailboxes: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := run("--config.file="+broken, "--config.check"); code != 1 || !strings.Contains(out, "broken.yml:4") || !strings.Contains(out, "bogus") {
		t.Errorf("--config.check on a broken file = %d %q; want 1 naming broken.yml:4 and the field", code, out)
	}
	if code, out := run("--config.file="+broken, "--web.listen-address="+freeAddr(t)); code != 1 || !strings.Contains(out, "broken.yml:4") {
		t.Errorf("starting with a broken file = %d %q; want exit 1 naming file:line", code, out)
	}
	code, out := run("--config.file="+l.configPath, "probe", "m365-bob")
	if code != 0 || !strings.Contains(out, "Autodiscover settings were obtained from https://"+lab.CloudPod) {
		t.Errorf("probe m365-bob = %d\n%s", code, out)
	}
	if code, out := run("--config.file="+l.configPath, "probe", "retired-gina"); code != 1 || !strings.Contains(out, "Autodiscover error 500") {
		t.Errorf("probe retired-gina = %d\n%s; want 1 and the error", code, out)
	}
	if code, out := run("--config.file="+l.configPath, "probe", "nobody"); code != 2 || !strings.Contains(out, "not a configured mailbox") {
		t.Errorf("probe nobody = %d %q", code, out)
	}
	if strings.Contains(out, l.password) {
		t.Error("password printed")
	}
}

// A binary built with plain go build, as a user of go run or go install
// gets it, reports the version of its tree, not an empty one.
func TestAPlainBuildReportsItsVersion(t *testing.T) {
	want, err := os.ReadFile(repoPath("VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exporterBinary(t), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	if line := strings.SplitN(string(out), "\n", 2)[0]; !strings.Contains(line, "version "+strings.TrimSpace(string(want))+" ") {
		t.Errorf("--version says %q, want version %s", line, strings.TrimSpace(string(want)))
	}
}
