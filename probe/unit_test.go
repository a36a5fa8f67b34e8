package probe

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseChallengesSplitsSchemesAndKeepsParameters(t *testing.T) {
	cases := []struct {
		name    string
		headers []string
		want    []string // scheme|params
	}{
		{"one header per scheme (IIS)", []string{"Negotiate", "NTLM", `Basic realm="autodiscover.contoso.com"`}, []string{"Negotiate|", "NTLM|", `Basic|realm="autodiscover.contoso.com"`}},
		{"comma-joined with parameters", []string{`Bearer client_id="00000002", trusted_issuers="a@b", authorization_uri="https://login/x", Basic Realm=""`}, []string{`Bearer|client_id="00000002", trusted_issuers="a@b", authorization_uri="https://login/x"`, `Basic|Realm=""`}},
		{"quoted comma stays in the parameter", []string{`Basic realm="a, b", charset="UTF-8"`}, []string{`Basic|realm="a, b", charset="UTF-8"`}},
		{"NTLM token with padding", []string{"NTLM TlRMTVNTUAACAAAA=="}, []string{"NTLM|TlRMTVNTUAACAAAA=="}},
		{"empty header", []string{""}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.headers {
				h.Add("WWW-Authenticate", v)
			}
			var got []string
			for _, c := range ParseChallenges(h) {
				got = append(got, c.Scheme+"|"+c.Params)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBasicAnswersOnceThenReportsRejection(t *testing.T) {
	b := &Basic{Username: "alice@contoso.test", Password: "Secr3t!"}
	ch, ok := b.Choose([]Challenge{{Scheme: "Negotiate"}, {Scheme: "basic", Params: `realm="x"`}})
	if !ok || ch.Scheme != "basic" {
		t.Fatalf("Choose picked %+v, %v", ch, ok)
	}
	if _, ok := b.Choose([]Challenge{{Scheme: "NTLM"}, {Scheme: "Bearer"}}); ok {
		t.Error("Basic chose a challenge without Basic")
	}
	ex := b.NewExchange("mail.example.test")
	h, err := ex.Respond(context.Background(), ch)
	if err != nil || h != "Basic YWxpY2VAY29udG9zby50ZXN0OlNlY3IzdCE=" {
		t.Errorf("first answer %q, %v", h, err)
	}
	if _, err := ex.Respond(context.Background(), ch); err != ErrRejected {
		t.Errorf("second answer error %v, want ErrRejected", err)
	}
	if s := b.String(); strings.Contains(s, "Secr3t!") {
		t.Errorf("String() shows the password: %s", s)
	}
}

func TestNormalizeURLMakesEquivalentURLsEqual(t *testing.T) {
	same := [][2]string{
		{"https://Autodiscover.Contoso.com:443/Autodiscover/Autodiscover.xml", "https://autodiscover.contoso.com/autodiscover/autodiscover.xml"},
		{"HTTP://autodiscover.contoso.com:80/autodiscover/autodiscover.xml", "http://autodiscover.contoso.com/autodiscover/autodiscover.xml"},
		{"https://user@a.test/autodiscover/autodiscover.xml#x", "https://a.test/autodiscover/autodiscover.xml"},
	}
	for _, p := range same {
		a, _ := url.Parse(p[0])
		b, _ := url.Parse(p[1])
		if normalizeURL(a) != normalizeURL(b) {
			t.Errorf("%s and %s normalise differently: %s vs %s", p[0], p[1], normalizeURL(a), normalizeURL(b))
		}
	}
	different := [][2]string{
		{"https://a.test:8443/autodiscover/autodiscover.xml", "https://a.test/autodiscover/autodiscover.xml"},
		{"http://a.test/autodiscover/autodiscover.xml", "https://a.test/autodiscover/autodiscover.xml"},
		{"https://a.test/autodiscover/x/autodiscover.xml", "https://a.test/autodiscover/autodiscover.xml"},
	}
	for _, p := range different {
		a, _ := url.Parse(p[0])
		b, _ := url.Parse(p[1])
		if normalizeURL(a) == normalizeURL(b) {
			t.Errorf("%s and %s normalise to the same key", p[0], p[1])
		}
	}
}

func TestCheckRedirectURLAppliesSchemePathAndHostRules(t *testing.T) {
	cases := []struct {
		url      string
		pathRule bool
		ok       bool
	}{
		{"https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml", true, true},
		{"https://autodiscover-s.outlook.com:443/Autodiscover/bob@o365.com/Autodiscover.xml", true, true},
		{"https://pod.outlook.com/anything", false, true},
		{"http://autodiscover.contoso.com/autodiscover/autodiscover.xml", true, false},
		{"https://www.contoso.com/", true, false},
		{"https://www.contoso.com/autodiscover/autodiscover.json", true, false},
		{"https://10.0.0.1/autodiscover/autodiscover.xml", true, false},
		{"https://[::1]/autodiscover/autodiscover.xml", true, false},
		{"https://u:p@contoso.com/autodiscover/autodiscover.xml", true, false},
		{"ftp://contoso.com/autodiscover/autodiscover.xml", true, false},
	}
	for _, tc := range cases {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := checkServerURL(u, redirectRule(tc.pathRule), nil) == nil; got != tc.ok {
			t.Errorf("checkServerURL(%s, path rule %v) ok=%v, want %v", tc.url, tc.pathRule, got, tc.ok)
		}
	}
}

func TestInDomainRespectsLabelBoundaries(t *testing.T) {
	cases := []struct {
		host, domain string
		want         bool
	}{
		{"contoso.com", "contoso.com", true},
		{"autodiscover.contoso.com", "contoso.com", true},
		{"AUTODISCOVER.Contoso.COM.", "contoso.com", true},
		{"evilcontoso.com", "contoso.com", false},
		{"contoso.com.evil.net", "contoso.com", false},
		{"com", "contoso.com", false},
		{"x.com", "", false},
	}
	for _, tc := range cases {
		if got := inDomain(tc.host, tc.domain); got != tc.want {
			t.Errorf("inDomain(%q, %q) = %v, want %v", tc.host, tc.domain, got, tc.want)
		}
	}
}

func TestNormalizeAddressConvertsIDNAndRefusesUnsafeDomains(t *testing.T) {
	cases := []struct {
		in, want, domain string
		ok               bool
	}{
		{"Alice@Contoso.COM", "Alice@contoso.com", "contoso.com", true},
		{"bob@bücher.example", "bob@xn--bcher-kva.example", "xn--bcher-kva.example", true},
		{"bob@sub.example.co.uk", "bob@sub.example.co.uk", "sub.example.co.uk", true},
		{"bob@co.uk", "", "", false},
		{"bob@uk", "", "", false},
		{"bob@xn--a.test", "", "", false},
		{"bob@a..test", "", "", false},
		{"bo b@contoso.com", "", "", false},
		{"bob@[::1]", "", "", false},
	}
	for _, tc := range cases {
		got, dom, err := NormalizeAddress(tc.in)
		if (err == nil) != tc.ok || got != tc.want || dom != tc.domain {
			t.Errorf("NormalizeAddress(%q) = %q, %q, %v; want %q, %q, ok=%v", tc.in, got, dom, err, tc.want, tc.domain, tc.ok)
		}
	}
}

func TestClampTimeStaysInsideTheWindow(t *testing.T) {
	lo := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	hi := lo.Add(24 * time.Hour)
	for _, now := range []time.Time{lo.Add(-time.Hour), lo.Add(time.Hour), hi.Add(time.Hour)} {
		got := clampTime(now, lo, hi)
		if got.Before(lo) || got.After(hi) {
			t.Errorf("clampTime(%v) = %v, outside [%v, %v]", now, got, lo, hi)
		}
	}
}
