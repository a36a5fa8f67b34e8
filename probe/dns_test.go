package probe

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
)

func TestResolverAgainstTheLabDNS(t *testing.T) {
	e, err := lab.New()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.AddA("a.dns.test", "127.0.0.31", "127.0.0.32")
	e.AddAAAA("a.dns.test", "::1")
	e.AddCNAME("alias.dns.test", "middle.dns.test")
	e.AddCNAME("middle.dns.test", "a.dns.test")
	e.AddCNAME("loop1.dns.test", "loop2.dns.test")
	e.AddCNAME("loop2.dns.test", "loop1.dns.test")
	e.AddTXT("txtonly.dns.test", "exists")
	e.AddSRV("_autodiscover._tcp.dns.test", 10, 5, 443, "b.dns.test")
	e.AddSRV("_autodiscover._tcp.dns.test", 0, 1, 443, "c.dns.test")
	e.AddSRV("_autodiscover._tcp.dns.test", 0, 9, 443, "d.dns.test")

	r, err := newResolver(e.DNSAddr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		name   string
		host   string
		v      IPVersion
		addrs  string
		cnames string
		class  ErrorClass
	}{
		{"A and AAAA, IPv4 first", "a.dns.test", IPAny, "127.0.0.31,127.0.0.32,::1", "", ""},
		{"IPv6 only", "a.dns.test", IPv6, "::1", "", ""},
		{"CNAME chain is followed and recorded", "alias.dns.test", IPv4, "127.0.0.31,127.0.0.32", "middle.dns.test,a.dns.test", ""},
		{"missing name is NXDOMAIN", "nothere.dns.test", IPAny, "", "", "nxdomain"},
		{"existing name without addresses", "txtonly.dns.test", IPAny, "", "", "no_records"},
		{"CNAME loop is a server failure, as recursive resolvers report it", "loop1.dns.test", IPv4, "", "", "servfail"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lk, serr := r.lookupHost(ctx, nil, tc.host, tc.v)
			var addrs []string
			for _, a := range lk.addrs {
				addrs = append(addrs, a.String())
			}
			var class ErrorClass
			if serr != nil {
				class = serr.Class
			}
			if strings.Join(addrs, ",") != tc.addrs || class != tc.class {
				t.Errorf("lookupHost(%s) = %v, %q; want %s, %q", tc.host, addrs, class, tc.addrs, tc.class)
			}
			if tc.cnames != "" && strings.Join(lk.cnames, ",") != tc.cnames {
				t.Errorf("CNAME chain %v, want %s", lk.cnames, tc.cnames)
			}
		})
	}

	t.Run("a CNAME answer without the asked type is not asked again", func(t *testing.T) {
		e.AddA("v4only.dns.test", "127.0.0.33")
		e.AddCNAME("alias4.dns.test", "v4only.dns.test")
		before := e.DNSQueries()
		lk, serr := r.lookupHost(ctx, nil, "alias4.dns.test", IPAny)
		if serr != nil || len(lk.addrs) != 1 {
			t.Fatalf("lookup = %v, %v", lk.addrs, serr)
		}
		if n := e.DNSQueries() - before; n != 2 {
			t.Errorf("%d queries for A and AAAA through a CNAME, want 2 (a recursive answer is complete)", n)
		}
	})

	t.Run("SRV records in RFC 2782 order", func(t *testing.T) {
		recs, serr := r.lookupSRV(ctx, nil, "_autodiscover._tcp.dns.test")
		if serr != nil {
			t.Fatal(serr)
		}
		var got []string
		for _, s := range recs {
			got = append(got, s.Target)
		}
		if strings.Join(got, ",") != "d.dns.test,c.dns.test,b.dns.test" {
			t.Errorf("SRV order %v", got)
		}
	})

	t.Run("unanswering server is a timeout", func(t *testing.T) {
		dead, err := newResolver("127.0.0.1:9", 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		_, serr := dead.lookupHost(ctx, nil, "a.dns.test", IPv4)
		if serr == nil || (serr.Class != "timeout" && serr.Class != "dns_error") {
			t.Errorf("error %v, want timeout or dns_error", serr)
		}
	})
}
