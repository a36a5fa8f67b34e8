package probe_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// requireExchangelib skips without python3 and Debian's
// python3-exchangelib, and fails under CI=true, where .ci/run installs
// them.
func requireExchangelib(t *testing.T) string {
	t.Helper()
	// Debian's interpreter first: its packages are where apt put them,
	// whatever python3 comes first on the PATH.
	var err error
	for _, python := range []string{"/usr/bin/python3", "python3"} {
		if python, err = exec.LookPath(python); err == nil {
			if err = exec.Command(python, "-c", "import exchangelib.autodiscover.discovery.soap").Run(); err == nil {
				return python
			}
		}
	}
	{
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-exchangelib is needed under CI=true: %v", err)
		}
		t.Skipf("python3-exchangelib is not installed (apt-get install python3-exchangelib): %v", err)
	}
	return ""
}

// exchangelibDiscover runs exchangelib's SOAP autodiscovery for mb against
// the estate, as a real EWS client would.
func exchangelibDiscover(t *testing.T, python string, e *lab.Estate, mb lab.Mailbox) map[string]string {
	t.Helper()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "lab-ca.pem")
	if err := os.WriteFile(caFile, e.CA.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	connectTo, err := json.Marshal(e.ConnectTo())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "testdata/exchangelib_soap.py", mb.Address, mb.Username, mb.Password, e.DNSAddr(), string(connectTo))
	// Its cache lives in the temporary directory: one per run, so that
	// no earlier run answers for the estate.
	cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+caFile, "TMPDIR="+dir, "HOME="+dir, "NO_PROXY=*", "no_proxy=*")
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("exchangelib: %v\n%s", err, stderr)
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("exchangelib printed %q: %v", out, err)
	}
	return got
}

// A real EWS client's SOAP autodiscovery, run against the lab, finds the
// EWS URL the exporter reports: the lab's autodiscover.svc answers as
// Exchange does, and the exporter reads it as a client does.
func TestExchangelibFindsTheEWSURLTheExporterReports(t *testing.T) {
	python := requireExchangelib(t)
	e := newEstate(t)
	hybrid, err := e.AddHybrid("contoso.test", "jane", "Hybrid-pw1")
	if err != nil {
		t.Fatal(err)
	}
	onPrem, _, err := e.AddExchange("fabrikam.test", "omar", "OnPrem-pw1")
	if err != nil {
		t.Fatal(err)
	}
	for _, mb := range []lab.Mailbox{hybrid, onPrem} {
		t.Run(mb.Address, func(t *testing.T) {
			s := settingsFor(e, mb)
			s.Methods = []probe.Method{probe.MethodSOAP}
			res := mustRun(t, mb.Address, s)
			if res.SOAP == nil || !res.SOAP.OK {
				t.Fatalf("the exporter's SOAP discovery failed: %+v\n%s", res.SOAP, res.Log())
			}
			e.ResetRequests()
			got := exchangelibDiscover(t, python, e, mb)
			// It really asked the lab: its authenticated GetUserSettings
			// reached the server that answered the exporter.
			final := hostOfURL(res.SOAP.URL)
			authed := 0
			for _, r := range e.RequestsTo(final) {
				if strings.HasSuffix(strings.ToLower(r.Path), "/autodiscover.svc") && r.Authorization != "" {
					authed++
				}
			}
			if authed == 0 {
				t.Errorf("exchangelib sent no authenticated request to %s's autodiscover.svc", final)
			}
			if got["error"] != "" {
				t.Fatalf("exchangelib failed where the exporter found %s: %s", res.SOAP.EWSURL, got["error"])
			}
			if got["ews_url"] != res.SOAP.EWSURL {
				t.Errorf("exchangelib found EWS at %q, the exporter reports %q", got["ews_url"], res.SOAP.EWSURL)
			}
			if want := res.SOAP.Setting("AutoDiscoverSMTPAddress"); got["smtp_address"] != want {
				t.Errorf("exchangelib found primary address %q, the exporter %q", got["smtp_address"], want)
			}
		})
	}
}

func hostOfURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
