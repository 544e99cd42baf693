package access

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Kind classifies a failure for the edge, which maps it to a status code.
// The domain says what went wrong; only the edge knows about HTTP.
type Kind int

const (
	KindInternal     Kind = iota // a fault on our side; details stay in the logs
	KindInvalid                  // the input is malformed or breaks a rule
	KindNotFound                 // no such request (or it has passed its retention)
	KindIncorrect                // a well-formed code that does not match
	KindExpired                  // the code's lifetime is over
	KindUsed                     // the code has already given out its link
	KindLocked                   // the attempt budget is spent
	KindRateLimited              // try again after RetryAfter
	KindConflict                 // the request cannot do this any more (e.g. resends used up)
	KindUnavailable              // a delivery channel or dependency failed; retrying may help
	KindBusy                     // a dependency was too slow or throttled us; retry in a moment
	KindNotReady                 // we cannot give out the result now; nothing was spent, retry later
	KindUnauthorized             // the owner's step needs a session, and the call has none
)

// Error is what the domain returns to its callers: a stable machine code,
// a message fit to show a visitor, and the internal cause for logs only.
type Error struct {
	Kind    Kind
	Code    string // stable, e.g. "otp_incorrect"; clients may switch on it
	Message string // human text, safe to show; never carries personal data
	// Fields maps an input field to a human message, for validation errors.
	Fields map[string]string
	// AttemptsLeft is set on KindIncorrect for a code that does not match,
	// and on download_unavailable: the attempts the code has left.
	AttemptsLeft *int
	// RetryAfter is set on KindRateLimited.
	RetryAfter time.Duration
	cause      error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %v", e.Code, e.cause)
	}
	return e.Code
}

func (e *Error) Unwrap() error { return e.cause }

// Store-level sentinels. Adapters return these (possibly wrapped); the
// service turns them into *Error with the right public wording.
var (
	ErrNotFound      = errors.New("not found")
	ErrCodeUsed      = errors.New("code already used")
	ErrCodeExpired   = errors.New("code expired")
	ErrCodeLocked    = errors.New("code attempt budget spent")
	ErrCodeReplaced  = errors.New("code replaced by a resend")
	ErrResendTooSoon = errors.New("resend cooldown running")
	ErrResendsSpent  = errors.New("resend limit reached")
	ErrDuplicateID   = errors.New("request id already exists")
	// ErrBusy marks a store failure that is worth retrying soon: the
	// service throttled us or did not answer within the deadline.
	ErrBusy = errors.New("store busy")

	// ErrCVDenied and ErrCVMissing are what Presigner.Check wraps when
	// the signing credentials may not read the document, or there is none. A
	// file server that hides missing files from those who may not list
	// them answers both alike: then the error is ErrCVDenied and its text
	// says that either may be the case.
	ErrCVDenied  = errors.New("cv not readable with the signing credentials")
	ErrCVMissing = errors.New("cv missing")
	// ErrLinkCredentialsExpiring is what Presigner.Presign wraps when
	// the credentials it would sign with expire before the link would,
	// even once refreshed: a presigned link stops working when its
	// signer's credentials expire, whatever its own expiry says, so no
	// link is given out. Like a failed CV check it is answered 503
	// download_unavailable, and the code is not spent.
	ErrLinkCredentialsExpiring = errors.New("signing credentials expire before the link would")

	errInvalidRequestID = errors.New("invalid request id")
)

func invalid(fields map[string]string) *Error {
	return &Error{
		Kind:    KindInvalid,
		Code:    "invalid_input",
		Message: "Some fields need attention.",
		Fields:  fields,
	}
}

func internal(cause error) *Error {
	return &Error{
		Kind:    KindInternal,
		Code:    "internal",
		Message: "Something went wrong on our side. Please try again in a minute.",
		cause:   cause,
	}
}

// codeStateError turns a store sentinel about a code into its public form.
func codeStateError(err error) *Error {
	switch {
	case errors.Is(err, ErrNotFound):
		return &Error{Kind: KindNotFound, Code: "request_not_found",
			Message: "We could not find this request. Please start again.", cause: err}
	case errors.Is(err, ErrCodeExpired):
		return &Error{Kind: KindExpired, Code: "otp_expired",
			Message: "This code has expired. Please request a new one.", cause: err}
	case errors.Is(err, ErrCodeUsed):
		return &Error{Kind: KindUsed, Code: "otp_used",
			Message: "This code has already been used. Please start again for a new link.", cause: err}
	case errors.Is(err, ErrCodeReplaced):
		return &Error{Kind: KindIncorrect, Code: "otp_incorrect",
			Message: "That code was replaced by a newer one. Please enter the code from the latest message.", cause: err}
	case errors.Is(err, ErrCodeLocked):
		return &Error{Kind: KindLocked, Code: "otp_locked",
			Message: "Too many wrong attempts. Please start again for a new code.", cause: err}
	default:
		return storeError("", err)
	}
}

// incorrectCode is the answer to a well-formed code that does not match,
// with the attempts the code has left.
func incorrectCode(left int) *Error {
	msg := fmt.Sprintf("That code is not right. %d attempts left.", left)
	switch left {
	case 1:
		msg = "That code is not right. 1 attempt left."
	case 0:
		msg = "That code is not right, and no attempts are left. Please start again for a new code."
	}
	return &Error{Kind: KindIncorrect, Code: "otp_incorrect", Message: msg, AttemptsLeft: &left}
}

// storeError is the public form of a store failure that is not a rule:
// busy (throttled, or out of time) asks for a retry; anything else is ours.
func storeError(op string, err error) *Error {
	if op != "" {
		err = fmt.Errorf("%s: %w", op, err)
	}
	if errors.Is(err, ErrBusy) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: KindBusy, Code: "busy",
			Message: "We are busy right now. Please try again in a few seconds.", RetryAfter: 5 * time.Second, cause: err}
	}
	return internal(err)
}

// downloadUnavailable is the public form of a failed CV check. The code
// was right and is not marked used, but the attempt was counted (the
// check's answer is awaited only after the attempt), so the code stays
// valid only for the attempts it has left, until it expires: with none
// left, the visitor must start again.
func downloadUnavailable(cause error, attemptsLeft int) *Error {
	msg := fmt.Sprintf("The document cannot be downloaded right now. Please try again later; "+
		"your code stays valid for its remaining attempts (%d left).", attemptsLeft)
	if attemptsLeft == 0 {
		msg = "The document cannot be downloaded right now, and this code has no attempts left. " +
			"Please start again later for a new code."
	}
	return &Error{Kind: KindNotReady, Code: "download_unavailable", Message: msg, AttemptsLeft: &attemptsLeft,
		RetryAfter: 30 * time.Second, cause: cause}
}

// documentNotListed is the field message for a slug the site does not
// list.
const documentNotListed = "This document is not offered here."

// withField adds one field's problem to a validation error, or makes one.
func withField(err error, field, msg string) error {
	var e *Error
	switch {
	case err == nil:
		return invalid(map[string]string{field: msg})
	case errors.As(err, &e) && e.Kind == KindInvalid && e.Fields != nil:
		e.Fields[field] = msg
	}
	return err
}

// documentWithdrawn answers a request whose document the owner has taken
// off the list since it was made. Nothing is spent beyond the attempt.
func documentWithdrawn(slug string) *Error {
	return &Error{Kind: KindConflict, Code: "document_withdrawn",
		Message: "This document is no longer offered here.", cause: fmt.Errorf("document %q is not listed", slug)}
}
