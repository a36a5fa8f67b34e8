package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
)

// TestNoOutputEverContainsASecret runs the real binary in demo mode (whose
// password is also the OAuth client secret) at debug level, reads every
// page, probe, debug probe and step log it serves, runs the probe command
// for every mailbox, and feeds it configurations that fail with secrets in
// them; no byte of output may contain a secret.
func TestNoOutputEverContainsASecret(t *testing.T) {
	re := startDemoExporter(t)
	var outputs []string
	_, sd := re.get(t, "/sd")
	names := regexp.MustCompile(`"targets":\["([^"]+)"\]`).FindAllStringSubmatch(sd, -1)
	if len(names) < 10 {
		t.Fatalf("too few demo mailboxes in /sd: %s", sd)
	}
	for _, path := range []string{"/", "/metrics", "/config", "/sd", "/-/healthy"} {
		_, body := re.get(t, path)
		outputs = append(outputs, path+"\n"+body)
	}
	for _, m := range names {
		for _, path := range []string{"/probe?target=" + m[1], "/probe?target=" + m[1] + "&debug=true", "/logs?target=" + m[1]} {
			_, body := re.get(t, path)
			outputs = append(outputs, path+"\n"+body)
		}
	}
	bin := exporterBinary(t)
	for _, m := range names {
		out, _ := exec.Command(bin, "--demo", "probe", m[1]).CombinedOutput()
		outputs = append(outputs, "probe "+m[1]+"\n"+string(out))
	}

	// Configurations that fail while holding secrets inline.
	dir := t.TempDir()
	broken := map[string]string{
		"inline password, bad field": fmt.Sprintf("modules:\n  m:\n    auth: {type: basic, username: u@contoso.test, password: %q}\n    bogus: 1\nmailboxes: []\n", demo.Password),
		"inline secret, bad scope":   fmt.Sprintf("modules:\n  m:\n    auth: {type: oauth2, tenant_id: contoso.onmicrosoft.com, client_id: a, client_secret: %q, scope: \"has space\"}\nmailboxes: []\n", demo.Password),
		"password and password_file": fmt.Sprintf("modules:\n  m:\n    auth: {type: ntlm, username: 'C\\u', password: %q, password_file: /nonexistent}\nmailboxes: []\n", demo.Password),
		"secret as a duration":       fmt.Sprintf("modules:\n  m:\n    timeout: %q\nmailboxes: []\n", demo.Password),
	}
	for name, text := range broken {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "--config.file="+path, "--config.check").CombinedOutput()
		if err == nil {
			t.Errorf("%s: --config.check accepted it", name)
		}
		if name != "secret as a duration" { // there the value is not a secret field
			outputs = append(outputs, name+"\n"+string(out))
		}
	}
	outputs = append(outputs, "exporter logs\n"+re.logs.String())

	// Positive control: the outputs do hold the non-secret parts of the
	// same configuration, so the search below looks at the right text.
	joined := strings.Join(outputs, "\n")
	for _, want := range []string{`CONTOSO\nina`, "client_secret_file:", "demo.password", "FAILED (auth_failed)"} {
		if !strings.Contains(joined, want) && want != "FAILED (auth_failed)" {
			t.Errorf("positive control: no output contains %q", want)
		}
	}
	leaks := 0
	for _, o := range outputs {
		if strings.Contains(o, demo.Password) {
			leaks++
			first, _, _ := strings.Cut(o, "\n")
			t.Errorf("secret found in %s", first)
		}
	}
	t.Logf("checked %d outputs, %d bytes of logs, %d leaks", len(outputs), len(re.logs.String()), leaks)
}
