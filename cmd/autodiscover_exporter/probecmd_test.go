package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/server"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

const probeCmdPassword = "Probe-Cmd-S3cret!"

// probeCmdEstate is a small estate of its own, so that its request log
// and DNS query count are the probe command's alone: contoso.test on
// premises, where the monitoring account alice@contoso.test may discover
// bob (who is in no configuration) but not carol (unknown to the server),
// and branch.test, which module hq reaches only through allowed_domains.
type probeCmdEstate struct {
	estate *lab.Estate
	// config has module hq (alice's Basic credentials, mailbox alice) and
	// module open (no credentials); oneModule has hq alone.
	config, oneModule string
}

func startProbeCmdEstate(t *testing.T) *probeCmdEstate {
	t.Helper()
	e, err := lab.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	alice, contoso, err := e.AddOnPremises("contoso.test", "alice", probeCmdPassword)
	if err != nil {
		t.Fatal(err)
	}
	contoso.SetUser("bob@contoso.test", lab.Reply{Settings: &lab.Settings{DisplayName: "Bob", Server: "mail.contoso.test"}})
	_, branch, err := e.AddOnPremises("branch.test", "dora", probeCmdPassword)
	if err != nil {
		t.Fatal(err)
	}
	branch.AddAccount(alice.Username, probeCmdPassword)

	dir := t.TempDir()
	caPath := filepath.Join(dir, "lab-ca.pem")
	if err := os.WriteFile(caPath, e.CA.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	module := func(auth config.Auth, allowed ...string) *config.Module {
		m := demo.LabModule(e, caPath)
		m.Timeout = config.Duration(10 * time.Second)
		m.StepTimeout = config.Duration(2 * time.Second)
		m.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
		m.Auth = auth
		m.AllowedDomains = allowed
		return m
	}
	basic, err := demo.BasicAuth(dir, alice.Username, probeCmdPassword)
	if err != nil {
		t.Fatal(err)
	}
	hq := module(basic, "branch.test")
	mailbox := &config.Mailbox{Name: "alice", Address: alice.Address, Module: "hq"}
	return &probeCmdEstate{
		estate:    e,
		config:    writeLabConfig(t, map[string]*config.Module{"hq": hq, "open": module(config.Auth{Type: probe.AuthNone})}, mailbox),
		oneModule: writeLabConfig(t, map[string]*config.Module{"hq": hq}, mailbox),
	}
}

// runProbeCommand runs the real binary and returns its exit code and
// what it wrote to stdout and stderr apart: JSON goes to stdout alone.
func runProbeCommand(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exporterBinary(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

// probeDoc decodes --output json into plain maps, so that the tests read
// the keys a script reads rather than the Go field names.
func probeDoc(t *testing.T, stdout string) map[string]any {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON document:\n%s", stdout)
	}
	return doc
}

// field walks doc along keys, each an object key.
func field(t *testing.T, doc map[string]any, keys ...string) any {
	t.Helper()
	var v any = doc
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object on the way to %v", k, keys)
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("no key %q on the way to %v", k, keys)
		}
	}
	return v
}

func TestProbeCommand(t *testing.T) {
	pe := startProbeCmdEstate(t)
	contosoEndpoint := "https://autodiscover.contoso.test/autodiscover/autodiscover.xml"
	cases := []struct {
		name     string
		args     []string
		wantCode int
		// stderr must contain this; for bad input it is the whole reason.
		stderr string
		check  func(t *testing.T, stdout string)
	}{
		{
			name:     "an unconfigured address of a paired domain succeeds and prints its settings as JSON",
			args:     []string{"--config.file=" + pe.config, "probe", "--address", "bob@contoso.test", "--module", "hq", "--output", "json"},
			wantCode: exitProbeSucceeded,
			check: func(t *testing.T, stdout string) {
				doc := probeDoc(t, stdout)
				for key, want := range map[string]any{"mailbox": "bob@contoso.test", "success": true, "failure": nil, "final_url": contosoEndpoint, "redirect_hops": 0.0} {
					if got := field(t, doc, key); got != want {
						t.Errorf("%s = %v, want %v", key, got, want)
					}
				}
				if got := field(t, doc, "response", "ews_url"); got != "https://mail.contoso.test/EWS/Exchange.asmx" {
					t.Errorf("response.ews_url = %v", got)
				}
				if got := field(t, doc, "response", "user", "display_name"); got != "Bob" {
					t.Errorf("response.user.display_name = %v", got)
				}
				if d, _ := field(t, doc, "duration_seconds").(float64); d <= 0 || d > 10 {
					t.Errorf("duration_seconds = %v, want seconds as a number", d)
				}
			},
		},
		{
			name:     "the only module is the default of --address",
			args:     []string{"--config.file=" + pe.oneModule, "probe", "--address", "bob@contoso.test", "--output=json"},
			wantCode: exitProbeSucceeded,
			check: func(t *testing.T, stdout string) {
				if got := field(t, probeDoc(t, stdout), "success"); got != true {
					t.Errorf("success = %v", got)
				}
			},
		},
		{
			name:     "an address of a domain among the module's allowed_domains gets its credentials",
			args:     []string{"--config.file=" + pe.config, "probe", "--address", "dora@branch.test", "--module", "hq"},
			wantCode: exitProbeSucceeded,
			check: func(t *testing.T, stdout string) {
				if !strings.Contains(stdout, "Autodiscover settings were obtained from https://autodiscover.branch.test/") {
					t.Errorf("step log:\n%s", stdout)
				}
			},
		},
		{
			name:     "an address the server does not know fails with the decisive failure",
			args:     []string{"--config.file=" + pe.config, "probe", "--address", "carol@contoso.test", "--module", "hq", "--output", "json"},
			wantCode: exitProbeFailed,
			check: func(t *testing.T, stdout string) {
				doc := probeDoc(t, stdout)
				if got := field(t, doc, "success"); got != false {
					t.Errorf("success = %v", got)
				}
				if r, _ := field(t, doc, "reason").(string); r == "" {
					t.Error("a failure without a reason")
				}
				for key, want := range map[string]any{"method": "autodiscover_domain", "host": "autodiscover.contoso.test", "class": "autodiscover_error"} {
					if got := field(t, doc, "failure", key); got != want {
						t.Errorf("failure.%s = %v, want %v", key, got, want)
					}
				}
				for _, key := range []string{"step", "sentence"} {
					if s, _ := field(t, doc, "failure", key).(string); s == "" {
						t.Errorf("failure.%s is empty", key)
					}
				}
				if got := field(t, doc, "response", "error", "code"); got != "500" {
					t.Errorf("response.error.code = %v", got)
				}
			},
		},
		{
			name:     "a module without credentials may probe any domain, and fails where the server wants them",
			args:     []string{"--config.file=" + pe.config, "probe", "--address", "bob@contoso.test", "--module", "open"},
			wantCode: exitProbeFailed,
			check: func(t *testing.T, stdout string) {
				if !strings.Contains(stdout, "no_credentials") {
					t.Errorf("step log:\n%s", stdout)
				}
			},
		},
		{
			name:     "a configured mailbox still works by its name",
			args:     []string{"--config.file=" + pe.config, "probe", "alice"},
			wantCode: exitProbeSucceeded,
			check: func(t *testing.T, stdout string) {
				if !strings.HasPrefix(stdout, "Testing Autodiscover for alice@contoso.test.\n") || !strings.Contains(stdout, "Autodiscover settings were obtained from "+contosoEndpoint) {
					t.Errorf("step log:\n%s", stdout)
				}
			},
		},
		{
			name:     "--module replaces a configured mailbox's own module",
			args:     []string{"--config.file=" + pe.config, "probe", "alice", "--module", "open", "--output", "json"},
			wantCode: exitProbeFailed,
			check: func(t *testing.T, stdout string) {
				if got := field(t, probeDoc(t, stdout), "failure", "class"); got != "no_credentials" {
					t.Errorf("failure.class = %v, want no_credentials (module open has none)", got)
				}
			},
		},
		{
			name:     "a malformed address is refused",
			args:     []string{"--config.file=" + pe.config, "probe", "--address", "bob@localhost", "--module", "hq"},
			wantCode: exitBadInput,
			stderr:   `invalid mailbox address "bob@localhost": single-label domain`,
		},
		{
			name:     "an address without @ is refused even before the configuration is read",
			args:     []string{"--config.file=/nonexistent.yml", "probe", "--address", "bob.contoso.test"},
			wantCode: exitBadInput,
			stderr:   "no '@'",
		},
		{
			name:     "an unknown module is refused",
			args:     []string{"--config.file=" + pe.config, "probe", "--address", "bob@contoso.test", "--module", "nope"},
			wantCode: exitBadInput,
			stderr:   `unknown module "nope"`,
		},
		{
			name:     "--address needs --module when there are several",
			args:     []string{"--config.file=" + pe.config, "probe", "--address", "bob@contoso.test"},
			wantCode: exitBadInput,
			stderr:   "--address needs --module: the configuration has 2 modules: hq, open",
		},
		{
			name:     "credentials are not sent to a domain the module is not paired with",
			args:     []string{"--config.file=" + pe.config, "probe", "--address", "eve@fabrikam.test", "--module", "hq"},
			wantCode: exitBadInput,
			stderr:   `module "hq" holds credentials paired with branch.test, contoso.test, not with fabrikam.test`,
		},
		{
			name:     "a mailbox name and --address together are refused",
			args:     []string{"--config.file=" + pe.config, "probe", "alice", "--address", "bob@contoso.test", "--module", "hq"},
			wantCode: exitBadInput,
			stderr:   "not both",
		},
		{
			name:     "neither a mailbox name nor --address is refused",
			args:     []string{"--config.file=" + pe.config, "probe"},
			wantCode: exitBadInput,
			stderr:   "give the name of a configured mailbox, or --address",
		},
		{
			name:     "an unknown mailbox name is refused",
			args:     []string{"--config.file=" + pe.config, "probe", "nobody"},
			wantCode: exitBadInput,
			stderr:   `"nobody" is not a configured mailbox`,
		},
		{
			name:     "an unknown output format is refused",
			args:     []string{"--config.file=" + pe.config, "probe", "alice", "--output", "xml"},
			wantCode: exitBadInput,
			stderr:   "enum value must be one of text,json, got 'xml'",
		},
		{
			name:     "--exporter.url with --address is refused: there is no mailbox to reset",
			args:     []string{"--config.file=" + pe.config, "probe", "--address", "bob@contoso.test", "--module", "hq", "--exporter.url", "http://127.0.0.1:1"},
			wantCode: exitBadInput,
			stderr:   "--exporter.url resets the back-off of a configured mailbox",
		},
		{
			name:     "an invalid configuration is refused",
			args:     []string{"--config.file=" + brokenConfig(t), "probe", "alice"},
			wantCode: exitBadInput,
			stderr:   "broken.yml:3: modules.hq.timeout",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pe.estate.ResetRequests()
			queries := pe.estate.DNSQueries()
			code, stdout, stderr := runProbeCommand(t, c.args...)
			if code != c.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.wantCode, stdout, stderr)
			}
			if !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, c.stderr)
			}
			if c.wantCode == exitBadInput {
				if stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
					t.Errorf("bad input must give one line on stderr and nothing on stdout; stdout %q, stderr %q", stdout, stderr)
				}
				if n := len(pe.estate.Requests()); n != 0 {
					t.Errorf("bad input sent %d HTTP request(s)", n)
				}
				if n := pe.estate.DNSQueries() - queries; n != 0 {
					t.Errorf("bad input sent %d DNS quer(ies)", n)
				}
			}
			if c.check != nil {
				c.check(t, stdout)
			}
		})
	}
}

func brokenConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broken.yml")
	if err := os.WriteFile(path, []byte("modules:\n  hq:\n    timeout: forever\nmailboxes: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// durations are the only part of a step log that differs between runs.
var durations = regexp.MustCompile(`\b\d+ ms\b`)

// The text output is the step log probe.Result.WriteLog writes, whatever
// way the mailbox was named.
func TestProbeCommandTextOutputIsTheStepLog(t *testing.T) {
	pe := startProbeCmdEstate(t)
	loaded, err := server.Load(pe.config, probe.Env{})
	if err != nil {
		t.Fatal(err)
	}
	prober, _ := loaded.Prober("hq")
	res, err := prober.Run(context.Background(), probe.Target{Address: "alice@contoso.test"})
	if err != nil || !res.Success {
		t.Fatalf("in-process probe: %v %+v", err, res)
	}
	want := durations.ReplaceAllString(res.Log(), "N ms")
	for _, args := range [][]string{
		{"probe", "alice"},
		{"probe", "alice", "--output", "text"},
		{"probe", "--address", "alice@contoso.test", "--module", "hq"},
	} {
		code, stdout, stderr := runProbeCommand(t, append([]string{"--config.file=" + pe.config}, args...)...)
		if code != exitProbeSucceeded || stderr != "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
		if got := durations.ReplaceAllString(stdout, "N ms"); got != want {
			t.Errorf("%v printed\n%s\nwant the step log\n%s", args, got, want)
		}
	}
}

// Scripts rely on every documented key being there, whatever the run.
func TestProbeJSONKeepsItsDocumentedShape(t *testing.T) {
	pe := startProbeCmdEstate(t)
	code, stdout, _ := runProbeCommand(t, "--config.file="+pe.config, "probe", "alice", "--output", "json")
	if code != exitProbeSucceeded {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
	doc := probeDoc(t, stdout)
	shapes := []struct {
		path []string
		keys []string
	}{
		{nil, []string{"mailbox", "success", "chain_success", "reason", "failure", "final_url", "redirect_hops", "duration_seconds", "error_code", "error_message", "error_schema", "steps", "certificates", "address_checks", "response", "v2", "expectations", "auth_backoff_seconds", "endpoint_hosts", "endpoints", "endpoints_missing", "soap", "federation", "scp"}},
		{[]string{"response"}, []string{"schema", "action", "redirect_addr", "redirect_url", "user", "microsoft_online", "server", "ews_url", "ews_url_source", "protocols", "mobile_servers", "error"}},
	}
	for _, s := range shapes {
		obj, _ := field(t, doc, s.path...).(map[string]any)
		assertKeys(t, strings.Join(s.path, "."), obj, s.keys)
	}
	steps, _ := field(t, doc, "steps").([]any)
	if len(steps) == 0 {
		t.Fatal("no steps")
	}
	assertKeys(t, "steps[0]", steps[0].(map[string]any), []string{"hop", "method", "mailbox", "host", "port", "address", "url", "name", "ok", "error_class", "detail", "start_seconds", "duration_seconds"})
	certs, _ := field(t, doc, "certificates").([]any)
	if len(certs) != 1 {
		t.Fatalf("%d certificates, want 1 (autodiscover.contoso.test)", len(certs))
	}
	cert := certs[0].(map[string]any)
	assertKeys(t, "certificates[0]", cert, []string{"host", "address", "subject", "issuer", "dns_names", "not_before", "not_after", "chain_not_after", "days_left", "name_ok", "trust_ok", "validity_ok"})
	for _, key := range []string{"not_before", "not_after", "chain_not_after"} {
		if _, err := time.Parse(time.RFC3339, cert[key].(string)); err != nil {
			t.Errorf("certificates[0].%s: %v", key, err)
		}
	}
	if days, _ := cert["days_left"].(float64); days <= 0 {
		t.Errorf("days_left = %v", cert["days_left"])
	}
	protocols, _ := field(t, doc, "response", "protocols").([]any)
	if len(protocols) == 0 {
		t.Fatal("no protocols")
	}
	var types []string
	for _, p := range protocols {
		types = append(types, p.(map[string]any)["type"].(string))
	}
	if !slices.Contains(types, "EXCH") && !slices.Contains(types, "EXHTTP") {
		t.Errorf("protocol types %v", types)
	}
	if src := field(t, doc, "response", "ews_url_source"); src == "" {
		t.Error("ews_url_source is empty")
	}
	for _, list := range []string{"address_checks", "v2", "expectations"} {
		if got, ok := field(t, doc, list).([]any); !ok || len(got) != 0 {
			t.Errorf("%s = %v, want []", list, field(t, doc, list))
		}
	}
}

func assertKeys(t *testing.T, where string, obj map[string]any, want []string) {
	t.Helper()
	var got []string
	for k := range obj {
		got = append(got, k)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("keys of %s:\n got %v\nwant %v", where, got, want)
	}
}

// The result holds no secret, so neither does its JSON: not after the
// credentials were accepted, nor after the server refused the address.
func TestProbeJSONOfACredentialedProbeHoldsNoPassword(t *testing.T) {
	pe := startProbeCmdEstate(t)
	secrets := []string{
		probeCmdPassword,
		base64.StdEncoding.EncodeToString([]byte("alice@contoso.test:" + probeCmdPassword)),
	}
	for _, args := range [][]string{
		{"probe", "alice", "--output", "json"},
		{"probe", "--address", "carol@contoso.test", "--module", "hq", "--output", "json"},
	} {
		pe.estate.ResetRequests()
		_, stdout, stderr := runProbeCommand(t, append([]string{"--config.file=" + pe.config}, args...)...)
		probeDoc(t, stdout)
		sentBasic := false
		for _, r := range pe.estate.RequestsTo("autodiscover.contoso.test") {
			sentBasic = sentBasic || strings.HasPrefix(r.Authorization, "Basic ")
		}
		if !sentBasic {
			t.Fatalf("%v: the probe never sent its credentials, so the test proves nothing", args)
		}
		for _, s := range secrets {
			if strings.Contains(stdout, s) || strings.Contains(stderr, s) {
				t.Errorf("%v: the output holds a secret (%.4s…)", args, s)
			}
		}
	}
}
