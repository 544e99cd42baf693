package browsertest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/devserver/devtest"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/moduletest"
	"github.com/cv-access/cv-access/functions-src/internal/sitebuild"
)

// The cv-access module on another site: moduletest's minimal site (its
// own layout and a theme hiding generic class names, one page with the
// forms of two documents, its own data/cv_access.json) built with the
// pinned Hugo and served by `make dev`'s functions, which read the same
// document list. Two visitors each ask for one document on the same page
// and each downloads that document's own file, and only it.
func TestModuleOnAnotherSite(t *testing.T) {
	root, err := emulators.FindRoot()
	require.NoError(t, err)
	chromium(t)
	src := filepath.Join(t.TempDir(), "site")
	require.NoError(t, moduletest.Minimal().Write(root, src))
	public := filepath.Join(t.TempDir(), "public")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, sitebuild.BuildSite(ctx, root, src, public, map[string]string{"HUGO_MODULE_PROXY": "off"}))

	// Each document's own file, where the local backend serves it from
	// (<CV_DATA_DIR>/private/<key>), so the downloads tell them apart.
	data := t.TempDir()
	files := map[string][]byte{
		"annual-report.pdf": []byte("%PDF-1.4\n% the annual report, and nothing else\n%%EOF\n"),
		"brochure.pdf":      []byte("%PDF-1.4\n% the brochure, and nothing else\n%%EOF\n"),
	}
	require.NoError(t, os.MkdirAll(filepath.Join(data, "private"), 0o700))
	for name, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(data, "private", name), b, 0o600))
	}
	dev := devtest.StartWith(t, public, map[string]string{
		"CV_DATA_DIR":       data,
		"CV_DOCUMENTS_FILE": filepath.Join(src, "data", "cv_access.json"),
	})

	report := visit(t, dev, "cv-access-report-")
	brochure := visit(t, dev, "cv-access-brochure-")
	for _, v := range []struct {
		p     *page
		email string
	}{{report, "ada@example.com"}, {brochure, "grace@example.com"}} {
		v.p.fillFormOn("/documents/", "Visitor", v.email)
		v.p.run(chromedp.Click(v.p.id("request-form")+" button[type=submit]", chromedp.ByQuery),
			chromedp.WaitVisible(v.p.id("step-verify"), chromedp.ByQuery))
		assert.Equal(t, "otp", v.p.focused(), "focus moves to this form's code input")
	}
	// The script is on the page once per form: each form must still be
	// started once, or a submit would send two requests.
	msgs, err := embedded.ReadOutbox(dev.Config.OutboxDir, 0)
	require.NoError(t, err)
	sent := map[string]int{}
	for _, m := range msgs {
		sent[m.To]++
	}
	assert.Equal(t, map[string]int{"<ada@example.com>": 1, "<grace@example.com>": 1}, sent, "one code email per request")
	report.axe("two forms, one of them at its code step")

	for _, v := range []struct {
		p     *page
		email string
		title string
		file  string
	}{{report, "ada@example.com", "annual report", "annual-report.pdf"}, {brochure, "grace@example.com", "brochure", "brochure.pdf"}} {
		v.p.run(chromedp.SendKeys(v.p.id("otp"), dev.CodeTo(t, v.email), chromedp.ByQuery),
			chromedp.Click(v.p.id("verify-form")+" button[type=submit]", chromedp.ByQuery),
			chromedp.WaitVisible(v.p.id("step-download"), chromedp.ByQuery))
		assert.Equal(t, "download-link", v.p.focused())
		assert.Equal(t, "Download the "+v.title, v.p.text(v.p.id("download-link")))
		v.p.axe("the download step of the " + v.title)
		v.p.run(chromedp.Click(v.p.id("download-link"), chromedp.ByQuery))
		got := v.p.downloaded()
		assert.True(t, bytes.Equal(files[v.file], got), "the %s's request gives the %s's file, not %.50q", v.title, v.title, got)
		v.p.onlySameOrigin()
	}

	// The other form on each page was never touched: still at its first step.
	var other bool
	report.run(chromedp.Evaluate(`!document.getElementById("cv-access-brochure-step-request").hidden`, &other))
	assert.True(t, other, "a form's steps move alone")
}
