package browsertest

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/devserver/devtest"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
)

// post sends a JSON body to the dev server as the site's own page would.
func post(t *testing.T, dev *devtest.Env, path string, body any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, dev.URL+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", dev.URL)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// visitor is one request for a document (the CV when Document is empty),
// made over HTTP as the document's page makes it.
type visitor struct {
	Name, Email, Phone, Company, Location, Document string
}

// ask sends the visitor's request and, when verify is set, enters the
// code from their email so that they get a link.
func (v visitor) ask(t *testing.T, dev *devtest.Env, verify bool) {
	t.Helper()
	body := map[string]any{"name": v.Name, "email": v.Email,
		"phone": v.Phone, "company": v.Company, "location": v.Location, "consent": true}
	if v.Document != "" {
		body["document"] = v.Document
	}
	status, out := post(t, dev, "/api/request-access", body)
	require.Equal(t, http.StatusOK, status, out)
	if !verify {
		return
	}
	status, out = post(t, dev, "/api/verify-access", map[string]any{"requestId": out["requestId"], "otp": dev.LastCode(t)})
	require.Equal(t, http.StatusOK, status, out)
	require.NotEmpty(t, out["redirectUrl"])
}

// ownerSignsIn opens the owner's page, asks for a code for email and waits
// for the code step.
func (p *page) ownerSignsIn(email string) {
	p.t.Helper()
	p.run(chromedp.Navigate(p.dev.URL+"/owner/"),
		chromedp.WaitVisible("#step-signin", chromedp.ByQuery),
		chromedp.SendKeys("#email", email, chromedp.ByQuery),
		chromedp.Click("#signin-form button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible("#step-code", chromedp.ByQuery))
}

func (p *page) enterOwnerCode(code string) {
	p.t.Helper()
	p.run(chromedp.SetValue("#otp", "", chromedp.ByQuery),
		chromedp.SendKeys("#otp", code, chromedp.ByQuery),
		chromedp.Click("#code-form button[type=submit]", chromedp.ByQuery))
}

// eventually waits for a JavaScript condition to hold.
func (p *page) eventually(js, what string) {
	p.t.Helper()
	assert.Eventually(p.t, func() bool {
		var ok bool
		return chromedp.Run(p.ctx, chromedp.Evaluate(js, &ok)) == nil && ok
	}, 5*time.Second, 50*time.Millisecond, what)
}

func (p *page) ownerCookie() *network.Cookie {
	p.t.Helper()
	var cookies []*network.Cookie
	p.run(chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{p.dev.URL + "/api/owner"}).Do(ctx)
		return err
	}))
	for _, c := range cookies {
		if c.Name == "cv_owner" {
			return c
		}
	}
	return nil
}

func TestOwnerFullPath(t *testing.T) {
	p := open(t)
	// Two requests from one inbox, spelled two ways: the first got a link,
	// the second (a minute later, so listed first) waits for its code. The
	// name holds markup, which the page must show as text.
	ada := visitor{Name: `Ada <b>Lovelace</b>`, Email: "ada@example.com", Phone: "+44 7400 900123",
		Company: "Analytical Engines", Location: "London"}
	ada.ask(t, p.dev, true)
	p.dev.Clock.Advance(time.Minute)
	again := visitor{Name: "Ada L.", Email: "Ada+CV@Example.com", Company: "=1+1", Document: "portfolio"} // kept as ada+cv@example.com
	again.ask(t, p.dev, false)

	p.run(chromedp.Navigate(p.dev.URL+"/owner/"), chromedp.WaitVisible("#step-signin", chromedp.ByQuery))
	assert.Empty(t, p.text("#status"), "a signed-out owner is shown the sign-in without fuss")
	shot(p, "1-sign-in")
	p.axe("the sign-in step")

	p.run(chromedp.SendKeys("#email", p.dev.Config.OwnerEmail, chromedp.ByQuery),
		chromedp.Click("#signin-form button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible("#step-code", chromedp.ByQuery))
	assert.Equal(t, "otp", p.focused(), "focus moves to the code input")
	assert.Equal(t, "If "+p.dev.Config.OwnerEmail+" is the owner's address, a code is on its way. It works for 10 minutes.",
		p.text("#code-sent"))
	assert.Nil(t, p.ownerCookie(), "no cookie before the code")
	p.axe("the code step")

	p.enterOwnerCode(p.dev.OwnerCode(t))
	p.run(chromedp.WaitVisible("#step-list", chromedp.ByQuery))
	assert.Equal(t, "step-list-title", p.focused())
	c := p.ownerCookie()
	require.NotNil(t, c, "signed in with a cookie")
	assert.True(t, c.HTTPOnly, "the page's scripts cannot read the session")
	assert.Equal(t, network.CookieSameSiteStrict, c.SameSite)
	assert.Equal(t, "/api/owner", c.Path, "sent to the owner function only")
	assert.InDelta(t, float64(time.Now().Add(12*time.Hour).Unix()), c.Expires, 60, "12 hours at most")
	var jsCookies string
	p.run(chromedp.Evaluate(`document.cookie`, &jsCookies))
	assert.Empty(t, jsCookies)

	// Newest first, every field, the visitor's markup shown as text.
	var names []string
	p.run(chromedp.Evaluate(`Array.from(document.querySelectorAll("#requests h3"), h => h.textContent)`, &names))
	assert.Equal(t, []string{"Ada L.", `Ada <b>Lovelace</b>`}, names)
	assert.Zero(t, p.count("#requests b"), "visitor text never becomes markup")
	first, second := p.text("#requests li:nth-child(1)"), p.text("#requests li:nth-child(2)")
	assert.Contains(t, first, "ada+cv@example.com")
	assert.Contains(t, first, "Code sent, not used")
	assert.Contains(t, first, "=1+1")
	for _, want := range []string{"ada@example.com", "+447400900123", "Analytical Engines", "London", "Got a link",
		"policy 2026-11-30", "Verified", "Deleted by", "CV", "UTC"} {
		assert.Contains(t, second, want)
	}
	var docs []string
	p.run(chromedp.Evaluate(`Array.from(document.querySelectorAll("#requests li"), li => {
		const dt = Array.from(li.querySelectorAll("dt")).find(d => d.textContent === "Document");
		return dt ? dt.nextElementSibling.textContent : "";
	})`, &docs))
	assert.Equal(t, []string{"portfolio", "CV"}, docs, "each card names its document by its title (data/cv_access.json)")
	assert.Contains(t, p.text("#list-summary"), "2 requests are held.")
	assert.Contains(t, p.text("#list-summary"), "12 hours")
	shot(p, "2-list")
	p.axe("the list")

	// The CSV: fetched with POST, saved from a Blob URL under the CSP.
	p.run(chromedp.Click("#csv", chromedp.ByQuery))
	rows, err := csv.NewReader(bytes.NewReader(p.downloaded())).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 3, "a header and two requests")
	assert.Equal(t, []string{"request_id", "created_at", "status", "name", "email", "phone", "company", "location",
		"consent_policy_version", "consent_at", "verified_at", "delete_at", "document"}, rows[0])
	// Oldest first, as `cv-owner list -format csv` writes it.
	assert.Equal(t, []string{"ada@example.com", "ada+cv@example.com"}, []string{rows[1][4], rows[2][4]})
	assert.Equal(t, `Ada <b>Lovelace</b>`, rows[1][3])
	assert.Equal(t, "'=1+1", rows[2][6], "the CSV is safe to open in a spreadsheet")
	entries, err := os.ReadDir(p.download)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "cv-access-requests.csv", entries[0].Name())
	p.eventually(`document.getElementById("status").textContent.includes("CSV is downloaded")`, "the download is announced")

	// Erase asks first, in the page; Cancel gives the focus back.
	p.run(chromedp.Click("#erase-0", chromedp.ByQuery), chromedp.WaitVisible("#confirm", chromedp.ByQuery))
	assert.Equal(t, "confirm-question", p.focused())
	assert.Contains(t, p.text("#confirm-question"), "ada+cv@example.com")
	var label string
	p.run(chromedp.Evaluate(`document.getElementById("erase-0").textContent`, &label))
	assert.Equal(t, "Erase every request from ada+cv@example.com", label, "each Erase names whose requests")
	var expanded string
	p.run(chromedp.AttributeValue("#erase-0", "aria-expanded", &expanded, nil, chromedp.ByQuery))
	assert.Equal(t, "true", expanded, "the Erase button says its question is open")
	shot(p, "3-confirm")
	p.axe("the erase confirmation")
	p.run(chromedp.Click("#confirm-cancel", chromedp.ByQuery), chromedp.WaitNotVisible("#confirm", chromedp.ByQuery))
	assert.Equal(t, "erase-0", p.focused())
	p.run(chromedp.AttributeValue("#erase-0", "aria-expanded", &expanded, nil, chromedp.ByQuery))
	assert.Equal(t, "false", expanded)
	assert.Equal(t, 2, p.count("#requests li"), "Cancel erases nothing")

	p.run(chromedp.Click("#erase-0", chromedp.ByQuery), chromedp.WaitVisible("#confirm", chromedp.ByQuery),
		chromedp.Click("#confirm-erase", chromedp.ByQuery),
		chromedp.WaitVisible("#list-empty", chromedp.ByQuery))
	assert.Contains(t, p.text("#list-summary"), "Erased 2 requests made with ada+cv@example.com.", "every spelling of the inbox")
	assert.Contains(t, p.text("#list-empty"), "No requests are held")
	assert.Zero(t, p.count("#requests li"))
	assert.Equal(t, "step-list-title", p.focused())
	p.eventually(`document.getElementById("status").textContent.includes("Erased 2 requests")`, "the erasure is announced")
	p.axe("the empty list")

	p.run(chromedp.Click("#signout", chromedp.ByQuery), chromedp.WaitVisible("#step-signin", chromedp.ByQuery))
	assert.Equal(t, "step-signin-title", p.focused())
	p.eventually(`document.getElementById("status").textContent === "Signed out."`, "sign-out is announced")
	assert.Nil(t, p.ownerCookie(), "sign-out ends the cookie")
	p.run(chromedp.Reload(), chromedp.WaitVisible("#step-signin", chromedp.ByQuery))
	var listShown bool
	p.run(chromedp.Evaluate(`!document.getElementById("step-list").hidden`, &listShown))
	assert.False(t, listShown, "after sign-out a reload asks to sign in again")
	p.onlySameOrigin()
}

// count returns how many elements match sel.
func (p *page) count(sel string) int {
	p.t.Helper()
	var n int
	p.run(chromedp.Evaluate(`document.querySelectorAll(`+jsString(sel)+`).length`, &n))
	return n
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestOwnerWrongAndExpiredCodes(t *testing.T) {
	p := open(t)
	p.ownerSignsIn(p.dev.Config.OwnerEmail)
	code := p.dev.OwnerCode(t)
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	p.enterOwnerCode(wrong)
	p.run(chromedp.WaitVisible("#otp-error", chromedp.ByQuery))
	assert.Equal(t, "That code is not right. 4 attempts left.", p.text("#otp-error"))
	p.eventually(`document.getElementById("status").textContent.includes("4 attempts left")`, "the live region announces it")
	assert.Equal(t, "otp", p.focused())
	var invalid string
	p.run(chromedp.AttributeValue("#otp", "aria-invalid", &invalid, nil, chromedp.ByQuery))
	assert.Equal(t, "true", invalid)
	shot(p, "wrong-code")
	p.axe("a wrong code")

	p.dev.Clock.Advance(11 * time.Minute)
	p.enterOwnerCode(code)
	p.eventually(`document.getElementById("otp-error").textContent.includes("expired")`, "an expired code is named")
	assert.Equal(t, "This code has expired. Please start again for a new code.", p.text("#otp-error"))
	var disabled bool
	p.run(chromedp.Evaluate(`document.querySelector("#code-form button[type=submit]").disabled`, &disabled))
	assert.True(t, disabled, "a dead code cannot be tried again")
	p.axe("an expired code")

	// Start again keeps the address, and a new code signs in.
	p.run(chromedp.Click("#restart", chromedp.ByQuery), chromedp.WaitVisible("#step-signin", chromedp.ByQuery))
	assert.Equal(t, "step-signin-title", p.focused())
	var email string
	p.run(chromedp.Value("#email", &email, chromedp.ByQuery))
	assert.Equal(t, p.dev.Config.OwnerEmail, email)
	p.run(chromedp.Click("#signin-form button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible("#step-code", chromedp.ByQuery))
	p.enterOwnerCode(p.dev.OwnerCode(t))
	p.run(chromedp.WaitVisible("#list-empty", chromedp.ByQuery))
	assert.Contains(t, p.text("#list-empty"), "No requests are held")
}

// Five wrong codes lock the sign-in: the page says so and offers only a
// new start.
func TestOwnerLockedCode(t *testing.T) {
	p := open(t)
	p.ownerSignsIn(p.dev.Config.OwnerEmail)
	wrong := "000000"
	if p.dev.OwnerCode(t) == wrong {
		wrong = "000001"
	}
	for left := 4; left >= 1; left-- {
		p.enterOwnerCode(wrong)
		p.eventually(`document.getElementById("otp-error").textContent.includes("`+strconv.Itoa(left)+` attempt")`, "the attempts count down")
	}
	p.enterOwnerCode(wrong)
	p.eventually(`document.getElementById("otp-error").textContent.includes("no attempts are left")`, "the last attempt")
	assert.Equal(t, "That code is not right, and no attempts are left. Please start again for a new code.", p.text("#otp-error"))
	var disabled bool
	p.run(chromedp.Evaluate(`document.querySelector("#code-form button[type=submit]").disabled`, &disabled))
	assert.True(t, disabled, "a locked code cannot be tried again")
	shot(p, "locked")
	p.axe("a locked code")
}

// Whatever address is typed, the page and the function answer alike, and
// only the owner's address is ever sent a code.
func TestOwnerSignInSaysNothingAboutTheAddress(t *testing.T) {
	p := open(t)
	p.ownerSignsIn("someone@example.com")
	assert.Equal(t, "If someone@example.com is the owner's address, a code is on its way. It works for 10 minutes.",
		p.text("#code-sent"))
	p.enterOwnerCode("123456")
	p.run(chromedp.WaitVisible("#otp-error", chromedp.ByQuery))
	assert.NotEmpty(t, p.text("#otp-error"))
	p.dev.Notifications.Wait()
	msgs, err := embedded.ReadOutbox(p.dev.Config.OutboxDir, 0)
	require.NoError(t, err)
	assert.Empty(t, msgs, "nobody is sent anything")

	stranger, strangerOut := post(t, p.dev, "/api/owner", map[string]any{"action": "sign-in", "email": "someone.else@example.com"})
	owner, ownerOut := post(t, p.dev, "/api/owner", map[string]any{"action": "sign-in", "email": p.dev.Config.OwnerEmail})
	assert.Equal(t, owner, stranger)
	assert.Equal(t, ownerOut["message"], strangerOut["message"])
	assert.Equal(t, ownerOut["expiresIn"], strangerOut["expiresIn"])
	assert.Regexp(t, `^owner-[0-9a-f-]{36}$`, strangerOut["requestId"])
	assert.Regexp(t, `^owner-[0-9a-f-]{36}$`, ownerOut["requestId"])
	assert.NotEmpty(t, p.dev.OwnerCode(t), "the owner's own address is sent a code")
}

func TestOwnerKeyboardOnly(t *testing.T) {
	p := open(t)
	visitor{Name: "Ada Lovelace", Email: "ada@example.com"}.ask(t, p.dev, true)
	p.run(chromedp.Navigate(p.dev.URL+"/owner/"), chromedp.WaitVisible("#step-signin", chromedp.ByQuery))
	tab := func() { p.run(chromedp.KeyEvent(kb.Tab)) }
	typeText := func(s string) { p.run(chromedp.KeyEvent(s)) }
	tabTo := func(id string) {
		t.Helper()
		for i := 0; p.focused() != id; i++ {
			require.Less(t, i, 20, "Tab never reached #%s", id)
			tab()
		}
	}

	tabTo("email")
	typeText(p.dev.Config.OwnerEmail)
	typeText(kb.Enter)
	p.run(chromedp.WaitVisible("#step-code", chromedp.ByQuery))
	require.Equal(t, "otp", p.focused())
	typeText(p.dev.OwnerCode(t))
	typeText(kb.Enter)
	p.run(chromedp.WaitVisible("#step-list", chromedp.ByQuery))
	require.Equal(t, "step-list-title", p.focused())

	tab()
	require.Equal(t, "csv", p.focused())
	typeText(kb.Enter)
	assert.Contains(t, string(p.downloaded()), "ada@example.com")

	tabTo("erase-0")
	typeText(kb.Enter)
	p.run(chromedp.WaitVisible("#confirm", chromedp.ByQuery))
	require.Equal(t, "confirm-question", p.focused())
	tab()
	require.Equal(t, "confirm-erase", p.focused())
	typeText(kb.Enter)
	p.run(chromedp.WaitVisible("#list-empty", chromedp.ByQuery))
	require.Equal(t, "step-list-title", p.focused())

	tab() // the CSV button is disabled with nothing to export
	require.Equal(t, "signout", p.focused())
	typeText(kb.Enter)
	p.run(chromedp.WaitVisible("#step-signin", chromedp.ByQuery))
	assert.Equal(t, "step-signin-title", p.focused())
}
