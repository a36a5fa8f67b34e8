package probe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxHeaderBytes caps the response head a server may send, and
// maxHeaderFields the distinct header fields in it (a real Exchange answer
// has about twenty).
const (
	maxHeaderBytes  = 64 << 10
	maxHeaderFields = 256
)

// httpConn speaks HTTP/1.1 over a connection the probe opened itself, so
// every connection step is seen and timed, redirects are never followed
// behind our back and a challenge is answered on the same keep-alive
// connection (which NTLM needs).
type httpConn struct {
	conn    net.Conn
	budget  *budgetReader
	br      *bufio.Reader
	closed  bool
	reopen  func(ctx context.Context) (net.Conn, error)
	maxBody int64
}

func newHTTPConn(c net.Conn, maxBody int64, reopen func(ctx context.Context) (net.Conn, error)) *httpConn {
	h := &httpConn{reopen: reopen, maxBody: maxBody}
	h.attach(c)
	return h
}

func (h *httpConn) attach(c net.Conn) {
	h.conn, h.closed = c, false
	h.budget = &budgetReader{r: c}
	h.br = bufio.NewReader(h.budget)
}

func (h *httpConn) Close() {
	if h.conn != nil {
		_ = h.conn.Close()
	}
}

// response is a fully read HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
	proto  string
	// authenticated is set on the answer to a request that carried the
	// module's credentials.
	authenticated bool
}

// roundTrip sends req and reads the whole answer within timeout (and the
// context). A connection the server closed is reopened once, quietly: the
// steps of the first connection already vouched for the host.
func (h *httpConn) roundTrip(ctx context.Context, req *http.Request, body []byte, timeout time.Duration) (*response, *Error) {
	if h.closed {
		if h.reopen == nil {
			return nil, failf(ClassConnectionError, "server closed the connection")
		}
		c, err := h.reopen(ctx)
		if err != nil {
			return nil, failf(ClassConnectionError, "reconnecting after the server closed the connection: %v", err)
		}
		h.attach(c)
	}
	// A fresh budget before anything is sent, so that a failed write is not
	// mistaken for an oversized answer.
	h.budget.left = h.maxBody + maxHeaderBytes + 1
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = h.conn.SetDeadline(deadline)
	// Cancelling the context unblocks a read or write at once.
	stop := context.AfterFunc(ctx, func() { _ = h.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	if err := req.Write(h.conn); err != nil {
		h.closed = true
		return nil, h.classify(ctx, err, timeout, "sending the request")
	}
	resp, err := http.ReadResponse(h.br, req)
	// Interim answers (100 Continue, 102, 103) precede the real one.
	for interim := 0; err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols && interim < 5; interim++ {
		resp, err = http.ReadResponse(h.br, req)
	}
	if err != nil {
		h.closed = true
		return nil, h.classify(ctx, err, timeout, "reading the response")
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, h.maxBody+1))
	resp.Body.Close()
	if err != nil {
		h.closed = true
		return nil, h.classify(ctx, err, timeout, "reading the response body")
	}
	if int64(len(data)) > h.maxBody {
		h.closed = true
		return nil, failf(ClassResponseTooLarge, "response body larger than %d bytes", h.maxBody)
	}
	if len(resp.Header) > maxHeaderFields {
		h.closed = true
		return nil, failf(ClassResponseTooLarge, "the answer has %d header fields, more than the %d accepted", len(resp.Header), maxHeaderFields)
	}
	if resp.Close {
		h.closed = true
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data, proto: resp.Proto}, nil
}

func (h *httpConn) classify(ctx context.Context, err error, timeout time.Duration, doing string) *Error {
	switch {
	case h.budget.left <= 0 || errors.Is(err, errResponseTooLarge):
		// Checked first: running out of budget mid-line makes the parser
		// report a malformed header instead.
		return failf(ClassResponseTooLarge, "response (head and body) larger than %d bytes", h.maxBody+maxHeaderBytes)
	case ctx.Err() != nil:
		return failf(ClassTimeout, "deadline reached while %s", doing)
	case isTimeout(err):
		return failf(ClassTimeout, "no answer within %s while %s", timeout, doing)
	case strings.Contains(err.Error(), "certificate required"):
		return failf(ClassClientCertRequired, "the server requires a client certificate")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return failf(ClassConnectionError, "server closed the connection while %s", doing)
	}
	return failf(ClassConnectionError, "%s: %v", doing, err)
}

var errResponseTooLarge = errors.New("response larger than its byte budget")

// budgetReader hands out at most left bytes of the connection. The budget
// is renewed per response, so a hostile server cannot feed an endless
// header block (net/http sets no limit on a client's response head).
type budgetReader struct {
	r    io.Reader
	left int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// newRequest builds an HTTP/1.1 request with the prober's User-Agent.
func newRequest(method string, u *url.URL, s *Settings) *http.Request {
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Host:       u.Host,
	}
	req.Header.Set("User-Agent", s.userAgent())
	return req
}

// newPOST builds the Autodiscover POST with the headers Outlook 2016 and
// later send ([MS-OXDSCLI] 2.2.2): X-MapiHttpCapability: 1 asks for the
// MAPI/HTTP view (Exchange 2013 SP1 and later, and Exchange Online, then
// return a mapiHttp block instead of EXCH and EXPR); X-ClientCanHandle
// admits AuthPackage Negotiate and the EXHTTP blocks (15.00.0995.014 and
// later); X-AnchorMailbox routes the request to the mailbox's server.
// Without them a server answers with the legacy view an old Outlook gets.
func newPOST(u *url.URL, s *Settings, mailbox string) *http.Request {
	req := newRequest(http.MethodPost, u, s)
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("Accept", "text/xml")
	req.Header.Set("X-AnchorMailbox", mailbox)
	if !s.OmitMapiHTTP {
		req.Header.Set("X-MapiHttpCapability", "1")
		req.Header.Set("X-ClientCanHandle", "Negotiate,ExHttpInfo")
	}
	return req
}

// newGET builds the unauthenticated GET of the HTTP redirect method.
func newGET(u *url.URL, s *Settings) *http.Request {
	return newRequest(http.MethodGet, u, s)
}

func describeStatus(r *response) string {
	ct := r.header.Get("Content-Type")
	if ct == "" {
		ct = "no content type"
	}
	return fmt.Sprintf("HTTP %d %s, %s, %d bytes", r.status, http.StatusText(r.status), ct, len(r.body))
}
