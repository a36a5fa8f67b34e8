package probe_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// forged is what a hostile server hides in its text: a line break, then
// a credentials line and a closing line in the step log's own words.
const forged = "x\n    ✓ Providing user credentials … OK: sent\nAutodiscover settings were obtained from https://evil.test/ after 0 redirect hop(s) in 1 ms.\n\x1b[2J"

// Every server string that enters the step log or the reason has its
// control characters escaped and its length capped, so it can neither
// forge a line nor flood the page.
func TestServerTextIsEscapedAndCappedInTheStepLog(t *testing.T) {
	const mailbox = "sam@text.test"
	cases := []struct {
		name  string
		setup func(t *testing.T, e *lab.Estate) probe.Settings
	}{
		{"certificate subject", func(t *testing.T, e *lab.Estate) probe.Settings {
			mb, _, err := e.AddOnPremises("text.test", "sam", "pw", lab.WithCert(lab.CertSpec{Names: []string{"autodiscover.text.test"}, Subject: forged}))
			must(t, err)
			return onlyAutodiscover(e, mb)
		}},
		{"Autodiscover error message and code", func(t *testing.T, e *lab.Estate) probe.Settings {
			mb, ad, err := e.AddOnPremises("text.test", "sam", "pw")
			must(t, err)
			ad.SetUser(mb.Address, lab.Reply{ErrorCode: "500" + forged, ErrorMessage: forged + strings.Repeat("A", 100000)})
			return onlyAutodiscover(e, mb)
		}},
		{"redirectAddr", func(t *testing.T, e *lab.Estate) probe.Settings {
			mb, ad, err := e.AddOnPremises("text.test", "sam", "pw")
			must(t, err)
			ad.SetUser(mb.Address, lab.Reply{RedirectAddr: "sam@other.test" + forged})
			return onlyAutodiscover(e, mb)
		}},
		{"diagnostic header", func(t *testing.T, e *lab.Estate) probe.Settings {
			must(t, e.HTTPS("autodiscover.text.test", rawAnswer("HTTP/1.1 503 Service Unavailable\r\nX-DiagInfo: a\u2028    ✓ Providing user credentials … OK\u2029b\u202ec\r\nContent-Length: 0\r\n\r\n")))
			return onlyAutodiscover(e, lab.Mailbox{})
		}},
		{"v2 error message", func(t *testing.T, e *lab.Estate) probe.Settings {
			must(t, e.HTTPS("outlook.v2cloud.test", lab.Static(http.StatusBadRequest, "application/json", `{"ErrorCode":"Bad\nCode","ErrorMessage":"`+strings.ReplaceAll(strings.ReplaceAll(forged, "\n", `\n`), "\x1b", `\u001b`)+`"}`)))
			return v2Only(e, "outlook.v2cloud.test")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			res := mustRun(t, mailbox, tc.setup(t, e))
			log := res.Log()
			credLines, closing := 0, 0
			for _, line := range strings.Split(log, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "✓ Providing user credentials") {
					credLines++
				}
				if strings.HasPrefix(line, "Autodiscover settings were obtained") {
					closing++
				}
			}
			credSteps := 0
			for _, st := range res.Steps {
				if st.Name == probe.StepCredentials && st.OK {
					credSteps++
				}
			}
			if credLines != credSteps {
				t.Errorf("%d credentials lines for %d credentials steps: a server forged one\n%s", credLines, credSteps, log)
			}
			if want := map[bool]int{true: 1, false: 0}[res.Success]; closing != want {
				t.Errorf("%d closing lines, want %d: a server forged one\n%s", closing, want, log)
			}
			checkPrintable(t, "reason", res.Reason, 2048)
			for _, st := range res.Steps {
				checkPrintable(t, string(st.Name)+" detail", st.Detail, 2048)
			}
			for _, v := range res.V2 {
				checkPrintable(t, "v2 error", v.ErrorCode+v.ErrorMessage, 2048)
			}
		})
	}
}

// checkPrintable fails when s holds a control or line-breaking character
// or is longer than limit bytes.
func checkPrintable(t *testing.T, what, s string, limit int) {
	t.Helper()
	if len(s) > limit {
		t.Errorf("%s is %d bytes, over %d", what, len(s), limit)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf) {
			t.Errorf("%s holds %U: %q", what, r, s)
			return
		}
	}
}

func onlyAutodiscover(e *lab.Estate, mb lab.Mailbox) probe.Settings {
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	return s
}

// A success found only through Autodiscover v2 says where it came from,
// not "settings were obtained from " with an empty URL.
func TestV2OnlySuccessNamesWhereTheEndpointsCameFrom(t *testing.T) {
	e := v2Estate(t)
	s := v2Only(e, "outlook.v2cloud.test")
	res := mustRun(t, "quinn@v2.test", s)
	if !res.Success {
		t.Fatalf("v2 failed\n%s", res.Log())
	}
	last := lastLine(res.Log())
	if strings.Contains(last, "from  ") || !strings.Contains(last, "outlook.v2cloud.test") {
		t.Errorf("closing line %q", last)
	}
}

func lastLine(log string) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	return lines[len(lines)-1]
}

// rawAnswer answers every request with raw bytes, header syntax and all,
// as a hostile server can.
func rawAnswer(raw string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString(raw)
		_ = buf.Flush()
	})
}
