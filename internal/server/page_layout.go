package server

import "html/template"

// pageParts are the pieces the landing page and the mailbox page share:
// the style sheet, the demo banner, the hop path and the certificate
// cell. Everything is inline: the pages work offline, behind any proxy,
// and under a policy that loads nothing.
const pageParts = `
{{define "style"}}<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em 2em; color: #1f2328; font-size: 15px; }
h1 { font-size: 1.6em; margin: 0 0 .3em; } h2 { font-size: 1.25em; margin: 1.4em 0 .5em; }
a { color: #0969da; }
code, .host, .url, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid #d0d7de; padding: .45em .6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
.meta { color: #59636e; font-size: .82em; margin-top: .15em; }
.ok { color: #1a7f37; } .fail { color: #cf222e; } .none { color: #59636e; }
.fail .reason { color: #1f2328; font-size: .88em; margin-top: .2em; max-width: 34em; }
#demo-banner { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: .5em .8em; }
ol.hops { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; align-items: center; row-gap: .45em; }
li.hop { display: inline-flex; align-items: center; }
li.hop .via { display: inline-block; position: relative; max-width: 11em; font-size: .72em; line-height: 1.2; color: #59636e; padding: 0 .5em .1em .3em; margin: 0 .55em 0 .25em; border-bottom: 2px solid #8c959f; }
li.hop .via::after { content: ""; position: absolute; right: -.55em; bottom: -.42em; border: .36em solid transparent; border-left: .6em solid #8c959f; border-right: 0; }
li.hop .host { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 5px; padding: .12em .45em; }
li.hop.failed .host { background: #ffebe9; border-color: #cf222e; color: #82071e; }
li.hop .failure { margin-left: .35em; color: #cf222e; font-size: .8em; font-weight: 600; white-space: nowrap; }
td.cert-days { white-space: nowrap; }
td.cert-days .pill { display: inline-block; font-weight: 600; font-size: .88em; border-radius: 1em; padding: .1em .65em; }
.cert-red .pill { color: #fff; background: #cf222e; } .cert-amber .pill { color: #3b2300; background: #f2cc60; }
.cert-green .pill { color: #fff; background: #1a7f37; } .cert-none { color: #59636e; }
time { white-space: nowrap; }
</style>{{end}}
{{define "banner"}}{{if .}}<p id="demo-banner"><strong>Demo mode:</strong> these mailboxes live in a simulated Exchange estate on loopback. Nothing here is real; no credentials and no network are used.</p>
{{end}}{{end}}
{{define "hops"}}<ol class="hops">{{range .}}<li class="hop{{if .Failed}} failed{{end}}" data-method="{{.Method}}">{{with .Via}}<span class="via">{{.}}</span>{{end}}{{with .Host}}<span class="host">{{.}}</span>{{end}}{{if .Failed}}<span class="failure" title="the decisive failure: step {{.Step}}, class {{.Class}}">✗ {{with .Step}}{{.}}: {{end}}<span class="error-class">{{.Class}}</span></span>{{end}}</li>{{end}}</ol>{{end}}
{{define "certdays"}}<td class="cert-days {{.Level}}"{{if .Known}} data-days="{{.Days}}"{{end}} title="{{.Title}}"><span class="pill">{{.Text}}</span></td>{{end}}
`

// pageTemplate parses one page with the shared parts.
func pageTemplate(name, text string) *template.Template {
	t := template.Must(template.New(name).Parse(pageParts))
	return template.Must(t.Parse(text))
}
