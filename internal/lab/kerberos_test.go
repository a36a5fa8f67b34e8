package lab_test

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
)

// The tokens here are forged with the service's key instead of coming
// from a KDC, as a KDC would make them, so these tests need no krb5kdc.

func serviceKeytab(t testing.TB, spn, secret string) *keytab.Keytab {
	t.Helper()
	kt := keytab.New()
	for _, e := range []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96} {
		if err := kt.AddEntry(spn, testRealm, secret, time.Now(), 1, e); err != nil {
			t.Fatal(err)
		}
	}
	return kt
}

func keytabBytes(t testing.TB, kt *keytab.Keytab) []byte {
	t.Helper()
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forgeAPReq is the GSS Kerberos token (RFC 4121 4.1) a client holding a
// ticket for spn, sealed with kt, would send.
func forgeAPReq(t testing.TB, user, spn string, kt *keytab.Keytab, endTime time.Time) []byte {
	t.Helper()
	now := time.Now().UTC()
	tkt, key, err := messages.NewTicket(
		types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, user), testRealm,
		types.NewPrincipalName(nametype.KRB_NT_SRV_INST, spn), testRealm,
		types.NewKrbFlags(), kt, etypeID.AES256_CTS_HMAC_SHA1_96, 1, now, now, endTime, endTime)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewWithPassword(user, testRealm, "unused", config.New())
	mt, err := spnego.NewKRB5TokenAPREQ(cl, tkt, key, []int{gssapi.ContextFlagInteg, gssapi.ContextFlagConf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wrap puts a mechanism token in a SPNEGO NegTokenInit.
func wrap(t testing.TB, mech []byte, oids ...asn1.ObjectIdentifier) []byte {
	t.Helper()
	st := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{MechTypes: oids, MechTokenBytes: mech}}
	b, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	oidKRB5    = gssapi.OIDKRB5.OID()
	oidNTLMSSP = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 2, 10}
)

// ntlmNegotiate is an NTLM NEGOTIATE_MESSAGE as Windows sends first.
var ntlmNegotiate = append([]byte("NTLMSSP\x00\x01\x00\x00\x00"), 0x97, 0x82, 0x08, 0xe2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

func neg(b []byte) string { return "Negotiate " + base64.StdEncoding.EncodeToString(b) }

func TestKerberosVerifierTokens(t *testing.T) {
	kt := serviceKeytab(t, testSPN, "service secret")
	v, err := lab.NewKerberosVerifier(keytabBytes(t, kt), testSPN, testRealm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lab.NewKerberosVerifier(keytabBytes(t, kt), "HTTP/other.corp.contoso.test", testRealm); err == nil {
		t.Error("a verifier for a service the keytab lacks")
	}
	if _, err := lab.NewKerberosVerifier([]byte("not a keytab"), testSPN, testRealm); err == nil {
		t.Error("a verifier from garbage")
	}

	hour := time.Now().Add(time.Hour)
	valid := func() []byte { return forgeAPReq(t, "alice", testSPN, kt, hour) }
	other := forgeAPReq(t, "alice", "HTTP/other.corp.contoso.test", serviceKeytab(t, "HTTP/other.corp.contoso.test", "other secret"), hour)
	wrongKey := forgeAPReq(t, "alice", testSPN, serviceKeytab(t, testSPN, "not the service's secret"), hour)
	expired := forgeAPReq(t, "alice", testSPN, kt, time.Now().Add(-time.Hour))
	full := wrap(t, valid(), oidKRB5)

	krbErr := messages.NewKRBError(types.NewPrincipalName(nametype.KRB_NT_SRV_INST, testSPN), testRealm, errorcode.KRB_AP_ERR_SKEW, "skew")
	krbErrBytes, err := krbErr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	oidBytes, _ := asn1.Marshal(oidKRB5)
	errTok, _ := hex.DecodeString(spnego.TOK_ID_KRB_ERROR)
	krbErrToken := asn1tools.AddASNAppTag(append(append(oidBytes, errTok...), krbErrBytes...), 0)

	ntlmResp := spnego.SPNEGOToken{Resp: true, NegTokenResp: spnego.NegTokenResp{ResponseToken: ntlmNegotiate}}
	ntlmRespBytes, err := ntlmResp.Marshal()
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, header string
		client       string // "" means refused
		kerberos     bool
	}{
		{"no header", "", "", false},
		{"basic", "Basic YWxpY2U6cHc=", "", false},
		{"negotiate without a token", "Negotiate", "", false},
		{"NTLM scheme", "NTLM " + base64.StdEncoding.EncodeToString(ntlmNegotiate), "", false},
		{"NTLMSSP raw under Negotiate", neg(ntlmNegotiate), "", false},
		{"NTLMSSP in a NegTokenInit", neg(wrap(t, ntlmNegotiate, oidNTLMSSP)), "", false},
		{"NTLMSSP in a NegTokenInit also offering Kerberos", neg(wrap(t, ntlmNegotiate, oidNTLMSSP, oidKRB5)), "", false},
		{"NTLM chosen with no token", neg(wrap(t, nil, oidNTLMSSP, oidKRB5)), "", false},
		{"NTLMSSP in a NegTokenResp", neg(ntlmRespBytes), "", false},
		{"not base64", "Negotiate %%%not-base64%%%", "", true},
		{"garbage", neg([]byte("\x60\x00garbage")), "", true},
		{"truncated", neg(full[:len(full)/2]), "", true},
		{"no mechanisms", neg(wrap(t, valid())), "", true},
		{"Kerberos offered without a token", neg(wrap(t, nil, oidKRB5)), "", true},
		{"KRB-ERROR token", neg(wrap(t, krbErrToken, oidKRB5)), "", true},
		{"ticket for another service", neg(wrap(t, other, oidKRB5)), "", true},
		{"ticket under another key", neg(wrap(t, wrongKey, oidKRB5)), "", true},
		{"expired ticket", neg(wrap(t, expired, oidKRB5)), "", true},
		{"valid SPNEGO", neg(full), "alice@" + testRealm, true},
		{"valid raw Kerberos", neg(valid()), "alice@" + testRealm, true},
		{"scheme in lower case", "negotiate " + base64.StdEncoding.EncodeToString(wrap(t, valid(), oidKRB5)), "alice@" + testRealm, true},
		{"replayed", neg(full), "", true},
	} {
		client, kerberos, err := v.Verify(tc.header)
		switch {
		case kerberos != tc.kerberos:
			t.Errorf("%s: kerberos = %v, want %v (err %v)", tc.name, kerberos, tc.kerberos, err)
		case tc.client != "" && (err != nil || client != tc.client):
			t.Errorf("%s: %q, %v; want %q", tc.name, client, err, tc.client)
		case tc.client == "" && tc.kerberos && err == nil:
			t.Errorf("%s: accepted as %q", tc.name, client)
		case !tc.kerberos && (err != nil || client != ""):
			t.Errorf("%s: not Kerberos but %q, %v", tc.name, client, err)
		case err != nil && strings.Contains(err.Error(), "malformed token ("):
			t.Errorf("%s: gokrb5 panicked: %v", tc.name, err)
		}
	}
	if got := len(v.Accepted()); got != 3 {
		t.Errorf("%d accepted, want 3: %q", got, v.Accepted())
	}
}

func TestKerberosVerifierConcurrent(t *testing.T) {
	kt := serviceKeytab(t, testSPN, "service secret")
	v, err := lab.NewKerberosVerifier(keytabBytes(t, kt), testSPN, testRealm)
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	headers := make([]string, n)
	for i := range headers {
		headers[i] = neg(wrap(t, forgeAPReq(t, "alice", testSPN, kt, time.Now().Add(time.Hour)), oidKRB5))
	}
	var wg sync.WaitGroup
	for _, h := range headers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := v.Verify(h); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := len(v.Accepted()); got != n {
		t.Fatalf("%d accepted, want %d", got, n)
	}
}

func FuzzKerberosVerifier(f *testing.F) {
	kt := serviceKeytab(f, testSPN, "service secret")
	v, err := lab.NewKerberosVerifier(keytabBytes(f, kt), testSPN, testRealm)
	if err != nil {
		f.Fatal(err)
	}
	valid := forgeAPReq(f, "alice", testSPN, kt, time.Now().Add(time.Hour))
	for _, seed := range [][]byte{
		nil, ntlmNegotiate, valid, wrap(f, valid, oidKRB5), wrap(f, valid), wrap(f, ntlmNegotiate, oidNTLMSSP),
		wrap(f, nil, oidKRB5), []byte{0xa1, 0x03, 0x30, 0x01, 0x00},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, h := range []string{neg(b), string(b)} {
			client, kerberos, err := v.Verify(h)
			if err != nil && strings.Contains(err.Error(), "malformed token (") {
				t.Fatalf("gokrb5 panicked on %x: %v", b, err)
			}
			if client != "" && (!kerberos || err != nil) {
				t.Fatalf("client %q with kerberos %v, err %v", client, kerberos, err)
			}
		}
	})
}
