package probe_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

const (
	exoUser     = "olga@cloudonly.test"
	exoPublicID = "public-app"
)

// exoEstate is Exchange Online as far as its POX Autodiscover and its
// token endpoint go: app-only tokens get Error 500, delegated ones get the
// settings.
func exoEstate(t *testing.T) (*lab.Estate, *lab.TokenServer) {
	t.Helper()
	e := newEstate(t)
	ts := &lab.TokenServer{
		Clients:       map[string]string{"app-1": "client-Secret-9"},
		PublicClients: []string{exoPublicID},
		Users:         map[string]string{exoUser: "Us3r-Passw0rd"},
	}
	must(t, e.HTTPS(tokenHost, ts))
	must(t, e.HTTPS("autodiscover.cloudonly.test", &lab.Autodiscover{
		Tokens:           ts,
		RequireDelegated: true,
		Challenges:       []string{`Bearer authorization_uri="https://login.lab.test/common/oauth2/authorize"`},
		Users:            map[string]lab.Reply{exoUser: {Settings: &lab.Settings{Server: "outlook.cloudonly.test", MicrosoftOnline: true}}},
	}))
	return e, ts
}

func delegatedSettings(e *lab.Estate, grant probe.OAuth2Grant, refreshFile string) probe.Settings {
	s := settingsFor(e, lab.Mailbox{})
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	s.Auth = probe.AuthSettings{
		Type: probe.AuthOAuth2, Grant: grant, ClientID: exoPublicID,
		TokenURL:         "https://" + tokenHost + "/tenant/oauth2/v2.0/token",
		DeviceAuthURL:    "https://" + tokenHost + "/tenant/oauth2/v2.0/devicecode",
		RefreshTokenFile: refreshFile,
	}
	if grant == probe.GrantPassword {
		s.Auth.Username, s.Auth.Password = exoUser, "Us3r-Passw0rd"
	}
	return s
}

func writeToken(t *testing.T, path, token string) {
	t.Helper()
	must(t, os.WriteFile(path, []byte(token+"\n"), 0o600))
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	return strings.TrimSpace(string(data))
}

// Exchange Online's POX Autodiscover refuses an app-only token with Error
// 500, as if the mailbox did not exist, and takes a delegated one: from a
// refresh token or, legacy, from the password grant.
func TestExchangeOnlineTakesDelegatedTokensAndRefusesAppOnlyOnes(t *testing.T) {
	e, ts := exoEstate(t)
	appOnly := oauthSettings(e, "client-Secret-9")
	res := mustRun(t, exoUser, appOnly)
	if res.Success || res.ErrorCode != "500" {
		t.Errorf("app-only: success=%v code=%q\n%s", res.Success, res.ErrorCode, res.Log())
	}
	file := filepath.Join(t.TempDir(), "refresh-token")
	writeToken(t, file, ts.IssueRefreshToken(exoPublicID, exoUser))
	for _, s := range []probe.Settings{delegatedSettings(e, probe.GrantRefreshToken, file), delegatedSettings(e, probe.GrantPassword, "")} {
		if res := mustRun(t, exoUser, s); !res.Success {
			t.Errorf("%s grant: %s\n%s", s.Auth.Grant, res.Reason, res.Log())
		}
	}
}

// The refresh token is rotated at every redemption and written back
// before anything else can use it: probes of two configuration loads at
// once share one redemption, and the file always holds the live token.
func TestRefreshTokensRotateAndConcurrentProbesRedeemOnce(t *testing.T) {
	e, ts := exoEstate(t)
	ts.TTL = 2 * time.Second
	file := filepath.Join(t.TempDir(), "refresh-token")
	first := ts.IssueRefreshToken(exoPublicID, exoUser)
	writeToken(t, file, first)
	store := probe.NewTokenStore()
	var probers []*probe.Prober
	for i := 0; i < 2; i++ {
		p, err := probe.NewProber(delegatedSettings(e, probe.GrantRefreshToken, file), probe.Env{Tokens: store})
		must(t, err)
		probers = append(probers, p)
	}
	for round := 0; round < 2; round++ {
		before := ts.Requests()
		var wg sync.WaitGroup
		failures := make(chan string, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := probers[i%2].Run(context.Background(), probe.Target{Address: exoUser})
				if err != nil || !res.Success {
					failures <- res.Reason
				}
			}()
		}
		wg.Wait()
		close(failures)
		for f := range failures {
			t.Errorf("round %d: a probe failed: %s", round, f)
		}
		if n := ts.Requests() - before; n != 2 {
			// One redemption per prober's cache; the store serialises them
			// so the second uses the token the first wrote.
			t.Errorf("round %d: %d token requests, want 2 (one per prober)", round, n)
		}
		if got := readToken(t, file); got == first || ts.RefreshTokens() != 1 {
			t.Errorf("round %d: the file holds %q, %d refresh tokens live; want the one rotated live token", round, got, ts.RefreshTokens())
		}
		if info, _ := os.Stat(file); info.Mode().Perm() != 0o600 {
			t.Errorf("mode %v", info.Mode().Perm())
		}
		time.Sleep(3 * time.Second) // the access tokens expire
	}
}

// A revoked refresh token ends in a clear step that says to log in again,
// and starts the credential back-off; a missing or empty file says so.
func TestRevokedOrMissingRefreshTokensSayToLogInAgain(t *testing.T) {
	e, ts := exoEstate(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "refresh-token")
	writeToken(t, file, ts.IssueRefreshToken(exoPublicID, exoUser))
	ts.RevokeRefreshTokens(exoUser)
	guard := probe.NewBackoff(time.Hour, time.Hour)
	p, err := probe.NewProber(delegatedSettings(e, probe.GrantRefreshToken, file), probe.Env{Guard: guard})
	must(t, err)
	res, err := p.Run(context.Background(), probe.Target{Address: exoUser})
	must(t, err)
	cred, _ := findStep(res, 0, "autodiscover.cloudonly.test", probe.StepCredentials)
	if cred.ErrorClass != probe.ClassAuthError || !strings.Contains(cred.Detail, "invalid_grant") || !strings.Contains(cred.Detail, "login") {
		t.Errorf("credentials step %+v", cred)
	}
	if guard.Remaining(p.CredentialKey()) == 0 {
		t.Error("a revoked refresh token did not start the back-off")
	}
	for name, content := range map[string]string{"missing": "", "empty": "\n"} {
		path := filepath.Join(dir, name)
		if name == "empty" {
			writeToken(t, path, "")
		}
		_ = content
		res := mustRun(t, exoUser, delegatedSettings(e, probe.GrantRefreshToken, path))
		cred, _ := findStep(res, 0, "autodiscover.cloudonly.test", probe.StepCredentials)
		if cred.ErrorClass != probe.ClassAuthError || !strings.Contains(cred.Detail, "login") {
			t.Errorf("%s file: credentials step %+v", name, cred)
		}
	}
}

// badTokenEndpoint answers every token request the same bad way.
func badTokenEndpoint(status int, contentType, body string) http.Handler {
	return lab.Static(status, contentType, body)
}

// A token endpoint that answers badly gives a clear credentials step and
// never a token sent; an answer without a new refresh token keeps the old
// one; an answer without expires_in still works.
func TestBadTokenEndpointAnswersAreClearAndKeepTheRefreshToken(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.Handler
		works   bool
	}{
		{"HTML", badTokenEndpoint(200, "text/html", "<html>sign in</html>"), false},
		{"HTTP 500", badTokenEndpoint(500, "application/json", `{"error":"server_error"}`), false},
		{"no expires_in, no new refresh token", badTokenEndpoint(200, "application/json", `{"token_type":"Bearer","access_token":"lab-unknown"}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			must(t, e.HTTPS(tokenHost, tc.handler))
			must(t, e.HTTPS("autodiscover.cloudonly.test", &lab.Autodiscover{Tokens: &lab.TokenServer{}, Challenges: []string{"Bearer"}, Users: map[string]lab.Reply{}}))
			file := filepath.Join(t.TempDir(), "refresh-token")
			writeToken(t, file, "old-refresh-token")
			res := mustRun(t, exoUser, delegatedSettings(e, probe.GrantRefreshToken, file))
			if res.Success != tc.works {
				t.Errorf("success %v\n%s", res.Success, res.Log())
			}
			cred, _ := findStep(res, 0, "autodiscover.cloudonly.test", probe.StepCredentials)
			if !tc.works && cred.OK && !strings.Contains(tc.name, "no expires_in") {
				t.Errorf("credentials step %+v", cred)
			}
			if got := readToken(t, file); got != "old-refresh-token" {
				t.Errorf("the file holds %q, want the old token kept", got)
			}
		})
	}
}

// login runs the device authorization grant end to end: the code is
// shown, polling waits (and slows down when asked), and the refresh token
// is written with mode 0600; a declined or interrupted login leaves the
// file as it was.
func TestLoginRunsTheDeviceGrantAndWritesTheRefreshToken(t *testing.T) {
	e, ts := exoEstate(t)
	file := filepath.Join(t.TempDir(), "refresh-token")
	p, err := probe.NewProber(delegatedSettings(e, probe.GrantRefreshToken, file), probe.Env{})
	must(t, err)
	ts.SlowDown.Store(1)
	var out lockedWriter
	go playUser(ts, func(code string) { ts.Approve(code, exoUser) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Login(ctx, &out); err != nil {
		t.Fatalf("login: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "https://microsoft.lab.test/devicelogin") || !strings.Contains(out.String(), "enter the code") {
		t.Errorf("the code and URL were not shown:\n%s", out.String())
	}
	info, err := os.Stat(file)
	must(t, err)
	if info.Mode().Perm() != 0o600 || ts.RefreshTokens() != 1 {
		t.Errorf("mode %v, %d live refresh tokens", info.Mode().Perm(), ts.RefreshTokens())
	}
	written := readToken(t, file)
	if res := mustRun(t, exoUser, delegatedSettings(e, probe.GrantRefreshToken, file)); !res.Success {
		t.Errorf("a probe with the new token failed: %s", res.Reason)
	}

	// Declined, then interrupted: the file stays.
	writeToken(t, file, written)
	go playUser(ts, func(code string) { ts.Deny(code) })
	if err := p.Login(ctx, new(bytes.Buffer)); err == nil || !strings.Contains(err.Error(), "declined") {
		t.Errorf("a declined login: %v", err)
	}
	short, stop := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, stop)
	if err := p.Login(short, new(bytes.Buffer)); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("an interrupted login: %v", err)
	}
	if readToken(t, file) != written {
		t.Error("a failed login changed the refresh token file")
	}
}

// playUser waits for a device code to be shown and acts on it as the
// user at the browser does.
func playUser(ts *lab.TokenServer, act func(code string)) {
	for i := 0; i < 200; i++ {
		if codes := ts.PendingUserCodes(); len(codes) > 0 {
			time.Sleep(1200 * time.Millisecond) // at least one pending poll first
			act(codes[0])
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// The seeds' hybrid flow with Basic switched off: on premises (hybrid
// modern auth) and Exchange Online both take the user's delegated token,
// which goes nowhere else; an app-only token reaches Exchange Online and
// gets its documented Error 500, with the reason saying why.
func TestAHybridWithModernAuthEndsInExchangeOnlineWithTheUsersToken(t *testing.T) {
	e := newEstate(t)
	mb, err := e.AddHybridModernAuth("hma.test", "hana", "Hana-Passw0rd")
	must(t, err)
	cloudOnly, err := e.AddExchangeOnline("apponly.test", "pat", "Pat-Passw0rd")
	must(t, err)
	ts, err := e.TokenServer()
	must(t, err)
	ts.AddPublicClient(exoPublicID)
	ts.AddClient("app-1", "client-Secret-9")

	withModule := func(s probe.Settings, allowed []string) probe.Settings {
		s.Methods = nil // every method: the tenant domain needs the HTTP redirect
		s.AllowedDomains = allowed
		return s
	}
	file := filepath.Join(t.TempDir(), "refresh-token")
	writeToken(t, file, ts.IssueRefreshToken(exoPublicID, mb.Address))
	password := delegatedSettings(e, probe.GrantPassword, "")
	password.Auth.Username, password.Auth.Password = mb.Address, "Hana-Passw0rd"
	appOnly := oauthSettings(e, "client-Secret-9")
	// A token for Graph is delegated too, but not for Exchange Online.
	graph := delegatedSettings(e, probe.GrantPassword, "")
	graph.Auth.Username, graph.Auth.Password = mb.Address, "Hana-Passw0rd"
	graph.Auth.Scopes = []string{"https://graph.microsoft.com/Mail.Read"}

	tests := []struct {
		name     string
		address  string
		settings probe.Settings
		success  bool
		reason   string
	}{
		{"refresh-token grant", mb.Address, withModule(delegatedSettings(e, probe.GrantRefreshToken, file), mb.AllowedDomains), true, ""},
		{"password grant", mb.Address, withModule(password, mb.AllowedDomains), true, ""},
		{"app-only token", cloudOnly.Address, withModule(appOnly, cloudOnly.AllowedDomains), false,
			"Autodiscover error 500 from " + lab.ModernFrontDoor + " (a redirect): The email address can't be found. (the token was app-only"},
		{"a delegated token for another resource", cloudOnly.Address, withModule(graph, cloudOnly.AllowedDomains), false,
			"autodiscover-s.office365.test refused the credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			since := len(e.Requests())
			res := mustRun(t, tt.address, tt.settings)
			if res.Success != tt.success || !strings.Contains(res.Reason, tt.reason) {
				t.Fatalf("success=%v reason %q, want success=%v and %q\n%s", res.Success, res.Reason, tt.success, tt.reason, res.Log())
			}
			if !tt.success {
				refused := false
				for _, st := range res.Steps {
					refused = refused || st.Name == probe.StepCredentials && st.Host == lab.ModernFrontDoor && (st.ErrorClass == probe.ClassAuthFailed || st.OK)
				}
				if !refused {
					t.Errorf("Exchange Online never saw the token\n%s", res.Log())
				}
				return
			}
			if got := res.FinalURL; !strings.Contains(got, lab.ModernFrontDoor) {
				t.Errorf("final URL %s, want Exchange Online's front door", got)
			}
			bearerTo := map[string]bool{}
			for _, r := range e.Requests()[since:] {
				if strings.HasPrefix(r.Authorization, "Bearer ") {
					bearerTo[r.Scheme+"://"+r.Server] = true
				}
			}
			want := map[string]bool{"https://autodiscover.hma.test": true, "https://" + lab.ModernFrontDoor: true}
			if !reflect.DeepEqual(bearerTo, want) {
				t.Errorf("the token went to %v, want exactly %v", bearerTo, want)
			}
		})
	}
}
