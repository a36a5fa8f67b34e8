package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/server"
)

// attackPage is what a page on another site does to an exporter it can
// reach from the admin's browser: auto-submitted forms (which need no
// CORS) and no-cors fetches to the state-changing endpoints.
func attackPage(exporter string) string {
	return fmt.Sprintf(`<!DOCTYPE html><html><body>
<iframe name="a"></iframe><iframe name="b"></iframe>
<form id="reset" method="POST" action="%[1]s/-/backoff/reset" target="a"><input name="x" value="1"></form>
<form id="reload" method="POST" action="%[1]s/-/reload" target="b"><input name="x" value="1"></form>
<script>
document.getElementById("reset").submit();
document.getElementById("reload").submit();
fetch("%[1]s/-/backoff/reset", {method: "POST", mode: "no-cors"});
fetch("%[1]s/-/reload", {method: "POST", mode: "no-cors", headers: {"%[2]s": "1"}});
setTimeout(function () { document.body.setAttribute("data-done", "1"); }, 1500);
</script></body></html>`, exporter, server.ActionHeader)
}

// A page from another origin, opened in a real browser, cannot make the
// exporter reload or reset a back-off; a same-origin call with the header
// can.
func TestABrowserOnAnotherOriginCannotTriggerTheStateChangingEndpoints(t *testing.T) {
	chromium := requireTool(t, "chromium")
	re := startDemoExporter(t)
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	attacker := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, attackPage(re.base))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = attacker.Serve(ln) }()
	defer attacker.Close()

	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom", "http://"+ln.Addr().String()+"/")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), `data-done="1"`) {
		t.Fatalf("the attack page did not run to its end:\n%s", out.String())
	}
	// The requests reached the exporter, and it refused every one.
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(re.logs.String(), "refused a state-changing request") < 3 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	logs := re.logs.String()
	if n := strings.Count(logs, "refused a state-changing request"); n < 3 {
		t.Errorf("%d refused requests logged, want the forms and the fetches (at least 3):\n%s", n, logs)
	}
	for _, acted := range []string{"configuration reloaded", "credential back-off reset"} {
		if strings.Contains(logs, acted) {
			t.Errorf("a cross-site request was obeyed (%q in the log)", acted)
		}
	}
	// Same origin, with the header: obeyed.
	req, _ := http.NewRequest(http.MethodPost, re.base+"/-/backoff/reset", nil)
	req.Header.Set(server.ActionHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a same-origin reset with the header = %d", resp.StatusCode)
	}
}
