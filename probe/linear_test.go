package probe_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// processCPU is the CPU time this process has used.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// answer401 challenges with the given WWW-Authenticate values.
func answer401(values ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for _, v := range values {
			w.Header().Add("WWW-Authenticate", v)
		}
		w.WriteHeader(http.StatusUnauthorized)
	})
}

// Every parser of server data is linear and bounded by counts, so a probe
// returns within its deadline plus a small constant, and spends little
// CPU, whatever a server sends. Each row is the costliest answer of its
// kind that fits the module's byte limits.
func TestParsersStayLinearOnTheCostliestAnswers(t *testing.T) {
	many := func(n int, f func(i int) string) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString(f(i))
		}
		return b.String()
	}
	xmlHead := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"><Account><Action>settings</Action>`
	xmlTail := `</Account></Response></Autodiscover>`
	cases := []struct {
		name    string
		handler http.Handler
		// v2 asks the host with Autodiscover v2 instead of POX.
		v2 bool
		// addresses publishes that many more A records for the host.
		addresses int
	}{
		{"one WWW-Authenticate with 100,000 parameters", answer401("Basic " + many(100000, func(i int) string { return fmt.Sprintf("p%d=v, ", i) })), false, 0},
		{"20,000 challenges in one header", answer401(many(20000, func(i int) string { return fmt.Sprintf("S%d x=y, ", i) })), false, 0},
		{"2,000 WWW-Authenticate headers", answer401(strings.Split(many(2000, func(i int) string { return fmt.Sprintf("Basic realm=\"%d\"\n", i) }), "\n")...), false, 0},
		{"unterminated quotes and escapes", answer401(`Basic realm="` + strings.Repeat(`\"a,`, 200000)), false, 0},
		{"20,000 Protocol blocks", lab.Static(http.StatusOK, "text/xml", xmlHead+many(20000, func(int) string { return "<Protocol><Type>EXCH</Type></Protocol>" })+xmlTail), false, 0},
		{"one Protocol with 30,000 children", lab.Static(http.StatusOK, "text/xml", xmlHead+"<Protocol><Type>WEB</Type>"+many(30000, func(i int) string { return fmt.Sprintf("<F%d>x</F%d>", i, i) })+"</Protocol>"+xmlTail), false, 0},
		{"an element with 60,000 attributes", lab.Static(http.StatusOK, "text/xml", xmlHead+"<Protocol "+many(60000, func(i int) string { return fmt.Sprintf("a%d=\"v\" ", i) })+"><Type>EXCH</Type></Protocol>"+xmlTail), false, 0},
		{"2,000 response headers", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			for i := 0; i < 2000; i++ {
				w.Header().Set(fmt.Sprintf("X-H%d", i), "v")
			}
			w.WriteHeader(http.StatusOK)
		}), false, 0},
		{"a v2 answer of 500,000 nested arrays", lab.Static(http.StatusOK, "application/json", `{"Protocol":"Ews","Url":`+strings.Repeat("[", 500000)), true, 0},
		{"a v2 answer of 40,000 members", lab.Static(http.StatusOK, "application/json", "{"+many(40000, func(i int) string { return fmt.Sprintf(`"k%d":1,`, i) })+`"Url":"x"}`), true, 0},
		{"3,000 A records", lab.Static(http.StatusOK, "text/html", "x"), false, 3000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEstate(t)
			must(t, e.HTTPS("autodiscover.costly.test", tc.handler))
			for i := 0; i < tc.addresses; i++ {
				e.AddA("autodiscover.costly.test", fmt.Sprintf("127.1.%d.%d", i/250, 1+i%250))
			}
			s := settingsFor(e, lab.Mailbox{Username: "u@costly.test", Password: "pw"})
			s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
			if tc.v2 {
				s = v2Only(e, "autodiscover.costly.test")
			}
			s.StepTimeout = 2 * time.Second
			const deadline = 3 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			cpu0, start := processCPU(t), time.Now()
			res, err := runProbe(ctx, "u@costly.test", s)
			took, cpu := time.Since(start), processCPU(t)-cpu0
			if err != nil {
				t.Fatal(err)
			}
			if took > deadline+time.Second {
				t.Errorf("the probe took %v under a %v deadline", took, deadline)
			}
			// Generous: the race detector multiplies CPU by up to ten.
			if cpu > 3*time.Second {
				t.Errorf("the probe used %v of CPU on one answer", cpu)
			}
			if !res.Success && res.Reason == "" {
				t.Errorf("no verdict\n%s", res.Log())
			}
		})
	}
}
