package server

import (
	"net/http"
	"strconv"
	"time"
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
