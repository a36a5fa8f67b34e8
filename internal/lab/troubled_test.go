package lab

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAlternatingKeepsAChallengeOnOneNodeAndRotatesAuthenticatedRequests(t *testing.T) {
	node := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, name) })
	}
	lb := &alternating{nodes: []http.Handler{node("old"), node("moved")}}
	serve := func(authorization string) string {
		r := httptest.NewRequest(http.MethodPost, "/autodiscover/autodiscover.xml", nil)
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		w := httptest.NewRecorder()
		lb.ServeHTTP(w, r)
		return w.Body.String()
	}
	var got []string
	for _, auth := range []string{"", "Basic x", "", "Basic x", "Basic x"} {
		got = append(got, serve(auth))
	}
	if want := "old old moved moved old"; strings.Join(got, " ") != want {
		t.Errorf("nodes %q, want %q", strings.Join(got, " "), want)
	}
}
