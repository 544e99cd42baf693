package devserver_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/devserver"
	"github.com/cv-access/cv-access/functions-src/internal/htmltest"
)

// repoRoot is two folders above functions-src/internal/devserver.
var repoRoot = filepath.Join("..", "..", "..")

// builtSite returns site/public, or skips when the site is not built and
// the run did not ask for it (`make test` builds it and sets
// CV_REQUIRE_SITE=1, so there these tests always run).
func builtSite(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(repoRoot, "site", "public")
	if _, err := os.Stat(filepath.Join(dir, "cv", "index.html")); err != nil {
		if os.Getenv("CV_REQUIRE_SITE") != "" {
			t.Fatalf("site/public is not built (%v): run `make site`", err)
		}
		t.Skip("site/public is not built; `make test` builds it")
	}
	return dir
}

var pages = []string{"/", "/cv/", "/portfolio/", "/privacy/", "/owner/"}

func TestSitePagesServeWithHeaders(t *testing.T) {
	d := startDev(t, builtSite(t))
	for _, p := range pages {
		resp, body := get(t, d.URL+p)
		assert.Equal(t, 200, resp.StatusCode, p)
		assert.Contains(t, resp.Header.Get("Content-Type"), "text/html", p)
		for k, v := range devserver.PageHeaders() {
			assert.Equal(t, v, resp.Header.Get(k), "%s %s", p, k)
		}
		if p == "/owner/" {
			assert.Equal(t, "noindex, nofollow", resp.Header.Get("X-Robots-Tag"))
		} else {
			assert.Empty(t, resp.Header.Get("X-Robots-Tag"), "%s is for search engines too", p)
		}
		doc := parse(t, body)
		for _, asset := range assets(doc) {
			resp, _ := get(t, d.URL+asset)
			assert.Equal(t, 200, resp.StatusCode, "%s references %s", p, asset)
		}
	}
	resp, body := get(t, d.URL+"/no/such/page/")
	assert.Equal(t, 404, resp.StatusCode)
	assert.Contains(t, string(body), "Page not found")
	assert.Equal(t, devserver.PageHeaders()["Content-Security-Policy"], resp.Header.Get("Content-Security-Policy"))
}

// The deployed site gets its page headers from netlify.toml, the dev server
// from PageHeaders and OwnerPageHeaders: they must say the same.
func TestPageHeadersMatchNetlifyToml(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot, "netlify.toml"))
	require.NoError(t, err)
	defer f.Close()
	got := map[string]map[string]string{} // by the rule's "for"
	line := regexp.MustCompile(`^\s*([A-Za-z-]+)\s*=\s*"(.*)"\s*$`)
	var rule string
	inHeaders, inValues := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(s, "["):
			inHeaders = s == "[[headers]]" || (inHeaders && s == "[headers.values]")
			inValues = inHeaders && s == "[headers.values]"
		case inValues:
			if m := line.FindStringSubmatch(s); m != nil {
				got[rule][m[1]] = m[2]
			}
		case inHeaders:
			if m := line.FindStringSubmatch(s); m != nil && m[1] == "for" {
				rule = m[2]
				got[rule] = map[string]string{}
			}
		}
	}
	require.NoError(t, sc.Err())
	assert.Equal(t, map[string]map[string]string{"/*": devserver.PageHeaders(), "/owner/*": devserver.OwnerPageHeaders()}, got)
}

func TestPagesHaveNoInlineCodeAndStaySmall(t *testing.T) {
	dir := builtSite(t)
	for _, p := range pages {
		raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p), "index.html"))
		require.NoError(t, err)
		doc := parse(t, raw)
		total := len(raw)
		walk(doc, func(n *html.Node) {
			if n.Type != html.ElementNode {
				return
			}
			if n.Data == "script" {
				assert.NotEmpty(t, attr(n, "src"), "%s: inline <script> breaks the CSP", p)
				assert.NotEmpty(t, attr(n, "integrity"), "%s: script without SRI", p)
			}
			if n.Data == "style" {
				t.Errorf("%s: inline <style> breaks the CSP", p)
			}
			for _, a := range n.Attr {
				if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
					t.Errorf("%s: inline %s= on <%s> breaks the CSP", p, a.Key, n.Data)
				}
				if (a.Key == "src" || a.Key == "href") && strings.Contains(a.Val, "//") && !strings.HasPrefix(a.Val, "mailto:") {
					t.Errorf("%s: <%s %s=%q> reaches another origin", p, n.Data, a.Key, a.Val)
				}
			}
		})
		for _, asset := range assets(doc) {
			st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(asset)))
			require.NoError(t, err)
			if !strings.HasSuffix(asset, ".svg") {
				total += int(st.Size())
			}
		}
		assert.Less(t, total, 20*1024, "%s: HTML+CSS+JS is %d bytes", p, total)
		t.Logf("%s: HTML+CSS+JS %d bytes", p, total)
	}
}

// The document pages: the cv-access module's form (its shortcode), one per
// document of site/data/cv_access.json, every id under the document's own
// prefix so that forms never collide.
func TestDocumentPageForms(t *testing.T) {
	for _, tt := range []struct{ path, slug, title string }{
		{"/cv/", "cv", "CV"},
		{"/portfolio/", "portfolio", "portfolio"},
	} {
		t.Run(tt.slug, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(builtSite(t), filepath.FromSlash(tt.path), "index.html"))
			require.NoError(t, err)
			checkForm(t, parse(t, raw), tt.slug, tt.title)
		})
	}
}

// checkForm checks the one form on a page, for the document slug.
func checkForm(t *testing.T, doc *html.Node, slug, title string) {
	t.Helper()
	prefix := "cv-access-" + slug + "-"
	byID := map[string]*html.Node{}
	labels := map[string]bool{}
	var roots []*html.Node
	walk(doc, func(n *html.Node) {
		if id := attr(n, "id"); id != "" {
			assert.Nil(t, byID[id], "id %q is used twice", id)
			byID[id] = n
		}
		if n.Data == "label" {
			labels[attr(n, "for")] = true
		}
		if has(n, "data-cv-access-document") {
			roots = append(roots, n)
		}
	})
	require.Len(t, roots, 1)
	assert.Equal(t, slug, attr(roots[0], "data-cv-access-document"), "the script sends this document")
	assert.Equal(t, "/api", attr(roots[0], "data-cv-access-api"))
	assert.Equal(t, "cv-access-"+slug, attr(roots[0], "id"))

	for _, id := range []string{"name", "email", "phone", "company", "location", "consent", "otp"} {
		n := byID[prefix+id]
		require.NotNil(t, n, "input #%s", prefix+id)
		assert.True(t, labels[prefix+id], "#%s has a <label for>", prefix+id)
		for _, ref := range strings.Fields(attr(n, "aria-describedby")) {
			assert.NotNil(t, byID[ref], "#%s describedby #%s exists", prefix+id, ref)
		}
	}
	for _, id := range []string{"name", "email", "consent"} {
		assert.True(t, has(byID[prefix+id], "required"), "#%s is required", id)
	}
	for _, id := range []string{"phone", "company", "location"} {
		assert.False(t, has(byID[prefix+id], "required"), "#%s is optional", id)
	}
	assert.Equal(t, "email", attr(byID[prefix+"email"], "type"))
	assert.Equal(t, "tel", attr(byID[prefix+"phone"], "type"))
	assert.Equal(t, "checkbox", attr(byID[prefix+"consent"], "type"))
	assert.Equal(t, "one-time-code", attr(byID[prefix+"otp"], "autocomplete"))
	assert.Equal(t, "numeric", attr(byID[prefix+"otp"], "inputmode"))
	assert.Equal(t, "6", attr(byID[prefix+"otp"], "maxlength"))

	var policyLink bool
	walk(byID[prefix+"step-request"], func(n *html.Node) {
		policyLink = policyLink || (n.Data == "a" && attr(n, "href") == "/privacy/")
	})
	assert.True(t, policyLink, "the consent text links the privacy policy")
	p := access.DefaultPolicy()
	assert.Contains(t, text(byID[prefix+"step-request"]),
		fmt.Sprintf("(version %s) and agree that my details are kept for %d days.", p.PolicyVersion, int(p.Retention.Hours()/24)),
		"the consent states the policy version and retention the functions record")
	assert.Equal(t, "Download the "+title, text(byID[prefix+"download-link"]), "the title from data/cv_access.json")
	assert.Contains(t, text(byID[prefix+"step-download"]), "It works for 2 minutes")
	assert.Equal(t, "polite", attr(byID[prefix+"status"], "aria-live"))
	for _, step := range []string{"step-request", "step-verify", "step-download"} {
		require.NotNil(t, byID[prefix+step])
		assert.True(t, has(byID[prefix+step], "hidden"), "%s starts hidden until the script runs", step)
	}
	assert.Contains(t, text(doc), "needs JavaScript", "a visitor without JavaScript is told why the form is missing")
}

// The owner's page: out of search engines, linked from nowhere, its
// fields labelled and tied to their errors, and its steps hidden until the
// script knows whether the owner is signed in.
func TestOwnerPage(t *testing.T) {
	dir := builtSite(t)
	raw, err := os.ReadFile(filepath.Join(dir, "owner", "index.html"))
	require.NoError(t, err)
	doc := parse(t, raw)
	byID := map[string]*html.Node{}
	labels := map[string]bool{}
	var robots []string
	walk(doc, func(n *html.Node) {
		if id := attr(n, "id"); id != "" {
			byID[id] = n
		}
		if n.Data == "label" {
			labels[attr(n, "for")] = true
		}
		if n.Data == "meta" && attr(n, "name") == "robots" {
			robots = append(robots, attr(n, "content"))
		}
	})
	assert.Equal(t, []string{"noindex, nofollow"}, robots)
	for _, id := range []string{"email", "otp"} {
		n := byID[id]
		require.NotNil(t, n, "input #%s", id)
		assert.True(t, labels[id], "#%s has a <label for>", id)
		assert.Contains(t, attr(n, "aria-describedby"), id+"-error")
		for _, ref := range strings.Fields(attr(n, "aria-describedby")) {
			assert.NotNil(t, byID[ref], "#%s describedby #%s exists", id, ref)
		}
	}
	assert.Equal(t, "one-time-code", attr(byID["otp"], "autocomplete"))
	assert.Equal(t, "polite", attr(byID["status"], "aria-live"))
	for _, step := range []string{"step-signin", "step-code", "step-list", "confirm"} {
		require.NotNil(t, byID[step])
		assert.True(t, has(byID[step], "hidden"), "%s starts hidden until the script runs", step)
	}
	assert.Contains(t, text(doc), "needs JavaScript")
	assert.Contains(t, text(doc), "One cookie on this page, for the owner's sign-in")

	for _, p := range []string{"/", "/cv/", "/portfolio/", "/privacy/", "/404.html"} {
		path := filepath.Join(dir, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			path = filepath.Join(path, "index.html")
		}
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		doc := parse(t, raw)
		walk(doc, func(n *html.Node) {
			if n.Data == "a" && strings.HasPrefix(attr(n, "href"), "/owner") {
				t.Errorf("%s links the owner's page", p)
			}
			if n.Data == "meta" && attr(n, "name") == "robots" {
				t.Errorf("%s: robots %q", p, attr(n, "content"))
			}
		})
		assert.Contains(t, text(doc), "No cookies for visitors, no trackers.", p)
	}
}

func TestPrivacyPolicyMatchesTheCode(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(builtSite(t), "privacy", "index.html"))
	require.NoError(t, err)
	page := text(parse(t, raw))
	p := access.DefaultPolicy()
	assert.Contains(t, page, "Version "+p.PolicyVersion)
	assert.Contains(t, page, fmt.Sprintf("%d days", int(p.Retention.Hours()/24)))
	assert.Contains(t, page, fmt.Sprintf("%d minutes", int(p.CodeTTL.Minutes())))
	assert.Contains(t, page, fmt.Sprintf("at most %d times", p.MaxAttempts))
	list, err := os.ReadFile("../../../site/data/cv_access.json")
	require.NoError(t, err)
	docs, err := access.ParseDocuments(list)
	require.NoError(t, err, "the site's document list is one the functions accept")
	for _, d := range docs.All() {
		assert.Contains(t, page, fmt.Sprintf("link lives %d minutes", int(d.LinkTTL.Minutes())), d.Slug)
	}
	assert.Contains(t, page, fmt.Sprintf("at most %d codes a day", p.Limits.EmailPerDay))
	assert.Contains(t, page, fmt.Sprintf("at most %d texts", p.Limits.PhonePerDay))
	assert.Contains(t, page, fmt.Sprintf("at most %d requests and %d code guesses an hour", p.Limits.IPPerHour, p.Limits.VerifyPerHour))
	assert.Contains(t, page, "at Gmail the dots in the name", "what counts as one inbox")
	assert.Contains(t, page, "IP address is not stored")
	// The owner page's one cookie, its session.
	assert.Contains(t, page, "sets no cookie in your browser")
	assert.Contains(t, page, fmt.Sprintf("after %d hours at most", int(access.SessionTTL.Hours())))
}

func parse(t *testing.T, raw []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(raw))
	require.NoError(t, err)
	return doc
}

// The page readers, shared with the module's tests.
var walk, attr, has, text = htmltest.Walk, htmltest.Attr, htmltest.Has, htmltest.Text

// assets are the same-origin stylesheets, scripts and icons a page loads.
func assets(doc *html.Node) []string {
	var out []string
	walk(doc, func(n *html.Node) {
		switch {
		case n.Data == "script" && attr(n, "src") != "":
			out = append(out, attr(n, "src"))
		case n.Data == "link" && (attr(n, "rel") == "stylesheet" || attr(n, "rel") == "icon"):
			out = append(out, attr(n, "href"))
		}
	})
	return out
}

// The policies themselves, for pages and for function answers: strict CSP
// with no inline code, no framing, no sniffing, a referrer policy and HSTS.
func TestSecurityHeaderPolicies(t *testing.T) {
	for name, h := range map[string]map[string]string{"pages": devserver.PageHeaders(), "functions": api.SecurityHeaders()} {
		t.Run(name, func(t *testing.T) {
			csp := h["Content-Security-Policy"]
			assert.NotContains(t, csp, "unsafe-inline")
			assert.NotContains(t, csp, "unsafe-eval")
			assert.NotContains(t, csp, "*")
			assert.Contains(t, csp, "frame-ancestors 'none'")
			assert.Contains(t, csp, "base-uri 'none'")
			assert.Regexp(t, `default-src '(self|none)'`, csp)
			assert.Equal(t, "nosniff", h["X-Content-Type-Options"])
			assert.Equal(t, "DENY", h["X-Frame-Options"])
			assert.NotEmpty(t, h["Referrer-Policy"])
			assert.NotContains(t, h["Referrer-Policy"], "unsafe-url")
			var maxAge int
			_, err := fmt.Sscanf(h["Strict-Transport-Security"], "max-age=%d", &maxAge)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, maxAge, 31536000, "HSTS for at least a year")
		})
	}
}

// BenchmarkPageWeight prints what each page costs a visitor: the bytes of
// its HTML, CSS and JS (the budget is 20 KB each, checked by
// TestPagesHaveNoInlineCodeAndStaySmall). Run: go test -bench PageWeight.
func BenchmarkPageWeight(b *testing.B) {
	dir := filepath.Join(repoRoot, "site", "public")
	for _, p := range pages {
		b.Run(strings.Trim(p, "/")+"/", func(b *testing.B) {
			raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p), "index.html"))
			if err != nil {
				b.Skip("site/public is not built: run `make site`")
			}
			var htmlB, cssB, jsB int
			for range b.N {
				doc, err := html.Parse(bytes.NewReader(raw))
				if err != nil {
					b.Fatal(err)
				}
				htmlB, cssB, jsB = len(raw), 0, 0
				for _, asset := range assets(doc) {
					st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(asset)))
					if err != nil {
						b.Fatal(err)
					}
					switch filepath.Ext(asset) {
					case ".css":
						cssB += int(st.Size())
					case ".js":
						jsB += int(st.Size())
					}
				}
			}
			b.ReportMetric(float64(htmlB), "html-bytes")
			b.ReportMetric(float64(cssB), "css-bytes")
			b.ReportMetric(float64(jsB), "js-bytes")
			b.ReportMetric(float64(htmlB+cssB+jsB), "total-bytes")
		})
	}
}
