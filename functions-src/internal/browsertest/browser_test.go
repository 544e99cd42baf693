package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/devserver/devtest"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
)

// page is one browser tab on a fresh dev server.
type page struct {
	t        *testing.T
	ctx      context.Context
	dev      *devtest.Env
	root     string
	download string // the folder downloads land in
	// form is the id prefix of the form under test ("cv-access-cv-", the
	// CV page's; the module prefixes each form's ids with its document's).
	form string

	mu       sync.Mutex
	requests []string // every URL the page asked for
}

func chromium(t *testing.T) string {
	for _, p := range []string{os.Getenv("CV_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if os.Getenv("CV_REQUIRE_BROWSER") != "" {
		t.Fatal("Debian's chromium is not installed: apt-get install chromium")
	}
	t.Skip("chromium is not installed; `.ci/run` installs it")
	return ""
}

// open starts a dev server over the built site and a headless Chromium
// with a clean profile, and saves a screenshot if the test fails.
func open(t *testing.T) *page {
	t.Helper()
	root, err := emulators.FindRoot()
	require.NoError(t, err)
	site := filepath.Join(root, "site", "public")
	if _, err := os.Stat(filepath.Join(site, "cv", "index.html")); err != nil {
		t.Fatalf("site/public is not built: run `make site` (%v)", err)
	}
	chromium(t) // skips before the server starts where there is none
	// The site's own document list, as `make dev` reads it.
	dev := devtest.StartWith(t, site, map[string]string{
		"CV_DOCUMENTS_FILE": filepath.Join(root, "site", "data", "cv_access.json")})
	return visit(t, dev, "cv-access-cv-")
}

// visit opens a headless Chromium with a clean profile (a visitor of its
// own) on a running dev server, for the form whose ids start with form,
// and saves a screenshot if the test fails.
func visit(t *testing.T, dev *devtest.Env, form string) *page {
	t.Helper()
	root, err := emulators.FindRoot()
	require.NoError(t, err)
	exe := chromium(t)
	p := &page{t: t, dev: dev, root: root, download: t.TempDir(), form: form}
	// Chromium's helpers may still write to the profile as it exits, so
	// the profile is not a t.TempDir (which must be empty to pass cleanup).
	profile, err := os.MkdirTemp("", "cv-chromium-")
	require.NoError(t, err)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-quic", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	// A guard against a page that hangs, not a speed check: under
	// make test's full load (infratest's Terraform and moto beside it on
	// two cores) a page that takes seconds alone once ran past 90 s.
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	p.ctx = ctx
	t.Cleanup(func() {
		if t.Failed() {
			p.screenshot("failed")
		}
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		_ = os.RemoveAll(profile)
	})
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			p.mu.Lock()
			p.requests = append(p.requests, e.Request.URL)
			p.mu.Unlock()
		}
	})
	p.run(network.Enable(),
		browser.SetDownloadBehavior(browser.SetDownloadBehaviorBehaviorAllow).WithDownloadPath(p.download))
	return p
}

func (p *page) run(actions ...chromedp.Action) {
	p.t.Helper()
	require.NoError(p.t, chromedp.Run(p.ctx, actions...))
}

// screenshot saves the page into test-artifacts/ (or CV_SCREENSHOTS).
func (p *page) screenshot(step string) {
	dir := os.Getenv("CV_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(p.root, "test-artifacts")
	}
	var png []byte
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil { // 100 makes a PNG, not a JPEG
		p.t.Logf("no screenshot: %v", err)
		return
	}
	name := regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(p.t.Name()+"-"+step, "-") + ".png"
	if err := os.MkdirAll(dir, 0o755); err == nil && os.WriteFile(filepath.Join(dir, name), png, 0o644) == nil {
		p.t.Logf("screenshot: %s", filepath.Join(dir, name))
	}
}

func (p *page) text(sel string) string {
	p.t.Helper()
	var s string
	p.run(chromedp.Text(sel, &s, chromedp.ByQuery))
	return strings.TrimSpace(s)
}

// focused is the id of the element with the focus, without the form's
// prefix (p.form).
func (p *page) focused() string {
	p.t.Helper()
	var id string
	p.run(chromedp.Evaluate(`document.activeElement ? document.activeElement.id : ""`, &id))
	return strings.TrimPrefix(id, p.form)
}

// id is the selector of the form's element name: the cv-access module
// prefixes every id in a form with the form's own (p.form).
func (p *page) id(name string) string { return "#" + p.form + name }

func (p *page) fillForm(name, email string) {
	p.t.Helper()
	p.fillFormOn("/cv/", name, email)
}

// fillFormOn fills in p's form on the page at path, and ticks consent.
func (p *page) fillFormOn(path, name, email string) {
	p.t.Helper()
	p.run(
		chromedp.Navigate(p.dev.URL+path),
		chromedp.WaitVisible(p.id("request-form"), chromedp.ByQuery),
		chromedp.SendKeys(p.id("name"), name, chromedp.ByQuery),
		chromedp.SendKeys(p.id("email"), email, chromedp.ByQuery),
		chromedp.Click(p.id("consent"), chromedp.ByQuery),
	)
}

// downloaded waits for the one file the browser saved.
func (p *page) downloaded() []byte {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(p.download)
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".crdownload") {
				b, err := os.ReadFile(filepath.Join(p.download, e.Name()))
				require.NoError(p.t, err)
				return b
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatal("nothing was downloaded")
	return nil
}

// axe runs the axe-core audit (npm axe-core) on the page as it is now.
func (p *page) axe(step string) {
	p.t.Helper()
	src, err := os.ReadFile(filepath.Join(p.root, "node_modules", "axe-core", "axe.min.js"))
	require.NoError(p.t, err, "axe-core is missing: run `npm ci`")
	var violations []struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target []string `json:"target"`
		} `json:"nodes"`
	}
	p.run(
		chromedp.Evaluate(string(src), nil),
		chromedp.Evaluate(`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations)`, &violations,
			func(e *runtime.EvaluateParams) *runtime.EvaluateParams { return e.WithAwaitPromise(true) }),
	)
	for _, v := range violations {
		var where []string
		for _, n := range v.Nodes {
			where = append(where, strings.Join(n.Target, " "))
		}
		p.t.Errorf("axe on %s: %s (%s): %s at %v", step, v.ID, v.Impact, v.Help, where)
	}
}

func (p *page) onlySameOrigin() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	require.NotEmpty(p.t, p.requests)
	for _, u := range p.requests {
		// A blob: URL the page made itself (the owner's CSV) names its origin.
		if !strings.HasPrefix(strings.TrimPrefix(u, "blob:"), p.dev.URL+"/") && !strings.HasPrefix(u, "data:") {
			p.t.Errorf("the page asked another origin: %s", u)
		}
	}
}

func shot(p *page, step string) {
	if os.Getenv("CV_SCREENSHOTS") != "" {
		p.screenshot(step)
	}
}

func TestHappyPath(t *testing.T) {
	p := open(t)
	p.fillForm("Ada Lovelace", "ada@example.com")
	p.run(chromedp.SendKeys(p.id("phone"), "+44 7400 900123", chromedp.ByQuery))
	shot(p, "1-form")
	p.axe("the form")
	p.run(chromedp.Click(p.id("request-form")+" button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible(p.id("step-verify"), chromedp.ByQuery))
	assert.Equal(t, "otp", p.focused(), "focus moves to the code input")
	assert.Contains(t, p.text(p.id("verify-sent")), "ada@example.com")
	shot(p, "2-verify")
	p.axe("the verify step")

	p.run(chromedp.SendKeys(p.id("otp"), p.dev.LastCode(t), chromedp.ByQuery),
		chromedp.Click(p.id("verify-form")+" button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible(p.id("step-download"), chromedp.ByQuery))
	assert.Equal(t, "download-link", p.focused())
	assert.Contains(t, p.text(p.id("step-download")), "2 minutes")
	assert.Contains(t, p.text(p.id("download-expiry")), "expires in")
	shot(p, "3-download")
	p.axe("the download step")

	p.run(chromedp.Click(p.id("download-link"), chromedp.ByQuery))
	assert.Equal(t, embedded.SampleCV, p.downloaded(), "the saved file is the sample CV")
	p.onlySameOrigin()
}

// The site's second document, on its own page: its request downloads it,
// not the CV.
func TestPortfolioPage(t *testing.T) {
	p := open(t)
	p.form = "cv-access-portfolio-"
	p.fillFormOn("/portfolio/", "Ada Lovelace", "ada@example.com")
	p.run(chromedp.Click(p.id("request-form")+" button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible(p.id("step-verify"), chromedp.ByQuery))
	assert.Equal(t, "otp", p.focused())
	p.run(chromedp.SendKeys(p.id("otp"), p.dev.LastCode(t), chromedp.ByQuery),
		chromedp.Click(p.id("verify-form")+" button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible(p.id("step-download"), chromedp.ByQuery))
	assert.Equal(t, "Download the portfolio", p.text(p.id("download-link")))
	p.axe("the portfolio's download step")
	p.run(chromedp.Click(p.id("download-link"), chromedp.ByQuery))
	assert.Equal(t, embedded.SamplePDF("Sample document: portfolio"), p.downloaded(),
		"the portfolio's sample (make dev writes one per document), not the CV")
	p.onlySameOrigin()
}

func TestInlineValidation(t *testing.T) {
	p := open(t)
	p.run(chromedp.Navigate(p.dev.URL+"/cv/"), chromedp.WaitVisible(p.id("request-form"), chromedp.ByQuery),
		chromedp.SendKeys(p.id("email"), "not-an-address", chromedp.ByQuery),
		chromedp.Click(p.id("request-form")+" button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible(p.id("name-error"), chromedp.ByQuery))
	assert.Equal(t, "Enter your name.", p.text(p.id("name-error")))
	assert.Contains(t, p.text(p.id("email-error")), "like name@example.com")
	assert.Contains(t, p.text(p.id("consent-error")), "privacy policy")
	assert.Equal(t, "name", p.focused(), "focus goes to the first field in error")
	var invalid string
	p.run(chromedp.AttributeValue(p.id("email"), "aria-invalid", &invalid, nil, chromedp.ByQuery))
	assert.Equal(t, "true", invalid)
	p.axe("the form with errors")
	msgs, err := embedded.ReadOutbox(p.dev.Config.OutboxDir, 0)
	require.NoError(t, err)
	assert.Empty(t, msgs)

	// The server's own field errors show the same way (a number without
	// its country code passes the page's checks).
	p.run(chromedp.SendKeys(p.id("name"), "Ada", chromedp.ByQuery),
		chromedp.SetValue(p.id("email"), "ada@example.com", chromedp.ByQuery),
		chromedp.SendKeys(p.id("phone"), "07400 900123", chromedp.ByQuery),
		chromedp.Click(p.id("consent"), chromedp.ByQuery),
		chromedp.Click(p.id("request-form")+" button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible(p.id("phone-error"), chromedp.ByQuery))
	assert.Contains(t, p.text(p.id("phone-error")), "country code")
	assert.Equal(t, "phone", p.focused())
}

func TestWrongAndExpiredCodes(t *testing.T) {
	p := open(t)
	p.fillForm("Ada Lovelace", "ada@example.com")
	p.run(chromedp.Click(p.id("request-form")+" button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible(p.id("step-verify"), chromedp.ByQuery))
	code := p.dev.LastCode(t)
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	p.run(chromedp.SendKeys(p.id("otp"), wrong, chromedp.ByQuery),
		chromedp.Click(p.id("verify-form")+" button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible(p.id("otp-error"), chromedp.ByQuery))
	assert.Equal(t, "That code is not right. 4 attempts left.", p.text(p.id("otp-error")))
	assert.Eventually(t, func() bool { return strings.Contains(p.text(p.id("status")), "4 attempts left") }, 3*time.Second, 50*time.Millisecond,
		"the live region announces it")
	assert.Equal(t, "otp", p.focused())
	p.axe("a wrong code")

	p.dev.Clock.Advance(11 * time.Minute)
	p.run(chromedp.SetValue(p.id("otp"), "", chromedp.ByQuery), chromedp.SendKeys(p.id("otp"), code, chromedp.ByQuery),
		chromedp.Click(p.id("verify-form")+" button[type=submit]", chromedp.ByQuery))
	assert.Eventually(t, func() bool { return strings.Contains(p.text(p.id("otp-error")), "expired") }, 3*time.Second, 50*time.Millisecond)
	assert.Contains(t, p.text(p.id("otp-error")), "This code has expired. Please request a new one.")
}

func TestRateLimitedAnswerIsHuman(t *testing.T) {
	p := open(t)
	for i := range 5 { // the address's codes for the day
		p.fillForm("Ada Lovelace", "ada@example.com")
		p.run(chromedp.Click(p.id("request-form")+" button[type=submit]", chromedp.ByQuery),
			chromedp.WaitVisible(p.id("step-verify"), chromedp.ByQuery))
		_ = i
	}
	p.fillForm("Ada Lovelace", "ada@example.com")
	p.run(chromedp.Click(p.id("request-form")+" button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible(p.id("request-error"), chromedp.ByQuery))
	msg := p.text(p.id("request-error"))
	assert.Contains(t, msg, "Too many codes were sent to this email address today.")
	assert.Regexp(t, `try again in [0-9]+ (hours|minutes|seconds)`, msg)
	shot(p, "rate-limited")
}

func TestKeyboardOnly(t *testing.T) {
	p := open(t)
	p.run(chromedp.Navigate(p.dev.URL+"/cv/"), chromedp.WaitVisible(p.id("request-form"), chromedp.ByQuery))
	tab := func() { p.run(chromedp.KeyEvent(kb.Tab)) }
	typeText := func(s string) { p.run(chromedp.KeyEvent(s)) }

	for i := 0; p.focused() != "name"; i++ {
		require.Less(t, i, 20, "Tab never reached the name field")
		tab()
	}
	typeText("Ada Lovelace")
	tab()
	require.Equal(t, "email", p.focused())
	typeText("ada@example.com")
	for _, want := range []string{"phone", "company", "location", "consent"} {
		tab()
		require.Equal(t, want, p.focused(), "the honeypot is never reached by Tab")
	}
	typeText(" ")
	var checked bool
	p.run(chromedp.Evaluate(`document.getElementById("`+p.form+`consent").checked`, &checked))
	require.True(t, checked, "Space ticks the consent box")
	tab() // the privacy policy link in the consent text
	tab() // the submit button
	typeText(kb.Enter)
	p.run(chromedp.WaitVisible(p.id("step-verify"), chromedp.ByQuery))
	require.Equal(t, "otp", p.focused())
	typeText(p.dev.LastCode(t))
	typeText(kb.Enter)
	p.run(chromedp.WaitVisible(p.id("step-download"), chromedp.ByQuery))
	require.Equal(t, "download-link", p.focused())
	typeText(kb.Enter)
	assert.Equal(t, embedded.SampleCV, p.downloaded(), "the whole path works by keyboard alone")
}

func TestOtherPagesAndNoThirdParty(t *testing.T) {
	p := open(t)
	for _, path := range []string{"/", "/privacy/", "/no-such-page/"} {
		p.run(chromedp.Navigate(p.dev.URL+path), chromedp.WaitReady("main", chromedp.ByQuery))
		p.axe(path)
	}
	p.onlySameOrigin()
}

func TestWithoutJavaScript(t *testing.T) {
	p := open(t)
	p.run(emulation.SetScriptExecutionDisabled(true),
		chromedp.Navigate(p.dev.URL+"/cv/"),
		chromedp.WaitVisible(".cv-access-notice", chromedp.ByQuery))
	assert.Contains(t, p.text(".cv-access-notice"), "This form needs JavaScript")
	var visible bool
	p.run(chromedp.Evaluate(`!!document.getElementById("`+p.form+`request-form").offsetParent`, &visible))
	assert.False(t, visible, "without JavaScript the form is not offered (it would post nowhere)")
	shot(p, "no-javascript")
}
