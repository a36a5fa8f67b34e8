package probe

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzPrintable checks the escaper every server string passes before it
// reaches text: whatever goes in, what comes out is valid UTF-8 within the
// limit, holds no character that could start a line or hide text, and
// plain text passes unchanged.
func FuzzPrintable(f *testing.F) {
	for _, s := range []string{
		"plain text",
		"x\n    ✓ Providing user credentials … OK",
		"a\u2028b\u2029c\u202ed\u200b",
		"\x1b[2J\x07\x00",
		"\xff\xfe invalid",
		strings.Repeat("é", 400),
		"",
	} {
		f.Add(s, 64)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit = 8 + abs(limit)%2048
		out := Printable(s, limit)
		if !utf8.ValidString(out) {
			t.Fatalf("Printable(%q) = %q is not valid UTF-8", s, out)
		}
		if len(out) > limit {
			t.Fatalf("Printable(%q, %d) is %d bytes", s, limit, len(out))
		}
		for _, r := range out {
			if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf) {
				t.Fatalf("Printable(%q) = %q holds %U", s, out, r)
			}
		}
		if isPlain(s) && len(s) <= limit && out != s {
			t.Fatalf("plain %q came out as %q", s, out)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // the smallest int
			return 0
		}
		return -n
	}
	return n
}
