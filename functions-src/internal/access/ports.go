package access

import (
	"context"
	"time"
)

// Store keeps requests and their codes. Every method is one atomic step:
// the rules that must hold under concurrency (attempt counting, single use,
// expiry) are checked inside the store's write, never read-then-write in Go.
// The contract suite in internal/storetest holds every implementation to it.
type Store interface {
	// CreateRequest stores a new request with its first code and bumps each
	// rate-limit counter, all or nothing, in one atomic step. It returns
	// ErrDuplicateID if the id is taken, or a *LimitError naming a counter
	// that is already at its Max.
	CreateRequest(ctx context.Context, r Request, c Code, limits []Limit) error

	// Consume bumps each counter if none is at its Max, all or nothing, and
	// returns a *LimitError naming a full one otherwise.
	Consume(ctx context.Context, limits []Limit) error

	// CountAttempt bumps each counter and, if Code.CheckAttempt allows it
	// at now, adds one to the code's attempt count, in one atomic step,
	// and returns the code with its hash and (without racing guesses) its
	// attempt count after the increment. If a counter is at its Max,
	// nothing changes and it returns a *LimitError naming it, whatever the
	// code's state. If the rule refuses the attempt, the counters stay
	// bumped (a refused guess costs like any other) and it returns
	// ErrNotFound, ErrCodeUsed, ErrCodeExpired or ErrCodeLocked.
	CountAttempt(ctx context.Context, requestID string, now time.Time, maxAttempts int, limits []Limit) (Code, error)

	// MarkVerified marks the code used and the request VERIFIED if
	// Code.CheckUse allows it at now and the code's hash is still hash,
	// the one the guess was compared with. Of many concurrent callers
	// exactly one succeeds; the others get ErrCodeUsed. A code replaced
	// by a resend since the comparison gives ErrCodeReplaced.
	MarkVerified(ctx context.Context, requestID string, now time.Time, hash []byte) error

	// GetRequest returns a request, or ErrNotFound if there is none or it
	// has passed its retention time at now.
	GetRequest(ctx context.Context, requestID string, now time.Time) (Request, error)

	// MarkExpired sets a PENDING request's status to EXPIRED. It is a
	// bookkeeping step for the owner's view; a missing or non-pending
	// request is not an error.
	MarkExpired(ctx context.Context, requestID string) error

	// Lookup returns a request and its code, or ErrNotFound if either is
	// missing or past its retention time at now.
	Lookup(ctx context.Context, requestID string, now time.Time) (Request, Code, error)

	// RotateCode replaces the code's hash and lifetime and bumps each
	// counter, all or nothing, in one atomic step: only if the code's hash
	// is still prev's and Code.CheckResend allows it at rot.SentAt (the
	// attempt count is kept), and it sets a request marked EXPIRED back to
	// PENDING. On refusal nothing changes and it returns ErrNotFound,
	// ErrCodeUsed, ErrCodeLocked, ErrResendsSpent, ErrResendTooSoon, a
	// *LimitError naming a full counter, or ErrBusy if another rotation
	// replaced prev first.
	RotateCode(ctx context.Context, prev Code, rot Rotation, limits []Limit) error

	// RestoreCode undoes a rotation whose code could not be delivered: if
	// the code's hash is still ifHash, its hash, lifetime, send time and
	// resend count go back to prev's (never its attempt count). Otherwise
	// nothing changes and it returns nil: a later rotation has won.
	RestoreCode(ctx context.Context, prev Code, ifHash []byte) error

	// DeleteRequest removes a request and its code, both or neither. A
	// missing request is not an error.
	DeleteRequest(ctx context.Context, requestID string) error
}

// OwnerStore is what the owner's tools (cv-owner, and the owner page's
// function) need beyond the visitor flow: to see every request held, and
// to erase everything about one person. The visitors' functions never use
// it.
type OwnerStore interface {
	// ListRequests returns every request still within its retention at
	// now, oldest first.
	ListRequests(ctx context.Context, now time.Time) ([]Request, error)
	// EraseEmail deletes every request (and its code) made with any
	// spelling of the address's inbox (InboxOf), and reports how many
	// there were.
	EraseEmail(ctx context.Context, email string) (int, error)
}

// Phones knows which phone numbers exist and which can take a text.
// internal/phone implements it with libphonenumber; a process that never
// reads a visitor's phone does without, and links none of it.
type Phones interface {
	// Parse returns the canonical E.164 form of a number as typed, or a
	// field message saying why it cannot get a code by text.
	Parse(raw string) (e164, problem string)
	// Region names the ISO 3166 region of an E.164 number ("" if none).
	Region(e164 string) string
	// KnownRegion reports whether numbers can belong to an ISO 3166 code.
	KnownRegion(code string) bool
}

// Email is one outgoing message with a plain-text and an HTML body.
type Email struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// SMS is one outgoing text message to an E.164 number.
type SMS struct {
	To   string
	Text string
}

// Preparer is a delivery channel that can get ready for a send it may
// make shortly, sending nothing: the AWS adapters open their connection
// while the request's store write is in flight, so that a fresh process
// does not open it only after. Mailer and SMSSender may implement it.
type Preparer interface {
	Prepare()
}

// prepare gets a channel ready, if it can be.
func prepare(channel any) {
	if p, ok := channel.(Preparer); ok {
		p.Prepare()
	}
}

// Mailer delivers email (SES in production, the outbox folder locally).
type Mailer interface {
	SendEmail(ctx context.Context, m Email) error
}

// SMSSender delivers text messages (SNS in production, the outbox locally).
type SMSSender interface {
	SendSMS(ctx context.Context, m SMS) error
}

// Presigner makes short-lived download links to the private documents.
// It must not need a network call: the link is produced locally and
// checked by whoever serves the file.
type Presigner interface {
	// Presign signs a link to doc that works for doc.LinkTTL. When the
	// credentials it would sign with expire sooner, it returns an error
	// wrapping ErrLinkCredentialsExpiring rather than a link that dies
	// early.
	Presign(ctx context.Context, doc Document) (string, error)

	// Check reports whether a link to doc signed now would download it:
	// the document is there and the signing credentials may read it. It
	// may call the file's server, so the service runs it beside its first
	// store call and, once it has passed for doc, not again in this
	// process. It returns an error wrapping ErrCVDenied or ErrCVMissing
	// when it can tell which, and whose text names what to fix; it
	// honours ctx.
	Check(ctx context.Context, doc Document) error
}
