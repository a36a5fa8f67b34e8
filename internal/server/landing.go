package server

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/common/version"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// landingTemplate is plain server-side HTML: readable without JavaScript,
// in a terminal browser, or by a test.
var landingTemplate = pageTemplate("landing", `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>autodiscover_exporter</title>
{{template "style"}}
<style>
table#mailboxes { width: 100%; }
#mailboxes td.name { max-width: 12em; }
#mailboxes td.name a { font-weight: 600; white-space: nowrap; }
#mailboxes > tbody > tr > td:nth-child(2) { min-width: 16em; max-width: 21em; }
#mailboxes td.fail .reason { overflow-wrap: anywhere; }
#mailboxes td.when .links { font-size: .85em; margin-top: .25em; }
</style>
</head>
<body>
<h1>autodiscover_exporter</h1>
{{template "banner" .Demo}}{{range .DemoNotes}}<p class="demo-note">{{.}}</p>
{{end}}<p>Runs the Exchange Autodiscover chain for each configured mailbox when Prometheus scrapes <code>/probe?target=&lt;mailbox&gt;</code>. Version {{.Version}}.</p>
<p><a href="metrics">Exporter metrics</a> · <a href="sd">Service discovery (/sd)</a> · <a href="config">Configuration</a> · <a href="-/healthy">Health</a></p>
<h2>Mailboxes</h2>
<table id="mailboxes">
<thead><tr><th>Mailbox</th><th>Last result</th><th>Autodiscover path</th><th title="days left on the certificate of the chain that ends first">Certificate</th><th>Last probe</th></tr></thead>
<tbody>
{{range .Mailboxes}}<tr class="mailbox" id="mailbox-{{.Name}}" data-state="{{.State}}">
<td class="name"><a href="{{.PageURL}}">{{.Name}}</a><div class="meta">{{.Module}}</div>{{with .Labels}}<div class="meta">{{.}}</div>{{end}}</td>
{{if .Probed}}{{if .Success}}<td class="ok">success</td>{{else}}<td class="fail">failure<div class="reason">{{.Reason}}</div></td>{{end}}
<td class="path">{{template "hops" .Path}}</td>
{{template "certdays" .Cert}}
<td class="when"><time datetime="{{.When}}">{{.WhenText}}</time><div class="meta">{{.Duration}} · {{.Hops}} redirect hop(s)</div>
<div class="links"><a href="{{.PageURL}}">step tree</a> · <a href="{{.LogURL}}">last step log</a> · <a href="{{.ProbeURL}}">debug probe</a></div></td>
{{else}}<td class="none">not probed yet</td><td></td><td class="cert-days cert-none"></td><td class="when"><div class="links"><a href="{{.ProbeURL}}">debug probe</a></div></td>{{end}}
</tr>
{{else}}<tr><td colspan="5">No mailboxes are configured.</td></tr>
{{end}}</tbody>
</table>
<h2>Recent probes</h2>
<table id="recent">
<thead><tr><th>When</th><th>Mailbox</th><th>Module</th><th>Result</th><th>Step log</th></tr></thead>
<tbody>
{{range .Recent}}<tr><td>{{.When}}</td><td>{{.Target}}</td><td>{{.Module}}</td><td class="{{if .Success}}ok{{else}}fail{{end}}">{{if .Success}}success{{else}}failure{{end}}</td><td><a href="{{.LogURL}}">log</a></td></tr>
{{else}}<tr><td colspan="5">No probes yet.</td></tr>
{{end}}</tbody>
</table>
</body>
</html>
`)

type mailboxRow struct {
	Name, Module, Labels string
	// State is success, failure or unprobed, for a test or a user style
	// sheet to select on.
	State           string
	Probed, Success bool
	// Reason is the decisive failure's sentence.
	Reason string
	// When is RFC 3339, for machines; WhenText is for people.
	When, WhenText, Duration  string
	Hops                      int
	Path                      []pathHop
	Cert                      certDays
	PageURL, LogURL, ProbeURL string
}

type recentRow struct {
	When, Target, Module string
	Success              bool
	LogURL               string
}

// landingPage is what the landing template shows.
type landingPage struct {
	Demo bool
	// DemoNotes say what the demo could not show on this machine.
	DemoNotes []string
	Version   string
	Mailboxes []mailboxRow
	Recent    []recentRow
}

// handleLanding serves "/", and 404 for any path no route claims.
func (s *Server) handleLanding(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	setPageHeaders(w)
	// The page is written as it renders: with thousands of mailboxes it
	// is megabytes, and a failure half-way can only mean the client left.
	if err := landingTemplate.Execute(w, s.landingPage(time.Now())); err != nil {
		_ = level.Debug(s.logger).Log("msg", "writing the landing page failed", "err", err)
	}
}

// landingPage gathers every mailbox's last result as seen at now.
func (s *Server) landingPage(now time.Time) landingPage {
	cfg := s.Config()
	page := landingPage{Demo: s.demo, DemoNotes: s.demoNotes, Version: version.Version, Mailboxes: make([]mailboxRow, 0, len(cfg.Mailboxes))}
	for _, mb := range cfg.Mailboxes {
		row := mailboxRow{
			Name:     mb.Name,
			Module:   mb.Module,
			Labels:   formatLabels(mb.Labels),
			PageURL:  "mailbox?" + url.Values{"target": {mb.Name}}.Encode(),
			ProbeURL: "probe?" + url.Values{"target": {mb.Name}, "debug": {"true"}}.Encode(),
			State:    "unprobed",
		}
		if rec, ok := s.history.lastOf(mb.Name); ok {
			res := rec.Result
			row.Probed = true
			row.State = "failure"
			if res.Success {
				row.State = "success"
			}
			row.Success = res.Success
			row.Reason = failureSentence(res)
			row.When = rec.When.UTC().Format(time.RFC3339)
			row.WhenText = rec.When.UTC().Format(whenLayout)
			row.Duration = res.Duration.Round(time.Millisecond).String()
			row.Hops = res.RedirectHops
			row.Path = chainPath(res)
			row.Cert = earliestCertificate(res, now)
			row.LogURL = "logs?id=" + strconv.FormatInt(rec.ID, 10)
		}
		page.Mailboxes = append(page.Mailboxes, row)
	}
	for _, rec := range s.history.recentFirst() {
		page.Recent = append(page.Recent, recentRow{
			When:    rec.When.UTC().Format(time.RFC3339),
			Target:  rec.Target,
			Module:  rec.Module,
			Success: rec.Result.Success,
			LogURL:  "logs?id=" + strconv.FormatInt(rec.ID, 10),
		})
	}
	return page
}

// whenLayout is how the pages show a probe's time to people.
const whenLayout = "2006-01-02 15:04:05 MST"

// failureSentence says why a failed run failed: its decisive failure, or
// the reason when there is none (a result made up for a deadline).
func failureSentence(res *probe.Result) string {
	if res.Success {
		return ""
	}
	if res.Failure != nil && res.Failure.Sentence != "" {
		return probe.Printable(res.Failure.Sentence, maxPageSentenceBytes)
	}
	return probe.Printable(res.Reason, maxPageSentenceBytes)
}

func formatLabels(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ", ")
}

// handleLogs serves the step log of a recent probe: ?id=N, or ?target=name
// for the mailbox's latest.
func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	var rec probeRecord
	var ok bool
	if id := r.URL.Query().Get("id"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			badRequest(w, "id %q is not a number", id)
			return
		}
		rec, ok = s.history.byID(n)
	} else if t := r.URL.Query().Get("target"); t != "" {
		rec, ok = s.history.lastOf(t)
	} else {
		badRequest(w, "give id= or target=")
		return
	}
	if !ok {
		http.Error(w, "no such probe in the history (it may have aged out)", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rec.Result.WriteLog(w)
}
