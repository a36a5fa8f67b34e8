package lab_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
)

const (
	testRealm = "CORP.CONTOSO.TEST"
	testSPN   = "HTTP/mail.corp.contoso.test"
)

func startKDC(t *testing.T, o lab.KDCOptions) *lab.KDC {
	t.Helper()
	needServer(t, lab.KDCPath)
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Realm == "" {
		o.Realm = testRealm
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	k, err := lab.StartKDC(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("KDC for %s on %s started in %v", k.Realm(), k.Addr(), time.Since(start))
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("KDC log:\n%s", k.Log())
		}
	})
	return k
}

// login is a gokrb5 client logged in with a password; udp leaves gokrb5's
// default of UDP for small messages, else every request goes over TCP.
func login(t *testing.T, k *lab.KDC, user, password string, udp bool) (*client.Client, error) {
	t.Helper()
	cfg, err := k.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if udp {
		cfg.LibDefaults.UDPPreferenceLimit = 1465
	}
	cl := client.NewWithPassword(user, k.Realm(), password, cfg, client.DisablePAFXFAST(true))
	t.Cleanup(cl.Destroy)
	return cl, cl.Login()
}

// negotiate is the Authorization header a client sends for spn.
func negotiate(t *testing.T, cl *client.Client, spn string) string {
	t.Helper()
	tok, err := spnego.SPNEGOClient(cl, spn).InitSecContext()
	if err != nil {
		t.Fatal(err)
	}
	b, err := tok.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return "Negotiate " + base64.StdEncoding.EncodeToString(b)
}

func TestKDCIssuesTicketsTheVerifierAccepts(t *testing.T) {
	k := startKDC(t, lab.KDCOptions{
		Users:    map[string]string{"alice": "pw", "bob": "Bob's pass word"},
		Services: []string{testSPN, "HTTP/other.corp.contoso.test"},
	})
	kt, err := k.Keytab(testSPN)
	if err != nil {
		t.Fatal(err)
	}
	v, err := lab.NewKerberosVerifier(kt, testSPN, k.Realm())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(k.Krb5Conf(), "kdc = "+k.Addr()) {
		t.Errorf("krb5.conf does not name the KDC:\n%s", k.Krb5Conf())
	}

	for _, tc := range []struct {
		user, password string
		udp            bool
	}{{"alice", "pw", false}, {"bob", "Bob's pass word", true}} {
		cl, err := login(t, k, tc.user, tc.password, tc.udp)
		if err != nil {
			t.Fatalf("%s: %v", tc.user, err)
		}
		client, isKerberos, err := v.Verify(negotiate(t, cl, testSPN))
		if err != nil || !isKerberos {
			t.Fatalf("%s: Verify = %q, %v, %v", tc.user, client, isKerberos, err)
		}
		if want := tc.user + "@" + testRealm; client != want {
			t.Fatalf("client %q, want %q", client, want)
		}
	}

	// A ticket for another service is not this one's.
	cl, err := login(t, k, "alice", "pw", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, isKerberos, err := v.Verify(negotiate(t, cl, "HTTP/other.corp.contoso.test")); err == nil || !isKerberos {
		t.Fatalf("a ticket for another service: %v, %v", isKerberos, err)
	}
	// Each request carries a new authenticator; a replayed one fails.
	h := negotiate(t, cl, testSPN)
	if _, _, err := v.Verify(h); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Verify(h); err == nil {
		t.Error("a replayed token was accepted")
	}
	if got, want := strings.Join(v.Accepted(), ","), "alice@"+testRealm+",bob@"+testRealm+",alice@"+testRealm; got != want {
		t.Errorf("Accepted = %s, want %s", got, want)
	}
}

func TestKDCErrors(t *testing.T) {
	k := startKDC(t, lab.KDCOptions{Users: map[string]string{"alice": "pw"}, Services: []string{testSPN}})
	for _, tc := range []struct {
		user, password string
		code           int32
	}{
		{"alice", "wrong", errorcode.KDC_ERR_PREAUTH_FAILED},
		{"mallory", "pw", errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN},
	} {
		_, err := login(t, k, tc.user, tc.password, false)
		if got := lab.KDCErrorCode(err); got != tc.code {
			t.Errorf("%s/%s: code %d (%v), want %d", tc.user, tc.password, got, err, tc.code)
		}
	}
	if lab.KDCErrorCode(nil) != 0 {
		t.Error("KDCErrorCode(nil) is not 0")
	}
	if _, err := k.KeytabFile("nobody"); err == nil {
		t.Error("a keytab for nobody")
	}
}

func TestKDCReportsKadminFailures(t *testing.T) {
	needServer(t, lab.KDCPath)
	for name, o := range map[string]lab.KDCOptions{
		"bad principal": {Services: []string{"HTTP/a@b@c"}},
		"quote":         {Users: map[string]string{"alice": `pass"word`}},
		"no Dir":        {},
	} {
		if name != "no Dir" {
			o.Dir = t.TempDir()
		}
		k, err := lab.StartKDC(context.Background(), o)
		if err == nil {
			_ = k.Close()
			t.Errorf("%s: started", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestKDCClockSkew(t *testing.T) {
	k := startKDC(t, lab.KDCOptions{Users: map[string]string{"alice": "pw"}, Skew: 2 * time.Hour})
	_, err := login(t, k, "alice", "pw", false)
	if got := lab.KDCErrorCode(err); got != errorcode.KRB_AP_ERR_SKEW {
		t.Fatalf("code %d (%v), want KRB_AP_ERR_SKEW (37)", got, err)
	}
}

func TestKDCUserKeytab(t *testing.T) {
	k := startKDC(t, lab.KDCOptions{Users: map[string]string{"alice": "pw"}, Services: []string{testSPN}})
	for _, name := range []string{"alice", "alice@" + testRealm} {
		f, err := k.KeytabFile(name)
		if err != nil {
			t.Fatal(err)
		}
		kt, err := keytab.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := k.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		cl := client.NewWithKeytab("alice", k.Realm(), kt, cfg, client.DisablePAFXFAST(true))
		if err := cl.Login(); err != nil {
			t.Fatalf("keytab login: %v", err)
		}
		cl.Destroy()
	}
	// The keytab kept the password's keys, so the password still works.
	if _, err := login(t, k, "alice", "pw", false); err != nil {
		t.Fatalf("password login after ktadd: %v", err)
	}
}
