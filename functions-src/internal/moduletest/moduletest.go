// Package moduletest is the cv-access Hugo module (hugo-module/) as
// another site uses it: a minimal Hugo site, written into a folder, with a
// hugo.toml of a few lines that imports the module through a replacement
// to its absolute path, a trivial layout of its own (no theme; a
// stylesheet that hides the generic class names a form might have used),
// one page with the forms of two documents, and its own
// data/cv_access.json. Its tests build that site and check the build's
// answers; browsertest drives the visitor's path on it. Tests only.
package moduletest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ModulePath is the module's import path (hugo-module/go.mod).
const ModulePath = "github.com/cv-access/cv-access/hugo-module"

// Settings is a complete params.cv_access table body.
const Settings = `privacy_url = "/privacy/"
policy_version = "2026-11-30"
retention_days = 180
`

// Documents is the minimal site's document list: two documents that are
// not the example site's, the second with a link of its own lifetime.
const Documents = `{
  "documents": [
    {"slug": "report", "title": "annual report", "key": "annual-report.pdf", "page": "/documents/"},
    {"slug": "brochure", "title": "brochure", "key": "brochure.pdf", "page": "/documents/", "link_seconds": 300}
  ]
}
`

// Page is the one content page: both documents' forms, one above the other.
const Page = `---
title: "Documents"
---

Ask for either document; each link is for the document you asked for.

## The annual report

{{< cv-access document="report" >}}

## The brochure

{{< cv-access document="brochure" >}}
`

// Layout is the site's only template (layouts/all.html, for every page
// kind): a page of its own, and a stylesheet (static/theme.css) that would
// hide a form wearing generic class names.
const Layout = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ .Title }} · {{ site.Title }}</title>
<link rel="stylesheet" href="/theme.css"></head>
<body><main><h1>{{ .Title }}</h1>
{{ .Content }}
</main></body>
</html>
`

// ThemeCSS is a theme that knows nothing of the module: the generic names
// a form's parts might have (step, field, error, ...) are hidden.
const ThemeCSS = `body { font-family: Georgia, serif; max-width: 40rem; margin: 0 auto; padding: 1rem; }
.step, .field, .error, .hint, .status, .notice, .button, .link, .actions, .check, .code, .form { display: none !important; }
`

// Site is what Write puts in the folder. The zero value of a field leaves
// that file out (Settings: the params.cv_access table).
type Site struct {
	Settings  string            // the body of [params.cv_access]
	Documents string            // data/cv_access.json
	Content   map[string]string // content files by name, e.g. "documents.md"
	Layouts   map[string]string // extra files under layouts/, e.g. an override
}

// Minimal is the site the browser tests use: the settings, two documents
// and the page with both forms.
func Minimal() Site {
	return Site{Settings: Settings, Documents: Documents, Content: map[string]string{"documents.md": Page}}
}

// Write writes the site into dir, importing the module in root/hugo-module.
func (s Site) Write(root, dir string) error {
	module, err := filepath.Abs(filepath.Join(root, "hugo-module"))
	if err != nil {
		return err
	}
	var config strings.Builder
	fmt.Fprintf(&config, `baseURL = "/"
title = "Another site"
disableKinds = ["taxonomy", "term", "rss", "sitemap"]

[module]
  replacements = %q
  [[module.imports]]
    path = %q
`, ModulePath+" -> "+module, ModulePath)
	if s.Settings != "" {
		fmt.Fprintf(&config, "\n[params.cv_access]\n%s", s.Settings)
	}
	files := map[string]string{
		"hugo.toml":           config.String(),
		"layouts/all.html":    Layout,
		"static/theme.css":    ThemeCSS,
		"data/cv_access.json": s.Documents,
		"content/_index.md":   "---\ntitle: \"Another site\"\n---\n",
		"content/privacy.md":  "---\ntitle: \"Privacy\"\n---\n\nWhat is kept, and for how long.\n",
	}
	for name, body := range s.Content {
		files["content/"+name] = body
	}
	for name, body := range s.Layouts {
		files["layouts/"+name] = body
	}
	for name, body := range files {
		if body == "" {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}
