package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// loginLab is the demo estate with a configuration whose module "hma"
// probes the hybrid modern-auth mailbox with a refresh token file that no
// login has written yet.
type loginLab struct {
	*labEstate
	config, tokenFile string
	tokens            *lab.TokenServer
}

func startLoginLab(t *testing.T) *loginLab {
	t.Helper()
	l := startLab(t)
	ts, err := l.estate.TokenServer()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := l.demo.Module()
	m.Auth = config.Auth{Type: probe.AuthOAuth2, Grant: probe.GrantRefreshToken, ClientID: demo.PublicClientID,
		TokenURL:         "https://" + lab.TokenHost + "/t/oauth2/v2.0/token",
		DeviceAuthURL:    "https://" + lab.TokenHost + "/t/oauth2/v2.0/devicecode",
		RefreshTokenFile: filepath.Join(dir, "hma.refresh-token")}
	m.AllowedDomains = []string{lab.ModernDomain}
	path := writeLabConfig(t, map[string]*config.Module{"hma": m}, &config.Mailbox{Name: "hana", Address: "hana@hma.test", Module: "hma"})
	return &loginLab{labEstate: l, config: path, tokenFile: m.Auth.RefreshTokenFile, tokens: ts}
}

// login starts the login command; the returned channel gets its exit code.
func (l *loginLab) login(t *testing.T) (*exec.Cmd, *bufio.Reader, *bytes.Buffer, <-chan int) {
	t.Helper()
	cmd := exec.Command(exporterBinary(t), "--config.file="+l.config, "login", "hma")
	// A pipe of our own: the one of StdoutPipe is closed by Wait, with
	// what the login printed last still unread.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	cmd.Stdout = w
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan int, 1)
	out := bufio.NewReader(r)
	go func() {
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		done <- code
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, out, &stderr, done
}

var shownCode = regexp.MustCompile(`open (\S+) in a browser and enter the code (\S+)`)

// readCode reads the login's instructions and returns the code it shows.
func readCode(t *testing.T, out *bufio.Reader) string {
	t.Helper()
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the login's first line: %v (%q)", err, line)
	}
	m := shownCode.FindStringSubmatch(line)
	if m == nil || m[1] != "https://microsoft.lab.test/devicelogin" {
		t.Fatalf("the login shows %q, want the verification URL and a code", line)
	}
	return m[2]
}

func waitExit(t *testing.T, done <-chan int) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(60 * time.Second):
		t.Fatal("the login did not end")
		return -1
	}
}

func runBinary(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(exporterBinary(t), args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// The whole path an operator takes: --config.check says to log in, login
// shows a code and polls (slower after slow_down) until the user signs
// in, writes the refresh token file with mode 0600, and the probe then
// gets the mailbox's settings from Exchange Online.
func TestLoginSignsTheModuleInAndTheProbeThenWorks(t *testing.T) {
	l := startLoginLab(t)
	if code, out := runBinary(t, "--config.file="+l.config, "--config.check"); code != 1 || !strings.Contains(out, "run `autodiscover_exporter login hma` to sign in") {
		t.Errorf("--config.check before login = %d %q; want 1 and the login to run", code, out)
	}
	if code, out := runBinary(t, "--config.file="+l.config, "probe", "hana"); code != 1 || !strings.Contains(out, "does not exist: run `autodiscover_exporter login`") {
		t.Errorf("probe before login = %d\n%s", code, out)
	}

	// One slow_down: RFC 8628 has the client wait five seconds longer.
	l.tokens.SlowDown.Store(1)
	_, out, stderr, done := l.login(t)
	code := readCode(t, out)
	if pending := l.tokens.PendingUserCodes(); len(pending) != 1 || pending[0] != code {
		t.Fatalf("the login shows code %s, the token endpoint waits for %v", code, pending)
	}
	before := l.tokens.Requests()
	time.Sleep(2 * time.Second) // a few polls, some answered slow_down and authorization_pending
	if !l.tokens.Approve(code, "hana@hma.test") {
		t.Fatal("the code was no longer pending")
	}
	if exit := waitExit(t, done); exit != 0 {
		t.Fatalf("login exited %d: %s", exit, stderr)
	}
	if polls := l.tokens.Requests() - before; polls < 2 {
		t.Errorf("%d polls while waiting, want several", polls)
	}
	rest, _ := io.ReadAll(out)
	if !strings.Contains(string(rest), "Signed in. The refresh token is in "+l.tokenFile) {
		t.Errorf("the login ends with %q", rest)
	}
	info, err := os.Stat(l.tokenFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("refresh token file: %v, mode %v; want 0600", err, info.Mode())
	}
	token, _ := os.ReadFile(l.tokenFile)
	if strings.Contains(stderr.String()+string(rest), strings.TrimSpace(string(token))) {
		t.Error("the login printed the refresh token")
	}

	if code, out := runBinary(t, "--config.file="+l.config, "--config.check"); code != 0 || !strings.Contains(out, "valid, 1 module(s), 1 mailbox(es)") {
		t.Errorf("--config.check after login = %d %q", code, out)
	}
	code2, log := runBinary(t, "--config.file="+l.config, "probe", "hana")
	if code2 != 0 || !strings.Contains(log, "Autodiscover settings were obtained from https://"+lab.ModernFrontDoor) {
		t.Errorf("probe after login = %d\n%s", code2, log)
	}
	if rotated, _ := os.ReadFile(l.tokenFile); bytes.Equal(rotated, token) {
		t.Error("the probe's redemption did not write the rotated refresh token back")
	}
}

// A login that ends without a sign-in (interrupted, declined) says so and
// leaves the refresh token file as it was.
func TestAnUnfinishedLoginKeepsTheOldRefreshToken(t *testing.T) {
	l := startLoginLab(t)
	old := []byte("the-old-refresh-token\n")
	if err := os.WriteFile(l.tokenFile, old, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		end  func(cmd *exec.Cmd, code string)
		want string
	}{
		{"interrupted with Ctrl-C", func(cmd *exec.Cmd, _ string) { _ = cmd.Process.Signal(syscall.SIGINT) }, "login interrupted; the refresh token file was left as it was"},
		{"declined by the user", func(_ *exec.Cmd, code string) { l.tokens.Deny(code) }, "the sign-in was declined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, out, stderr, done := l.login(t)
			code := readCode(t, out)
			tt.end(cmd, code)
			if exit := waitExit(t, done); exit != 1 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", exit, stderr, tt.want)
			}
			if now, _ := os.ReadFile(l.tokenFile); !bytes.Equal(now, old) {
				t.Errorf("the refresh token file now holds %q", now)
			}
		})
	}
}

func TestLoginRefusesModulesWithoutTheDeviceGrant(t *testing.T) {
	l := startLab(t)
	tests := []struct{ module, want string }{
		{"demo-hybrid-alice", "login is for modules with auth type oauth2 and grant refresh_token"},
		{"no-such-module", `"no-such-module" is not a configured module`},
	}
	for _, tt := range tests {
		if code, out := runBinary(t, "--config.file="+l.configPath, "login", tt.module); code != 1 || !strings.Contains(out, tt.want) {
			t.Errorf("login %s = %d %q; want 1 and %q", tt.module, code, out, tt.want)
		}
	}
}
