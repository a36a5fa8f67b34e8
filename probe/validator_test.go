package probe_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Every host a server names passes the same validator: a DNS name, no IP
// literal, no port smuggled in a name. Each row is a server that names a
// host the rules refuse, on a path that used to skip the check.
func TestEveryHostAServerNamesPassesTheOneValidator(t *testing.T) {
	const mailbox = "vera@valid.test"
	cases := []struct {
		name  string
		setup func(t *testing.T, e *lab.Estate) probe.Settings
		// The refusal: a step of this name and class whose detail says why.
		step   probe.StepName
		class  probe.ErrorClass
		detail string
		// forbiddenPort: no tcp step may concern this port; forbiddenHost:
		// no step at all may concern this host.
		forbiddenPort int
		forbiddenHost string
	}{
		{
			name: "v2 302 to an IPv4 literal",
			setup: func(t *testing.T, e *lab.Estate) probe.Settings {
				must(t, e.HTTPS("outlook.v2cloud.test", &lab.V2{Redirect: map[string]string{mailbox: "https://127.0.0.1"}}))
				return v2Only(e, "outlook.v2cloud.test")
			},
			step: probe.StepRedirect, class: probe.ClassBadRedirect, detail: "IP address literal",
			forbiddenHost: "127.0.0.1",
		},
		{
			name: "v2 302 to an IPv6 literal",
			setup: func(t *testing.T, e *lab.Estate) probe.Settings {
				must(t, e.HTTPS("outlook.v2cloud.test", &lab.V2{Redirect: map[string]string{mailbox: "https://[::1]"}}))
				return v2Only(e, "outlook.v2cloud.test")
			},
			step: probe.StepRedirect, class: probe.ClassBadRedirect, detail: "IP address literal",
			forbiddenHost: "::1",
		},
		{
			name: "v2 answer naming an IP literal endpoint",
			setup: func(t *testing.T, e *lab.Estate) probe.Settings {
				must(t, e.HTTPS("outlook.v2cloud.test", lab.Static(http.StatusOK, "application/json", `{"Protocol":"Ews","Url":"https://127.0.0.1/EWS/Exchange.asmx"}`)))
				return v2Only(e, "outlook.v2cloud.test")
			},
			step: probe.StepParse, class: probe.ClassBadPayload, detail: "no https Url",
		},
		{
			name: "SRV target smuggling a port",
			setup: func(t *testing.T, e *lab.Estate) probe.Settings {
				e.AddSRV("_autodiscover._tcp.valid.test", 0, 0, 443, "autodiscover.valid.test:8443")
				mb, _, err := e.AddOnPremises("valid.test", "vera", "pw")
				must(t, err)
				s := settingsFor(e, mb)
				s.Methods = []probe.Method{probe.MethodSRV}
				return s
			},
			step: probe.StepSRVLookup, class: probe.ClassNoUsableSRV, detail: "is not a DNS host name",
			forbiddenPort: 8443,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			res := mustRun(t, mailbox, tc.setup(t, e))
			log := res.Log()
			var refused bool
			for _, st := range res.Steps {
				if st.Name == tc.step && !st.OK && st.ErrorClass == tc.class && strings.Contains(st.Detail, tc.detail) {
					refused = true
				}
				if tc.forbiddenPort != 0 && st.Name == probe.StepTCP && st.Port == tc.forbiddenPort {
					t.Errorf("the probe dialled port %d: %+v", tc.forbiddenPort, st)
				}
				if tc.forbiddenHost != "" && strings.EqualFold(st.Host, tc.forbiddenHost) {
					t.Errorf("the probe went to %s: %+v", tc.forbiddenHost, st)
				}
			}
			if !refused {
				t.Errorf("no failed %s step of class %s mentioning %q\n%s", tc.step, tc.class, tc.detail, log)
			}
			if res.Success {
				t.Errorf("the probe succeeded\n%s", log)
			}
			for _, r := range e.Requests() {
				if r.Authorization != "" {
					t.Errorf("credentials reached %s", r.Server)
				}
			}
		})
	}
}

// v2Only asks v2 for Ews only, of host.
func v2Only(e *lab.Estate, host string) probe.Settings {
	s := settingsFor(e, lab.Mailbox{})
	s.Methods = []probe.Method{probe.MethodV2JSON}
	s.V2Hosts = []string{host}
	s.V2Protocols = []string{"Ews"}
	return s
}

// A redirect back to a URL the run already tried is a loop however it is
// spelt: case, a trailing dot on the host, an explicit default port.
func TestLoopsAreFoundWhateverTheSpelling(t *testing.T) {
	for _, back := range []string{
		"https://AUTODISCOVER.loop2.test/Autodiscover/Autodiscover.xml",
		"https://autodiscover.loop2.test./autodiscover/autodiscover.xml",
		"https://autodiscover.loop2.test.:443/autodiscover/autodiscover.xml",
		"https://Autodiscover.Loop2.Test:443/autodiscover/autodiscover.xml",
	} {
		t.Run(back, func(t *testing.T) {
			e := newEstate(t)
			mb, ad, err := e.AddOnPremises("loop2.test", "lou", "pw")
			must(t, err)
			ad.SetUser(mb.Address, lab.Reply{RedirectURL: "https://mail.loop2.test/autodiscover/autodiscover.xml"})
			must(t, e.HTTPS("mail.loop2.test", &lab.Autodiscover{
				Accounts: map[string]string{mb.Address: "pw"},
				Users:    map[string]lab.Reply{mb.Address: {RedirectURL: back}},
			}))
			s := settingsFor(e, mb)
			s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
			res := mustRun(t, mb.Address, s)
			if res.RedirectHops != 1 || !strings.HasPrefix(res.Reason, "redirect loop") {
				t.Errorf("hops %d, reason %q: want the loop found at the second redirect\n%s", res.RedirectHops, res.Reason, res.Log())
			}
		})
	}
}

// A URL a server names may carry a port other than 443 only where the
// module allows that port, and a CNAME target must be a DNS name.
func TestServerNamedPortsAndCNAMETargetsPassTheValidator(t *testing.T) {
	cases := []struct {
		name    string
		reply   lab.Reply
		allowed []int
		refused bool
	}{
		{"redirectUrl to port 8443", lab.Reply{RedirectURL: "https://mail.ports.test:8443/autodiscover/autodiscover.xml"}, nil, true},
		{"302 to port 8443", lab.Reply{Status: http.StatusFound, Location: "https://mail.ports.test:8443/autodiscover/autodiscover.xml"}, nil, true},
		{"redirectUrl to port 8443 the module allows", lab.Reply{RedirectURL: "https://mail.ports.test:8443/autodiscover/autodiscover.xml"}, []int{8443}, false},
		{"redirectUrl with an explicit :443", lab.Reply{RedirectURL: "https://mail.ports.test:443/autodiscover/autodiscover.xml"}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			mb, ad, err := e.AddOnPremises("ports.test", "pat", "pw")
			must(t, err)
			ad.SetUser(mb.Address, tc.reply)
			s := settingsFor(e, mb)
			s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
			s.AllowedPorts = tc.allowed
			res := mustRun(t, mb.Address, s)
			st, found := findStep(res, 0, "autodiscover.ports.test", probe.StepRedirect)
			if !found {
				t.Fatalf("no redirect step\n%s", res.Log())
			}
			if refused := !st.OK && st.ErrorClass == probe.ClassBadRedirect && strings.Contains(st.Detail, "port"); refused != tc.refused {
				t.Errorf("redirect step %+v, want refused=%v", st, tc.refused)
			}
		})
	}
	t.Run("CNAME to a name that is no DNS name", func(t *testing.T) {
		e := newEstate(t)
		e.AddCNAME("autodiscover.cname.test", "evil.test:8443")
		s := settingsFor(e, lab.Mailbox{})
		s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
		res := mustRun(t, "cy@cname.test", s)
		st, _ := findStep(res, 0, "autodiscover.cname.test", probe.StepDNS)
		if st.OK || st.ErrorClass != probe.ClassDNSError || !strings.Contains(st.Detail, "not a DNS host name") {
			t.Errorf("dns step %+v\n%s", st, res.Log())
		}
	})
}
