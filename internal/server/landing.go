package server

import (
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/version"
)

// landingTemplate is plain server-side HTML: readable without JavaScript,
// in a terminal browser, or by a test.
var landingTemplate = template.Must(template.New("landing").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>autodiscover_exporter</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
.ok { color: #1a7f37; } .fail { color: #cf222e; } .none { color: #666; }
</style>
</head>
<body>
<h1>autodiscover_exporter</h1>
{{if .Demo}}<p id="demo-banner" style="background:#fff8c5;border:1px solid #d4a72c;padding:0.5em"><strong>Demo mode:</strong> these mailboxes live in a simulated Exchange estate on loopback. Nothing here is real; no credentials and no network are used.</p>
{{end}}<p>Runs the Exchange Autodiscover chain for each configured mailbox when Prometheus scrapes <code>/probe?target=&lt;mailbox&gt;</code>. Version {{.Version}}.</p>
<p><a href="metrics">Exporter metrics</a> · <a href="sd">Service discovery (/sd)</a> · <a href="config">Configuration</a> · <a href="-/healthy">Health</a></p>
<h2>Mailboxes</h2>
<table id="mailboxes">
<thead><tr><th>Mailbox</th><th>Module</th><th>Labels</th><th>Last result</th><th>When</th><th>Duration</th><th>Hops</th><th>Step log</th><th>Probe now</th></tr></thead>
<tbody>
{{range .Mailboxes}}<tr>
<td>{{.Name}}</td><td>{{.Module}}</td><td>{{.Labels}}</td>
{{if .Probed}}<td class="{{if .Success}}ok{{else}}fail{{end}}">{{if .Success}}success{{else}}failure{{end}}{{if .Reason}}: {{.Reason}}{{end}}</td><td>{{.When}}</td><td>{{.Duration}}</td><td>{{.Hops}}</td><td><a href="{{.LogURL}}">last step log</a></td>
{{else}}<td class="none">not probed yet</td><td></td><td></td><td></td><td></td>{{end}}
<td><a href="{{.ProbeURL}}">debug probe</a></td>
</tr>
{{else}}<tr><td colspan="9">No mailboxes are configured.</td></tr>
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
`))

type mailboxRow struct {
	Name, Module, Labels string
	Probed, Success      bool
	Reason               string
	When, Duration       string
	Hops                 int
	LogURL, ProbeURL     string
}

type recentRow struct {
	When, Target, Module string
	Success              bool
	LogURL               string
}

func (s *Server) handleLanding(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	cfg := s.Config()
	data := struct {
		Demo      bool
		Version   string
		Mailboxes []mailboxRow
		Recent    []recentRow
	}{Demo: s.demo, Version: version.Version}
	for _, mb := range cfg.Mailboxes {
		row := mailboxRow{
			Name:     mb.Name,
			Module:   mb.Module,
			Labels:   formatLabels(mb.Labels),
			ProbeURL: "probe?" + url.Values{"target": {mb.Name}, "debug": {"true"}}.Encode(),
		}
		if rec, ok := s.history.lastOf(mb.Name); ok {
			row.Probed = true
			row.Success = rec.Result.Success
			row.Reason = rec.Result.Reason
			row.When = rec.When.UTC().Format(time.RFC3339)
			row.Duration = rec.Result.Duration.Round(time.Millisecond).String()
			row.Hops = rec.Result.RedirectHops
			row.LogURL = "logs?id=" + strconv.FormatInt(rec.ID, 10)
		}
		data.Mailboxes = append(data.Mailboxes, row)
	}
	for _, rec := range s.history.recentFirst() {
		data.Recent = append(data.Recent, recentRow{
			When:    rec.When.UTC().Format(time.RFC3339),
			Target:  rec.Target,
			Module:  rec.Module,
			Success: rec.Result.Success,
			LogURL:  "logs?id=" + strconv.FormatInt(rec.ID, 10),
		})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := landingTemplate.Execute(w, data); err != nil {
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
	}
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
