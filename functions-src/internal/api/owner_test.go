package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/ownercsv"
)

// The owner function's edge, on the real owner service and embedded
// store: its session travels as a cookie, in each shape's own way.

type ownerMail struct {
	mu   sync.Mutex
	sent []access.Email
}

func (m *ownerMail) SendEmail(_ context.Context, e access.Email) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, e)
	return nil
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

func (m *ownerMail) code(t *testing.T) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	require.NotEmpty(t, m.sent)
	return sixDigits.FindString(m.sent[len(m.sent)-1].Text)
}

type ownerEdge struct {
	store *embedded.Store
	mail  *ownerMail
	fn    *api.Function
}

func newOwnerEdge(t *testing.T, secure bool) ownerEdge {
	t.Helper()
	store, err := embedded.OpenStore(filepath.Join(t.TempDir(), "cv.db"))
	require.NoError(t, err)
	codes, err := access.NewCodes(rand.Reader, bytes.Repeat([]byte("s"), 32))
	require.NoError(t, err)
	mail := &ownerMail{}
	o, err := access.NewOwner(access.OwnerDeps{Codes: store, Requests: store, Mailer: mail, OTP: codes, Rand: rand.Reader,
		Now: time.Now, LimitKeys: [][]byte{[]byte("limits")}, SessionKeys: [][]byte{[]byte("sessions")},
		To: "owner@example.com", SiteURL: ownOrigin}, access.DefaultPolicy())
	require.NoError(t, err)
	c := siteConfig()
	c.SecureCookies = secure
	return ownerEdge{store: store, mail: mail, fn: api.Owner(o, c)}
}

func (e ownerEdge) call(t *testing.T, sh shape, body string, cookies ...string) answer {
	t.Helper()
	return sh.send(t, e.fn, sent{method: "POST", headers: fromSite(map[string]string{"x-nf-client-connection-ip": "203.0.113.9"}),
		body: body, cookies: cookies})
}

// cookiePair is the name=value part of a Set-Cookie value.
func cookiePair(setCookie string) string { return strings.TrimSpace(strings.Split(setCookie, ";")[0]) }

func TestOwnerSessionTravelsAsACookieInEveryShape(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			e := newOwnerEdge(t, true)
			now := time.Now().UTC().Truncate(time.Second)
			require.NoError(t, e.store.CreateRequest(context.Background(), access.Request{ID: "5a0f3c1e-2b4d-4e6f-8a9b-0c1d2e3f4a5b",
				Name: "=HYPERLINK(\"x\")", Email: "ada@example.com", Status: access.StatusPending, CreatedAt: now,
				Consent: access.Consent{PolicyVersion: "2026-11-30", At: now}, DeleteAt: now.Add(time.Hour)},
				access.Code{RequestID: "5a0f3c1e-2b4d-4e6f-8a9b-0c1d2e3f4a5b", Hash: []byte("h"), ExpiresAt: now.Add(time.Minute),
					SentAt: now, DeleteAt: now.Add(time.Hour)}, nil))

			resp := e.call(t, sh, `{"action":"list"}`)
			assert.Equal(t, 401, resp.StatusCode)
			assert.Equal(t, "session_required", errorCode(t, resp))
			assert.NotContains(t, resp.Body, "ada@example.com")

			resp = e.call(t, sh, `{"action":"sign-in","email":"OWNER@example.com"}`)
			require.Equal(t, 200, resp.StatusCode, resp.Body)
			var issued struct {
				RequestID string `json:"requestId"`
				ExpiresIn int    `json:"expiresIn"`
			}
			require.NoError(t, json.Unmarshal([]byte(resp.Body), &issued))
			assert.Equal(t, 600, issued.ExpiresIn)
			assert.Empty(t, resp.SetCookie, "no cookie before the code is right")

			resp = e.call(t, sh, `{"action":"verify","requestId":"`+issued.RequestID+`","otp":"`+e.mail.code(t)+`"}`)
			require.Equal(t, 200, resp.StatusCode, resp.Body)
			assert.JSONEq(t, `{"message":"Signed in.","expiresIn":43200}`, resp.Body)
			require.Len(t, resp.SetCookie, 1)
			set := resp.SetCookie[0]
			assert.Regexp(t, `^cv_owner=owner-[0-9a-f-]{36}\.[0-9]+\.[A-Za-z0-9_-]{43}; `, set)
			for _, attr := range []string{"Path=/api/owner", "Max-Age=43200", "HttpOnly", "SameSite=Strict", "Secure"} {
				assert.Contains(t, strings.Split(set, "; "), attr)
			}
			session := cookiePair(set)

			resp = e.call(t, sh, `{"action":"list"}`, "theme=dark", session)
			require.Equal(t, 200, resp.StatusCode, resp.Body)
			var list struct {
				Requests         []ownercsv.Record `json:"requests"`
				Total            int               `json:"total"`
				SessionExpiresIn int               `json:"sessionExpiresIn"`
			}
			require.NoError(t, json.Unmarshal([]byte(resp.Body), &list))
			require.Len(t, list.Requests, 1)
			assert.Equal(t, 1, list.Total)
			assert.Equal(t, "ada@example.com", list.Requests[0].Email)
			assert.Equal(t, "cv", list.Requests[0].Document)
			assert.InDelta(t, 43200, list.SessionExpiresIn, 2)

			resp = e.call(t, sh, `{"action":"csv"}`, session)
			require.Equal(t, 200, resp.StatusCode, resp.Body)
			assert.Equal(t, "text/csv; charset=utf-8", resp.Headers["Content-Type"])
			assert.Equal(t, `attachment; filename=cv-access-requests.csv`, resp.Headers["Content-Disposition"])
			assert.Equal(t, "no-store", resp.Headers["Cache-Control"])
			reqs, err := e.store.ListRequests(context.Background(), time.Now())
			require.NoError(t, err)
			var want bytes.Buffer
			require.NoError(t, ownercsv.Write(&want, reqs))
			assert.Equal(t, want.String(), resp.Body, "the CLI's CSV, formula-safe")
			assert.Contains(t, resp.Body, `'=HYPERLINK`)

			resp = e.call(t, sh, `{"action":"erase","email":"Ada+x@example.com"}`, session)
			require.Equal(t, 200, resp.StatusCode, resp.Body)
			assert.Contains(t, resp.Body, `"erased":1`)

			resp = e.call(t, sh, `{"action":"sign-out"}`, session)
			require.Equal(t, 200, resp.StatusCode, resp.Body)
			require.Len(t, resp.SetCookie, 1)
			assert.True(t, strings.HasPrefix(resp.SetCookie[0], "cv_owner=; Path=/api/owner; Max-Age=0; "), resp.SetCookie[0])

			resp = e.call(t, sh, `{"action":"list"}`, session)
			assert.Equal(t, 401, resp.StatusCode, "the session ended on the server, not only in the browser")
		})
	}
}

func TestOwnerCookieIsNotSecureOnALocalSite(t *testing.T) {
	e := newOwnerEdge(t, false)
	resp := e.call(t, shapes[2], `{"action":"sign-out"}`)
	require.Len(t, resp.SetCookie, 1)
	assert.NotContains(t, resp.SetCookie[0], "Secure")
}

func TestOwnerCallsKeepTheEdgeRules(t *testing.T) {
	e := newOwnerEdge(t, true)
	for _, tc := range []struct {
		name, body, code string
		status           int
	}{
		{"unknown action", `{"action":"dump"}`, "invalid_input", 422},
		{"no action", `{}`, "invalid_input", 422},
		{"a field the action does not take", `{"action":"list","email":"ada@example.com"}`, "invalid_json", 400},
		{"an empty field the action does not take", `{"action":"list","email":""}`, "invalid_json", 400},
		{"verify's fields on sign-in", `{"action":"sign-in","email":"owner@example.com","otp":"123456"}`, "invalid_json", 400},
		{"an unknown field", `{"action":"list","all":true}`, "invalid_json", 400},
		{"erase without a session", `{"action":"erase","email":"ada@example.com"}`, "session_required", 401},
		{"csv without a session", `{"action":"csv"}`, "session_required", 401},
		{"a forged session", `{"action":"list"}`, "session_required", 401},
		{"a visitor's request id", `{"action":"verify","requestId":"5a0f3c1e-2b4d-4e6f-8a9b-0c1d2e3f4a5b","otp":"123456"}`, "invalid_input", 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.call(t, shapes[0], tc.body, "cv_owner=owner-5a0f3c1e-2b4d-4e6f-8a9b-0c1d2e3f4a5b.9999999999.AAAA")
			assert.Equal(t, tc.status, resp.StatusCode, resp.Body)
			assert.Equal(t, tc.code, errorCode(t, resp))
		})
	}
	resp := shapes[0].send(t, e.fn, sent{method: "POST", headers: map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"},
		body: `{"action":"list"}`})
	assert.Equal(t, 403, resp.StatusCode, "another site's page")
	resp = shapes[0].send(t, e.fn, sent{method: "GET", headers: fromSite(nil)})
	assert.Equal(t, 405, resp.StatusCode)
}

func TestOwnerPageOffSaysSoInEveryShape(t *testing.T) {
	f := api.OwnerOff(siteConfig())
	for _, sh := range shapes {
		resp := sh.send(t, f, sent{method: "POST", headers: fromSite(nil), body: `{"action":"list"}`})
		assert.Equal(t, 404, resp.StatusCode, sh.name)
		assert.Equal(t, "owner_page_off", errorCode(t, resp), sh.name)
		resp = sh.send(t, f, sent{method: "GET", headers: fromSite(nil)})
		assert.Equal(t, 405, resp.StatusCode, "%s: the edge's rules first", sh.name)
	}
}
