package probe_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// fanOutDomain publishes a domain whose SRV record names 32 targets with
// 32 dead addresses each: a redirect into it would have the probe dial
// 1,024 addresses of that domain's choosing.
func fanOutDomain(e *lab.Estate, domain string) {
	for i := 0; i < 32; i++ {
		target := fmt.Sprintf("t%d.%s", i, domain)
		e.AddSRV("_autodiscover._tcp."+domain, 0, 0, 443, target)
		for j := 0; j < 32; j++ {
			e.AddA(target, fmt.Sprintf("127.2.%d.%d", i, 1+j))
		}
	}
}

// A probe spends at most its budget of connection attempts and DNS
// queries, whatever a domain it is redirected to publishes.
func TestAForeignDomainCannotMakeTheProbeAPortScanner(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dials   int
		queries int
	}{
		{"default budget", probe.DefaultMaxConnectionAttempts, probe.DefaultMaxDNSQueries},
		{"smaller configured budget", 10, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			mb, ad, err := e.AddOnPremises("fan.test", "fay", "pw")
			must(t, err)
			ad.SetUser(mb.Address, lab.Reply{RedirectAddr: "fay@scanner.test"})
			fanOutDomain(e, "scanner.test")
			s := settingsFor(e, mb)
			s.CheckAllAddresses = true
			if tc.name != "default budget" {
				s.MaxConnectionAttempts, s.MaxDNSQueries = tc.dials, tc.queries
			}
			before := e.DNSQueries()
			res := mustRun(t, mb.Address, s)
			dials := 0
			for _, st := range res.Steps {
				if st.Name == probe.StepTCP {
					dials += dialsIn(st.Detail)
				}
			}
			for _, ac := range res.AddressChecks {
				if ac.Steps[0].ErrorClass != probe.ClassBudgetExhausted {
					dials++
				}
			}
			if dials > tc.dials {
				t.Errorf("%d connection attempts, budget %d\n%s", dials, tc.dials, res.Log())
			}
			if q := e.DNSQueries() - before; q > int64(tc.queries) {
				t.Errorf("%d DNS queries, budget %d", q, tc.queries)
			}
			var spent bool
			for _, st := range res.Steps {
				spent = spent || st.ErrorClass == probe.ClassBudgetExhausted
			}
			if !spent {
				t.Errorf("no step says the budget was spent\n%s", res.Log())
			}
			for _, ac := range res.AddressChecks {
				if strings.HasSuffix(ac.Host, "scanner.test") {
					t.Errorf("check_all_addresses checked %s %s, outside the mailbox's domains", ac.Host, ac.Address)
				}
			}
		})
	}
}

// dialsIn counts the connection attempts a tcp step's detail lists
// ("port 443: 127.0.0.1 refused (0 ms), 127.0.0.2 connected (1 ms)…"); a
// refusal by the budget is no dial.
func dialsIn(detail string) int {
	_, list, _ := strings.Cut(detail, ": ")
	list, _, _ = strings.Cut(list, ": no address accepted")
	n := 0
	for _, item := range strings.Split(list, ", ") {
		if item != "" && !strings.Contains(item, string(probe.ClassBudgetExhausted)) {
			n++
		}
	}
	return n
}
