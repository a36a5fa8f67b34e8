package lab_test

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/Azure/go-ntlmssp"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
)

// ntlmServer serves v the way Autodiscover does: 200 once verified, the
// verifier's own answer for a handshake leg, else a 401 offering NTLM.
func ntlmServer(t *testing.T, v *lab.NTLMVerifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, responded := v.Handle(w, r)
		switch {
		case responded:
		case ok:
			_, _ = w.Write([]byte("welcome"))
		default:
			w.Header().Add("WWW-Authenticate", "Negotiate")
			w.Header().Add("WWW-Authenticate", "NTLM")
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// keepAlive is one client connection: every request travels on it, as the
// NTLM legs must.
type keepAlive struct {
	t    *testing.T
	host string
	conn net.Conn
	br   *bufio.Reader
}

func dialKeepAlive(t *testing.T, srv *httptest.Server) *keepAlive {
	t.Helper()
	host := strings.TrimPrefix(srv.URL, "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &keepAlive{t: t, host: host, conn: c, br: bufio.NewReader(c)}
}

// send makes one GET with the Authorization header and returns the status
// and the WWW-Authenticate values.
func (k *keepAlive) send(authorization string) (int, []string) {
	k.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+k.host+"/autodiscover/autodiscover.xml", nil)
	if err != nil {
		k.t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if err := req.Write(k.conn); err != nil {
		k.t.Fatal(err)
	}
	resp, err := http.ReadResponse(k.br, req)
	if err != nil {
		k.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		k.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Values("WWW-Authenticate")
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// challenge sends a NEGOTIATE message under scheme and returns the
// server's CHALLENGE message.
func (k *keepAlive) challenge(scheme string) []byte {
	k.t.Helper()
	neg, err := ntlmssp.NewNegotiateMessage("", "PROBE01")
	if err != nil {
		k.t.Fatal(err)
	}
	status, auth := k.send(scheme + " " + b64(neg))
	if status != http.StatusUnauthorized || len(auth) != 1 {
		k.t.Fatalf("negotiate leg: HTTP %d, WWW-Authenticate %q; want 401 with one challenge", status, auth)
	}
	gotScheme, token, _ := strings.Cut(auth[0], " ")
	if gotScheme != scheme {
		k.t.Fatalf("challenge under scheme %q, want %q", gotScheme, scheme)
	}
	msg, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		k.t.Fatalf("challenge token %q: %v", token, err)
	}
	return msg
}

// handshake runs both client legs on one connection with go-ntlmssp and
// returns the final status.
func handshake(t *testing.T, srv *httptest.Server, scheme, username, password string) int {
	t.Helper()
	k := dialKeepAlive(t, srv)
	auth, err := ntlmssp.NewAuthenticateMessage(k.challenge(scheme), username, password, &ntlmssp.AuthenticateMessageOptions{WorkstationName: "PROBE01"})
	if err != nil {
		t.Fatalf("go-ntlmssp refused the lab's challenge: %v", err)
	}
	status, _ := k.send(scheme + " " + b64(auth))
	return status
}

func TestNTLMVerifierVerifiesNTLMv2(t *testing.T) {
	accounts := map[string]string{`CONTOSO\nina`: "Correct-Horse1", "omar@upn.test": "Battery-Staple2"}
	tests := []struct {
		name, scheme, username, password string
		dnsDomain                        string
		wantOK                           bool
	}{
		{"DOMAIN\\user with the right password", "NTLM", `CONTOSO\nina`, "Correct-Horse1", "", true},
		{"inside Negotiate", "Negotiate", `CONTOSO\nina`, "Correct-Horse1", "", true},
		{"domain and user in another case", "NTLM", `contoso\NINA`, "Correct-Horse1", "", true},
		{"DNS domain name whose first label is the domain", "NTLM", `contoso.test\nina`, "Correct-Horse1", "", true},
		{"no domain: the server's domain", "NTLM", "nina", "Correct-Horse1", "", true},
		{"UPN key", "NTLM", "omar@upn.test", "Battery-Staple2", "", true},
		{"UPN key in another case", "NTLM", "Omar@UPN.test", "Battery-Staple2", "", true},
		{"UPN suffix is the DNS domain", "NTLM", "nina@ntlm.test", "Correct-Horse1", "ntlm.test", true},
		{"UPN suffix names the NetBIOS domain", "NTLM", "nina@contoso.test", "Correct-Horse1", "", true},
		{"wrong password", "NTLM", `CONTOSO\nina`, "Correct-Horse2", "", false},
		{"wrong password inside Negotiate", "Negotiate", `CONTOSO\nina`, "correct-horse1", "", false},
		{"wrong password with a UPN", "NTLM", "omar@upn.test", "Correct-Horse1", "", false},
		{"unknown user", "NTLM", `CONTOSO\mallory`, "Correct-Horse1", "", false},
		{"known user in another domain", "NTLM", `FABRIKAM\nina`, "Correct-Horse1", "", false},
		{"UPN with an unknown suffix", "NTLM", "nina@ntlm.test", "Correct-Horse1", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &lab.NTLMVerifier{Accounts: accounts, Domain: "CONTOSO", DNSDomain: tc.dnsDomain}
			status := handshake(t, ntlmServer(t, v), tc.scheme, tc.username, tc.password)
			if got := status == http.StatusOK; got != tc.wantOK {
				t.Errorf("final HTTP %d; want ok=%v", status, tc.wantOK)
			}
		})
	}
}

// TestNTLMVerifierChallengeMessage checks the CHALLENGE message against
// MS-NLMP 2.2.1.2 and what go-ntlmssp needs from it.
func TestNTLMVerifierChallengeMessage(t *testing.T) {
	srv := ntlmServer(t, &lab.NTLMVerifier{Accounts: map[string]string{`CONTOSO\nina`: "x"}, Domain: "CONTOSO"})
	first := dialKeepAlive(t, srv).challenge("NTLM")
	msg := dialKeepAlive(t, srv).challenge("NTLM")
	if len(msg) < 56 || string(msg[:8]) != "NTLMSSP\x00" || binary.LittleEndian.Uint32(msg[8:]) != 2 {
		t.Fatalf("not a CHALLENGE message: % x", msg)
	}
	flags := binary.LittleEndian.Uint32(msg[20:])
	const (
		unicode, requestTarget, ntlm, targetInfo = 1 << 0, 1 << 2, 1 << 9, 1 << 23
		lmKey, keyExch                           = 1 << 7, 1 << 30
	)
	if flags&(unicode|requestTarget|ntlm|targetInfo) != unicode|requestTarget|ntlm|targetInfo {
		t.Errorf("flags %#08x lack UNICODE, REQUEST_TARGET, NTLM or TARGET_INFO", flags)
	}
	if flags&(lmKey|keyExch) != 0 {
		t.Errorf("flags %#08x ask for LM_KEY or KEY_EXCH", flags)
	}
	if string(first[24:32]) == string(msg[24:32]) {
		t.Error("two connections got the same server challenge")
	}
	read := func(at int) []byte {
		n, off := int(binary.LittleEndian.Uint16(msg[at:])), int(binary.LittleEndian.Uint32(msg[at+4:]))
		if off+n > len(msg) {
			t.Fatalf("field at %d points outside the message", at)
		}
		return msg[off : off+n]
	}
	if got := fromUTF16(read(12)); got != "CONTOSO" {
		t.Errorf("target name %q, want CONTOSO", got)
	}
	av := map[uint16][]byte{}
	info := read(40)
	for len(info) >= 4 {
		id, n := binary.LittleEndian.Uint16(info), int(binary.LittleEndian.Uint16(info[2:]))
		if id == 0 {
			av[0] = nil
			break
		}
		if 4+n > len(info) {
			t.Fatalf("AV pair %d overruns the target info", id)
		}
		av[id] = info[4 : 4+n]
		info = info[4+n:]
	}
	if got := fromUTF16(av[2]); got != "CONTOSO" {
		t.Errorf("MsvAvNbDomainName %q", got)
	}
	if len(av[1]) == 0 || len(av[7]) != 8 {
		t.Errorf("MsvAvNbComputerName %q, MsvAvTimestamp % x", av[1], av[7])
	}
	if _, ok := av[0]; !ok {
		t.Error("target info does not end with MsvAvEOL")
	}
}

func fromUTF16(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// TestNTLMVerifierBindsTheChallengeToTheConnection: an AUTHENTICATE
// message counts only on the connection that got the challenge, and once.
func TestNTLMVerifierBindsTheChallengeToTheConnection(t *testing.T) {
	const user, pass = `CONTOSO\nina`, "Correct-Horse1"
	srv := ntlmServer(t, &lab.NTLMVerifier{Accounts: map[string]string{user: pass}, Domain: "CONTOSO"})
	authFor := func(challenge []byte) string {
		t.Helper()
		m, err := ntlmssp.NewAuthenticateMessage(challenge, user, pass, nil)
		if err != nil {
			t.Fatal(err)
		}
		return "NTLM " + b64(m)
	}

	t.Run("no negotiate leg on the connection", func(t *testing.T) {
		a := dialKeepAlive(t, srv)
		answer := authFor(a.challenge("NTLM"))
		b := dialKeepAlive(t, srv)
		if status, _ := b.send(answer); status != http.StatusUnauthorized {
			t.Errorf("type 3 on a connection that never sent type 1: HTTP %d", status)
		}
		// The challenge still belongs to a: the handshake completes there.
		if status, _ := a.send(answer); status != http.StatusOK {
			t.Errorf("type 3 on its own connection: HTTP %d", status)
		}
	})
	t.Run("replayed on the same connection", func(t *testing.T) {
		a := dialKeepAlive(t, srv)
		answer := authFor(a.challenge("NTLM"))
		if status, _ := a.send(answer); status != http.StatusOK {
			t.Fatalf("first type 3: HTTP %d", status)
		}
		if status, _ := a.send(answer); status != http.StatusUnauthorized {
			t.Errorf("replayed type 3: HTTP %d", status)
		}
	})
	t.Run("answer to an older challenge", func(t *testing.T) {
		a := dialKeepAlive(t, srv)
		stale := authFor(a.challenge("NTLM"))
		_ = a.challenge("NTLM") // a new negotiate leg replaces the challenge
		if status, _ := a.send(stale); status != http.StatusUnauthorized {
			t.Errorf("type 3 for a superseded challenge: HTTP %d", status)
		}
	})
	t.Run("after a failure the next handshake works", func(t *testing.T) {
		a := dialKeepAlive(t, srv)
		bad, err := ntlmssp.NewAuthenticateMessage(a.challenge("NTLM"), user, "wrong", nil)
		if err != nil {
			t.Fatal(err)
		}
		if status, _ := a.send("NTLM " + b64(bad)); status != http.StatusUnauthorized {
			t.Fatalf("wrong password: HTTP %d", status)
		}
		if status, _ := a.send(authFor(a.challenge("NTLM"))); status != http.StatusOK {
			t.Errorf("second handshake: HTTP %d", status)
		}
	})
}

// type3 lays out an AUTHENTICATE message by hand: fields are (len, offset)
// pairs for LM, NT, domain, user, workstation, then flags.
func type3(fields [5][2]uint32, flags uint32, payload []byte) []byte {
	m := make([]byte, 64, 64+len(payload))
	copy(m, "NTLMSSP\x00")
	binary.LittleEndian.PutUint32(m[8:], 3)
	for i, f := range fields {
		at := 12 + 8*i
		binary.LittleEndian.PutUint16(m[at:], uint16(f[0]))
		binary.LittleEndian.PutUint16(m[at+2:], uint16(f[0]))
		binary.LittleEndian.PutUint32(m[at+4:], f[1])
	}
	binary.LittleEndian.PutUint32(m[60:], flags)
	return append(m, payload...)
}

func TestNTLMVerifierRefusesGarbage(t *testing.T) {
	neg, err := ntlmssp.NewNegotiateMessage("", "")
	if err != nil {
		t.Fatal(err)
	}
	user := []byte{'n', 0, 'i', 0, 'n', 0, 'a', 0}
	dom := []byte{'C', 0, 'O', 0}
	// A plausible NTLMv2 response: 16-byte proof, blob header, EOL.
	ntResp := append(make([]byte, 16), 1, 1)
	ntResp = append(ntResp, make([]byte, 26+4)...)
	payload := append(append(append([]byte{}, ntResp...), dom...), user...)
	nOff, dOff, uOff := uint32(64), uint32(64+len(ntResp)), uint32(64+len(ntResp)+len(dom))
	ok3 := func(nt, d, u [2]uint32) []byte {
		return type3([5][2]uint32{{0, 64}, nt, d, u, {0, 64}}, 1, payload)
	}
	good := [3][2]uint32{{uint32(len(ntResp)), nOff}, {uint32(len(dom)), dOff}, {uint32(len(user)), uOff}}

	tests := []struct {
		name, header string
	}{
		{"no header", ""},
		{"scheme only", "NTLM"},
		{"Basic", "Basic bmluYTp4"},
		{"bad base64", "NTLM !!!notbase64"},
		{"base64 of text", "NTLM " + b64([]byte("hello, world"))},
		{"signature only", "NTLM " + b64([]byte("NTLMSSP\x00"))},
		{"unknown message type", "NTLM " + b64(append([]byte("NTLMSSP\x00"), 9, 0, 0, 0))},
		{"client sends a CHALLENGE", "NTLM " + b64(append([]byte("NTLMSSP\x00"), 2, 0, 0, 0, 0, 0, 0, 0))},
		{"truncated NEGOTIATE", "NTLM " + b64(neg[:13])},
		{"SPNEGO token in Negotiate", "Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnagMDAu"},
		{"AUTHENTICATE header only", "NTLM " + b64(type3([5][2]uint32{}, 1, nil)[:12])},
		{"AUTHENTICATE one byte short", "NTLM " + b64(type3([5][2]uint32{}, 1, nil)[:63])},
		{"AUTHENTICATE with empty fields", "NTLM " + b64(type3([5][2]uint32{}, 1, nil))},
		{"huge NT offset", "NTLM " + b64(ok3([2]uint32{uint32(len(ntResp)), 0xFFFFFFFF}, good[1], good[2]))},
		{"NT length past the end", "NTLM " + b64(ok3([2]uint32{0xFFFF, nOff}, good[1], good[2]))},
		{"huge user offset", "NTLM " + b64(ok3(good[0], good[1], [2]uint32{8, 0xFFFFFFF8}))},
		{"huge domain offset", "NTLM " + b64(ok3(good[0], [2]uint32{4, 0x7FFFFFFF}, good[2]))},
		{"odd-length Unicode user", "NTLM " + b64(ok3(good[0], good[1], [2]uint32{7, uOff}))},
		{"NTLMv1-sized response", "NTLM " + b64(ok3([2]uint32{24, nOff}, good[1], good[2]))},
		{"blob of the wrong version", "NTLM " + b64(type3([5][2]uint32{{0, 64}, good[0], good[1], good[2], {0, 64}}, 1, append(append(append(make([]byte, 16), 2, 2), make([]byte, 30)...), append(dom, user...)...)))},
		{"empty user (anonymous)", "NTLM " + b64(ok3(good[0], good[1], [2]uint32{0, uOff}))},
		{"well-formed but the proof is zeros", "NTLM " + b64(ok3(good[0], good[1], good[2]))},
		{"oversized token", "NTLM " + strings.Repeat("A", 64<<10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &lab.NTLMVerifier{Accounts: map[string]string{`CO\nina`: "pw"}, Domain: "CO"}
			// A challenge is pending on the connection, so the message
			// itself is what must fail.
			req := httptest.NewRequest(http.MethodPost, "/autodiscover/autodiscover.xml", nil)
			req.Header.Set("Authorization", "NTLM "+b64(neg))
			if _, responded := v.Handle(httptest.NewRecorder(), req); !responded {
				t.Fatal("no challenge for a valid NEGOTIATE message")
			}
			req = httptest.NewRequest(http.MethodPost, "/autodiscover/autodiscover.xml", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			ok, responded := v.Handle(rec, req)
			if ok || responded {
				t.Errorf("Handle = (ok %v, responded %v), want (false, false)", ok, responded)
			}
			if rec.Code != http.StatusOK || len(rec.Header()) != 0 {
				t.Errorf("the verifier wrote an answer (%d, %v) for garbage", rec.Code, rec.Header())
			}
		})
	}
}

// FuzzNTLMVerifierType3 feeds arbitrary AUTHENTICATE messages to a
// verifier with a challenge pending: none may pass, none may panic.
func FuzzNTLMVerifierType3(f *testing.F) {
	neg, err := ntlmssp.NewNegotiateMessage("", "")
	if err != nil {
		f.Fatal(err)
	}
	v := &lab.NTLMVerifier{Accounts: map[string]string{`CO\nina`: "pw", "u@d.test": "pw"}, Domain: "CO"}
	negotiate := func() []byte {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.Header.Set("Authorization", "NTLM "+b64(neg))
		rec := httptest.NewRecorder()
		if _, responded := v.Handle(rec, req); !responded {
			f.Fatal("no challenge")
		}
		_, token, _ := strings.Cut(rec.Header().Get("WWW-Authenticate"), " ")
		msg, err := base64.StdEncoding.DecodeString(token)
		if err != nil {
			f.Fatal(err)
		}
		return msg
	}
	for _, u := range []string{`CO\nina`, "u@d.test", "nobody"} {
		m, err := ntlmssp.NewAuthenticateMessage(negotiate(), u, "pw", nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m)
		f.Add(m[:64])
	}
	f.Add(type3([5][2]uint32{{0, 64}, {44, 64}, {2, 108}, {2, 110}, {0, 64}}, 1, make([]byte, 48)))
	f.Add([]byte("NTLMSSP\x00\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		negotiate()
		if len(data) >= 12 {
			copy(data, "NTLMSSP\x00\x03\x00\x00\x00")
		}
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.Header.Set("Authorization", "NTLM "+b64(data))
		if ok, responded := v.Handle(httptest.NewRecorder(), req); ok || responded {
			t.Fatalf("Handle = (%v, %v) for % x", ok, responded, data)
		}
	})
}

// TestNTLMVerifierForgetsTheOldestHandshakes: handshakes in flight are
// bounded (4096), the oldest challenge is dropped first and the newest
// still verify.
func TestNTLMVerifierForgetsTheOldestHandshakes(t *testing.T) {
	const user, pass = `CO\nina`, "pw"
	v := &lab.NTLMVerifier{Accounts: map[string]string{user: pass}, Domain: "CO"}
	neg, err := ntlmssp.NewNegotiateMessage("", "")
	if err != nil {
		t.Fatal(err)
	}
	call := func(addr, authorization string) (*httptest.ResponseRecorder, bool, bool) {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.RemoteAddr = addr
		req.Header.Set("Authorization", authorization)
		rec := httptest.NewRecorder()
		ok, responded := v.Handle(rec, req)
		return rec, ok, responded
	}
	answers := map[string]string{}
	const n = 5000
	for i := range n {
		addr := fmt.Sprintf("198.51.100.%d:%d", i%250, 1024+i)
		rec, _, responded := call(addr, "NTLM "+b64(neg))
		if !responded {
			t.Fatalf("no challenge for connection %d", i)
		}
		if i == 0 || i == n-1 {
			_, token, _ := strings.Cut(rec.Header().Get("WWW-Authenticate"), " ")
			ch, err := base64.StdEncoding.DecodeString(token)
			if err != nil {
				t.Fatal(err)
			}
			m, err := ntlmssp.NewAuthenticateMessage(ch, user, pass, nil)
			if err != nil {
				t.Fatal(err)
			}
			answers[addr] = "NTLM " + b64(m)
		}
	}
	for addr, answer := range answers {
		_, ok, _ := call(addr, answer)
		if want := strings.HasSuffix(addr, fmt.Sprint(1024+n-1)); ok != want {
			t.Errorf("connection %s verified=%v, want %v", addr, ok, want)
		}
	}
}
