package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
)

// headless runs Chromium against pages of a running exporter.
type headless struct {
	t    *testing.T
	path string
}

func newHeadless(t *testing.T) *headless {
	return &headless{t: t, path: requireTool(t, "chromium")}
}

// run starts Chromium with a fresh profile. Its home is the profile too:
// a user without root may have no writable home for Chromium's caches.
func (h *headless) run(args ...string) string {
	h.t.Helper()
	profile := h.t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.path, append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+profile, "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		h.t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// dom is the page as Chromium rendered it.
func (h *headless) dom(url string) (string, *html.Node) {
	h.t.Helper()
	text := h.run("--dump-dom", url)
	doc, err := html.Parse(strings.NewReader(text))
	if err != nil {
		h.t.Fatalf("the DOM of %s does not parse: %v", url, err)
	}
	return text, doc
}

// screenshot saves the page as a 1400 by 2000 pixel PNG at file.
func (h *headless) screenshot(url, file string) {
	h.t.Helper()
	h.run("--hide-scrollbars", "--window-size=1400,2000", "--screenshot="+file, url)
	f, err := os.Open(file)
	if err != nil {
		h.t.Fatalf("no screenshot of %s: %v", url, err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		h.t.Fatalf("the screenshot of %s is no PNG: %v", url, err)
	}
	if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 2000 {
		h.t.Errorf("the screenshot of %s is %dx%d", url, b.Dx(), b.Dy())
	}
}

// The DOM helpers find elements as a test reads a page: by id, by class,
// by their text.

func domAttr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func domHasClass(n *html.Node, class string) bool {
	v, _ := domAttr(n, "class")
	return slices.Contains(strings.Fields(v), class)
}

// find lists the elements under n, in document order, that are the tag
// (any tag when empty) and have every class given.
func domFind(n *html.Node, tag string, classes ...string) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type != html.ElementNode || tag != "" && d.Data != tag {
			continue
		}
		if !slices.ContainsFunc(classes, func(c string) bool { return !domHasClass(d, c) }) {
			out = append(out, d)
		}
	}
	return out
}

func domByID(t *testing.T, doc *html.Node, id string) *html.Node {
	t.Helper()
	for d := range doc.Descendants() {
		if v, _ := domAttr(d, "id"); d.Type == html.ElementNode && v == id {
			return d
		}
	}
	t.Fatalf("no element with id %q", id)
	return nil
}

func domText(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func domTexts(nodes []*html.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = domText(n)
	}
	return out
}

// certDays reads a certificate cell: its colour class and its days.
func domCertDays(t *testing.T, cell *html.Node) (string, int) {
	t.Helper()
	raw, ok := domAttr(cell, "data-days")
	days, err := strconv.Atoi(raw)
	if !ok || err != nil {
		t.Fatalf("certificate cell without days: %q", domText(cell))
	}
	for _, level := range []string{"cert-red", "cert-amber", "cert-green"} {
		if domHasClass(cell, level) {
			return level, days
		}
	}
	t.Fatalf("certificate cell %q has no colour", domText(cell))
	return "", 0
}

// waitForEveryResult polls the landing page until every demo mailbox has
// been probed (the warm-up probes them all at start).
func waitForEveryResult(t *testing.T, re *runningExporter) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, page := re.get(t, "/")
		rows, unprobed := strings.Count(page, `<tr class="mailbox"`), strings.Count(page, `data-state="unprobed"`)
		if rows == demo.MailboxCount() && unprobed == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d demo mailboxes still without a result", unprobed, rows)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func TestBrowserRendersTheLandingPageMailboxPagesAndAStepLog(t *testing.T) {
	chromium := newHeadless(t)
	re := startDemoExporter(t)
	waitForEveryResult(t, re)

	landing, doc := chromium.dom(re.base + "/")
	shot := filepath.Join(t.TempDir(), "landing.png")
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		shot = repoPath("docs", "landing.png")
		if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	chromium.screenshot(re.base+"/", shot)

	domByID(t, doc, "demo-banner")
	if rows := domFind(domByID(t, doc, "mailboxes"), "tr", "mailbox"); len(rows) != demo.MailboxCount() {
		t.Errorf("%d mailbox rows, want %d", len(rows), demo.MailboxCount())
	}
	if n := strings.Count(landing, "last step log</a>"); n != demo.MailboxCount() {
		t.Errorf("%d step-log links in the mailbox table, want %d", n, demo.MailboxCount())
	}

	t.Run("a healthy hybrid mailbox shows its hops in order and no failure", func(t *testing.T) {
		row := domByID(t, doc, "mailbox-hybrid-alice")
		hops := domFind(row, "li", "hop")
		wantHosts := []string{"autodiscover.contoso.test", "autodiscover.contoso." + lab.TenantSuffix, lab.CloudFrontDoor, lab.CloudPod}
		if got := domTexts(domFind(row, "span", "host")); !slices.Equal(got, wantHosts) {
			t.Errorf("hop hosts %q, want %q", got, wantHosts)
		}
		wantVia := []string{"autodiscover host", "redirectAddr · HTTP redirect", "HTTP 302", "redirectUrl"}
		if got := domTexts(domFind(row, "span", "via")); !slices.Equal(got, wantVia) {
			t.Errorf("hop arrows %q, want %q", got, wantVia)
		}
		if len(hops) != len(wantHosts) || len(domFind(row, "li", "failed")) != 0 {
			t.Errorf("%d hops, %d marked failed", len(hops), len(domFind(row, "li", "failed")))
		}
		if v, _ := domAttr(row, "data-state"); v != "success" {
			t.Errorf("state %q", v)
		}
		cell := domFind(row, "td", "cert-days")[0]
		level, days := domCertDays(t, cell)
		if level != "cert-green" || days < 21 || domText(cell) != strconv.Itoa(days)+" days" {
			t.Errorf("certificate cell %s %q (%d days), want green with its days", level, domText(cell), days)
		}
	})

	t.Run("an expired certificate is the failure, on its host, and red", func(t *testing.T) {
		row := domByID(t, doc, "mailbox-expired-dave")
		failedHops := domFind(row, "li", "hop", "failed")
		if len(failedHops) != 1 {
			t.Fatalf("%d hops marked failed", len(failedHops))
		}
		if host := domTexts(domFind(failedHops[0], "span", "host")); !slices.Equal(host, []string{"autodiscover.expired.test"}) {
			t.Errorf("the failure is marked on %q", host)
		}
		if class := domTexts(domFind(failedHops[0], "span", "error-class")); !slices.Equal(class, []string{"expired"}) {
			t.Errorf("failure class %q", class)
		}
		if reason := domTexts(domFind(row, "div", "reason")); len(reason) != 1 || !strings.Contains(reason[0], "the certificate of autodiscover.expired.test expired on") {
			t.Errorf("reason %q", reason)
		}
		cell := domFind(row, "td", "cert-days")[0]
		level, days := domCertDays(t, cell)
		if level != "cert-red" || days > 0 || !strings.Contains(domText(cell), "expired") {
			t.Errorf("certificate cell %s %q (%d days), want red and expired", level, domText(cell), days)
		}
	})

	t.Run("a redirect loop is marked with its class", func(t *testing.T) {
		row := domByID(t, doc, "mailbox-loop-erin")
		failedHops := domFind(row, "li", "hop", "failed")
		if len(failedHops) != 1 || !slices.Equal(domTexts(domFind(failedHops[0], "span", "error-class")), []string{"loop"}) {
			t.Fatalf("failed hops %q, want one of class loop", domTexts(failedHops))
		}
		hops := domFind(row, "li", "hop")
		if hops[len(hops)-1] != failedHops[0] {
			t.Errorf("the loop is not the end of the path %q", domTexts(hops))
		}
	})

	pages := map[string]string{"": landing}
	for _, tc := range []struct {
		mailbox   string
		ok        bool
		hops      int
		decisive  string // the error class of the decisive step; empty when none
		certHosts []string
	}{
		{"hybrid-alice", true, 4, "", []string{"contoso.test", "autodiscover.contoso.test", lab.CloudFrontDoor, lab.CloudPod}},
		{"expired-dave", false, 1, "expired", []string{"autodiscover.expired.test"}},
		{"loop-erin", false, 2, "loop", []string{"autodiscover.loop.test", "mail.loop.test"}},
	} {
		t.Run("the mailbox page of "+tc.mailbox+" folds its step log and lists its certificates", func(t *testing.T) {
			page, doc := chromium.dom(re.base + "/mailbox?target=" + tc.mailbox)
			pages[tc.mailbox] = page
			tests := domFind(doc, "details", "test")
			if len(tests) != 1 {
				t.Fatalf("%d test trees", len(tests))
			}
			if _, open := domAttr(tests[0], "open"); !open || domHasClass(tests[0], "passed") != tc.ok {
				t.Errorf("the test is open %v, passed %v; want open, passed %v", open, domHasClass(tests[0], "passed"), tc.ok)
			}
			hops := domFind(tests[0], "details", "hop-group")
			if len(hops) != tc.hops {
				t.Errorf("%d hops in the tree, want %d", len(hops), tc.hops)
			}
			for _, cand := range domFind(tests[0], "details", "candidate") {
				if _, open := domAttr(cand, "open"); open != domHasClass(cand, "failed") {
					t.Errorf("candidate %q: open %v, failed %v", domText(domFind(cand, "summary")[0]), open, domHasClass(cand, "failed"))
				}
			}
			steps := domFind(tests[0], "li", "step")
			marks := 0
			for _, st := range steps {
				if m := domText(domFind(st, "span", "mark")[0]); m == "✓" || m == "✗" {
					marks++
				}
			}
			if len(steps) < 5 || marks != len(steps) {
				t.Errorf("%d steps, %d with a ✓ or ✗", len(steps), marks)
			}
			if !regexp.MustCompile(`\(\d+ ms\)$`).MatchString(domText(steps[0])) {
				t.Errorf("a step without its duration: %q", domText(steps[0]))
			}
			decisive := domFind(tests[0], "li", "decisive")
			switch {
			case tc.decisive == "" && len(decisive) != 0:
				t.Errorf("a decisive step in a run that succeeded: %q", domTexts(decisive))
			case tc.decisive != "" && (len(decisive) != 1 || !slices.Equal(domTexts(domFind(decisive[0], "span", "error-class")), []string{tc.decisive})):
				t.Errorf("decisive steps %q, want one of class %s", domTexts(decisive), tc.decisive)
			}
			certs := domFind(domByID(t, doc, "certificates"), "tr", "certificate")
			var hosts []string
			for _, c := range certs {
				hosts = append(hosts, domTexts(domFind(c, "td", "host"))...)
				// The demo's certificates are good for 90 days, but for the
				// one expired three days ago.
				level, days := domCertDays(t, domFind(c, "td", "cert-days")[0])
				if expired := tc.decisive == "expired"; expired && (level != "cert-red" || days > 0) || !expired && (level != "cert-green" || days < 21) {
					t.Errorf("certificate of %q: %s, %d days", domTexts(domFind(c, "td", "host")), level, days)
				}
				if len(domFind(c, "td", "verdict-ok"))+len(domFind(c, "td", "verdict-fail")) != 3 {
					t.Errorf("certificate of %q without its three verdicts", domTexts(domFind(c, "td", "host")))
				}
			}
			if !slices.Equal(hosts, tc.certHosts) {
				t.Errorf("certificates of %q, want %q", hosts, tc.certHosts)
			}
			if tc.mailbox == "expired-dave" {
				chromium.screenshot(re.base+"/mailbox?target="+tc.mailbox, filepath.Join(t.TempDir(), "mailbox.png"))
			}
		})
	}

	log := chromium.run("--dump-dom", re.base+"/logs?target=hybrid-alice")
	if !strings.Contains(log, "Testing Autodiscover for alice@contoso.test.") || !strings.Contains(log, "Attempting to contact the Autodiscover service using the HTTP redirect method") {
		t.Errorf("the rendered step log lacks the expected lines:\n%.2000s", log)
	}
	pages["logs"] = log
	for name, page := range pages {
		if strings.Contains(page, demo.Password) {
			t.Errorf("the password is on page %q", name)
		}
	}
}
