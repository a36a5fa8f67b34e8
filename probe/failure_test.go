package probe_test

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// The reason of a failed run names the step that got furthest toward
// settings, not the last one tried (almost always the SRV lookup).
func TestTheReasonNamesTheStepThatGotFurthest(t *testing.T) {
	expired := time.Now().Add(-72 * time.Hour)
	cases := []struct {
		name  string
		build func(t *testing.T, e *lab.Estate) (lab.Mailbox, probe.Settings, *probe.Expectations)
		want  probe.Failure
		// sentence must be part of both the Failure's sentence and Reason.
		sentence string
	}{
		{
			name: "a certificate verdict beats a later NXDOMAIN",
			build: func(t *testing.T, e *lab.Estate) (lab.Mailbox, probe.Settings, *probe.Expectations) {
				mb, _, err := e.AddOnPremises("expired.test", "dave", "pw", lab.WithCert(lab.CertSpec{
					Names: []string{"autodiscover.expired.test"}, NotBefore: expired.AddDate(-1, 0, 0), NotAfter: expired}))
				must(t, err)
				return mb, settingsFor(e, mb), nil
			},
			want:     probe.Failure{Method: probe.MethodAutodiscoverDomain, Host: "autodiscover.expired.test", Step: probe.StepCertValidity, Class: probe.ClassExpired},
			sentence: "the certificate of autodiscover.expired.test expired on " + expired.UTC().Format(time.DateOnly) + " (autodiscover host)",
		},
		{
			name: "a refused connection beats an NXDOMAIN",
			build: func(t *testing.T, e *lab.Estate) (lab.Mailbox, probe.Settings, *probe.Expectations) {
				mb, _, err := e.AddOnPremises("refused.test", "rita", "pw")
				must(t, err)
				e.RemoveRecords("autodiscover.refused.test", dns.TypeA)
				_, err = e.AddDeadAddress("autodiscover.refused.test")
				must(t, err)
				return mb, settingsFor(e, mb), nil
			},
			want:     probe.Failure{Method: probe.MethodAutodiscoverDomain, Host: "autodiscover.refused.test", Step: probe.StepTCP, Class: probe.ClassRefused},
			sentence: "autodiscover.refused.test refused the connection on port 443 (autodiscover host)",
		},
		{
			name: "an Autodiscover error beats everything tried after it",
			build: func(t *testing.T, e *lab.Estate) (lab.Mailbox, probe.Settings, *probe.Expectations) {
				mb, ad, err := e.AddOnPremises("err.test", "eve", "pw")
				must(t, err)
				ad.SetUser(mb.Address, lab.Reply{ErrorCode: "500", ErrorMessage: "The email address can't be found."})
				s := settingsFor(e, mb)
				s.ContinueAfterError = true
				return mb, s, nil
			},
			want:     probe.Failure{Method: probe.MethodAutodiscoverDomain, Host: "autodiscover.err.test", Step: probe.StepParse, Class: probe.ClassAutodiscoverError},
			sentence: "Autodiscover error 500 from autodiscover.err.test",
		},
		{
			name: "a loop at a later hop beats the first hop's failures",
			build: func(t *testing.T, e *lab.Estate) (lab.Mailbox, probe.Settings, *probe.Expectations) {
				mb, err := e.AddRedirectLoop("loop.test", "lou", "pw")
				must(t, err)
				return mb, settingsFor(e, mb), nil
			},
			want:     probe.Failure{Step: probe.StepRedirect, Class: probe.ClassLoop},
			sentence: "redirect loop",
		},
		{
			name: "every step passed and an expectation did not",
			build: func(t *testing.T, e *lab.Estate) (lab.Mailbox, probe.Settings, *probe.Expectations) {
				mb, _, err := e.AddOnPremises("expect.test", "ed", "pw")
				must(t, err)
				return mb, settingsFor(e, mb), &probe.Expectations{EWSURLHost: "mail.elsewhere.test"}
			},
			want:     probe.Failure{Step: probe.StepExpectations, Class: probe.ClassExpectationNotMet, StepIndex: -1},
			sentence: "expectation not met: ews_url_host",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			mb, s, exp := tc.build(t, e)
			p, err := probe.NewProber(s, probe.Env{})
			must(t, err)
			res, err := p.Run(t.Context(), probe.Target{Address: mb.Address, Expect: exp})
			must(t, err)
			if res.Success || res.Failure == nil {
				t.Fatalf("success=%v failure=%+v\n%s", res.Success, res.Failure, res.Log())
			}
			f := *res.Failure
			if tc.want.Method != "" && f.Method != tc.want.Method || tc.want.Host != "" && f.Host != tc.want.Host ||
				f.Step != tc.want.Step || f.Class != tc.want.Class {
				t.Fatalf("decisive failure %s %s %s %s, want %s %s %s %s\n%s", f.Method, f.Host, f.Step, f.Class,
					tc.want.Method, tc.want.Host, tc.want.Step, tc.want.Class, res.Log())
			}
			if f.StepIndex >= 0 {
				st := res.Steps[f.StepIndex]
				if st.OK || st.Name != f.Step || st.Host != f.Host {
					t.Errorf("StepIndex %d points at %+v", f.StepIndex, st)
				}
			} else if tc.want.StepIndex != -1 {
				t.Errorf("no step index for a step failure")
			}
			if !strings.Contains(f.Sentence, tc.sentence) && !strings.Contains(res.Reason, tc.sentence) {
				t.Errorf("sentence %q / reason %q, want %q in it", f.Sentence, res.Reason, tc.sentence)
			}
			if strings.Contains(res.Reason, "srv_lookup") || strings.Contains(res.Reason, "last failure") {
				t.Errorf("reason %q still names the last failure", res.Reason)
			}
		})
	}
}

func TestASuccessfulRunHasNoFailure(t *testing.T) {
	e := newEstate(t)
	mb, _, err := e.AddOnPremises("fine.test", "fay", "pw")
	must(t, err)
	res := mustRun(t, mb.Address, settingsFor(e, mb))
	if !res.Success || res.Failure != nil || res.Reason != "" {
		t.Fatalf("success=%v failure=%+v reason=%q", res.Success, res.Failure, res.Reason)
	}
}
