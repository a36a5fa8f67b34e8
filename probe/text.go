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

// Printable makes server text safe for one line of text or a page:
// control characters, line and paragraph separators, format characters
// (bidi overrides, zero-width characters among them) and invalid UTF-8 are
// written as escapes, so that no server can start a line of its own in the
// step log, make a host name read as another or hide text from the reader;
// then the text is cut to at most limit bytes, never inside an escape
// (cut short, it would name another character), a cut marked with "…".
func Printable(s string, limit int) string {
	if isPlain(s) {
		return truncate(s, limit)
	}
	var b strings.Builder
	cut := -1 // where the text ends should it turn out too long
	for i := 0; i < len(s) && b.Len() <= limit; {
		r, size := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+size]
		switch {
		case r == utf8.RuneError && size == 1:
			piece = `\x` + strconv.FormatUint(uint64(s[i]), 16)
		case needsEscape(r):
			q := strconv.QuoteRuneToASCII(r)
			piece = q[1 : len(q)-1]
		}
		if cut < 0 && b.Len()+len(piece) > limit-len(cutMark) {
			cut = b.Len()
		}
		b.WriteString(piece)
		i += size
	}
	if b.Len() <= limit {
		return b.String()
	}
	return b.String()[:cut] + cutMark
}

func isPlain(s string) bool {
	// Host names and most details are printable ASCII: settle those
	// without decoding, as a page of thousands of mailboxes asks often.
	ascii := true
	for i := 0; i < len(s) && ascii; i++ {
		ascii = s[i] >= 0x20 && s[i] < 0x7f
	}
	if ascii {
		return true
	}
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

// cutMark ends text that was cut short.
const cutMark = "…"

// truncate cuts s to at most n bytes on a character boundary, marking the
// cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n-len(cutMark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + cutMark
}
