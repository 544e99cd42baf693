package access

import "time"

// Status is where a request stands, as the owner sees it.
type Status string

const (
	StatusPending  Status = "PENDING"  // a code was sent and not yet used
	StatusVerified Status = "VERIFIED" // the code was used and a link handed out
	StatusExpired  Status = "EXPIRED"  // the code ran out of time or attempts unused
)

// Consent records what the visitor agreed to and when.
type Consent struct {
	PolicyVersion string
	At            time.Time
}

// Request is what we keep about one visitor asking for the CV. It holds the
// personal data the owner needs to know who asked; it never holds the code.
type Request struct {
	ID       string
	Name     string
	Email    string
	Phone    string // E.164, empty when not given
	Company  string
	Location string
	// Document is the slug of the document asked for; empty in records
	// made before there were several (theirs was the CV).
	Document  string
	Consent   Consent
	Status    Status
	CreatedAt time.Time
	// VerifiedAt is zero until the code is used.
	VerifiedAt time.Time
	// NotifiedAt is zero until the owner's email about the download has
	// been claimed for sending (Notifications).
	NotifiedAt time.Time
	// DeleteAt is when the retention period ends: the store expires the
	// record then (DynamoDB TTL) and treats it as gone from that instant.
	DeleteAt time.Time
}

// Code is the state of a request's one-time code. Only a keyed hash of the
// code itself is kept. There is one live code per request; a resend
// replaces the hash but keeps the attempt count.
type Code struct {
	RequestID string
	// Document is the request's document, kept beside the code so the
	// verify step signs its link with no further read.
	Document  string
	Hash      []byte
	ExpiresAt time.Time
	Attempts  int // how many guesses have been counted, right or wrong
	Used      bool
	SentAt    time.Time // when the current code was issued, for the resend cooldown
	Resends   int
	// DeleteAt is when the store may drop the record (after ExpiresAt).
	DeleteAt time.Time
}

// CheckAttempt says whether one more guess may be evaluated at now. Stores
// apply it inside their atomic update (or express the same conditions
// natively), so the rule is written once and every backend agrees.
func (c Code) CheckAttempt(now time.Time, maxAttempts int) error {
	switch {
	case c.Used:
		return ErrCodeUsed
	case !now.Before(c.ExpiresAt):
		return ErrCodeExpired
	case c.Attempts >= maxAttempts:
		return ErrCodeLocked
	}
	return nil
}

// CheckUse says whether a code that just matched may still be marked used:
// a racing request may have won, or the clock may have passed expiry since
// the attempt was counted.
func (c Code) CheckUse(now time.Time) error {
	switch {
	case c.Used:
		return ErrCodeUsed
	case !now.Before(c.ExpiresAt):
		return ErrCodeExpired
	}
	return nil
}

// ResendPolicy bounds how often a code may be replaced.
type ResendPolicy struct {
	Cooldown    time.Duration
	MaxResends  int
	MaxAttempts int
}

// CheckResend says whether the code may be replaced by a new one at now.
// An expired code may be resent (that is what resend is for); a used or
// locked one may not, and the attempt budget carries over.
func (c Code) CheckResend(now time.Time, p ResendPolicy) error {
	switch {
	case c.Used:
		return ErrCodeUsed
	case c.Attempts >= p.MaxAttempts:
		return ErrCodeLocked
	case c.Resends >= p.MaxResends:
		return ErrResendsSpent
	case now.Before(c.SentAt.Add(p.Cooldown)):
		return ErrResendTooSoon
	}
	return nil
}

// Rotation is a replacement code for a resend.
type Rotation struct {
	Hash      []byte
	SentAt    time.Time
	ExpiresAt time.Time
	DeleteAt  time.Time
	Policy    ResendPolicy
}
