package probe

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Caps on text that carries what a server sent.
const (
	maxDetailBytes = 2048 // a step's Detail
	maxReasonBytes = 1024 // a Result's Reason
	maxFieldBytes  = 512  // one server-given value printed in the step log
)

// printable makes server text safe for one line of text output: control
// characters, line and paragraph separators, format characters (bidi
// overrides among them) and invalid UTF-8 are written as escapes, so that
// no server can start a line of its own in the step log or hide text from
// the reader; then the text is cut to at most limit bytes.
func printable(s string, limit int) string {
	if isPlain(s) {
		return truncate(s, limit)
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case needsEscape(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
		if b.Len() > limit {
			break
		}
	}
	return truncate(b.String(), limit)
}

func isPlain(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || needsEscape(r) {
			return false
		}
	}
	return true
}

func needsEscape(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf)
}

// truncate cuts s to at most n bytes on a character boundary, marking the
// cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := max(n-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
