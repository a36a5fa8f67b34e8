package server

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Caps on what a page shows of one piece of server text. The probe caps
// step details and reasons already, but certificate subjects, issuers and
// names reach the Result as the server sent them, and a page has to stay
// small and readable whatever it is handed.
const (
	maxPageHostBytes     = 255
	maxPageURLBytes      = 512
	maxPageSubjectBytes  = 512
	maxPageDetailBytes   = 2048
	maxPageSentenceBytes = 1024
	maxPageCertNames     = 32
)

// displayText prepares text a server sent for a page. html/template
// escapes markup but passes through what can still mislead a reader:
// a bidi override makes a host name read as another, a zero-width
// character hides a difference, a control character breaks the layout.
// Those, and invalid UTF-8, are shown as escapes; the result is at most
// limit bytes, a cut marked with "…".
func displayText(s string, limit int) string {
	if plainText(s) {
		return cutText(s, limit)
	}
	var b strings.Builder
	// cut is where the text ends should it turn out too long: never
	// inside an escape, which cut short would name another character.
	cut := -1
	for i := 0; i < len(s) && b.Len() <= limit; {
		r, size := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+size]
		switch {
		case r == utf8.RuneError && size == 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case misleadingRune(r):
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

func plainText(s string) bool {
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
		if r == utf8.RuneError || misleadingRune(r) {
			return false
		}
	}
	return true
}

func misleadingRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf)
}

// cutText shortens s to at most limit bytes on a character boundary.
func cutText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := max(limit-len(cutMark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + cutMark
}

// cutMark ends text that was cut short.
const cutMark = "…"

// millis formats a step duration the way the text step log does.
func millis(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
}

// setPageHeaders marks an HTML page. The pages need no script, image or
// form, so the policy forbids them all: should server text ever slip
// past the escaping, a browser still runs nothing and loads nothing.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}
