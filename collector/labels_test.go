package collector

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// gatherLabels collects c and returns every label value of family name.
func gatherLabels(t *testing.T, c prometheus.Collector, name string) []map[string]string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			out = append(out, labelMap(m))
		}
	}
	return out
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// Label values from servers are normalised — scheme://host/path, lower-
// case host, no query, fragment, user info or default port — and capped
// at 256 bytes, so that a server can neither flood the TSDB nor make a
// series new at every scrape.
func TestLabelValuesFromServersAreNormalisedAndCapped(t *testing.T) {
	huge := "https://outlook.contoso.test/" + strings.Repeat("a", 614<<10)
	cases := []struct {
		name, endpoint, ews, want string
	}{
		{"a 614 KB URL", huge, huge, ""},
		{"query and fragment", "https://Autodiscover.Contoso.TEST:443/autodiscover/autodiscover.xml?cache=12345#x", "https://mail.contoso.test/EWS/Exchange.asmx?v=2", "https://autodiscover.contoso.test/autodiscover/autodiscover.xml"},
		{"user info", "https://u:p@autodiscover.contoso.test/autodiscover/autodiscover.xml", "https://mail.contoso.test/EWS/Exchange.asmx", "https://autodiscover.contoso.test/autodiscover/autodiscover.xml"},
		{"control characters", "https://autodiscover.contoso.test/auto\u202ediscover/a\u0007.xml", "https://mail.contoso.test/EWS/Exchange.asmx", ""},
		{"not a URL", "javascript:alert(1)", "%zz", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := successResult()
			res.FinalURL = tc.endpoint
			res.Response.Protocols[1].EwsUrl = tc.ews
			res.Response.Protocols[1].Server = strings.Repeat("s", 1000) + "\n"
			res.V2 = []probe.V2Result{{Protocol: "Ews", OK: true, URL: tc.ews}}
			for _, family := range []string{"autodiscover_result_info", "autodiscover_v2_info"} {
				for _, labels := range gatherLabels(t, New(res, Options{}), family) {
					for k, v := range labels {
						if len(v) > 256 || !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) || strings.ContainsAny(v, "?#") {
							t.Errorf("%s{%s}: %d bytes: %.80q", family, k, len(v), v)
						}
					}
					if tc.want != "" && labels["endpoint"] != "" && labels["endpoint"] != tc.want {
						t.Errorf("endpoint %q, want %q", labels["endpoint"], tc.want)
					}
				}
			}
		})
	}
	// Two answers that differ only in query and case are one series.
	a, b := successResult(), successResult()
	a.FinalURL = "https://autodiscover.contoso.test/autodiscover/autodiscover.xml?x=1"
	b.FinalURL = "https://AUTODISCOVER.contoso.test:443/autodiscover/autodiscover.xml?x=2"
	la, lb := gatherLabels(t, New(a, Options{}), "autodiscover_result_info"), gatherLabels(t, New(b, Options{}), "autodiscover_result_info")
	if la[0]["endpoint"] != lb[0]["endpoint"] {
		t.Errorf("%q and %q are two series", la[0]["endpoint"], lb[0]["endpoint"])
	}
}
