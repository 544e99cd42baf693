package devserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/devserver/devtest"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
)

type devEnv struct{ *devtest.Env }

func startDev(t *testing.T, siteDir string) *devEnv { return &devEnv{devtest.Start(t, siteDir)} }

type answer struct {
	Status     int
	Header     http.Header
	Body       map[string]any
	RetryAfter string
}

func (d *devEnv) post(t *testing.T, path, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", d.URL) // as the site's own page sends it
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{Status: resp.StatusCode, Header: resp.Header, RetryAfter: resp.Header.Get("Retry-After")}
	require.NoError(t, json.Unmarshal(raw, &a.Body), "body: %s", raw)
	return a
}

func (d *devEnv) requestAccess(t *testing.T, form string) (string, string) {
	t.Helper()
	a := d.post(t, "/api/request-access", form)
	require.Equal(t, 200, a.Status, a.Body)
	id, _ := a.Body["requestId"].(string)
	require.NotEmpty(t, id)
	return id, d.lastCode(t)
}

func (d *devEnv) lastCode(t *testing.T) string { return d.LastCode(t) }

func (d *devEnv) verify(t *testing.T, id, code string) answer {
	t.Helper()
	return d.post(t, "/.netlify/functions/verify-access", `{"requestId":"`+id+`","otp":"`+code+`"}`)
}

func get(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

const ada = `{"name":"Ada Lovelace","email":"ada@example.com","phone":"+44 7400 900123","consent":true}`

func TestFlowHappyPath(t *testing.T) {
	d := startDev(t, t.TempDir())
	a := d.post(t, "/api/request-access", ada)
	require.Equal(t, 200, a.Status, a.Body)
	assert.Equal(t, "OTP sent", a.Body["message"])
	assert.EqualValues(t, 600, a.Body["expiresIn"])
	id := a.Body["requestId"].(string)

	msgs, err := embedded.ReadOutbox(d.Config.OutboxDir, 0)
	require.NoError(t, err)
	require.Len(t, msgs, 2, "one email and one SMS")
	kinds := map[string]embedded.Message{}
	for _, m := range msgs {
		kinds[m.Kind] = m
	}
	code := d.lastCode(t)
	assert.Equal(t, "<ada@example.com>", kinds["email"].To)
	assert.Equal(t, "+447400900123", kinds["sms"].To)
	assert.Contains(t, kinds["sms"].Text, "#"+code)

	v := d.verify(t, id, code)
	require.Equal(t, 200, v.Status, v.Body)
	assert.EqualValues(t, 120, v.Body["expiresIn"])
	link := v.Body["redirectUrl"].(string)
	assert.True(t, strings.HasPrefix(link, d.URL+embedded.DownloadPath+"?"), link)

	resp, body := get(t, link)
	require.Equal(t, 200, resp.StatusCode, string(body))
	assert.Equal(t, embedded.SampleCV, body, "the downloaded bytes are the sample CV")
	assert.Equal(t, `attachment; filename="cv.pdf"`, resp.Header.Get("Content-Disposition"))
	assert.Equal(t, "application/pdf", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))

	// The outbox page lists both messages.
	resp, page := get(t, d.URL+"/_dev/outbox")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(page), code)
	assert.Contains(t, string(page), "SMS to &#43;447400900123")
}

func TestFlowRefusals(t *testing.T) {
	d := startDev(t, t.TempDir())

	t.Run("wrong code", func(t *testing.T) {
		id, code := d.requestAccess(t, ada)
		a := d.verify(t, id, flip(code))
		assert.Equal(t, 400, a.Status)
		assert.Equal(t, "otp_incorrect", a.Body["error"])
		assert.EqualValues(t, 4, a.Body["attemptsLeft"])
		assert.Contains(t, a.Body["message"], "4 attempts left")
	})

	t.Run("replayed code", func(t *testing.T) {
		id, code := d.requestAccess(t, ada)
		require.Equal(t, 200, d.verify(t, id, code).Status)
		a := d.verify(t, id, code)
		assert.Equal(t, 409, a.Status)
		assert.Equal(t, "otp_used", a.Body["error"])
	})

	t.Run("6th attempt refused even with the right code", func(t *testing.T) {
		id, code := d.requestAccess(t, ada)
		for range 5 {
			require.Equal(t, 400, d.verify(t, id, flip(code)).Status)
		}
		a := d.verify(t, id, code)
		assert.Equal(t, 403, a.Status)
		assert.Equal(t, "otp_locked", a.Body["error"])
	})

	t.Run("resend too soon", func(t *testing.T) {
		id, _ := d.requestAccess(t, ada)
		a := d.post(t, "/api/request-access", `{"requestId":"`+id+`","resend":true}`)
		assert.Equal(t, 429, a.Status)
		assert.Equal(t, "resend_too_soon", a.Body["error"])
		assert.Equal(t, "60", a.RetryAfter)
	})

	t.Run("unknown request", func(t *testing.T) {
		a := d.verify(t, "6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01", "123456")
		assert.Equal(t, 404, a.Status)
		assert.Equal(t, "request_not_found", a.Body["error"])
	})
}

func TestFlowExpiredCode(t *testing.T) {
	d := startDev(t, t.TempDir())
	id, code := d.requestAccess(t, ada)
	d.Clock.Advance(10*time.Minute + time.Second) // past the 600 s, rounded up to a whole second
	a := d.verify(t, id, code)
	assert.Equal(t, 410, a.Status)
	assert.Equal(t, "otp_expired", a.Body["error"])
}

func TestFlowDownloadLinks(t *testing.T) {
	d := startDev(t, t.TempDir())
	id, code := d.requestAccess(t, ada)
	v := d.verify(t, id, code)
	require.Equal(t, 200, v.Status)
	link, err := url.Parse(v.Body["redirectUrl"].(string))
	require.NoError(t, err)

	tamper := func(key, val string) string {
		u := *link
		q := u.Query()
		q.Set(key, val)
		u.RawQuery = q.Encode()
		return u.String()
	}
	q := link.Query()
	sig := q.Get("signature")
	for name, u := range map[string]string{
		"signature changed": tamper("signature", strings.Repeat("A", len(sig))),
		"expiry extended":   tamper("expires", "99999999999"),
		"no signature":      d.URL + embedded.DownloadPath + "?expires=" + q.Get("expires"),
		"extra parameter":   link.String() + "&x=1",
		"bare path":         d.URL + embedded.DownloadPath,
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := get(t, u)
			assert.Equal(t, 403, resp.StatusCode)
			assert.NotEqual(t, embedded.SampleCV, body)
		})
	}

	t.Run("expired", func(t *testing.T) {
		resp, _ := get(t, link.String())
		require.Equal(t, 200, resp.StatusCode, "valid before expiry")
		d.Clock.Advance(120 * time.Second)
		resp, body := get(t, link.String())
		assert.Equal(t, 403, resp.StatusCode)
		assert.Contains(t, string(body), "expired")
	})
}

// A CV file missing on disk must not cost the visitor their code: the
// verify answers 503 and logs why; once the file is back the same code
// gives a link that downloads it.
func TestFlowCVFileMissing(t *testing.T) {
	d := startDev(t, t.TempDir())
	id, code := d.requestAccess(t, ada)
	cvFile := filepath.Join(d.Config.DocumentsDir, "cv.pdf")
	aside := cvFile + ".aside"
	require.NoError(t, os.Rename(cvFile, aside))

	a := d.verify(t, id, code)
	assert.Equal(t, 503, a.Status, a.Body)
	assert.Equal(t, "download_unavailable", a.Body["error"])
	assert.Equal(t, "The document cannot be downloaded right now. Please try again later; "+
		"your code stays valid for its remaining attempts (4 left).", a.Body["message"])
	assert.EqualValues(t, 4, a.Body["attemptsLeft"])
	assert.Equal(t, "30", a.RetryAfter)
	logs := d.Logs.String()
	assert.Equal(t, 1, strings.Count(logs, `"level":"ERROR"`), logs)
	assert.Contains(t, logs, `"msg":"download unavailable"`)
	assert.Contains(t, logs, cvFile, "the error line says which file")

	require.NoError(t, os.Rename(aside, cvFile))
	v := d.verify(t, id, code)
	require.Equal(t, 200, v.Status, v.Body)
	resp, body := get(t, v.Body["redirectUrl"].(string))
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, embedded.SampleCV, body)
}

// The site's own list gates two documents at once: each request downloads
// its own document only, and the emails name it and link to its page.
func TestFlowTwoDocuments(t *testing.T) {
	d := &devEnv{devtest.StartWith(t, t.TempDir(), map[string]string{"CV_DOCUMENTS_FILE": "../../../site/data/cv_access.json"})}
	require.Equal(t, 2, d.Config.Documents.Len(), "the site lists the CV and a portfolio")
	portfolio, _ := d.Config.Documents.Find("portfolio")
	portfolioFile := filepath.Join(d.Config.DocumentsDir, portfolio.Key)
	require.NoError(t, os.WriteFile(portfolioFile, []byte("%PDF-1.4 the portfolio"), 0o600))

	pID, pCode := d.requestAccess(t, `{"name":"Ada","email":"ada@example.com","consent":true,"document":"portfolio"}`)
	msgs, err := embedded.ReadOutbox(d.Config.OutboxDir, 0)
	require.NoError(t, err)
	assert.Contains(t, msgs[0].Subject, "Alex Sample's portfolio")
	assert.Contains(t, msgs[0].Text, d.URL+"/portfolio/")
	cID, cCode := d.requestAccess(t, `{"name":"Grace","email":"grace@example.com","consent":true}`)

	a := d.post(t, "/api/request-access", `{"name":"Eve","email":"eve@example.com","consent":true,"document":"salaries"}`)
	assert.Equal(t, 422, a.Status)
	assert.Equal(t, map[string]any{"document": "This document is not offered here."}, a.Body["fields"])

	v := d.post(t, "/api/verify-access", `{"requestId":"`+pID+`","otp":"`+pCode+`","document":"portfolio"}`)
	require.Equal(t, 200, v.Status, v.Body)
	_, body := get(t, v.Body["redirectUrl"].(string))
	assert.Equal(t, "%PDF-1.4 the portfolio", string(body))
	pLink := v.Body["redirectUrl"].(string)

	v = d.verify(t, cID, cCode)
	require.Equal(t, 200, v.Status, v.Body)
	_, body = get(t, v.Body["redirectUrl"].(string))
	assert.Equal(t, embedded.SampleCV, body, "no document named: the CV")

	// The portfolio's link cannot be turned into the CV's.
	resp, _ := get(t, strings.Replace(pLink, "doc=portfolio", "doc=cv", 1))
	assert.Equal(t, 403, resp.StatusCode)

	d.Notifications.Wait()
	var owner []string
	for _, m := range d.emailsToOwner(t, access.OwnerSubject("portfolio")) {
		owner = append(owner, m.Text)
	}
	require.Len(t, owner, 1, "the owner hears which document was downloaded")
	assert.Contains(t, owner[0], "Document: portfolio")
}

func TestFlowBadRequests(t *testing.T) {
	d := startDev(t, t.TempDir())
	tests := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"bad JSON", "/api/request-access", `{"name":`, 400, "invalid_json"},
		{"oversized body", "/api/request-access", `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "body_too_large"},
		{"unknown field", "/api/verify-access", `{"requestId":"x","otp":"123456","debug":true}`, 400, "invalid_json"},
		{"missing fields", "/api/request-access", `{}`, 422, "invalid_input"},
		{"CRLF in email", "/api/request-access", `{"name":"A","email":"a@example.com\r\nBcc: b@example.com","consent":true}`, 422, "invalid_input"},
		{"invalid UTF-8 in name", "/api/request-access", "{\"name\":\"\xff\",\"email\":\"a@example.com\",\"consent\":true}", 422, "invalid_input"},
		{"bad request id", "/api/verify-access", `{"requestId":"../../etc","otp":"123456"}`, 422, "invalid_input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := d.post(t, tt.path, tt.body)
			assert.Equal(t, tt.status, a.Status)
			assert.Equal(t, tt.code, a.Body["error"])
			assert.NotEmpty(t, a.Body["message"])
			assert.Equal(t, "nosniff", a.Header.Get("X-Content-Type-Options"))
		})
	}
	msgs, err := embedded.ReadOutbox(d.Config.OutboxDir, 0)
	require.NoError(t, err)
	assert.Empty(t, msgs, "bad input sends nothing")

	resp, _ := get(t, d.URL+"/api/request-access")
	assert.Equal(t, 405, resp.StatusCode)
	assert.Equal(t, "POST", resp.Header.Get("Allow"))
	resp, _ = get(t, d.URL+"/.netlify/functions/nope")
	assert.Equal(t, 404, resp.StatusCode)
	resp, _ = get(t, d.URL+"/_dev/outbox/..%2f..%2fcv-access.db")
	assert.Equal(t, 404, resp.StatusCode)
}

func TestLogsCarryNoPersonalData(t *testing.T) {
	d := startDev(t, t.TempDir())
	id, code := d.requestAccess(t, ada)
	require.Equal(t, 400, d.verify(t, id, flip(code)).Status)
	v := d.verify(t, id, code)
	require.Equal(t, 200, v.Status)
	logs := d.Logs.String()
	require.Contains(t, logs, id, "logs name the request")
	flowtest.AssertAbsent(t, logs, "Ada", "Lovelace", "ada@example.com", "7400900123", "900123", code, flip(code),
		v.Body["redirectUrl"].(string), "signature", "127.0.0.1")
}

func flip(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

func TestDevServerRefusesForeignHostNames(t *testing.T) {
	d := startDev(t, t.TempDir())
	for host, want := range map[string]int{
		"evil.example":    421, // a DNS-rebinding page
		"evil.example:80": 421,
		"localhost":       200,
		"127.0.0.1":       200,
	} {
		req, err := http.NewRequest(http.MethodGet, d.URL+"/_dev/outbox", nil)
		require.NoError(t, err)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, host)
	}
}

// ownerEmails are the owner's download notifications in the outbox.
func (d *devEnv) ownerEmails(t *testing.T) []embedded.Message {
	return d.emailsToOwner(t, access.OwnerSubject("CV"))
}

// emailsToOwner are the emails to the owner with this subject.
func (d *devEnv) emailsToOwner(t *testing.T, subject string) []embedded.Message {
	t.Helper()
	msgs, err := embedded.ReadOutbox(d.Config.OutboxDir, 0)
	require.NoError(t, err)
	var out []embedded.Message
	for _, m := range msgs {
		if m.Kind == "email" && m.To == "<owner@example.com>" && m.Subject == subject {
			out = append(out, m)
		}
	}
	return out
}

func TestAVerifiedDownloadEmailsTheOwnerOnce(t *testing.T) {
	d := startDev(t, t.TempDir())
	id, code := d.requestAccess(t, `{"name":"Ada <b>Lovelace</b>","email":"ada@example.com","company":"Engines & Co","location":"London","consent":true}`)
	assert.Empty(t, d.ownerEmails(t), "nothing for a code sent")
	assert.Equal(t, 400, d.verify(t, id, "000000").Status)
	d.Notifications.Wait()
	assert.Empty(t, d.ownerEmails(t), "nothing for a refused attempt")

	require.Equal(t, 200, d.verify(t, id, code).Status)
	d.Notifications.Wait()
	got := d.ownerEmails(t)
	require.Len(t, got, 1, "the owner is emailed beside the answer")
	assert.Contains(t, got[0].Text, "Ada <b>Lovelace</b>")
	assert.Contains(t, got[0].Text, "ada@example.com")
	assert.Contains(t, got[0].Text, "Engines & Co")
	assert.Contains(t, got[0].Text, "London")

	assert.Equal(t, 409, d.verify(t, id, code).Status, "the code is spent")
	d.Notifications.Wait()
	assert.Len(t, d.ownerEmails(t), 1, "and no second email")
}

func TestFiftyRightAnswersAtOnceEmailTheOwnerOnce(t *testing.T) {
	d := startDev(t, t.TempDir())
	id, code := d.requestAccess(t, `{"name":"Ada","email":"ada@example.com","consent":true}`)
	var wg sync.WaitGroup
	var won atomic.Int32
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d.verify(t, id, code).Status == 200 {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, won.Load())
	d.Notifications.Wait()
	assert.Len(t, d.ownerEmails(t), 1, "one email for the one verified request, none for the lost races")
}

// ownerCall posts one action to the owner function with the client's
// cookie jar, as the owner page's script does.
func (d *devEnv) ownerCall(t *testing.T, c *http.Client, body string) (int, map[string]any, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.URL+"/api/owner", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", d.URL)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, raw
}

func TestOwnerSignsInSeesTheDownloadAndErasesIt(t *testing.T) {
	d := startDev(t, t.TempDir())
	id, code := d.requestAccess(t, `{"name":"Ada Lovelace","email":"ada@example.com","company":"Engines","consent":true}`)
	require.Equal(t, 200, d.verify(t, id, code).Status)
	d.Notifications.Wait()
	told := d.ownerEmails(t)
	require.Len(t, told, 1)
	assert.Contains(t, told[0].Text, d.URL+"/owner/", "the notification links the owner page")

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	owner := &http.Client{Jar: jar}
	status, body, _ := d.ownerCall(t, owner, `{"action":"list"}`)
	require.Equal(t, 401, status)
	assert.Equal(t, "session_required", body["error"])

	status, body, _ = d.ownerCall(t, owner, `{"action":"sign-in","email":"owner@example.com"}`)
	require.Equal(t, 200, status, body)
	signIn, _ := body["requestId"].(string)
	codes := d.emailsToOwner(t, access.OwnerCodeSubject)
	require.Len(t, codes, 1, "the sign-in code is in the outbox")
	ownerCode := regexp.MustCompile(`\b[0-9]{6}\b`).FindString(codes[0].Text)
	status, body, _ = d.ownerCall(t, owner, `{"action":"verify","requestId":"`+signIn+`","otp":"`+ownerCode+`"}`)
	require.Equal(t, 200, status, body)

	status, body, raw := d.ownerCall(t, owner, `{"action":"list"}`)
	require.Equal(t, 200, status, body)
	reqs, _ := body["requests"].([]any)
	require.Len(t, reqs, 1, "%s", raw)
	first, _ := reqs[0].(map[string]any)
	assert.Equal(t, id, first["requestId"])
	assert.Equal(t, "VERIFIED", first["status"])
	assert.Equal(t, "Engines", first["company"])

	status, _, raw = d.ownerCall(t, owner, `{"action":"csv"}`)
	require.Equal(t, 200, status)
	assert.Contains(t, string(raw), "ada@example.com")

	status, body, _ = d.ownerCall(t, owner, `{"action":"erase","email":"ada@example.com"}`)
	require.Equal(t, 200, status, body)
	assert.EqualValues(t, 1, body["erased"])
	_, body, _ = d.ownerCall(t, owner, `{"action":"list"}`)
	assert.Empty(t, body["requests"])
	assert.Equal(t, 404, d.verify(t, id, code).Status, "the request is gone")

	status, _, _ = d.ownerCall(t, owner, `{"action":"sign-out"}`)
	require.Equal(t, 200, status)
	status, _, _ = d.ownerCall(t, owner, `{"action":"list"}`)
	assert.Equal(t, 401, status)
	flowtest.AssertAbsent(t, d.Logs.String(), "ada@example.com", "owner@example.com", ownerCode)
}
