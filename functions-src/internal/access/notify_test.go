package access_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// claims is an in-memory access.Notifications over one request.
type claims struct {
	mu       sync.Mutex
	r        access.Request
	released []time.Time
}

func (c *claims) ClaimNotification(_ context.Context, id string, now time.Time) (access.Request, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case id != c.r.ID:
		return access.Request{}, access.ErrNotFound
	case c.r.Status != access.StatusVerified || !c.r.NotifiedAt.IsZero():
		return access.Request{}, access.ErrNoNotificationDue
	}
	c.r.NotifiedAt = now
	return c.r, nil
}

func (c *claims) ReleaseNotification(_ context.Context, id string, at time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released = append(c.released, at)
	if id == c.r.ID && c.r.NotifiedAt.Equal(at) {
		c.r.NotifiedAt = time.Time{}
	}
	return nil
}

type ownerInbox struct {
	mu   sync.Mutex
	sent []access.Email
	fail error
}

func (m *ownerInbox) SendEmail(_ context.Context, e access.Email) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.sent = append(m.sent, e)
	return nil
}

var notifyNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func verifiedRequest() access.Request {
	return access.Request{ID: "6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01", Name: "Ada Lovelace", Email: "ada@example.com",
		Company: "Analytical Engines", Location: "London", Status: access.StatusVerified,
		Consent:    access.Consent{PolicyVersion: "2026-11-30", At: notifyNow.Add(-time.Minute)},
		VerifiedAt: notifyNow.Add(-time.Second)}
}

func notifier(c *claims, m *ownerInbox) *access.Notifier {
	return &access.Notifier{Store: c, Mail: m, To: "owner@example.com", SiteURL: "https://cv.example.com",
		Now: func() time.Time { return notifyNow }}
}

func TestTheOwnerIsToldOnceWhoDownloaded(t *testing.T) {
	c, m := &claims{r: verifiedRequest()}, &ownerInbox{}
	n := notifier(c, m)
	sent, err := n.Notify(context.Background(), c.r.ID)
	require.NoError(t, err)
	assert.True(t, sent)
	require.Len(t, m.sent, 1)
	e := m.sent[0]
	assert.Equal(t, "owner@example.com", e.To)
	assert.Equal(t, access.OwnerSubject("CV"), e.Subject, "nothing a visitor typed is in a header")
	for _, want := range []string{"Ada Lovelace", "ada@example.com", "Analytical Engines", "London", "CV",
		"30 November 2026, 11:59 UTC", "policy 2026-11-30", "https://cv.example.com", "as they typed them", "cv-owner list", "https://cv.example.com/owner/"} {
		assert.Contains(t, e.Text, want)
		assert.Contains(t, e.HTML, want)
	}

	sent, err = n.Notify(context.Background(), c.r.ID)
	require.NoError(t, err)
	assert.False(t, sent, "at most one per verified request")
	assert.Len(t, m.sent, 1)
}

func TestNoEmailForARequestThatIsNotDue(t *testing.T) {
	for name, edit := range map[string]func(*access.Request){
		"pending":  func(r *access.Request) { r.Status = access.StatusPending },
		"expired":  func(r *access.Request) { r.Status = access.StatusExpired },
		"notified": func(r *access.Request) { r.NotifiedAt = notifyNow.Add(-time.Hour) },
		"unknown":  func(r *access.Request) { r.ID = "another" },
	} {
		r := verifiedRequest()
		edit(&r)
		c, m := &claims{r: r}, &ownerInbox{}
		sent, err := notifier(c, m).Notify(context.Background(), verifiedRequest().ID)
		assert.NoError(t, err, name)
		assert.False(t, sent, name)
		assert.Empty(t, m.sent, name)
	}
}

func TestAFailedEmailGivesTheClaimBackForTheRetry(t *testing.T) {
	c, m := &claims{r: verifiedRequest()}, &ownerInbox{fail: errors.New("SES throttled")}
	n := notifier(c, m)
	sent, err := n.Notify(context.Background(), c.r.ID)
	assert.ErrorContains(t, err, "SES throttled")
	assert.False(t, sent)
	assert.Equal(t, []time.Time{notifyNow}, c.released, "the claim it made")

	m.fail = nil
	sent, err = n.Notify(context.Background(), c.r.ID)
	require.NoError(t, err)
	assert.True(t, sent, "the retry sends it")
}

func TestConcurrentNotificationsSendOne(t *testing.T) {
	c, m := &claims{r: verifiedRequest()}, &ownerInbox{}
	n := notifier(c, m)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := n.Notify(context.Background(), c.r.ID)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	assert.Len(t, m.sent, 1)
}

func TestWhatAVisitorTypedIsEscapedAndStaysOnItsLine(t *testing.T) {
	r := verifiedRequest()
	r.Name = `<script>alert("x")</script> & Co`
	r.Company = "Evil\r\nBcc: victim@example.com"
	r.Location = ""
	c, m := &claims{r: r}, &ownerInbox{}
	_, err := notifier(c, m).Notify(context.Background(), r.ID)
	require.NoError(t, err)
	e := m.sent[0]
	assert.NotContains(t, e.HTML, "<script>")
	assert.Contains(t, e.HTML, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co")
	assert.Contains(t, e.Text, `<script>alert("x")</script> & Co`, "plain text is shown as typed")
	assert.NotContains(t, e.Text, "\nBcc:", "a line break typed by a visitor starts no line")
	assert.Contains(t, e.Text, "Company:  Evil  Bcc: victim@example.com")
	assert.Contains(t, e.Text, "Location: (not given)")
	assert.False(t, strings.ContainsAny(e.Subject+e.To, "<>\r\n"))
}
