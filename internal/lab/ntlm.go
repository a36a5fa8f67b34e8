package lab

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	//lint:ignore SA1019 NTLM is defined on MD4; there is no other choice.
	"golang.org/x/crypto/md4"
)

// NTLMVerifier plays the server side of NTLM over HTTP and really verifies
// NTLMv2 responses against known passwords, so a wrong password fails.
//
// The handshake is connection-oriented, as on IIS: the server challenge
// sent for a NEGOTIATE message is remembered for the client's connection
// (its remote address) and is good for one AUTHENTICATE message on that
// same connection only. Raw NTLM tokens are accepted under both the NTLM
// and the Negotiate scheme, as Windows servers do; SPNEGO-wrapped tokens
// (Kerberos) are not understood and simply fail.
//
// The layouts follow MS-NLMP (NEGOTIATE_MESSAGE 2.2.1.1, CHALLENGE_MESSAGE
// 2.2.1.2, AUTHENTICATE_MESSAGE 2.2.1.3, NTLMv2 3.3.2). Every offset and
// length read from a client's message is bounds-checked, so garbage fails
// the handshake rather than the server.
type NTLMVerifier struct {
	// Accounts maps "DOMAIN\user" (case-insensitive) to its password. A
	// key may also be a user principal name, "user@dns.domain". A client's
	// UPN also names "DOMAIN\user" when its suffix is DNSDomain or starts
	// with the label DOMAIN (nina@contoso.test is CONTOSO\nina).
	Accounts map[string]string
	// Domain is the NetBIOS domain the server announces. It is also the
	// domain of a user who sends none. Default "LAB".
	Domain string
	// DNSDomain, when set, is the DNS name of Domain: a UPN with this
	// suffix names the account of the same user in Domain.
	DNSDomain string

	mu      sync.Mutex
	pending map[string]pendingChallenge // by the client's remote address
	issued  uint64                      // challenges issued so far
}

type pendingChallenge struct {
	challenge [8]byte
	at        time.Time
	seq       uint64 // orders the challenges for eviction
}

const (
	// maxPendingChallenges bounds the handshakes in flight; the oldest
	// is forgotten first.
	maxPendingChallenges = 4096
	// challengeLifetime is how long a server challenge may be answered.
	challengeLifetime = 2 * time.Minute
	// maxNTLMToken caps the base64 token the verifier decodes.
	maxNTLMToken = 16 << 10
	// ntlmComputerName is the NetBIOS name of the lab's Exchange server.
	ntlmComputerName = "EXCH01"
)

// NEGOTIATE flags of MS-NLMP 2.2.2.5 the verifier reads or sends. LM_KEY
// (G, bit 7) and KEY_EXCH (V, bit 30) are never sent: go-ntlmssp refuses
// a challenge carrying either.
const (
	ntlmNegotiateUnicode        = 1 << 0  // A
	ntlmRequestTarget           = 1 << 2  // C
	ntlmNegotiateNTLM           = 1 << 9  // H
	ntlmNegotiateAlwaysSign     = 1 << 15 // M
	ntlmTargetTypeDomain        = 1 << 16 // N
	ntlmExtendedSessionSecurity = 1 << 19 // P
	ntlmNegotiateTargetInfo     = 1 << 23 // S
	ntlmNegotiateVersion        = 1 << 25 // T
	ntlmNegotiate128            = 1 << 29 // U
	ntlmNegotiate56             = 1 << 31 // W

	// ntlmEchoedFlags are granted when the client asks for them.
	ntlmEchoedFlags = ntlmExtendedSessionSecurity | ntlmNegotiateAlwaysSign | ntlmNegotiate128 | ntlmNegotiate56
)

// Message layout constants (MS-NLMP 2.2.1, 2.2.2.1, 2.2.2.7).
const (
	ntlmSignature             = "NTLMSSP\x00"
	ntlmMessageNegotiate      = 1
	ntlmMessageChallenge      = 2
	ntlmMessageAuthenticate   = 3
	ntlmChallengeHeaderLen    = 56 // up to and with the Version field
	ntlmAuthenticateHeaderLen = 64 // up to and with NegotiateFlags
	ntlmProofLen              = 16 // NTProofStr
	ntlmv2BlobMinLen          = 28 // RespType … Reserved3, before the AV pairs

	ntlmAvEOL            = 0
	ntlmAvNbComputerName = 1
	ntlmAvNbDomainName   = 2
	ntlmAvTimestamp      = 7

	windowsEpochOffset100ns = 116444736000000000 // 1601-01-01 to 1970-01-01 in 100 ns
)

// Handle answers one leg of the handshake. A negotiate message gets the
// challenge (responded=true); an authenticate message is verified (ok).
// Anything else, including every malformed message, is (false, false):
// the caller answers with a fresh 401 and its challenges.
func (v *NTLMVerifier) Handle(w http.ResponseWriter, r *http.Request) (ok, responded bool) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	switch {
	case strings.EqualFold(scheme, "NTLM"):
		scheme = "NTLM"
	case strings.EqualFold(scheme, "Negotiate"):
		scheme = "Negotiate"
	default:
		return false, false
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > maxNTLMToken {
		return false, false
	}
	msg, err := base64.StdEncoding.DecodeString(token)
	if err != nil || len(msg) < 12 || string(msg[:8]) != ntlmSignature {
		return false, false
	}
	switch binary.LittleEndian.Uint32(msg[8:12]) {
	case ntlmMessageNegotiate:
		challenge, ok := v.challengeFor(r.RemoteAddr, msg)
		if !ok {
			return false, false
		}
		w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(challenge))
		w.WriteHeader(http.StatusUnauthorized)
		return false, true
	case ntlmMessageAuthenticate:
		return v.verify(r.RemoteAddr, msg), false
	}
	return false, false
}

// challengeFor builds the CHALLENGE_MESSAGE answering a NEGOTIATE_MESSAGE
// and remembers its server challenge for the connection.
func (v *NTLMVerifier) challengeFor(conn string, negotiate []byte) ([]byte, bool) {
	if len(negotiate) < 16 { // signature, type, flags
		return nil, false
	}
	clientFlags := binary.LittleEndian.Uint32(negotiate[12:16])
	var serverChallenge [8]byte
	if _, err := rand.Read(serverChallenge[:]); err != nil {
		return nil, false
	}
	v.remember(conn, serverChallenge)

	domain := v.Domain
	if domain == "" {
		domain = "LAB"
	}
	// Always Unicode and always a target info list: go-ntlmssp can only
	// build an NTLMv2 response from both, and refuses a challenge that
	// asks for LM_KEY (NTLMv1) or KEY_EXCH.
	flags := uint32(ntlmNegotiateUnicode | ntlmRequestTarget | ntlmNegotiateNTLM |
		ntlmTargetTypeDomain | ntlmNegotiateTargetInfo | ntlmNegotiateVersion)
	flags |= clientFlags & ntlmEchoedFlags

	targetName := utf16le(strings.ToUpper(domain))
	ft := uint64(time.Now().UnixNano()/100) + windowsEpochOffset100ns
	var timestamp [8]byte
	binary.LittleEndian.PutUint64(timestamp[:], ft)
	var info []byte
	info = appendAV(info, ntlmAvNbDomainName, targetName)
	info = appendAV(info, ntlmAvNbComputerName, utf16le(ntlmComputerName))
	info = appendAV(info, ntlmAvTimestamp, timestamp[:])
	info = appendAV(info, ntlmAvEOL, nil)

	msg := make([]byte, ntlmChallengeHeaderLen, ntlmChallengeHeaderLen+len(targetName)+len(info))
	copy(msg, ntlmSignature)
	binary.LittleEndian.PutUint32(msg[8:], ntlmMessageChallenge)
	putField(msg[12:], len(targetName), ntlmChallengeHeaderLen)
	binary.LittleEndian.PutUint32(msg[20:], flags)
	copy(msg[24:32], serverChallenge[:])
	// msg[32:40] is Reserved.
	putField(msg[40:], len(info), ntlmChallengeHeaderLen+len(targetName))
	// Version: Windows Server 2019 (10.0.17763), NTLM revision 15.
	msg[48], msg[49] = 10, 0
	binary.LittleEndian.PutUint16(msg[50:], 17763)
	msg[55] = 15
	msg = append(msg, targetName...)
	return append(msg, info...), true
}

// verify checks an AUTHENTICATE_MESSAGE against the challenge sent on the
// same connection, which it uses up whatever the outcome.
func (v *NTLMVerifier) verify(conn string, msg []byte) bool {
	serverChallenge, ok := v.take(conn)
	if !ok || len(msg) < ntlmAuthenticateHeaderLen {
		return false
	}
	nt, ok1 := field(msg, 20)
	domainRaw, ok2 := field(msg, 28)
	userRaw, ok3 := field(msg, 36)
	if !ok1 || !ok2 || !ok3 {
		return false
	}
	unicode := binary.LittleEndian.Uint32(msg[60:64])&ntlmNegotiateUnicode != 0
	domain, ok1 := decodeNTLMString(domainRaw, unicode)
	user, ok2 := decodeNTLMString(userRaw, unicode)
	if !ok1 || !ok2 || user == "" {
		return false // malformed, or anonymous
	}
	// An NTLMv2 response is NTProofStr (16 bytes) then the client's blob,
	// which starts with RespType=1 and HiRespType=1. A 24-byte NTLMv1
	// response is refused, as a hardened domain does.
	if len(nt) < ntlmProofLen+ntlmv2BlobMinLen {
		return false
	}
	proof, blob := nt[:ntlmProofLen], nt[ntlmProofLen:]
	if blob[0] != 1 || blob[1] != 1 {
		return false
	}
	password, known := v.password(user, domain)
	if !known {
		return false
	}
	// NTOWFv2 is keyed on the user and domain exactly as the client put
	// them in the message (a UPN comes with an empty domain).
	ntHash := md4.New()
	ntHash.Write(utf16le(password))
	ntowf := hmacMD5(ntHash.Sum(nil), utf16le(strings.ToUpper(user)+domain))
	want := hmacMD5(ntowf, serverChallenge[:], blob)
	return hmac.Equal(want, proof)
}

// password finds the account the client named, case-insensitively: a
// "DOMAIN\user" (a client that sends no domain is in Domain; a DNS domain
// also matches by its first label), or a UPN (domain empty, user@suffix)
// that matches a UPN key, or a "DOMAIN\user" key when the suffix is
// DNSDomain, Domain, or starts with the key's domain label.
func (v *NTLMVerifier) password(user, domain string) (string, bool) {
	upnUser, suffix, isUPN := "", "", false
	if domain == "" {
		if at := strings.LastIndexByte(user, '@'); at > 0 && at < len(user)-1 {
			upnUser, suffix, isUPN = user[:at], user[at+1:], true
		} else {
			domain = v.Domain
		}
	}
	for key, pw := range v.Accounts {
		keyDomain, keyUser, backslash := strings.Cut(key, `\`)
		switch {
		case isUPN && !backslash:
			if strings.EqualFold(key, user) {
				return pw, true
			}
		case isUPN:
			if strings.EqualFold(keyUser, upnUser) &&
				(v.DNSDomain != "" && strings.EqualFold(suffix, v.DNSDomain) && strings.EqualFold(keyDomain, v.Domain) ||
					domainMatches(keyDomain, suffix)) {
				return pw, true
			}
		case backslash:
			if strings.EqualFold(keyUser, user) && domainMatches(keyDomain, domain) {
				return pw, true
			}
		}
	}
	return "", false
}

// domainMatches tells whether a NetBIOS domain names the domain a client
// sent, either as the same NetBIOS name or as a DNS name whose first label
// it is (CONTOSO and contoso.test).
func domainMatches(netbios, sent string) bool {
	if netbios == "" || sent == "" {
		return false
	}
	if strings.EqualFold(netbios, sent) {
		return true
	}
	label, _, _ := strings.Cut(sent, ".")
	return strings.EqualFold(netbios, label)
}

func (v *NTLMVerifier) remember(conn string, challenge [8]byte) {
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pending == nil {
		v.pending = map[string]pendingChallenge{}
	}
	if _, again := v.pending[conn]; !again && len(v.pending) >= maxPendingChallenges {
		oldest, oldestSeq, found := "", uint64(0), false
		for k, p := range v.pending {
			if now.Sub(p.at) > challengeLifetime {
				delete(v.pending, k)
				continue
			}
			if !found || p.seq < oldestSeq {
				oldest, oldestSeq, found = k, p.seq, true
			}
		}
		if len(v.pending) >= maxPendingChallenges {
			delete(v.pending, oldest)
		}
	}
	v.issued++
	v.pending[conn] = pendingChallenge{challenge: challenge, at: now, seq: v.issued}
}

func (v *NTLMVerifier) take(conn string) ([8]byte, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p, ok := v.pending[conn]
	if !ok {
		return [8]byte{}, false
	}
	delete(v.pending, conn)
	if time.Since(p.at) > challengeLifetime {
		return [8]byte{}, false
	}
	return p.challenge, true
}

// field reads the (Len uint16, MaxLen uint16, Offset uint32) descriptor
// at msg[at:] and returns the bytes it points to, when they are inside msg.
func field(msg []byte, at int) ([]byte, bool) {
	if at < 0 || at+8 > len(msg) {
		return nil, false
	}
	n := uint64(binary.LittleEndian.Uint16(msg[at:]))
	off := uint64(binary.LittleEndian.Uint32(msg[at+4:]))
	if off+n > uint64(len(msg)) {
		return nil, false
	}
	return msg[off : off+n], true
}

func putField(b []byte, n, offset int) {
	binary.LittleEndian.PutUint16(b[0:], uint16(n))
	binary.LittleEndian.PutUint16(b[2:], uint16(n))
	binary.LittleEndian.PutUint32(b[4:], uint32(offset))
}

func appendAV(b []byte, id uint16, value []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, id)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(value)))
	return append(b, value...)
}

func utf16le(s string) []byte {
	units := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(units))
	for _, u := range units {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return b
}

// decodeNTLMString reads a string field: UTF-16LE when Unicode was
// negotiated, else the OEM code page, taken as Latin-1 here.
func decodeNTLMString(b []byte, unicode bool) (string, bool) {
	if !unicode {
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r), true
	}
	if len(b)%2 != 0 {
		return "", false
	}
	units := make([]uint16, len(b)/2)
	for i := range units {
		units[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(units)), true
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}
