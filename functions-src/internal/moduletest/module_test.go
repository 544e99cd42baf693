package moduletest_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/htmltest"
	"github.com/cv-access/cv-access/functions-src/internal/moduletest"
	"github.com/cv-access/cv-access/functions-src/internal/sitebuild"
)

// build writes site into a temporary folder and builds it, returning the
// built folder; it skips when Hugo is missing and the run did not ask for
// the site (`make test` sets CV_REQUIRE_SITE=1 and builds Hugo first).
func build(t *testing.T, site moduletest.Site) (string, error) {
	t.Helper()
	root, err := emulators.FindRoot()
	require.NoError(t, err)
	src := filepath.Join(t.TempDir(), "site")
	require.NoError(t, site.Write(root, src))
	dest := filepath.Join(t.TempDir(), "public")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// No network and no Go module proxy: the replacement is all Hugo needs.
	err = sitebuild.BuildSite(ctx, root, src, dest, map[string]string{"HUGO_MODULE_PROXY": "off"})
	if errors.Is(err, sitebuild.ErrNoHugo) && os.Getenv("CV_REQUIRE_SITE") == "" {
		t.Skip(err)
	}
	return dest, err
}

func parse(t *testing.T, dir, page string) *html.Node {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, page, "index.html"))
	require.NoError(t, err)
	doc, err := html.Parse(bytes.NewReader(raw))
	require.NoError(t, err)
	return doc
}

// The page readers the site's own tests use too.
var walk, attr, text = htmltest.Walk, htmltest.Attr, htmltest.Text

// The minimal site gets both forms from one shortcode each: ids that never
// collide, only the module's own classes, the documents' titles and link
// lifetimes from its data file, and nothing inline for the CSP to refuse.
func TestMinimalSiteGetsTheForms(t *testing.T) {
	t.Parallel()
	dir, err := build(t, moduletest.Minimal())
	require.NoError(t, err)
	doc := parse(t, dir, "documents")

	ids := map[string]*html.Node{}
	var roots []*html.Node
	var scripts, styles []string
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if id := attr(n, "id"); id != "" {
			assert.Nil(t, ids[id], "id %q is used twice", id)
			ids[id] = n
		}
		if attr(n, "data-cv-access-document") != "" {
			roots = append(roots, n)
		}
		for _, a := range n.Attr {
			assert.False(t, a.Key == "style" || strings.HasPrefix(a.Key, "on"), "inline %s= on <%s> breaks the CSP", a.Key, n.Data)
		}
		switch {
		case n.Data == "style":
			t.Error("an inline <style> breaks the CSP")
		case n.Data == "script":
			require.NotEmpty(t, attr(n, "src"), "an inline <script> breaks the CSP")
			assert.True(t, strings.HasPrefix(attr(n, "integrity"), "sha256-"), "script without SRI")
			assert.Contains(t, n.Attr, html.Attribute{Key: "defer"})
			scripts = append(scripts, attr(n, "src"))
		case n.Data == "link" && attr(n, "rel") == "stylesheet" && attr(n, "href") != "/theme.css":
			assert.True(t, strings.HasPrefix(attr(n, "integrity"), "sha256-"), "stylesheet without SRI")
			styles = append(styles, attr(n, "href"))
		}
	})
	require.Len(t, roots, 2)
	for i, want := range []struct{ slug, title, link string }{
		{"report", "annual report", "2 minutes"}, // link_seconds' default, 120
		{"brochure", "brochure", "5 minutes"},
	} {
		root := roots[i]
		assert.Equal(t, want.slug, attr(root, "data-cv-access-document"))
		assert.Equal(t, "cv-access-"+want.slug, attr(root, "id"))
		assert.Equal(t, "/api", attr(root, "data-cv-access-api"), "the default api")
		walk(root, func(n *html.Node) {
			if id := attr(n, "id"); id != "" {
				assert.True(t, strings.HasPrefix(id, "cv-access-"+want.slug), "id %q is not under its form's prefix", id)
			}
			for _, c := range strings.Fields(attr(n, "class")) {
				assert.True(t, strings.HasPrefix(c, "cv-access"), "class %q is not the module's own", c)
			}
			if n.Data == "label" {
				assert.NotNil(t, ids[attr(n, "for")], "label for %q", attr(n, "for"))
			}
		})
		p := "cv-access-" + want.slug + "-"
		assert.Equal(t, "Download the "+want.title, text(ids[p+"download-link"]))
		assert.Contains(t, text(ids[p+"step-download"]), "It works for "+want.link)
		assert.Contains(t, text(ids[p+"step-request"]),
			"I have read the privacy policy (version 2026-11-30) and agree that my details are kept for 180 days.")
	}
	require.NotEmpty(t, scripts)
	require.NotEmpty(t, styles)
	assert.Len(t, slices.Compact(slices.Sorted(slices.Values(scripts))), 1, "one script for every form")
	assert.Len(t, slices.Compact(slices.Sorted(slices.Values(styles))), 1, "one stylesheet for every form")
	for _, asset := range append(scripts, styles...) {
		_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(asset)))
		assert.NoError(t, err, "%s is built", asset)
	}
}

// A shortcode without document= is the document a request without one is
// for: "cv" if listed, else the first listed.
func TestWithoutADocumentTheFunctionsDefault(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct{ documents, want string }{
		"no cv: the first listed": {moduletest.Documents, "Download the annual report"},
		"cv, listed second": {`{"documents": [{"slug": "report", "title": "annual report"}, {"slug": "cv", "title": "CV"}]}`,
			"Download the CV"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			site := moduletest.Minimal()
			site.Documents = tt.documents
			site.Content = map[string]string{"documents.md": "---\ntitle: Documents\n---\n\n{{< cv-access >}}\n"}
			dir, err := build(t, site)
			require.NoError(t, err)
			assert.Contains(t, text(parse(t, dir, "documents")), tt.want)
		})
	}
}

// A site without data/cv_access.json has the functions' own default: the
// one document "cv".
func TestWithoutADataFileTheDocumentCV(t *testing.T) {
	t.Parallel()
	site := moduletest.Minimal()
	site.Documents = ""
	site.Content = map[string]string{"cv.md": "---\ntitle: CV\n---\n\n{{< cv-access document=\"cv\" >}}\n"}
	dir, err := build(t, site)
	require.NoError(t, err)
	assert.Contains(t, text(parse(t, dir, "cv")), "Download the CV")
}

// A site overrides the markup by copying one partial.
func TestASiteOverridesTheMarkupWithOnePartial(t *testing.T) {
	t.Parallel()
	root, err := emulators.FindRoot()
	require.NoError(t, err)
	form, err := os.ReadFile(filepath.Join(root, "hugo-module", "layouts", "_partials", "cv-access", "form.html"))
	require.NoError(t, err)
	site := moduletest.Minimal()
	site.Layouts = map[string]string{"_partials/cv-access/form.html": strings.Replace(string(form),
		"1. Your details", "1. Who is asking", 1)}
	dir, err := build(t, site)
	require.NoError(t, err)
	page := text(parse(t, dir, "documents"))
	assert.Contains(t, page, "1. Who is asking")
	assert.NotContains(t, page, "1. Your details")
}

// What a site gets wrong stops its build, with a message naming what to
// set and where.
func TestMistakesStopTheBuild(t *testing.T) {
	t.Parallel()
	without := func(key string) string {
		var keep []string
		for _, line := range strings.Split(moduletest.Settings, "\n") {
			if !strings.HasPrefix(line, key+" ") {
				keep = append(keep, line)
			}
		}
		return strings.Join(keep, "\n")
	}
	for name, tt := range map[string]struct {
		edit func(*moduletest.Site)
		want []string
	}{
		"no settings": {func(s *moduletest.Site) { s.Settings = "" }, []string{
			"cv-access: set params.cv_access in your site configuration (hugo.toml) with privacy_url, policy_version and retention_days",
			"(on documents.md)"}},
		"no privacy_url": {func(s *moduletest.Site) { s.Settings = without("privacy_url") }, []string{
			"cv-access: set params.cv_access.privacy_url in your site configuration (hugo.toml): the address of your privacy policy"}},
		"no policy_version": {func(s *moduletest.Site) { s.Settings = without("policy_version") }, []string{
			"cv-access: set params.cv_access.policy_version in your site configuration (hugo.toml)", "CV_POLICY_VERSION"}},
		"no retention_days": {func(s *moduletest.Site) { s.Settings = without("retention_days") }, []string{
			"cv-access: set params.cv_access.retention_days in your site configuration (hugo.toml)", "CV_RETENTION_DAYS"}},
		"retention_days not a number": {func(s *moduletest.Site) {
			s.Settings = without("retention_days") + "\nretention_days = \"half a year\"\n"
		}, []string{`cv-access: params.cv_access.retention_days = half a year: want a whole number of days`}},
		"api on another origin": {func(s *moduletest.Site) { s.Settings += "api = \"https://api.example.com\"\n" }, []string{
			`cv-access: params.cv_access.api = "https://api.example.com": want a path on this site`}},
		"api on another host, as a path": {func(s *moduletest.Site) { s.Settings += "api = \"//evil.example/api\"\n" }, []string{
			`cv-access: params.cv_access.api = "//evil.example/api": want a path on this site`}},
		"an unknown document": {func(s *moduletest.Site) {
			s.Content = map[string]string{"documents.md": "---\ntitle: Documents\n---\n\n{{< cv-access document=\"portfolio\" >}}\n"}
		}, []string{`cv-access: no document "portfolio" in data/cv_access.json (it lists "report", "brochure") (on documents.md)`}},
		"a document without a data file": {func(s *moduletest.Site) { s.Documents = "" }, []string{
			`cv-access: no document "report": the site has no data/cv_access.json, so the only document is "cv"`}},
		"a data file without documents": {func(s *moduletest.Site) { s.Documents = `{"docs": []}` }, []string{
			`cv-access: data/cv_access.json has no list "documents" with a document in it`}},
		"an empty list": {func(s *moduletest.Site) { s.Documents = `{"documents": []}` }, []string{
			`cv-access: data/cv_access.json has no list "documents" with a document in it`}},
		"a link lifetime out of range": {func(s *moduletest.Site) {
			s.Documents = strings.Replace(moduletest.Documents, `"link_seconds": 300`, `"link_seconds": 7200`, 1)
		}, []string{`cv-access: data/cv_access.json: document "brochure": link_seconds 7200: want a whole number from 30 to 3600`}},
		"a link lifetime not whole": {func(s *moduletest.Site) {
			s.Documents = strings.Replace(moduletest.Documents, `"link_seconds": 300`, `"link_seconds": 90.5`, 1)
		}, []string{`cv-access: data/cv_access.json: document "brochure": link_seconds 90.5: want a whole number from 30 to 3600`}},
		"a link lifetime in words": {func(s *moduletest.Site) {
			s.Documents = strings.Replace(moduletest.Documents, `"link_seconds": 300`, `"link_seconds": "abc"`, 1)
		}, []string{`cv-access: data/cv_access.json: document "brochure": link_seconds abc: want a whole number from 30 to 3600`}},
		"a slug listed twice": {func(s *moduletest.Site) {
			s.Documents = strings.Replace(moduletest.Documents, `"slug": "brochure"`, `"slug": "report"`, 1)
		}, []string{`cv-access: data/cv_access.json: document 2: slug "report" is listed twice`}},
		"a bad slug on a document no page shows": {func(s *moduletest.Site) {
			s.Documents = strings.Replace(moduletest.Documents, `"slug": "brochure"`, `"slug": "Brochure"`, 1)
			s.Content = map[string]string{"documents.md": "---\ntitle: Documents\n---\n\n{{< cv-access document=\"report\" >}}\n"}
		}, []string{`cv-access: data/cv_access.json: document 2: slug "Brochure"`}},
		"a title with a format character": {func(s *moduletest.Site) {
			s.Documents = strings.Replace(moduletest.Documents, `"title": "brochure"`, `"title": "bro\u202echure"`, 1)
		}, []string{`cv-access: data/cv_access.json: document "brochure": title`, `want 1 to 60 characters of plain text on one line`}},
		"two documents in one shortcode": {func(s *moduletest.Site) {
			s.Content = map[string]string{"documents.md": "---\ntitle: Documents\n---\n\n{{< cv-access \"report\" \"brochure\" >}}\n"}
		}, []string{`cv-access: the shortcode on documents.md takes one document, not 2`}},
		"a title too long": {func(s *moduletest.Site) {
			s.Documents = strings.Replace(moduletest.Documents, `"title": "brochure"`, `"title": "`+strings.Repeat("x", 61)+`"`, 1)
		}, []string{`cv-access: data/cv_access.json: document "brochure": title "xxx`, `want 1 to 60 characters of plain text on one line`}},
		"a title on two lines": {func(s *moduletest.Site) {
			s.Documents = strings.Replace(moduletest.Documents, `"title": "brochure"`, `"title": "bro\u2028chure"`, 1)
		}, []string{`cv-access: data/cv_access.json: document "brochure": title`, `want 1 to 60 characters of plain text on one line`}},
		"a bad slug": {func(s *moduletest.Site) {
			s.Documents = strings.Replace(moduletest.Documents, `"slug": "report"`, `"slug": "Report 2026"`, 1)
			s.Content = map[string]string{"documents.md": "---\ntitle: Documents\n---\n\n{{< cv-access document=\"Report 2026\" >}}\n"}
		}, []string{`cv-access: data/cv_access.json: document 1: slug "Report 2026": want 1 to 32 of a-z, 0-9 and -`}},
		"a misspelt parameter": {func(s *moduletest.Site) {
			s.Content = map[string]string{"documents.md": "---\ntitle: Documents\n---\n\n{{< cv-access doc=\"report\" >}}\n"}
		}, []string{`cv-access: the shortcode on documents.md takes document="<slug>" only, not doc=`}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			site := moduletest.Minimal()
			tt.edit(&site)
			_, err := build(t, site)
			require.Error(t, err, "the build must stop")
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, "ERROR ") && !strings.HasPrefix(line, "ERROR error building site: logged") {
					assert.True(t, strings.HasPrefix(line, "ERROR cv-access: "), "only the module's own messages, not a cascade: %s", line)
				}
			}
			for _, want := range tt.want {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}
