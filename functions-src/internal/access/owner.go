package access

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	mathrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cv-access/cv-access/functions-src/internal/logctx"
)

// OwnerCodes keeps the owner's sign-in codes, each of which becomes the
// session it opens: a code with no request, in the same table as the
// visitors' codes but under an id of its own form ("owner-" and a UUID),
// which the visitors' steps refuse to read. Every method is one atomic
// step, like Store's.
type OwnerCodes interface {
	// CreateCode stores a code with no request and bumps each counter,
	// all or nothing. It returns ErrDuplicateID if the id is taken, or a
	// *LimitError naming a full counter.
	CreateCode(ctx context.Context, c Code, limits []Limit) error

	// CountAttempt is Store.CountAttempt, on a code with no request.
	CountAttempt(ctx context.Context, id string, now time.Time, maxAttempts int, limits []Limit) (Code, error)

	// UseCode marks the code used if Code.CheckUse allows it at now and
	// its hash is still hash. Of many concurrent callers exactly one
	// succeeds; the others get ErrCodeUsed. It returns ErrNotFound for a
	// missing code (or one past its DeleteAt).
	UseCode(ctx context.Context, id string, now time.Time, hash []byte) error

	// GetCode returns a code, or ErrNotFound if there is none or it has
	// passed its DeleteAt at now.
	GetCode(ctx context.Context, id string, now time.Time) (Code, error)

	// DeleteCode removes a code. A missing one is not an error.
	DeleteCode(ctx context.Context, id string) error
}

// SessionTTL is the longest an owner session lasts.
const SessionTTL = 12 * time.Hour

// OwnerCodeSubject is the subject of the owner's sign-in code email: fixed,
// and the dev tools find the code by it.
const OwnerCodeSubject = "Your sign-in code for the owner page"

// ownerIDPrefix marks the ids of the owner's codes. The visitors' steps
// take canonical UUIDs only, and the owner's only this form, so neither
// can be handed the other's code; the id is inside the code's HMAC too.
const ownerIDPrefix = "owner-"

// OwnerDeps are the owner service's collaborators.
type OwnerDeps struct {
	Codes    OwnerCodes
	Requests OwnerStore
	Mailer   Mailer
	OTP      *Codes
	Rand     io.Reader
	Now      func() time.Time
	// LimitKeys key the rate-limit counters, as for the visitors (the
	// same keys, so the same counters: a network's sends are one budget).
	LimitKeys [][]byte
	// SessionKeys sign session tokens, newest first; any of them verifies.
	SessionKeys [][]byte
	// To is the owner's address (CV_OWNER_EMAIL): the only one a code is
	// ever sent to. SiteURL names the site in the email.
	To, SiteURL string
	// Shard picks a share of a site-wide budget; nil picks at random.
	Shard func(n int) int
}

// Owner is the owner's page: a sign-in by code sent to the owner's own
// address, under the visitors' rules (a keyed hash, 5 attempts, 10
// minutes, single use, the rate limits: the network's and the site's
// budgets, and the typed inbox's own daily budget), a session that lasts at
// most SessionTTL and can be ended, and behind it the list of requests
// and erasure. Whoever is not the owner learns nothing: a sign-in answers
// alike for every address, and every other step without a session is
// refused before it reads anything.
type Owner struct {
	d       OwnerDeps
	policy  Policy
	limiter limiter
}

// NewOwner checks its dependencies and returns the owner service.
func NewOwner(d OwnerDeps, p Policy) (*Owner, error) {
	switch {
	case d.Codes == nil, d.Requests == nil, d.Mailer == nil, d.OTP == nil, d.Rand == nil, d.Now == nil,
		len(d.LimitKeys) == 0, len(d.SessionKeys) == 0:
		return nil, errors.New("access: owner: missing dependency")
	case d.To == "":
		return nil, errors.New("access: owner: no owner address (CV_OWNER_EMAIL)")
	case p.CodeTTL <= 0, p.MaxAttempts < 1:
		return nil, errors.New("access: owner: incomplete policy")
	}
	for _, k := range append(slices.Clone(d.LimitKeys), d.SessionKeys...) {
		if len(k) == 0 {
			return nil, errors.New("access: owner: empty key")
		}
	}
	shard := d.Shard
	if shard == nil {
		shard = mathrand.IntN
	}
	return &Owner{d: d, policy: p, limiter: limiter{keys: d.LimitKeys, limits: p.Limits, shard: shard}}, nil
}

// Session is a signed-in owner's session: the token the cookie carries,
// and how long it has left.
type Session struct {
	Token     string
	ExpiresIn time.Duration
}

// SignIn sends a sign-in code to the owner's address if email names the
// owner's inbox (in any spelling InboxOf counts as one). Whatever address
// is typed, the answer is the same and the same counters are spent: for
// any other address a sign-in is stored whose hash is random bytes, so
// the code step answers alike (wrong guesses counted, the lock after the
// fifth) while no code can ever match it.
func (o *Owner) SignIn(ctx context.Context, email, clientIP string) (Issued, error) {
	addr, msg := validateEmail(email)
	if msg != "" {
		return Issued{}, invalid(map[string]string{"email": msg})
	}
	now := o.d.Now().UTC().Truncate(time.Second)
	u, err := uuid.NewRandomFromReader(o.d.Rand)
	if err != nil {
		return Issued{}, internal(fmt.Errorf("sign-in id: %w", err))
	}
	id := ownerIDPrefix + u.String()
	code, err := o.d.OTP.New()
	if err != nil {
		return Issued{}, internal(err)
	}
	c := Code{
		RequestID: id,
		Hash:      o.d.OTP.Hash(id, code),
		ExpiresAt: now.Add(o.policy.CodeTTL),
		SentAt:    now,
		// The code is the session once used: it is kept as long as a
		// session opened at its last moment could last, and no longer.
		DeleteAt: now.Add(o.policy.CodeTTL + SessionTTL),
	}
	log := logctx.From(ctx).With("owner_signin", id)
	owner := InboxOf(addr) == InboxOf(o.d.To)
	if !owner {
		// Nobody is sent this sign-in's code, so no code may open it: a
		// guessable code here would hand whoever typed a made-up address
		// five guesses at a session, with no email to warn the owner.
		c.Hash = make([]byte, len(c.Hash))
		if _, err := io.ReadFull(o.d.Rand, c.Hash); err != nil {
			return Issued{}, internal(fmt.Errorf("sign-in decoy: %w", err))
		}
	}
	// The same counters for every address typed: a refusal says nothing
	// about whose address it is.
	limits := o.limiter.forOwnerSignIn(now, clientIP, addr)
	_, err = o.limiter.admit(ctx, now, limits, func(ls []Limit) error { return o.d.Codes.CreateCode(ctx, c, ls) })
	var le *LimitError
	if errors.As(err, &le) {
		log.Info("owner sign-in refused", "limit", string(le.Limit.Kind))
		return Issued{}, rateLimited(le.Limit, now, err)
	}
	if err != nil {
		return Issued{}, storeError("store sign-in code", err)
	}
	if !owner {
		log.Info("owner sign-in: not the owner's address, no code sent")
		return Issued{RequestID: id, ExpiresIn: o.policy.CodeTTL}, nil
	}
	if err := o.d.Mailer.SendEmail(ctx, o.codeEmail(code)); err != nil {
		log.Error("owner sign-in code not sent", "error", err.Error())
		cctx, cancel := cleanup(ctx)
		defer cancel()
		if derr := o.d.Codes.DeleteCode(cctx, id); derr != nil {
			log.Error("unsent sign-in code not deleted", "error", derr.Error())
		}
		return Issued{}, &Error{Kind: KindUnavailable, Code: "delivery_failed",
			Message: "We could not send the email just now. Please try again in a minute.", cause: err}
	}
	log.Info("owner sign-in code sent")
	return Issued{RequestID: id, ExpiresIn: o.policy.CodeTTL}, nil
}

// Verify checks a sign-in code as VerifyAccess checks a visitor's (the
// attempt counted first, with the network's guesses, a constant-time
// comparison, single use under a condition) and opens a session.
func (o *Owner) Verify(ctx context.Context, in VerifyInput) (Session, error) {
	in, err := in.validate(parseOwnerID, "This sign-in is not valid. Please start again.")
	if err != nil {
		return Session{}, err
	}
	id, otp := in.RequestID, in.OTP
	log := logctx.From(ctx).With("owner_signin", id)
	now := o.d.Now().UTC().Truncate(time.Second)
	c, err := o.d.Codes.CountAttempt(ctx, id, now, o.policy.MaxAttempts, o.limiter.forVerify(now, in.ClientIP))
	var le *LimitError
	if errors.As(err, &le) {
		log.Info("owner sign-in refused", "limit", string(le.Limit.Kind))
		return Session{}, rateLimited(le.Limit, now, err)
	}
	if err != nil {
		log.Info("owner sign-in refused", "reason", err.Error())
		return Session{}, ownerCodeError(err)
	}
	left := max(o.policy.MaxAttempts-c.Attempts, 0)
	if !o.d.OTP.Match(id, otp, c.Hash) {
		log.Info("owner sign-in refused", "reason", "incorrect", "attempts_left", left)
		return Session{}, incorrectCode(left)
	}
	at := o.d.Now().UTC().Truncate(time.Second)
	if err := o.d.Codes.UseCode(ctx, id, at, c.Hash); err != nil {
		log.Info("owner sign-in refused", "reason", err.Error())
		return Session{}, ownerCodeError(err)
	}
	exp := at.Add(SessionTTL)
	if c.DeleteAt.Before(exp) {
		exp = c.DeleteAt // the session ends with its record
	}
	log.Info("owner signed in")
	return Session{Token: o.sign(id, exp), ExpiresIn: exp.Sub(at)}, nil
}

// MaxListed is the most requests one list (or CSV) holds: the newest.
// An answer must fit the 6 MB a Lambda or Netlify function may return,
// and anyone can add unverified requests, up to the site's email budget
// a day for the retention period; cv-owner lists them all.
const MaxListed = 5000

// Listing is the requests held, newest first (at most MaxListed), how many
// are held in all, and how long the session has left.
type Listing struct {
	Requests         []Request
	Total            int
	SessionExpiresIn time.Duration
}

// List returns the requests held, newest first.
func (o *Owner) List(ctx context.Context, tokens []string) (Listing, error) {
	s, err := o.session(ctx, tokens)
	if err != nil {
		return Listing{}, err
	}
	reqs, err := o.d.Requests.ListRequests(ctx, o.d.Now())
	if err != nil {
		return Listing{}, storeError("list requests", err)
	}
	slices.Reverse(reqs)
	l := Listing{Requests: reqs[:min(len(reqs), MaxListed)], Total: len(reqs), SessionExpiresIn: s.ExpiresIn}
	logctx.From(ctx).Info("owner listed requests", "count", len(l.Requests), "total", l.Total)
	return l, nil
}

// Erase deletes every request made with any spelling of email's inbox.
func (o *Owner) Erase(ctx context.Context, tokens []string, email string) (int, error) {
	if _, err := o.session(ctx, tokens); err != nil {
		return 0, err
	}
	addr, err := NormalizeEmail(email)
	if err != nil {
		return 0, invalid(map[string]string{"email": "Enter the address whose requests to erase."})
	}
	n, err := o.d.Requests.EraseEmail(ctx, addr)
	if err != nil {
		return n, storeError("erase", err)
	}
	logctx.From(ctx).Info("owner erased requests", "count", n)
	return n, nil
}

// SignOut ends the session the tokens carry, if any: its code is deleted,
// so the token stops working wherever it is held. Without a session
// there is nothing to end, and that is not an error.
func (o *Owner) SignOut(ctx context.Context, tokens []string) error {
	s, err := o.session(ctx, tokens)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Kind == KindUnauthorized {
			return nil
		}
		return err
	}
	if err := o.d.Codes.DeleteCode(ctx, s.id); err != nil {
		return storeError("end session", err)
	}
	logctx.From(ctx).With("owner_signin", s.id).Info("owner signed out")
	return nil
}

type ownerSession struct {
	id        string
	ExpiresIn time.Duration
}

// maxSessionReads bounds the store reads one call's cookies may cost.
// Every cookie is checked, since a sibling subdomain can plant cookies of
// the same name ahead of the owner's, but only a token we signed costs a
// read, and only ours are signed.
const maxSessionReads = 3

// session finds the first token that is signed by us, unexpired, and
// whose code is still held and used. A token that fails its signature
// costs no store call.
func (o *Owner) session(ctx context.Context, tokens []string) (ownerSession, error) {
	now := o.d.Now().UTC()
	reads := 0
	for _, tok := range tokens {
		id, exp, ok := o.verifyToken(tok, now)
		if !ok {
			continue
		}
		if reads++; reads > maxSessionReads {
			break
		}
		c, err := o.d.Codes.GetCode(ctx, id, now)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return ownerSession{}, storeError("read session", err)
		}
		if c.Used {
			return ownerSession{id: id, ExpiresIn: exp.Sub(now)}, nil
		}
	}
	return ownerSession{}, errNoSession
}

var errNoSession = &Error{Kind: KindUnauthorized, Code: "session_required", Message: "Please sign in."}

func (o *Owner) sign(id string, exp time.Time) string {
	payload := id + "." + strconv.FormatInt(exp.Unix(), 10)
	return payload + "." + base64.RawURLEncoding.EncodeToString(sessionMAC(o.d.SessionKeys[0], payload))
}

// verifyToken checks a token's form, signature (under any key) and
// expiry. A token is id.expiry.mac, all of it safe in a cookie.
func (o *Owner) verifyToken(tok string, now time.Time) (string, time.Time, bool) {
	if len(tok) > 200 {
		return "", time.Time{}, false
	}
	cut := strings.LastIndexByte(tok, '.')
	if cut < 0 {
		return "", time.Time{}, false
	}
	payload, sig := tok[:cut], tok[cut+1:]
	// Strict: one token has one spelling (the last character's unused
	// bits must be zero).
	mac, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil {
		return "", time.Time{}, false
	}
	ok := false
	for _, k := range o.d.SessionKeys {
		if EqualMAC(sessionMAC(k, payload), mac) {
			ok = true
		}
	}
	id, expText, _ := strings.Cut(payload, ".")
	expUnix, err := strconv.ParseInt(expText, 10, 64)
	if !ok || err != nil {
		return "", time.Time{}, false
	}
	exp := time.Unix(expUnix, 0).UTC()
	if _, valid := parseOwnerID(id); !valid || !now.Before(exp) {
		return "", time.Time{}, false
	}
	return id, exp, true
}

func sessionMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("cv-access/owner-session/v1\x00"))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// parseOwnerID accepts only "owner-" and a canonical UUID.
func parseOwnerID(s string) (string, bool) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, ownerIDPrefix)
	if !ok {
		return "", false
	}
	if _, err := parseRequestID(rest); err != nil {
		return "", false
	}
	return s, true
}

// ownerCodeError is codeStateError in the sign-in's words: a sign-in is
// never resent, so every dead end says to start again.
func ownerCodeError(err error) *Error {
	e := codeStateError(err)
	switch e.Code {
	case "request_not_found":
		e.Message = "We could not find this sign-in. Please start again."
	case "otp_used":
		e.Message = "This code has already been used. Please start again for a new code."
	case "otp_expired":
		e.Message = "This code has expired. Please start again for a new code."
	case "otp_locked":
		e.Message = "Too many wrong attempts. Please start again for a new code."
	case "otp_incorrect": // ErrCodeReplaced: the code changed under the guess, which a sign-in never does
		e.Message = "That code did not work. Please start again for a new code."
	}
	return e
}

// ErrOwnerPageOff is what every owner call gets where the owner page is
// not set up (no CV_OWNER_EMAIL): the function still answers, in words.
var ErrOwnerPageOff = &Error{Kind: KindNotFound, Code: "owner_page_off",
	Message: "The owner page is not set up on this site: its owner has not set CV_OWNER_EMAIL."}

const ownerCodeText = `Your code to sign in to the owner page of %[2]s is:

    %[1]s

Enter it on %[3]s within %[4]d minutes. It works once, and the session it
opens lasts %[5]d hours at most.

Someone, hopefully you, asked for this code on %[3]s. If it was not you,
ignore this message: nobody can sign in without the code.
`

const ownerCodeHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your sign-in code</title></head>
<body style="font-family:system-ui,sans-serif;line-height:1.5;color:#1a1a1a">
<p>Your code to sign in to the owner page of %[2]s is:</p>
<p style="font-size:28px;font-weight:bold;letter-spacing:6px;font-family:monospace">%[1]s</p>
<p>Enter it on <a href="%[3]s">%[3]s</a> within %[4]d minutes. It works once, and the session it
opens lasts %[5]d hours at most.</p>
<p style="color:#555">Someone, hopefully you, asked for this code on %[3]s. If it was not you,
ignore this message: nobody can sign in without the code.</p>
</body></html>
`

// OwnerPagePath is where the owner page is served on the site.
const OwnerPagePath = "/owner/"

func (o *Owner) codeEmail(code string) Email {
	s := Sender{SiteURL: o.d.SiteURL}
	page := strings.TrimRight(o.d.SiteURL, "/") + OwnerPagePath
	minutes, hours := int(o.policy.CodeTTL/time.Minute), int(SessionTTL/time.Hour)
	esc := html.EscapeString
	return Email{
		To:      o.d.To,
		Subject: OwnerCodeSubject,
		Text:    fmt.Sprintf(ownerCodeText, code, s.Host(), page, minutes, hours),
		HTML:    fmt.Sprintf(ownerCodeHTML, esc(code), esc(s.Host()), esc(page), minutes, hours),
	}
}
