package collector

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzLabelValue checks the label sanitizers on whatever a server sends:
// the value is valid UTF-8, at most MaxLabelBytes, without control or
// format characters or a query, and sanitizing it again changes nothing.
func FuzzLabelValue(f *testing.F) {
	for _, s := range []string{
		"https://Autodiscover.Contoso.com:443/Autodiscover/bob%40x.com/a.xml?x=1#f",
		"https://u:p@mail.contoso.com/mapi/emsmdb/?MailboxId=guid@contoso.com",
		"http://[2001:db8::1]:8080/owa/",
		"https://mail.contoso.test/" + strings.Repeat("é", 300),
		"https://a\u202eb.test/\x07",
		"javascript:alert(1)",
		"\xff\xfe",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for name, sanitize := range map[string]func(string) string{"SanitizeURL": SanitizeURL, "LabelValue": LabelValue, "HostLabel": HostLabel} {
			v := sanitize(raw)
			if !utf8.ValidString(v) || len(v) > MaxLabelBytes {
				t.Fatalf("%s(%q) = %q: %d bytes, valid UTF-8 %v", name, raw, v, len(v), utf8.ValidString(v))
			}
			if strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) }) {
				t.Fatalf("%s(%q) = %q holds a control or format character", name, raw, v)
			}
			if name == "SanitizeURL" && strings.ContainsAny(v, "?#") {
				t.Fatalf("SanitizeURL(%q) = %q keeps a query or fragment", raw, v)
			}
			if name != "SanitizeURL" {
				if again := sanitize(v); again != v {
					t.Fatalf("%s is not idempotent: %q → %q → %q", name, raw, v, again)
				}
			}
		}
	})
}
