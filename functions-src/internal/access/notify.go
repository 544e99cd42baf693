package access

import (
	"context"
	"errors"
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/logctx"
)

// Notifications is what telling the owner of each download needs from a
// store: a claim that at most one sender ever wins per verified request,
// and a way to give the claim back when the email could not be sent.
type Notifications interface {
	// ClaimNotification marks a VERIFIED request as notified at now, if
	// nobody has claimed it yet, and returns it. Of many concurrent
	// callers exactly one succeeds. It returns ErrNotFound for a missing
	// request (or one past its retention at now), and ErrNoNotificationDue
	// for one that is not VERIFIED or was claimed already.
	ClaimNotification(ctx context.Context, requestID string, now time.Time) (Request, error)

	// ReleaseNotification gives back a claim made at `at` whose email
	// could not be sent, so that a retry can send it. A claim made at
	// another time (or none) is left alone.
	ReleaseNotification(ctx context.Context, requestID string, at time.Time) error
}

// ErrNoNotificationDue means a request is not VERIFIED, or its owner
// notification was claimed by another sender.
var ErrNoNotificationDue = errors.New("no notification due")

// Notifier emails the owner when a visitor gets a download link: who
// (name, email, company and location, as given), when, which document,
// and a link to the owner page, where the owner sees and erases requests. It is driven by the request turning
// VERIFIED (the requests table's stream on AWS; the dev server after each
// verify), never by verify-access itself, whose answer waits for nothing
// more than its two round trips.
type Notifier struct {
	Store Notifications
	Mail  Mailer
	// To is the owner's address (CV_OWNER_EMAIL); SiteURL is the site's
	// origin, named in the email.
	To, SiteURL string
	Now         func() time.Time
	// Documents name the requests' documents by title; the zero value
	// knows only the CV.
	Documents Documents
}

// Notify sends the owner's email for a request that turned VERIFIED,
// once: it reports whether this call sent it. A request that is not due
// (not VERIFIED, already notified, gone) is not an error. If the email
// fails, the claim is given back and the error returned, so the caller's
// retry (the stream's) sends it.
func (n *Notifier) Notify(ctx context.Context, requestID string) (bool, error) {
	return n.NotifyAt(ctx, requestID, n.Now())
}

// NotifyAt is Notify with the clock read by the caller (one that hands
// the work to another goroutine reads it first).
func (n *Notifier) NotifyAt(ctx context.Context, requestID string, now time.Time) (bool, error) {
	at := now.UTC().Truncate(time.Second)
	r, err := n.Store.ClaimNotification(ctx, requestID, at)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrNoNotificationDue) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim the owner's notification: %w", err)
	}
	if err := n.Mail.SendEmail(ctx, n.email(r, at)); err != nil {
		// Given back even when the caller's deadline has passed, but not
		// for longer than a store call takes.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := n.Store.ReleaseNotification(rctx, requestID, at); rerr != nil {
			logctx.From(ctx).Error("owner notification claim not given back: it will not be retried", "error", rerr.Error())
		}
		return false, fmt.Errorf("email the owner: %w", err)
	}
	return true, nil
}

// OwnerSubject is the notification's subject: fixed, so that nothing a
// visitor typed reaches a header, only the document's title from the
// owner's own list.
func OwnerSubject(title string) string { return "Someone got a link to your " + title }

// The owner's notification carries what the visitor typed, to the owner
// only (unlike the visitor's messages, which carry none of it): every
// value is escaped for HTML, and none reaches a header.
const ownerHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Someone got a link to your %[11]s</title></head>
<body style="font-family:system-ui,sans-serif;line-height:1.5;color:#1a1a1a">
<p>A visitor proved their email address and got a link to your %[11]s on %[2]s, from <a href="%[9]s">%[9]s</a>.
Their details, as they typed them:</p>
<table style="border-collapse:collapse">
<tr><th style="text-align:left;padding-right:1em">Name</th><td>%[1]s</td></tr>
<tr><th style="text-align:left;padding-right:1em">Email</th><td>%[3]s</td></tr>
<tr><th style="text-align:left;padding-right:1em">Company</th><td>%[4]s</td></tr>
<tr><th style="text-align:left;padding-right:1em">Location</th><td>%[5]s</td></tr>
<tr><th style="text-align:left;padding-right:1em">Document</th><td>%[6]s</td></tr>
<tr><th style="text-align:left;padding-right:1em">Consent</th><td>policy %[7]s, %[8]s</td></tr>
</table>
<p>See every request, and erase one person&#39;s, on <a href="%[10]s">your owner page</a>
(or with <code>cv-owner list</code> and <code>cv-owner erase -email</code>).</p>
</body></html>
`

const ownerText = `A visitor proved their email address and got a link to your %[11]s on
%[2]s, from %[9]s. Their details, as they typed them:

Name:     %[1]s
Email:    %[3]s
Company:  %[4]s
Location: %[5]s
Document: %[6]s
Consent:  policy %[7]s, %[8]s

See every request, and erase one person's, on your owner page:
%[10]s
(or with "cv-owner list" and "cv-owner erase -email").
`

func (n *Notifier) email(r Request, now time.Time) Email {
	when := func(t time.Time) string { return t.UTC().Format("2 January 2006, 15:04 UTC") }
	or := func(s string) string {
		if strings.TrimSpace(s) == "" {
			return "(not given)"
		}
		return s
	}
	site := strings.TrimRight(n.SiteURL, "/")
	verified := r.VerifiedAt
	if verified.IsZero() {
		verified = now
	}
	title := oneLine(n.Documents.Title(r.Document))
	text := []any{oneLine(r.Name), when(verified), oneLine(r.Email), oneLine(or(r.Company)), oneLine(or(r.Location)),
		title, oneLine(r.Consent.PolicyVersion), when(r.Consent.At), site, site + OwnerPagePath, title}
	escaped := make([]any, len(text))
	for i, v := range text {
		escaped[i] = html.EscapeString(v.(string))
	}
	return Email{To: n.To, Subject: OwnerSubject(title), Text: fmt.Sprintf(ownerText, text...), HTML: fmt.Sprintf(ownerHTML, escaped...)}
}

// oneLine keeps a visitor's value on its line of the text email: input
// validation already refuses control characters, and this holds even for
// a record written before it did.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}
