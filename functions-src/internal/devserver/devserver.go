// Package devserver is the one-process local mode behind `make dev`: the
// built Hugo site, the three functions served through the same edge as on
// Netlify and AWS (api.Function, over net/http), signed CV downloads, and a
// page that shows the outbox.
package devserver

import (
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
)

// PageHeaders are the headers every page gets. netlify.toml sets the same
// for the deployed site; a test keeps the two equal.
func PageHeaders() map[string]string {
	return map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
		"Cross-Origin-Opener-Policy": "same-origin",
		"Permissions-Policy":         "camera=(), microphone=(), geolocation=(), interest-cohort=()",
		"Referrer-Policy":            "strict-origin-when-cross-origin",
		"Strict-Transport-Security":  "max-age=63072000; includeSubDomains",
		"X-Content-Type-Options":     "nosniff",
		"X-Frame-Options":            "DENY",
	}
}

// OwnerPageHeaders are added to PageHeaders under /owner/ (netlify.toml's
// [[headers]] for "/owner/*"): the owner's page is kept out of search
// engines, as its robots meta tag also asks.
func OwnerPageHeaders() map[string]string {
	return map[string]string{"X-Robots-Tag": "noindex, nofollow"}
}

// New returns the dev server's handler for a wired app and a built site.
func New(a *app.App, siteDir string, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	fns := map[string]*api.Function{
		"request-access": api.RequestAccess(a.Service, a.API(log)),
		"verify-access":  api.VerifyAccess(a.Service, a.API(log)),
	}
	if owner, err := a.Owner(); err == nil {
		fns["owner"] = api.Owner(owner, a.API(log))
	} else {
		log.Warn("the owner page is off", "error", err.Error())
		fns["owner"] = api.OwnerOff(a.API(log))
	}
	fn := func(w http.ResponseWriter, r *http.Request) {
		f, ok := fns[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		f.ServeHTTP(w, asFromNetlify(r))
	}
	mux.HandleFunc("/.netlify/functions/{name}", fn)
	mux.HandleFunc("/api/{name}", fn) // the netlify.toml redirect
	if a.Links != nil {
		mux.Handle("/_cv/download", a.Links)
	}
	outbox := a.Config.OutboxDir
	mux.HandleFunc("GET /_dev/outbox", func(w http.ResponseWriter, r *http.Request) { serveOutbox(w, outbox) })
	mux.HandleFunc("GET /_dev/outbox/{file}", func(w http.ResponseWriter, r *http.Request) {
		serveOutboxFile(w, r, outbox, r.PathValue("file"))
	})
	mux.Handle("/", site(siteDir))
	return loopbackOnly(mux)
}

// loopbackOnly refuses requests whose Host is not a loopback name. The
// server listens on 127.0.0.1, but a web page can rebind its own domain's
// DNS to 127.0.0.1 and then read /_dev/outbox (codes, addresses) from a
// visitor's browser; such requests carry the attacker's host name.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		switch strings.Trim(host, "[]") {
		case "127.0.0.1", "localhost", "::1":
			next.ServeHTTP(w, r)
		default:
			http.Error(w, "cv-dev answers only to 127.0.0.1 and localhost", http.StatusMisdirectedRequest)
		}
	})
}

// asFromNetlify sets x-nf-client-connection-ip from the connection, as
// Netlify does, after dropping every copy the client sent in any casing:
// the client address comes from the connection, never from what the
// client claims.
func asFromNetlify(r *http.Request) *http.Request {
	r = r.Clone(r.Context())
	for k := range r.Header {
		if strings.EqualFold(k, "x-nf-client-connection-ip") {
			delete(r.Header, k)
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		r.Header.Set("x-nf-client-connection-ip", host)
	}
	return r
}

// site serves the built Hugo site with the page headers and its 404 page.
func site(dir string) http.Handler {
	files := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range PageHeaders() {
			w.Header().Set(k, v)
		}
		if strings.HasPrefix(r.URL.Path, "/owner/") {
			for k, v := range OwnerPageHeaders() {
				w.Header().Set(k, v)
			}
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !exists(dir, r.URL.Path) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			if page, err := os.ReadFile(filepath.Join(dir, "404.html")); err == nil {
				_, _ = w.Write(page)
			} else {
				_, _ = io.WriteString(w, "<!doctype html><title>Not found</title><p>Not found. Has the site been built? Run <code>make dev</code>.</p>")
			}
			return
		}
		files.ServeHTTP(w, r)
	})
}

func exists(dir, urlPath string) bool {
	p := filepath.Join(dir, filepath.FromSlash(filepath.Clean("/"+urlPath)))
	st, err := os.Stat(p)
	if err != nil {
		return false
	}
	if st.IsDir() {
		_, err = os.Stat(filepath.Join(p, "index.html"))
		return err == nil
	}
	return true
}

var outboxPage = template.Must(template.New("outbox").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5"><title>Dev outbox · cv-access</title></head>
<body><main>
<h1>Dev outbox</h1>
<p>Mail and SMS the embedded mode "sent", newest first, from <code>{{.Dir}}</code>. This page refreshes every 5 seconds and exists only in <code>make dev</code>.</p>
{{range .Messages}}<article>
<h2>{{if eq .Kind "sms"}}SMS{{else}}Email{{end}} to {{.To}}</h2>
<p><time>{{.Date.Format "2006-01-02 15:04:05 MST"}}</time>{{with .Subject}} · {{.}}{{end}} · <a href="/_dev/outbox/{{.File}}">raw</a></p>
<pre>{{.Text}}</pre>
</article>{{else}}<p>Nothing sent yet. Ask for the CV on <a href="/cv/">the CV page</a>.</p>{{end}}
</main></body></html>
`))

func serveOutbox(w http.ResponseWriter, dir string) {
	msgs, err := embedded.ReadOutbox(dir, 50)
	if err != nil {
		http.Error(w, "cannot read the outbox: "+err.Error(), http.StatusInternalServerError)
		return
	}
	devHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = outboxPage.Execute(w, map[string]any{"Dir": dir, "Messages": msgs})
}

var outboxName = regexp.MustCompile(`^[0-9TZ.]+-(email|sms)-[0-9a-f]+\.(eml|txt)$`)

func serveOutboxFile(w http.ResponseWriter, r *http.Request, dir, name string) {
	if !outboxName.MatchString(name) {
		http.NotFound(w, r)
		return
	}
	devHeaders(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	http.ServeFile(w, r, filepath.Join(dir, name))
}

func devHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
}
