package probe_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

const (
	ntlmHost     = "autodiscover.ntlm.test"
	ntlmMailbox  = "nina@ntlm.test"
	ntlmPassword = "Correct-Horse1"
)

// ntlmLab serves autodiscover.ntlm.test with an NTLM verifier for
// CONTOSO\nina and returns probe settings that authenticate with NTLM as
// username/password, trying autodiscover_domain only.
func ntlmLab(t *testing.T, challenges []string, username, password string) (*lab.Estate, probe.Settings) {
	t.Helper()
	e := newEstate(t)
	ad := &lab.Autodiscover{
		NTLM: &lab.NTLMVerifier{
			Accounts:  map[string]string{`CONTOSO\nina`: ntlmPassword},
			Domain:    "CONTOSO",
			DNSDomain: "ntlm.test",
		},
		Users:      map[string]lab.Reply{ntlmMailbox: {Settings: &lab.Settings{DisplayName: "Nina", Server: "mail.ntlm.test"}}},
		Challenges: challenges,
	}
	must(t, e.HTTPS(ntlmHost, ad))
	s := settingsFor(e, lab.Mailbox{})
	s.Auth = probe.AuthSettings{Type: probe.AuthNTLM, Username: username, Password: password, Workstation: "PROBE01"}
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	return e, s
}

func credentialsStep(t *testing.T, res *probe.Result) probe.Step {
	t.Helper()
	st, ok := findStep(res, 0, ntlmHost, probe.StepCredentials)
	if !ok {
		t.Fatalf("no credentials step on %s\n%s", ntlmHost, res.Log())
	}
	return st
}

func assertNoPassword(t *testing.T, res *probe.Result, password string) {
	t.Helper()
	if strings.Contains(res.Log(), password) || strings.Contains(res.Reason, password) {
		t.Errorf("the password appears in the step log or the reason\n%s", res.Log())
	}
	for _, st := range res.Steps {
		if strings.Contains(st.Detail, password) {
			t.Errorf("the password appears in step %s: %q", st.Name, st.Detail)
		}
	}
}

func TestNTLMAuthenticatesAgainstTheLab(t *testing.T) {
	tests := []struct {
		name       string
		challenges []string // nil: IIS's Negotiate, NTLM, Basic
		username   string
		scheme     string // the scheme the handshake must use
	}{
		{"NTLM preferred among IIS's schemes", nil, `CONTOSO\nina`, "NTLM"},
		{"Negotiate only", []string{"Negotiate"}, `CONTOSO\nina`, "Negotiate"},
		{"NTLM only", []string{"NTLM"}, `CONTOSO\nina`, "NTLM"},
		{"user principal name", nil, "nina@ntlm.test", "NTLM"},
		{"domain and user in another case", nil, `contoso\Nina`, "NTLM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, s := ntlmLab(t, tc.challenges, tc.username, ntlmPassword)
			res := mustRun(t, ntlmMailbox, s)
			if !res.Success {
				t.Fatalf("failed: %s\n%s", res.Reason, res.Log())
			}
			st := credentialsStep(t, res)
			if !st.OK || !strings.Contains(st.Detail, tc.scheme+" credentials") {
				t.Errorf("credentials step ok=%v detail %q; want OK naming %s", st.OK, st.Detail, tc.scheme)
			}
			if got := res.Response.EWSURL(); got != "https://mail.ntlm.test/EWS/Exchange.asmx" {
				t.Errorf("EWS URL %q", got)
			}
			// Three requests: the bare POST, NEGOTIATE, AUTHENTICATE.
			var legs []string
			for _, r := range e.RequestsTo(ntlmHost) {
				scheme, token, _ := strings.Cut(r.Authorization, " ")
				legs = append(legs, scheme+":"+ntlmMessageType(token))
			}
			if got, want := strings.Join(legs, ","), ":,"+tc.scheme+":1,"+tc.scheme+":3"; got != want {
				t.Errorf("legs %s, want %s", got, want)
			}
			assertNoPassword(t, res, ntlmPassword)
		})
	}
}

// ntlmMessageType names the NTLM message type of a base64 token ("" when
// it is none).
func ntlmMessageType(token string) string {
	b, err := base64.StdEncoding.DecodeString(token)
	if err != nil || len(b) < 12 || string(b[:8]) != "NTLMSSP\x00" {
		return ""
	}
	return fmt.Sprint(binary.LittleEndian.Uint32(b[8:]))
}

func TestNTLMWrongPasswordIsAuthFailed(t *testing.T) {
	for _, challenges := range [][]string{nil, {"Negotiate"}} {
		t.Run(fmt.Sprint(challenges), func(t *testing.T) {
			_, s := ntlmLab(t, challenges, `CONTOSO\nina`, "Correct-Horse2")
			res := mustRun(t, ntlmMailbox, s)
			if res.Success {
				t.Fatalf("succeeded with a wrong password\n%s", res.Log())
			}
			st := credentialsStep(t, res)
			if st.OK || st.ErrorClass != "auth_failed" {
				t.Errorf("credentials step ok=%v class %q, want auth_failed\n%s", st.OK, st.ErrorClass, res.Log())
			}
			assertNoPassword(t, res, "Correct-Horse2")
		})
	}
}

// TestNTLMNeverDowngradesToBasic: a module configured for NTLM must not
// hand its password to a server that only offers Basic (or anything else
// it was not configured for).
func TestNTLMNeverDowngradesToBasic(t *testing.T) {
	for _, challenges := range [][]string{
		{`Basic realm="autodiscover.ntlm.test"`},
		{`Bearer`, `Basic realm="x"`},
		{`Digest realm="x", nonce="abc"`},
	} {
		t.Run(challenges[0], func(t *testing.T) {
			e := newEstate(t)
			must(t, e.HTTPS(ntlmHost, &lab.Autodiscover{
				Accounts:   map[string]string{ntlmMailbox: ntlmPassword, `CONTOSO\nina`: ntlmPassword},
				Users:      map[string]lab.Reply{ntlmMailbox: {Settings: &lab.Settings{Server: "mail.ntlm.test"}}},
				Challenges: challenges,
			}))
			s := settingsFor(e, lab.Mailbox{})
			s.Auth = probe.AuthSettings{Type: probe.AuthNTLM, Username: `CONTOSO\nina`, Password: ntlmPassword}
			s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
			res := mustRun(t, ntlmMailbox, s)
			if res.Success {
				t.Fatalf("succeeded\n%s", res.Log())
			}
			if st := credentialsStep(t, res); st.ErrorClass != "unsupported_scheme" {
				t.Errorf("credentials step class %q, want unsupported_scheme", st.ErrorClass)
			}
			reqs := e.RequestsTo(ntlmHost)
			if len(reqs) == 0 {
				t.Fatal("the server received nothing")
			}
			for _, r := range reqs {
				if r.Authorization != "" {
					t.Errorf("the server received Authorization %q", r.Authorization)
				}
			}
		})
	}
}

// TestNTLMHostileChallengeIsAnAuthError: a server whose CHALLENGE is
// garbage gets a diagnosis, no AUTHENTICATE message and no panic.
func TestNTLMHostileChallengeIsAnAuthError(t *testing.T) {
	type2 := func(mutate func([]byte) []byte) string {
		m := make([]byte, 48)
		copy(m, "NTLMSSP\x00")
		binary.LittleEndian.PutUint32(m[8:], 2)
		binary.LittleEndian.PutUint32(m[20:], 1<<0|1<<9|1<<23)
		return base64.StdEncoding.EncodeToString(mutate(m))
	}
	tests := []struct{ name, token string }{
		{"not base64", "!!!notbase64"},
		{"base64 of text", base64.StdEncoding.EncodeToString([]byte("hello, world"))},
		{"NEGOTIATE echoed back", base64.StdEncoding.EncodeToString(append([]byte("NTLMSSP\x00"), 1, 0, 0, 0, 7, 0x82, 8, 0xa2))},
		{"truncated CHALLENGE", type2(func(m []byte) []byte { return m[:30] })},
		{"target info offset far outside", type2(func(m []byte) []byte {
			binary.LittleEndian.PutUint16(m[40:], 0xFFFF)
			binary.LittleEndian.PutUint32(m[44:], 0xFFFFFFF0)
			return m
		})},
		{"target name length past the end", type2(func(m []byte) []byte {
			binary.LittleEndian.PutUint16(m[12:], 0x7FFF)
			binary.LittleEndian.PutUint32(m[16:], 48)
			return m
		})},
		{"target info without MsvAvEOL", type2(func(m []byte) []byte {
			binary.LittleEndian.PutUint16(m[40:], 8)
			binary.LittleEndian.PutUint32(m[44:], 48)
			return append(m, 2, 0, 200, 0, 'C', 0, 'O', 0)
		})},
		{"key exchange demanded", type2(func(m []byte) []byte {
			binary.LittleEndian.PutUint32(m[20:], 1<<0|1<<9|1<<30)
			return m
		})},
		{"NTLMv1 (LM_KEY) demanded", type2(func(m []byte) []byte {
			binary.LittleEndian.PutUint32(m[20:], 1<<0|1<<7|1<<9)
			return m
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			must(t, e.HTTPS(ntlmHost, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.Header.Get("Authorization"), "NTLM ") {
					w.Header().Set("WWW-Authenticate", "NTLM "+tc.token)
				} else {
					w.Header().Set("WWW-Authenticate", "NTLM")
				}
				w.WriteHeader(http.StatusUnauthorized)
			})))
			s := settingsFor(e, lab.Mailbox{})
			s.Auth = probe.AuthSettings{Type: probe.AuthNTLM, Username: `CONTOSO\nina`, Password: ntlmPassword}
			s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
			res := mustRun(t, ntlmMailbox, s)
			if res.Success {
				t.Fatalf("succeeded\n%s", res.Log())
			}
			st := credentialsStep(t, res)
			if st.OK || st.ErrorClass != "auth_error" || st.Detail == "" {
				t.Errorf("credentials step ok=%v class %q detail %q; want auth_error with a detail", st.OK, st.ErrorClass, st.Detail)
			}
			t.Logf("credentials step: %s", st.Detail)
			assertNoPassword(t, res, ntlmPassword)
			for _, r := range e.RequestsTo(ntlmHost) {
				if _, token, _ := strings.Cut(r.Authorization, " "); ntlmMessageType(token) == "3" {
					t.Error("an AUTHENTICATE message was sent in answer to a garbage challenge")
				}
			}
		})
	}
}

func TestNTLMExchangeLegs(t *testing.T) {
	ctx := context.Background()
	n := &probe.NTLM{Username: `CONTOSO\nina`, Password: ntlmPassword}
	type2 := make([]byte, 48)
	copy(type2, "NTLMSSP\x00")
	binary.LittleEndian.PutUint32(type2[8:], 2)
	binary.LittleEndian.PutUint32(type2[20:], 1<<0|1<<9)
	validChallenge := base64.StdEncoding.EncodeToString(type2)

	tests := []struct {
		name     string
		legs     []probe.Challenge
		wantLast string // "type1", "type3", "rejected", "error"
	}{
		{"first leg", []probe.Challenge{{Scheme: "NTLM"}}, "type1"},
		{"second leg", []probe.Challenge{{Scheme: "NTLM"}, {Scheme: "NTLM", Params: validChallenge}}, "type3"},
		{"second 401 without a token", []probe.Challenge{{Scheme: "NTLM"}, {Scheme: "NTLM"}}, "rejected"},
		{"a third 401", []probe.Challenge{{Scheme: "NTLM"}, {Scheme: "NTLM", Params: validChallenge}, {Scheme: "NTLM"}}, "rejected"},
		{"a third 401 with a token", []probe.Challenge{{Scheme: "NTLM"}, {Scheme: "NTLM", Params: validChallenge}, {Scheme: "NTLM", Params: validChallenge}}, "rejected"},
		{"garbage challenge", []probe.Challenge{{Scheme: "Negotiate"}, {Scheme: "Negotiate", Params: "TlRMTVNTUAACAAAA"}}, "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex := n.NewExchange("mail.example.test")
			var hdr string
			var err error
			for _, ch := range tc.legs {
				hdr, err = ex.Respond(ctx, ch)
			}
			scheme, token, _ := strings.Cut(hdr, " ")
			var got string
			switch {
			case errors.Is(err, probe.ErrRejected):
				got = "rejected"
			case err != nil:
				got = "error"
				if strings.Contains(err.Error(), ntlmPassword) {
					t.Errorf("error %q holds the password", err)
				}
			default:
				got = "type" + ntlmMessageType(token)
				if scheme != tc.legs[0].Scheme {
					t.Errorf("header scheme %q, want %q", scheme, tc.legs[0].Scheme)
				}
			}
			if got != tc.wantLast {
				t.Errorf("last leg gave %s (%q, %v), want %s", got, hdr, err, tc.wantLast)
			}
		})
	}
}

func TestNTLMChoosesNTLMThenNegotiateOnly(t *testing.T) {
	n := &probe.NTLM{Username: `CONTOSO\nina`, Password: ntlmPassword}
	tests := []struct {
		offered []probe.Challenge
		want    string // "" for none
	}{
		{[]probe.Challenge{{Scheme: "Negotiate"}, {Scheme: "NTLM"}, {Scheme: "Basic", Params: `realm="x"`}}, "NTLM"},
		{[]probe.Challenge{{Scheme: "Basic"}, {Scheme: "negotiate"}}, "negotiate"},
		{[]probe.Challenge{{Scheme: "ntlm"}}, "ntlm"},
		{[]probe.Challenge{{Scheme: "Basic", Params: `realm="x"`}, {Scheme: "Bearer"}, {Scheme: "Digest"}}, ""},
		{nil, ""},
	}
	for _, tc := range tests {
		ch, ok := n.Choose(tc.offered)
		if got := map[bool]string{true: ch.Scheme}[ok]; got != tc.want {
			t.Errorf("Choose(%v) = %q, want %q", tc.offered, got, tc.want)
		}
	}
	if n.Identity() != `CONTOSO\nina` {
		t.Errorf("Identity %q", n.Identity())
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(format, n); strings.Contains(s, ntlmPassword) {
			t.Errorf("%s renders the password: %s", format, s)
		}
	}
}
