package probe_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// echoingTokenEndpoint refuses every request with an error_description
// that quotes the client secret it was sent, in the form describe gives.
func echoingTokenEndpoint(describe func(secret string) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": describe(r.PostForm.Get("client_secret"))})
	})
}

// A token endpoint's answer never brings the client secret into the step
// log, the reason or a step detail, in any form: raw, URL-encoded,
// base64, or cut in two by a length cap.
func TestTokenEndpointAnswersNeverShowTheClientSecret(t *testing.T) {
	const secret = "s3cr3t+/ä&=Yz9-LongEnoughToCut"
	forms := map[string]func(string) string{
		"raw":                     func(s string) string { return "bad secret " + s },
		"query-escaped":           func(s string) string { return "bad secret " + url.QueryEscape(s) },
		"path-escaped":            func(s string) string { return "bad secret " + url.PathEscape(s) },
		"base64":                  func(s string) string { return "bad secret " + base64.StdEncoding.EncodeToString([]byte(s)) },
		"base64 URL, no padding":  func(s string) string { return "bad secret " + base64.RawURLEncoding.EncodeToString([]byte(s)) },
		"straddling the 160-byte": func(s string) string { return strings.Repeat("x", 150) + s + " tail" },
	}
	for name, describe := range forms {
		t.Run(name, func(t *testing.T) {
			e := newEstate(t)
			must(t, e.HTTPS(tokenHost, echoingTokenEndpoint(describe)))
			must(t, e.HTTPS("autodiscover.cloudonly.test", &lab.Autodiscover{
				Challenges: []string{`Bearer authorization_uri="https://login.lab.test/common/oauth2/authorize"`},
				Tokens:     &lab.TokenServer{},
				Users:      map[string]lab.Reply{},
			}))
			res := mustRun(t, "olga@cloudonly.test", oauthSettings(e, secret))
			cred, _ := findStep(res, 0, "autodiscover.cloudonly.test", probe.StepCredentials)
			if cred.ErrorClass != probe.ClassAuthError {
				t.Fatalf("credentials step %+v", cred)
			}
			text := res.Log() + res.Reason + cred.Detail
			for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawURLEncoding.EncodeToString([]byte(secret))} {
				for i := 0; i+8 <= len(form); i++ {
					if strings.Contains(text, form[i:i+8]) {
						t.Fatalf("the output holds %q of the secret's form %q:\n%s", form[i:i+8], form, cred.Detail)
					}
				}
			}
		})
	}
}
