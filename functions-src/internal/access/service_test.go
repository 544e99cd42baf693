package access_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/phone"
)

// harness is a service on the real embedded store, with a clock the test
// moves and message fakes that record what was sent.
type harness struct {
	svc   *access.Service
	store *embedded.Store
	clock *clock
	mail  *mailbox
	sms   *mailbox
	links *presigner

	guesses atomic.Int32
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type mailbox struct {
	mu     sync.Mutex
	emails []access.Email
	texts  []access.SMS
	fail   error
	hook   func() // runs inside Send, before recording
}

func (m *mailbox) SendEmail(_ context.Context, e access.Email) error {
	return m.send(func() { m.emails = append(m.emails, e) })
}

func (m *mailbox) SendSMS(_ context.Context, s access.SMS) error {
	return m.send(func() { m.texts = append(m.texts, s) })
}

// send runs the hook, then fails as told or records the message.
func (m *mailbox) send(record func()) error {
	if m.hook != nil {
		m.hook()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	record()
	return nil
}

var codeInText = regexp.MustCompile(`\b[0-9]{6}\b`)

// lastCode is the code in the newest email.
func (m *mailbox) lastCode(t *testing.T) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	require.NotEmpty(t, m.emails, "no email was sent")
	code := codeInText.FindString(m.emails[len(m.emails)-1].Text)
	require.NotEmpty(t, code, "no code in the email")
	return code
}

type presigner struct {
	calls  atomic.Int32
	fail   error
	checks atomic.Int32

	mu        sync.Mutex
	checkErr  error                     // what Check answers
	checkHook func(ctx context.Context) // runs inside Check, first
	checked   []string                  // the slugs checked, in order
}

func (p *presigner) Presign(_ context.Context, doc access.Document) (string, error) {
	p.calls.Add(1)
	if p.fail != nil {
		return "", p.fail
	}
	return "https://files.example/" + doc.Key + "?ttl=" + doc.LinkTTL.String(), nil
}

func (p *presigner) Check(ctx context.Context, doc access.Document) error {
	p.checks.Add(1)
	p.mu.Lock()
	hook, err := p.checkHook, p.checkErr
	p.checked = append(p.checked, doc.Slug)
	p.mu.Unlock()
	if hook != nil {
		hook(ctx)
	}
	return err
}

// failCheck makes Check answer err (nil: pass) from now on.
func (p *presigner) failCheck(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checkErr = err
}

// setCheck makes Check run hook, then answer err, from now on.
func (p *presigner) setCheck(hook func(context.Context), err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checkHook, p.checkErr = hook, err
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	store, err := embedded.OpenStore(filepath.Join(t.TempDir(), "cv.db"))
	require.NoError(t, err)
	h := &harness{
		store: store,
		clock: &clock{t: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)},
		mail:  &mailbox{}, sms: &mailbox{}, links: &presigner{},
	}
	h.svc = h.build(t)
	return h
}

// option changes one part of a service that build wires.
type option func(*access.Deps, *access.Policy, *access.Sender)

func withStore(st access.Store) option {
	return func(d *access.Deps, _ *access.Policy, _ *access.Sender) { d.Store = st }
}
func withMailer(m access.Mailer) option {
	return func(d *access.Deps, _ *access.Policy, _ *access.Sender) { d.Mailer = m }
}
func withSMS(m access.SMSSender) option {
	return func(d *access.Deps, _ *access.Policy, _ *access.Sender) { d.SMS = m }
}
func withPolicy(p access.Policy) option {
	return func(_ *access.Deps, pp *access.Policy, _ *access.Sender) { *pp = p }
}

// build wires a service on h's store, clock and fakes, as changed by opts.
func (h *harness) build(t *testing.T, opts ...option) *access.Service {
	t.Helper()
	codes, err := access.NewCodes(rand.Reader, secretA)
	require.NoError(t, err)
	d := access.Deps{Store: h.store, Mailer: h.mail, SMS: h.sms, Links: h.links, Phones: phone.Numbers{},
		Codes: codes, Rand: rand.Reader, Now: h.clock.Now, LimitKeys: [][]byte{limitKey}}
	p := access.DefaultPolicy()
	sender := access.Sender{OwnerName: "Alex Sample", SiteURL: "https://cv.example.com"}
	for _, o := range opts {
		o(&d, &p, &sender)
	}
	svc, err := access.NewService(d, p, sender)
	require.NoError(t, err)
	return svc
}

var limitKey = []byte("rate-limit-test-key")

var ada = access.AccessInput{Name: "Ada Lovelace", Email: "ada@example.com", Phone: "+44 7400 900123",
	Company: "Engines", Location: "London", Consent: true}

func (h *harness) request(t *testing.T) (string, string) {
	t.Helper()
	out, err := h.svc.RequestAccess(context.Background(), ada)
	require.NoError(t, err)
	return out.RequestID, h.mail.lastCode(t)
}

// verify guesses from a network of its own each time, so that only the
// tests about the per-network limit meet it.
func (h *harness) verify(id, code string) (access.Grant, error) {
	n := h.guesses.Add(1)
	ip := fmt.Sprintf("2001:db8:%x::1", n)
	return h.svc.VerifyAccess(context.Background(), access.VerifyInput{RequestID: id, OTP: code, ClientIP: ip})
}

// wrong returns a valid-looking code other than code.
func wrong(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

func errCode(t *testing.T, err error) string {
	t.Helper()
	var e *access.Error
	require.ErrorAs(t, err, &e)
	return e.Code
}

func TestRequestAccessStoresAndSends(t *testing.T) {
	h := newHarness(t)
	out, err := h.svc.RequestAccess(context.Background(), ada)
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, out.RequestID)
	assert.Equal(t, 10*time.Minute, out.ExpiresIn)

	req, err := h.store.GetRequest(context.Background(), out.RequestID, h.clock.Now())
	require.NoError(t, err)
	assert.Equal(t, "Ada Lovelace", req.Name)
	assert.Equal(t, "+447400900123", req.Phone)
	assert.Equal(t, access.StatusPending, req.Status)
	assert.Equal(t, access.Consent{PolicyVersion: access.DefaultPolicy().PolicyVersion, At: h.clock.Now()}, req.Consent)
	assert.Equal(t, h.clock.Now().Add(180*24*time.Hour), req.DeleteAt)

	require.Len(t, h.mail.emails, 1)
	email := h.mail.emails[0]
	code := h.mail.lastCode(t)
	assert.Equal(t, "ada@example.com", email.To)
	assert.Contains(t, email.Subject, code)
	assert.Contains(t, email.HTML, code)
	assert.Contains(t, email.Text, "10 minutes")
	assert.Contains(t, email.Text, "If it was not you")
	assert.Contains(t, email.Text, "https://cv.example.com/cv/")
	for _, body := range []string{email.Subject, email.Text, email.HTML} {
		assert.NotContains(t, body, "Ada", "visitor text must never be put into a message")
		assert.NotContains(t, body, "Engines")
	}

	require.Len(t, h.sms.texts, 1)
	assert.Equal(t, "+447400900123", h.sms.texts[0].To)
	assert.Regexp(t, `\n@cv\.example\.com #`+code+`$`, h.sms.texts[0].Text, "WebOTP line last")
}

func TestRequestAccessWithoutPhoneSendsNoSMS(t *testing.T) {
	h := newHarness(t)
	in := ada
	in.Phone = ""
	_, err := h.svc.RequestAccess(context.Background(), in)
	require.NoError(t, err)
	assert.Len(t, h.mail.emails, 1)
	assert.Empty(t, h.sms.texts)
}

func TestRequestAccessInvalidInputStoresAndSendsNothing(t *testing.T) {
	h := newHarness(t)
	in := ada
	in.Consent = false
	_, err := h.svc.RequestAccess(context.Background(), in)
	assert.Equal(t, "invalid_input", errCode(t, err))
	assert.Empty(t, h.mail.emails)
	assert.Empty(t, h.sms.texts)
}

func TestEmailAndSMSAreSentConcurrently(t *testing.T) {
	h := newHarness(t)
	// Each send waits for the other to start. Sent one after the other,
	// the first would see no overlap (it gives up waiting rather than hang).
	mailStarted, smsStarted := make(chan struct{}), make(chan struct{})
	var mailSawSMS, smsSawMail atomic.Bool
	overlap := func(other chan struct{}, saw *atomic.Bool) {
		select {
		case <-other:
			saw.Store(true)
		case <-time.After(5 * time.Second):
		}
	}
	h.mail.hook = func() { close(mailStarted); overlap(smsStarted, &mailSawSMS) }
	h.sms.hook = func() { close(smsStarted); overlap(mailStarted, &smsSawMail) }
	_, err := h.svc.RequestAccess(context.Background(), ada)
	require.NoError(t, err)
	assert.True(t, mailSawSMS.Load() && smsSawMail.Load(), "email and SMS were in flight together")
}

func TestVerifyHappyPath(t *testing.T) {
	h := newHarness(t)
	id, code := h.request(t)
	h.clock.Advance(9*time.Minute + 59*time.Second)
	g, err := h.verify(id, code)
	require.NoError(t, err)
	assert.Equal(t, "https://files.example/cv.pdf?ttl=2m0s", g.URL)
	assert.Equal(t, 2*time.Minute, g.ExpiresIn)
	req, err := h.store.GetRequest(context.Background(), id, h.clock.Now())
	require.NoError(t, err)
	assert.Equal(t, access.StatusVerified, req.Status)
}

func TestVerifyRefusals(t *testing.T) {
	t.Run("wrong code counts down", func(t *testing.T) {
		h := newHarness(t)
		id, code := h.request(t)
		for left := 4; left >= 0; left-- {
			_, err := h.verify(id, wrong(code))
			var e *access.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "otp_incorrect", e.Code)
			require.NotNil(t, e.AttemptsLeft)
			assert.Equal(t, left, *e.AttemptsLeft)
		}
		_, err := h.verify(id, code)
		assert.Equal(t, "otp_locked", errCode(t, err), "a 6th attempt is refused even with the right code")
		assert.Zero(t, h.links.calls.Load())
	})
	t.Run("expired", func(t *testing.T) {
		h := newHarness(t)
		id, code := h.request(t)
		h.clock.Advance(10 * time.Minute)
		_, err := h.verify(id, code)
		assert.Equal(t, "otp_expired", errCode(t, err))
		req, err := h.store.GetRequest(context.Background(), id, h.clock.Now())
		require.NoError(t, err)
		assert.Equal(t, access.StatusExpired, req.Status)
	})
	t.Run("replayed", func(t *testing.T) {
		h := newHarness(t)
		id, code := h.request(t)
		_, err := h.verify(id, code)
		require.NoError(t, err)
		_, err = h.verify(id, code)
		assert.Equal(t, "otp_used", errCode(t, err))
	})
	t.Run("unknown request", func(t *testing.T) {
		h := newHarness(t)
		_, err := h.verify(reqA, "123456")
		assert.Equal(t, "request_not_found", errCode(t, err))
	})
	t.Run("a code is bound to its request", func(t *testing.T) {
		h := newHarness(t)
		idA, codeA := h.request(t)
		idB, codeB := h.request(t)
		if codeA == codeB {
			t.Skip("the two random codes collided (1 in a million)")
		}
		_, err := h.verify(idB, codeA)
		assert.Equal(t, "otp_incorrect", errCode(t, err))
		_, err = h.verify(idA, codeA)
		assert.NoError(t, err)
	})
	t.Run("a failed presign does not burn the code", func(t *testing.T) {
		h := newHarness(t)
		id, code := h.request(t)
		h.links.fail = errors.New("no credentials")
		_, err := h.verify(id, code)
		assert.Equal(t, "internal", errCode(t, err))
		h.links.fail = nil
		_, err = h.verify(id, code)
		assert.NoError(t, err)
	})
}

func TestVerifyUnderConcurrency(t *testing.T) {
	const n = 50
	run := func(fn func()) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Go(func() { <-start; fn() })
		}
		close(start)
		wg.Wait()
	}
	t.Run("50 wrong codes: at most 5 evaluated", func(t *testing.T) {
		h := newHarness(t)
		id, code := h.request(t)
		var incorrect, locked atomic.Int32
		run(func() {
			_, err := h.verify(id, wrong(code))
			switch errCode(t, err) {
			case "otp_incorrect":
				incorrect.Add(1)
			case "otp_locked":
				locked.Add(1)
			}
		})
		assert.EqualValues(t, 5, incorrect.Load())
		assert.EqualValues(t, n-5, locked.Load())
	})
	t.Run("50 right codes: exactly one link", func(t *testing.T) {
		h := newHarness(t)
		id, code := h.request(t)
		// The budget is 5 attempts, so only 5 racers are even compared; of
		// those exactly one may win.
		var granted, used, locked atomic.Int32
		run(func() {
			_, err := h.verify(id, code)
			if err == nil {
				granted.Add(1)
				return
			}
			switch errCode(t, err) {
			case "otp_used":
				used.Add(1)
			case "otp_locked":
				locked.Add(1)
			}
		})
		assert.EqualValues(t, 1, granted.Load())
		assert.EqualValues(t, n-1, used.Load()+locked.Load())
	})
}

func TestResend(t *testing.T) {
	t.Run("cooldown, new code, budget carried, limit", func(t *testing.T) {
		h := newHarness(t)
		id, first := h.request(t)
		_, err := h.verify(id, wrong(first))
		require.Error(t, err)

		h.clock.Advance(20 * time.Second)
		_, err = h.svc.Resend(context.Background(), id, "")
		var e *access.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "resend_too_soon", e.Code)
		assert.Equal(t, access.KindRateLimited, e.Kind)
		assert.Equal(t, 40*time.Second, e.RetryAfter)
		assert.Len(t, h.mail.emails, 1, "a refused resend sends nothing")

		h.clock.Advance(40 * time.Second)
		out, err := h.svc.Resend(context.Background(), id, "")
		require.NoError(t, err)
		assert.Equal(t, id, out.RequestID)
		second := h.mail.lastCode(t)
		assert.Len(t, h.sms.texts, 2, "the SMS is sent again too")

		if first != second {
			_, err = h.verify(id, first)
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "otp_incorrect", e.Code, "the replaced code no longer works")
			assert.Equal(t, 3, *e.AttemptsLeft, "the budget carried over")
		}
		_, err = h.verify(id, second)
		assert.NoError(t, err)
	})
	t.Run("at most three resends", func(t *testing.T) {
		h := newHarness(t)
		id, _ := h.request(t)
		for range 3 {
			h.clock.Advance(time.Minute)
			_, err := h.svc.Resend(context.Background(), id, "")
			require.NoError(t, err)
		}
		h.clock.Advance(time.Minute)
		_, err := h.svc.Resend(context.Background(), id, "")
		assert.Equal(t, "resend_limit_reached", errCode(t, err))
	})
	t.Run("an expired code can be resent", func(t *testing.T) {
		h := newHarness(t)
		id, _ := h.request(t)
		h.clock.Advance(15 * time.Minute)
		_, err := h.svc.Resend(context.Background(), id, "")
		require.NoError(t, err)
		_, err = h.verify(id, h.mail.lastCode(t))
		assert.NoError(t, err)
	})
	t.Run("a locked request cannot be resent", func(t *testing.T) {
		h := newHarness(t)
		id, code := h.request(t)
		for range 5 {
			_, _ = h.verify(id, wrong(code))
		}
		h.clock.Advance(time.Minute)
		_, err := h.svc.Resend(context.Background(), id, "")
		assert.Equal(t, "otp_locked", errCode(t, err))
	})
	t.Run("bad id", func(t *testing.T) {
		h := newHarness(t)
		_, err := h.svc.Resend(context.Background(), "nope", "")
		assert.Equal(t, "invalid_input", errCode(t, err))
		_, err = h.svc.Resend(context.Background(), reqA, "")
		assert.Equal(t, "request_not_found", errCode(t, err))
	})
}

func TestDeliveryFailures(t *testing.T) {
	t.Run("email failure is a clear, retryable error", func(t *testing.T) {
		h := newHarness(t)
		h.mail.fail = errors.New("ses: throttled")
		_, err := h.svc.RequestAccess(context.Background(), emailOnly(ada))
		var e *access.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, access.KindUnavailable, e.Kind)
		assert.Equal(t, "delivery_failed", e.Code)
		assert.NotContains(t, e.Message, "ses", "internals stay out of the message")
	})
	t.Run("SMS failure still succeeds by email", func(t *testing.T) {
		h := newHarness(t)
		h.sms.fail = errors.New("sns: opted out")
		_, err := h.svc.RequestAccess(context.Background(), ada)
		require.NoError(t, err)
		assert.Len(t, h.mail.emails, 1)
	})
	t.Run("email failed, SMS sent: the request stays usable with the texted code", func(t *testing.T) {
		h := newHarness(t)
		h.mail.fail = errors.New("ses: paused")
		out, err := h.svc.RequestAccess(context.Background(), ada)
		require.NoError(t, err, "the visitor holds a code, so they get its request id")
		require.Len(t, h.sms.texts, 1)
		code := codeInText.FindString(h.sms.texts[0].Text)
		_, err = h.verify(out.RequestID, code)
		assert.NoError(t, err)
	})
}

// emailOnly is in without a phone.
func emailOnly(in access.AccessInput) access.AccessInput {
	in.Phone = ""
	return in
}

// recordingStore remembers the ids of requests created through it.
type recordingStore struct {
	access.Store
	mu  sync.Mutex
	ids []string
}

func (r *recordingStore) CreateRequest(ctx context.Context, req access.Request, c access.Code, limits []access.Limit) error {
	r.mu.Lock()
	r.ids = append(r.ids, req.ID)
	r.mu.Unlock()
	return r.Store.CreateRequest(ctx, req, c, limits)
}

func TestUndeliveredRequestKeepsNothing(t *testing.T) {
	h := newHarness(t)
	rec := &recordingStore{Store: h.store}
	svc := h.build(t, withStore(rec))

	h.mail.fail = errors.New("ses down")
	h.sms.fail = errors.New("sns down")
	_, err := svc.RequestAccess(context.Background(), ada)
	assert.Equal(t, "delivery_failed", errCode(t, err))
	require.Len(t, rec.ids, 1)
	_, err = h.store.GetRequest(context.Background(), rec.ids[0], h.clock.Now())
	assert.ErrorIs(t, err, access.ErrNotFound, "the visitor's details are not kept when no code went out")

	h.mail.fail, h.sms.fail = nil, nil
	_, err = svc.RequestAccess(context.Background(), ada)
	assert.NoError(t, err, "sending the form again works")
}

func TestFailedResendKeepsThePreviousCode(t *testing.T) {
	h := newHarness(t)
	h.sms.fail = errors.New("sns down")
	id, first := h.request(t)
	h.clock.Advance(time.Minute)
	h.mail.fail = errors.New("ses throttled")
	_, err := h.svc.Resend(context.Background(), id, "")
	assert.Equal(t, "delivery_failed", errCode(t, err))

	h.mail.fail = nil
	for range 3 { // the failed resend was given back: all three remain
		_, err = h.svc.Resend(context.Background(), id, "")
		require.NoError(t, err)
		h.clock.Advance(time.Minute)
	}
	_, err = h.verify(id, first)
	assert.Equal(t, "otp_incorrect", errCode(t, err), "a successful resend does replace the code")

	h2 := newHarness(t)
	h2.sms.fail = errors.New("sns down")
	id2, first2 := h2.request(t)
	h2.clock.Advance(time.Minute)
	h2.mail.fail = errors.New("ses throttled")
	_, err = h2.svc.Resend(context.Background(), id2, "")
	require.Error(t, err)
	_, err = h2.verify(id2, first2)
	assert.NoError(t, err, "the code the visitor already has still works after a failed resend")
}

func TestLockedRequestIsMarkedExpired(t *testing.T) {
	h := newHarness(t)
	id, code := h.request(t)
	for range 5 {
		_, _ = h.verify(id, wrong(code))
	}
	req, err := h.store.GetRequest(context.Background(), id, h.clock.Now())
	require.NoError(t, err)
	assert.Equal(t, access.StatusExpired, req.Status)
}

func TestCodeLivesItsWholeLifetime(t *testing.T) {
	h := newHarness(t)
	h.clock.Advance(900 * time.Millisecond) // a request late in its second
	id, code := h.request(t)
	h.clock.Advance(599*time.Second + 600*time.Millisecond)
	_, err := h.verify(id, code)
	assert.NoError(t, err, "599.6 s after the request the 600 s code still works")
}

// slowStore lets time pass between counting the attempt and marking used.
type slowStore struct {
	access.Store
	during func()
}

func (s slowStore) CountAttempt(ctx context.Context, id string, now time.Time, max int, limits []access.Limit) (access.Code, error) {
	c, err := s.Store.CountAttempt(ctx, id, now, max, limits)
	s.during()
	return c, err
}

func TestExpiryIsCheckedAgainWhenMarkingUsed(t *testing.T) {
	h := newHarness(t)
	id, code := h.request(t)
	h.clock.Advance(10*time.Minute - time.Second)
	svc := h.build(t, withStore(slowStore{Store: h.store, during: func() { h.clock.Advance(2 * time.Second) }}))
	_, err := svc.VerifyAccess(context.Background(), access.VerifyInput{RequestID: id, OTP: code})
	assert.Equal(t, "otp_expired", errCode(t, err))
}

type panickySMS struct{}

func (panickySMS) SendSMS(context.Context, access.SMS) error { panic("sms adapter bug") }

func TestPanickingSMSDoesNotCrash(t *testing.T) {
	h := newHarness(t)
	svc := h.build(t, withSMS(panickySMS{}))
	_, err := svc.RequestAccess(context.Background(), ada)
	assert.NoError(t, err, "the email went out; the SMS panic is contained")
}

func TestEmailHTMLEscapesItsValues(t *testing.T) {
	h := newHarness(t)
	svc := h.build(t, withSMS(nil), func(_ *access.Deps, _ *access.Policy, s *access.Sender) { s.OwnerName = `Ada <b>"Lovelace"</b>` })
	_, err := svc.RequestAccess(context.Background(), ada)
	require.NoError(t, err)
	html := h.mail.emails[0].HTML
	assert.Contains(t, html, "Ada &lt;b&gt;&#34;Lovelace&#34;&lt;/b&gt;")
	assert.NotContains(t, html, "<b>")
	assert.Contains(t, html, `<a href="https://cv.example.com/cv/">cv.example.com</a>`)
}

func TestRateLimits(t *testing.T) {
	ctx := context.Background()
	t.Run("an address gets at most 5 codes a day, resends included", func(t *testing.T) {
		h := newHarness(t)
		id, _ := h.request(t)
		for range 3 {
			h.clock.Advance(time.Minute)
			_, err := h.svc.Resend(ctx, id, "")
			require.NoError(t, err)
		}
		_, err := h.svc.RequestAccess(ctx, ada)
		require.NoError(t, err, "the 5th send")
		_, err = h.svc.RequestAccess(ctx, ada)
		var e *access.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "rate_limited_email", e.Code)
		assert.Equal(t, access.KindRateLimited, e.Kind)
		midnight := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
		assert.Equal(t, midnight.Sub(h.clock.Now()), e.RetryAfter, "retry when the day's window ends")
		assert.Len(t, h.mail.emails, 5, "the refused request sent nothing")

		other := ada
		other.Email = "grace@example.com"
		_, err = h.svc.RequestAccess(ctx, other)
		assert.NoError(t, err, "other addresses are not affected")
	})
	t.Run("a client address gets at most 10 requests an hour", func(t *testing.T) {
		h := newHarness(t)
		in := ada
		in.Phone, in.ClientIP = "", "198.51.100.7"
		for i := range 10 {
			in.Email = fmt.Sprintf("v%d@example.com", i)
			_, err := h.svc.RequestAccess(ctx, in)
			require.NoError(t, err)
		}
		in.Email = "v10@example.com"
		_, err := h.svc.RequestAccess(ctx, in)
		var e *access.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "rate_limited_ip", e.Code)
		assert.Equal(t, 59*time.Minute+60*time.Second, e.RetryAfter)

		in.ClientIP = "198.51.100.8"
		_, err = h.svc.RequestAccess(ctx, in)
		assert.NoError(t, err)
		h.clock.Advance(time.Hour)
		in.ClientIP, in.Email = "198.51.100.7", "v11@example.com"
		_, err = h.svc.RequestAccess(ctx, in)
		assert.NoError(t, err, "a new hour, a new window")
	})
	t.Run("the day's SMS budget spent: email only", func(t *testing.T) {
		h := newHarness(t)
		p := access.DefaultPolicy()
		p.Limits.SMSPerDay = 2
		svc := h.build(t, withPolicy(p))
		for i := range 3 {
			in := ada
			in.Email, in.Phone = fmt.Sprintf("s%d@example.com", i), fmt.Sprintf("+4474009001%02d", i)
			_, err := svc.RequestAccess(ctx, in)
			require.NoError(t, err)
		}
		assert.Len(t, h.mail.emails, 3)
		assert.Len(t, h.sms.texts, 2, "the third visitor got email only")
	})
	t.Run("a number written four ways is one number for its limit", func(t *testing.T) {
		h := newHarness(t)
		for i, phone := range []string{"+44 (0)7400 900123", "0044 7400 900123", "+447400900123", "+44 07400-900-123"} {
			in := ada
			in.Email, in.Phone = fmt.Sprintf("w%d@example.com", i), phone
			_, err := h.svc.RequestAccess(ctx, in)
			require.NoError(t, err)
		}
		assert.Len(t, h.mail.emails, 4)
		require.Len(t, h.sms.texts, 3)
		for _, text := range h.sms.texts {
			assert.Equal(t, "+447400900123", text.To)
		}
	})
	t.Run("a number gets at most 3 texts a day", func(t *testing.T) {
		h := newHarness(t)
		for i := range 4 {
			in := ada
			in.Email = fmt.Sprintf("p%d@example.com", i)
			_, err := h.svc.RequestAccess(ctx, in)
			require.NoError(t, err)
		}
		assert.Len(t, h.sms.texts, 3)
		assert.Len(t, h.mail.emails, 4)
	})
	t.Run("tags, dots and IPv6 neighbours do not escape the limits", func(t *testing.T) {
		h := newHarness(t)
		in := ada
		in.Phone = ""
		for i := range 5 {
			in.Email = fmt.Sprintf("victim+%d@example.com", i)
			in.ClientIP = fmt.Sprintf("2001:db8:1:2::%x", i+1)
			_, err := h.svc.RequestAccess(ctx, in)
			require.NoError(t, err)
		}
		in.Email, in.ClientIP = "Victim+six@Example.com", "198.51.100.1"
		_, err := h.svc.RequestAccess(ctx, in)
		assert.Equal(t, "rate_limited_email", errCode(t, err), "one inbox, however tagged")

		g := newHarness(t)
		in.Email = "first.last@gmail.com"
		for range 5 {
			_, err := g.svc.RequestAccess(ctx, in)
			require.NoError(t, err)
		}
		in.Email = "FirstLast+cv@googlemail.com"
		_, err = g.svc.RequestAccess(ctx, in)
		assert.Equal(t, "rate_limited_email", errCode(t, err), "Gmail ignores dots")

		n := newHarness(t)
		for i := range 10 {
			in.Email = fmt.Sprintf("n%d@example.com", i)
			in.ClientIP = fmt.Sprintf("2001:db8:aa:bb:%x::1", i) // one /64, many addresses
			_, err := n.svc.RequestAccess(ctx, in)
			require.NoError(t, err)
		}
		in.Email, in.ClientIP = "n10@example.com", "2001:db8:aa:bb:ffff::9"
		_, err = n.svc.RequestAccess(ctx, in)
		assert.Equal(t, "rate_limited_ip", errCode(t, err), "an IPv6 /64 is one network")
		in.ClientIP = "::ffff:198.51.100.200"
		_, err = n.svc.RequestAccess(ctx, in)
		assert.NoError(t, err, "an IPv4-mapped address counts as its IPv4 address")
	})
	t.Run("SMS region allowlist", func(t *testing.T) {
		h := newHarness(t)
		p := access.DefaultPolicy()
		p.Limits.SMSRegions = []string{"GB", "IE"}
		svc := h.build(t, withPolicy(p))
		for _, phone := range []string{
			"+1 201 555 0123", // US
			"+1 876 210 1234", // Jamaica, under the same +1
			"+44 7797 123456", // Jersey, under the same +44 as GB
		} {
			in := ada
			in.Phone = phone
			_, err := svc.RequestAccess(ctx, in)
			var e *access.Error
			require.ErrorAs(t, err, &e, phone)
			assert.Equal(t, "invalid_input", e.Code, phone)
			assert.Equal(t, map[string]string{"phone": "Codes cannot be sent by SMS to numbers in this country. " +
				"Leave the phone empty to get the code by email."}, e.Fields, phone)
		}
		assert.Empty(t, h.mail.emails)
		assert.Empty(t, h.sms.texts)

		in := ada
		for i, phone := range []string{"+44 7400 900123", "+353 85 012 3456"} {
			in.Phone, in.Email = phone, fmt.Sprintf("r%d@example.com", i)
			_, err := svc.RequestAccess(ctx, in)
			require.NoError(t, err, phone)
		}
		require.Len(t, h.sms.texts, 2)
		assert.Equal(t, "+447400900123", h.sms.texts[0].To)
		assert.Equal(t, "+353850123456", h.sms.texts[1].To)
	})
	t.Run("honeypot: answered like a success, nothing stored or sent", func(t *testing.T) {
		h := newHarness(t)
		rec := &recordingStore{Store: h.store}
		svc := h.build(t, withStore(rec))
		in := ada
		in.Honeypot = "https://spam.example"
		out, err := svc.RequestAccess(ctx, in)
		require.NoError(t, err)
		assert.Regexp(t, `^[0-9a-f-]{36}$`, out.RequestID)
		assert.Empty(t, rec.ids)
		assert.Empty(t, h.mail.emails)
		assert.Empty(t, h.sms.texts)
	})
}

// blockingMailer never answers before its context ends, like a hung SES.
type blockingMailer struct{}

func (blockingMailer) SendEmail(ctx context.Context, _ access.Email) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestUndoStepsRunEvenWhenTheDeadlineHasPassed(t *testing.T) {
	h := newHarness(t)
	rec := &recordingStore{Store: h.store}
	mk := func(m access.Mailer, st access.Store) *access.Service {
		return h.build(t, withMailer(m), withStore(st))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := mk(blockingMailer{}, rec).RequestAccess(ctx, emailOnly(ada))
	assert.Equal(t, "delivery_failed", errCode(t, err))
	require.Len(t, rec.ids, 1)
	_, err = h.store.GetRequest(context.Background(), rec.ids[0], h.clock.Now())
	assert.ErrorIs(t, err, access.ErrNotFound, "deleted although the invocation's time had run out")

	h.sms.fail = errors.New("sns down")
	id, code := h.request(t)
	h.clock.Advance(time.Minute)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	_, err = mk(blockingMailer{}, h.store).Resend(ctx2, id, "")
	require.Error(t, err)
	_, err = h.verify(id, code)
	assert.NoError(t, err, "the code the visitor holds still works after a resend timed out")
}

// noRestoreStore cannot undo a rotation, as when the undo's own write
// fails: what a refusal leaves must not depend on undoing anything.
type noRestoreStore struct{ access.Store }

func (noRestoreStore) RestoreCode(context.Context, access.Code, []byte) error {
	return errors.New("restore failed")
}

func TestRefusedResendChangesNothing(t *testing.T) {
	h := newHarness(t)
	id, code := h.request(t)
	for range 4 { // the inbox's other four codes today
		_, err := h.svc.RequestAccess(context.Background(), ada)
		require.NoError(t, err)
	}
	h.clock.Advance(time.Minute)
	_, err := h.build(t, withStore(noRestoreStore{h.store})).Resend(context.Background(), id, "")
	assert.Equal(t, "rate_limited_email", errCode(t, err))
	_, c, err := h.store.Lookup(context.Background(), id, h.clock.Now())
	require.NoError(t, err)
	assert.Zero(t, c.Resends, "the refused resend was not counted")
	assert.Equal(t, h.clock.Now().Add(-time.Minute), c.SentAt, "the code was not replaced")
	_, err = h.verify(id, code)
	assert.NoError(t, err, "the code the visitor holds still works")
}

func TestFailedDeliveriesStillSpendTheLimits(t *testing.T) {
	t.Run("a failed email is counted against the inbox and the network", func(t *testing.T) {
		h := newHarness(t)
		h.mail.fail = errors.New("ses down")
		in := emailOnly(ada)
		in.ClientIP = "198.51.100.20"
		for range 5 {
			_, err := h.svc.RequestAccess(context.Background(), in)
			require.Equal(t, "delivery_failed", errCode(t, err))
		}
		h.mail.fail = nil
		_, err := h.svc.RequestAccess(context.Background(), in)
		assert.Equal(t, "rate_limited_email", errCode(t, err), "a send that may have gone out is never given back")
	})
	t.Run("email down: texts to one number stop at its daily limit", func(t *testing.T) {
		h := newHarness(t)
		h.mail.fail = errors.New("ses unreachable")
		in := ada
		in.ClientIP = "198.51.100.21"
		for i := range 30 {
			in.Email = fmt.Sprintf("pump%d@example.com", i)
			_, _ = h.svc.RequestAccess(context.Background(), in)
		}
		assert.Len(t, h.sms.texts, 3, "the phone's limit holds although every email failed")
	})
	t.Run("email down: the site's SMS budget holds across networks and numbers", func(t *testing.T) {
		h := newHarness(t)
		p := access.DefaultPolicy()
		p.Limits.SMSPerDay = 4
		svc := h.build(t, withPolicy(p))
		h.mail.fail = errors.New("ses unreachable")
		for i := range 20 {
			in := ada
			in.Email, in.ClientIP = fmt.Sprintf("pump%d@example.com", i), fmt.Sprintf("198.51.%d.1", i)
			in.Phone = fmt.Sprintf("+4474009002%02d", i)
			_, _ = svc.RequestAccess(context.Background(), in)
		}
		assert.Len(t, h.sms.texts, 4)
	})
}

// preparing is a mailbox that records, in order with the store's writes,
// when it was asked to get ready.
type preparing struct {
	*mailbox
	name   string
	events *[]string
}

func (p preparing) Prepare() { *p.events = append(*p.events, p.name+" ready") }

type orderedStore struct {
	access.Store
	events *[]string
}

func (s orderedStore) CreateRequest(ctx context.Context, r access.Request, c access.Code, limits []access.Limit) error {
	*s.events = append(*s.events, "write")
	return s.Store.CreateRequest(ctx, r, c, limits)
}

func (s orderedStore) RotateCode(ctx context.Context, prev access.Code, rot access.Rotation, limits []access.Limit) error {
	*s.events = append(*s.events, "write")
	return s.Store.RotateCode(ctx, prev, rot, limits)
}

func TestChannelsGetReadyBeforeTheWriteAndSendAfterIt(t *testing.T) {
	h := newHarness(t)
	var events []string
	mail := preparing{h.mail, "email", &events}
	sms := preparing{h.sms, "sms", &events}
	h.mail.hook = func() { events = append(events, "email sent") }
	h.svc = h.build(t, withStore(orderedStore{h.store, &events}), withMailer(mail), withSMS(sms))

	out, err := h.svc.RequestAccess(context.Background(), emailOnly(ada))
	require.NoError(t, err)
	assert.Equal(t, []string{"email ready", "write", "email sent"}, events, "no phone: the SMS channel is left alone")

	events = nil
	_, err = h.svc.RequestAccess(context.Background(), ada)
	require.NoError(t, err)
	assert.Equal(t, []string{"email ready", "sms ready", "write"}, events[:3], "both ready while the write is in flight")

	events = nil
	h.clock.Advance(time.Minute)
	_, err = h.svc.Resend(context.Background(), out.RequestID, "192.0.2.1")
	require.NoError(t, err)
	assert.Equal(t, []string{"email ready", "write", "email sent"}, events)

	events = nil
	_, err = h.svc.RequestAccess(context.Background(), access.AccessInput{Name: "Ada", Email: "not an address", Consent: true})
	require.Error(t, err)
	bot := ada
	bot.Honeypot = "http://spam.example"
	_, err = h.svc.RequestAccess(context.Background(), bot)
	require.NoError(t, err)
	assert.Empty(t, events, "refused input and the honeypot get nothing ready")
}
