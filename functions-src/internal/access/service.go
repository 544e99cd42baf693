package access

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cv-access/cv-access/functions-src/internal/logctx"
)

// Policy holds the numbers the security model fixes. DefaultPolicy gives
// the values documented in the README.
type Policy struct {
	CodeTTL        time.Duration // how long a code is valid
	MaxAttempts    int           // guesses per request, across resends
	ResendCooldown time.Duration
	MaxResends     int
	Retention      time.Duration // how long a request is kept
	PolicyVersion  string        // privacy policy version the visitor accepts
	Limits         Limits
}

// DefaultPolicy is the policy the product ships with.
func DefaultPolicy() Policy {
	return Policy{
		CodeTTL:        10 * time.Minute,
		MaxAttempts:    5,
		ResendCooldown: 60 * time.Second,
		MaxResends:     3,
		Retention:      180 * 24 * time.Hour,
		PolicyVersion:  "2026-11-30",
		Limits:         DefaultLimits(),
	}
}

// codeGrace keeps a code record around a day past its expiry so that a
// late guess is told "expired" rather than "not found".
const codeGrace = 24 * time.Hour

// Deps are the service's collaborators.
type Deps struct {
	Store  Store
	Mailer Mailer
	SMS    SMSSender // may be nil: then phones are not texted
	// Phones reads visitors' phone numbers; nil refuses any phone.
	Phones Phones
	Links  Presigner
	// Documents are the gated documents; the zero value is the single
	// CV at key "cv.pdf".
	Documents Documents
	Codes     *Codes
	Rand      io.Reader        // for request ids
	Now       func() time.Time // the clock
	// Shard picks a share of a site-wide budget in [0, n); nil picks at
	// random.
	Shard func(n int) int
	// LimitKeys key the hashes in rate-limit counters, so no IP, address
	// or number is stored in them. Newest first; while a secret is being
	// rotated there are two, and every counter is bumped under both.
	LimitKeys [][]byte
	// Verified, if set, is told of each request that turned VERIFIED,
	// after the answer's last store call and without waiting for it: the
	// dev server's owner notification. On AWS the requests table's stream
	// does that job, so the functions leave it nil.
	Verified func(ctx context.Context, requestID string)
}

// Service is the whole visitor flow: ask, prove, download.
type Service struct {
	d       Deps
	policy  Policy
	sender  Sender
	limiter limiter
	docs    Documents
	// ready holds the slugs whose Links.Check has passed in this
	// process: from then on a verify of that document makes no call to
	// check it.
	ready sync.Map
}

// NewService checks its dependencies and returns a ready service.
func NewService(d Deps, p Policy, s Sender) (*Service, error) {
	switch {
	case d.Store == nil, d.Mailer == nil, d.Links == nil, d.Codes == nil, d.Rand == nil, d.Now == nil, len(d.LimitKeys) == 0:
		return nil, errors.New("access: missing dependency")
	case p.CodeTTL <= 0, p.MaxAttempts < 1, p.Retention < p.CodeTTL, p.PolicyVersion == "":
		return nil, errors.New("access: incomplete policy")
	}
	// One counter per distinct key: a secret listed twice must not put
	// one item into a transaction twice, which DynamoDB refuses.
	var keys [][]byte
	for _, k := range d.LimitKeys {
		if len(k) == 0 {
			return nil, errors.New("access: empty rate-limit key")
		}
		if !slices.ContainsFunc(keys, func(have []byte) bool { return string(have) == string(k) }) {
			keys = append(keys, k)
		}
	}
	shard := d.Shard
	if shard == nil {
		shard = mathrand.IntN
	}
	lim := limiter{keys: keys, limits: p.Limits, shard: shard}
	docs := d.Documents
	if docs.Len() == 0 {
		docs = SingleDocument("cv.pdf")
	}
	return &Service{d: d, policy: p, sender: s, limiter: lim, docs: docs}, nil
}

// Policy returns the service's policy.
func (s *Service) Policy() Policy { return s.policy }

// Documents returns the gated documents.
func (s *Service) Documents() Documents { return s.docs }

// Issued is the answer to a request for access or a resend.
type Issued struct {
	RequestID string
	ExpiresIn time.Duration
}

// RequestAccess validates the visitor's details, stores the request with a
// keyed hash of a fresh code in one atomic write, and sends the code by
// email (and SMS when a phone was given) concurrently.
func (s *Service) RequestAccess(ctx context.Context, in AccessInput) (Issued, error) {
	if in.Honeypot != "" {
		return s.decoy(ctx)
	}
	v, err := in.Validate(s.d.Phones)
	doc, listed := s.docs.Find(in.Document)
	if !listed {
		err = withField(err, "document", documentNotListed)
	}
	if err != nil {
		return Issued{}, err
	}
	if v.Phone != "" && !s.limiter.smsAllowed(s.d.Phones, v.Phone) {
		return Issued{}, invalid(map[string]string{"phone": phoneRegionRefused})
	}
	now := s.d.Now().UTC().Truncate(time.Second)
	id, err := uuid.NewRandomFromReader(s.d.Rand)
	if err != nil {
		return Issued{}, internal(fmt.Errorf("request id: %w", err))
	}
	reqID := id.String()
	code, err := s.d.Codes.New()
	if err != nil {
		return Issued{}, internal(err)
	}
	req := Request{
		ID: reqID, Name: v.Name, Email: v.Email, Phone: v.Phone,
		Company: v.Company, Location: v.Location, Document: doc.Slug,
		Consent:   Consent{PolicyVersion: s.policy.PolicyVersion, At: now},
		Status:    StatusPending,
		CreatedAt: now,
		DeleteAt:  now.Add(s.policy.Retention),
	}
	c := Code{
		RequestID: reqID,
		Document:  doc.Slug,
		Hash:      s.d.Codes.Hash(reqID, code),
		ExpiresAt: s.expiry(),
		SentAt:    now,
		DeleteAt:  now.Add(s.policy.CodeTTL + codeGrace),
	}
	log := logctx.From(ctx).With("access_request", reqID)
	s.noteUnknownNetwork(log, in.ClientIP)
	limits := s.limiter.forSend(now, in.ClientIP, v.Email, v.Phone)
	// The channels' connections open while the write is in flight; nothing
	// is sent before it has counted the limits.
	s.prepare(v.Phone != "")
	sms, err := s.limiter.admit(ctx, now, limits, func(ls []Limit) error { return s.d.Store.CreateRequest(ctx, req, c, ls) })
	var le *LimitError
	if errors.As(err, &le) {
		log.Info("request refused", "limit", string(le.Limit.Kind))
		return Issued{}, rateLimited(le.Limit, now, err)
	}
	if err != nil {
		return Issued{}, storeError("store request", err)
	}
	smsTo := ""
	if sms {
		smsTo = v.Phone
	}
	sent, err := s.deliver(logctx.With(ctx, log), doc, v.Email, smsTo, code)
	if err != nil && !sent.SMS {
		// Nobody got the code, and the visitor gets no request id: keep
		// nothing of theirs. The counters stay spent: a send that failed
		// may still have gone out, and a counter given back is a limit
		// an attacker can reset by making the send fail.
		cctx, cancel := cleanup(ctx)
		defer cancel()
		if derr := s.d.Store.DeleteRequest(cctx, reqID); derr != nil {
			log.Error("undelivered request not deleted", "error", derr.Error())
		}
		log.Info("access not requested", "email", false, "sms", false)
		return Issued{}, err
	}
	// The email may have failed while the SMS went out: the visitor holds
	// a code, so the request stays usable with it.
	log.Info("access requested", "email", sent.Email, "sms", sent.SMS)
	return Issued{RequestID: reqID, ExpiresIn: s.policy.CodeTTL}, nil
}

// textable reports whether a stored number may be texted under today's
// rules: a request may predate a change of CV_SMS_REGIONS, or of what
// counts as a number that takes texts.
func (s *Service) textable(phone string) bool {
	if s.d.Phones == nil {
		return false
	}
	e164, msg := s.d.Phones.Parse(phone)
	return msg == "" && e164 == phone && s.limiter.smsAllowed(s.d.Phones, phone)
}

// noteUnknownNetwork logs (without the value) a caller whose address is
// missing or unreadable: one such line is noise, a stream of them means
// the platform stopped saying who connects and every visitor now shares
// one network's limit.
func (s *Service) noteUnknownNetwork(log *slog.Logger, ip string) {
	if n, _ := networks(ip); n == unknownNetwork {
		log.Warn("client address unknown", "network", unknownNetwork)
	}
}

// admit runs one write that carries the send's counters (write is the
// store step), handling the refusals that need not end the send: a full
// share of a site-wide budget is swapped for another share, and a spent
// SMS limit drops the SMS counters so the code goes by email only. It
// reports whether the SMS may still go out.
func (l limiter) admit(ctx context.Context, now time.Time, limits []Limit, write func([]Limit) error) (sms bool, err error) {
	limits = slices.Clone(limits)
	sms = true
	tried := map[LimitKind][]int{}
	for {
		err = write(limits)
		var le *LimitError
		switch {
		case !errors.As(err, &le):
			return sms, err
		case le.Limit.Kind.siteWide() && l.reshard(now, limits, le.Limit, tried):
			// Shares fill as the budget runs out: the owner hears of it
			// before visitors are refused.
			logctx.From(ctx).Warn("site budget share full", "budget", string(le.Limit.Kind), "share", le.Limit.Shard)
			continue
		case le.Limit.Kind.soft() && sms:
			// The number or the day's SMS budget is spent: email only.
			logctx.From(ctx).Warn("sms skipped", "limit", string(le.Limit.Kind))
			limits, sms = withoutSoft(limits), false
			continue
		}
		return sms, err
	}
}

// Resend replaces the request's code with a new one and sends it again. The
// attempt budget carries over, a cooldown spaces resends, and their number
// is capped, so resending never buys an attacker more guesses.
func (s *Service) Resend(ctx context.Context, requestID, clientIP string) (Issued, error) {
	id, err := parseRequestID(requestID)
	if err != nil {
		return Issued{}, invalid(map[string]string{"requestId": "This request id is not valid. Please start again."})
	}
	now := s.d.Now().UTC().Truncate(time.Second)
	code, err := s.d.Codes.New()
	if err != nil {
		return Issued{}, internal(err)
	}
	rot := Rotation{
		Hash:      s.d.Codes.Hash(id, code),
		SentAt:    now,
		ExpiresAt: s.expiry(),
		DeleteAt:  now.Add(s.policy.CodeTTL + codeGrace),
		Policy: ResendPolicy{
			Cooldown:    s.policy.ResendCooldown,
			MaxResends:  s.policy.MaxResends,
			MaxAttempts: s.policy.MaxAttempts,
		},
	}
	log := logctx.From(ctx).With("access_request", id)
	req, old, err := s.d.Store.Lookup(ctx, id, now)
	doc, listed := s.docs.Recorded(req.Document)
	if err == nil && !listed {
		log.Info("resend refused", "reason", "document withdrawn")
		return Issued{}, documentWithdrawn(req.Document)
	}
	if err == nil {
		// Refuse in Go first, which spares a refused resend its write; the
		// store's condition checks the same rule again atomically.
		err = old.CheckResend(now, rot.Policy)
	}
	if err == nil {
		// A resend is a send: it counts against the same limits as a
		// request, in the same atomic write that replaces the code, so
		// resending can neither bomb an inbox nor pump SMS, and a refusal
		// leaves the code as it was.
		s.noteUnknownNetwork(log, clientIP)
		if req.Phone != "" && !s.textable(req.Phone) {
			// Kept from before the SMS rules changed: email only.
			log.Warn("sms skipped", "reason", "number not allowed")
			req.Phone = ""
		}
		limits := s.limiter.forSend(now, clientIP, req.Email, req.Phone)
		s.prepare(req.Phone != "")
		var sms bool
		sms, err = s.limiter.admit(ctx, now, limits, func(ls []Limit) error { return s.d.Store.RotateCode(ctx, old, rot, ls) })
		if !sms {
			req.Phone = ""
		}
	}
	var le *LimitError
	switch {
	case errors.As(err, &le):
		log.Info("resend refused", "limit", string(le.Limit.Kind))
		return Issued{}, rateLimited(le.Limit, now, err)
	case errors.Is(err, ErrResendTooSoon):
		wait := old.SentAt.Add(s.policy.ResendCooldown).Sub(now)
		log.Info("resend refused", "reason", "cooldown")
		return Issued{}, &Error{Kind: KindRateLimited, Code: "resend_too_soon",
			Message:    fmt.Sprintf("Please wait %d seconds before asking for another code.", max(ceilSeconds(wait), 1)),
			RetryAfter: max(wait, time.Second), cause: err}
	case errors.Is(err, ErrResendsSpent):
		log.Info("resend refused", "reason", "limit")
		return Issued{}, &Error{Kind: KindConflict, Code: "resend_limit_reached",
			Message: "No more codes can be sent for this request. Please start again.", cause: err}
	case err != nil:
		log.Info("resend refused", "reason", err.Error())
		return Issued{}, codeStateError(err)
	}
	sent, err := s.deliver(logctx.With(ctx, log), doc, req.Email, req.Phone, code)
	if err != nil && !sent.SMS {
		// The new code reached nobody: put the previous one back, so the
		// code the visitor holds still works. The counters stay spent.
		cctx, cancel := cleanup(ctx)
		defer cancel()
		s.restore(cctx, old, rot.Hash)
		log.Info("code not resent", "email", false, "sms", false)
		return Issued{}, err
	}
	log.Info("code resent", "email", sent.Email, "sms", sent.SMS)
	return Issued{RequestID: id, ExpiresIn: s.policy.CodeTTL}, nil
}

// prepare gets the channels a send will use ready (their connections
// opened), without sending: the email's, and the SMS's when there is a
// number to text.
func (s *Service) prepare(sms bool) {
	prepare(s.d.Mailer)
	if sms && s.d.SMS != nil {
		prepare(s.d.SMS)
	}
}

// decoy answers a bot that filled in the hidden honeypot field exactly as a
// success would, so it learns nothing, while nothing is stored or sent.
func (s *Service) decoy(ctx context.Context) (Issued, error) {
	id, err := uuid.NewRandomFromReader(s.d.Rand)
	if err != nil {
		return Issued{}, internal(err)
	}
	logctx.From(ctx).Info("honeypot: request dropped")
	return Issued{RequestID: id.String(), ExpiresIn: s.policy.CodeTTL}, nil
}

// delivery says which messages carrying a code were accepted for delivery.
type delivery struct{ Email, SMS bool }

// deliver sends the code by email and, if there is a phone, by SMS, at the
// same time. Email is the channel that must work: its failure is the
// error. A failed SMS is logged, and the visitor still has the email.
func (s *Service) deliver(ctx context.Context, doc Document, email, phone, code string) (delivery, error) {
	log := logctx.From(ctx)
	// Stop sending in time to undo the request if the send fails.
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-cleanupTime))
		defer cancel()
	}
	var (
		out delivery
		wg  sync.WaitGroup
	)
	if phone != "" && s.d.SMS != nil {
		wg.Go(func() {
			// This goroutine is outside the edge's recover: a panic in an
			// SMS adapter must cost the SMS, not the process.
			defer func() {
				if p := recover(); p != nil {
					log.Error("sms sender panicked")
				}
			}()
			if err := s.d.SMS.SendSMS(ctx, s.codeSMS(doc, phone, code)); err != nil {
				log.Warn("sms not sent", "error", err.Error())
				return
			}
			out.SMS = true
		})
	}
	mailErr := s.d.Mailer.SendEmail(ctx, s.codeEmail(doc, email, code))
	wg.Wait()
	if mailErr != nil {
		log.Error("email not sent", "error", mailErr.Error())
		return out, &Error{Kind: KindUnavailable, Code: "delivery_failed",
			Message: "We could not send the email just now. Please try again in a minute.", cause: mailErr}
	}
	out.Email = true
	return out, nil
}

// Grant is a short-lived link to the CV.
type Grant struct {
	URL       string
	ExpiresIn time.Duration
}

// VerifyAccess checks a code against its request: the attempt is counted
// atomically before comparing, the comparison is constant-time, and the
// code is marked used under a condition so racing requests cannot both win.
func (s *Service) VerifyAccess(ctx context.Context, in VerifyInput) (Grant, error) {
	hinted, listed := s.docs.Find(in.Document)
	in, err := in.Validate()
	if !listed {
		err = withField(err, "document", documentNotListed)
	}
	if err != nil {
		return Grant{}, err
	}
	log := logctx.From(ctx).With("access_request", in.RequestID)
	// Whole seconds, as stored: a code lives its full stated lifetime.
	now := s.d.Now().UTC().Truncate(time.Second)

	// Each guess costs a write, so guesses are counted per client network
	// too, in the same atomic step that counts the attempt: a guess over
	// the network's limit is refused without a compare and spends none of
	// the visitor's attempts.
	s.noteUnknownNetwork(log, in.ClientIP)
	// Until the document has been seen to be downloadable, check it
	// beside the attempt's round trip, where it costs no time. Which
	// document the request is for is known only once the attempt returns:
	// the page's hint (or the default) is checked meanwhile.
	early := s.checkDocument(ctx, hinted)
	c, err := s.d.Store.CountAttempt(ctx, in.RequestID, now, s.policy.MaxAttempts, s.limiter.forVerify(now, in.ClientIP))
	var le *LimitError
	if errors.As(err, &le) {
		log.Info("verify refused", "limit", string(le.Limit.Kind))
		return Grant{}, rateLimited(le.Limit, now, err)
	}
	if err != nil {
		log.Info("verify refused", "reason", err.Error())
		if errors.Is(err, ErrCodeExpired) || errors.Is(err, ErrCodeLocked) {
			s.markExpired(ctx, in.RequestID)
		}
		return Grant{}, codeStateError(err)
	}
	left := max(s.policy.MaxAttempts-c.Attempts, 0)
	if !s.d.Codes.Match(in.RequestID, in.OTP, c.Hash) {
		log.Info("verify refused", "reason", "incorrect", "attempts_left", left)
		if left == 0 {
			s.markExpired(ctx, in.RequestID)
		}
		return Grant{}, incorrectCode(left)
	}
	doc, listed := s.docs.Recorded(c.Document)
	if !listed {
		log.Info("verify refused", "reason", "document withdrawn")
		return Grant{}, documentWithdrawn(c.Document)
	}
	check := early
	if doc.Slug != hinted.Slug {
		check = s.checkDocument(ctx, doc)
	}
	// Only a right code waits for the check, and before it is spent: a
	// link that cannot download must not cost the visitor their code. The
	// attempt is counted all the same, so the code keeps only the
	// attempts it has left.
	unavailable := func(err error) (Grant, error) {
		log.Error("download unavailable", "document", doc.Slug, "error", err.Error(), "attempts_left", left)
		if left == 0 {
			s.markExpired(ctx, in.RequestID)
		}
		return Grant{}, downloadUnavailable(err, left)
	}
	if err := check(); err != nil {
		return unavailable(err)
	}
	// Sign before marking used: signing is local, and if it failed the
	// visitor would otherwise have spent their code for nothing. Signing
	// credentials that would die before the link are the document check's
	// case again: the link would not download.
	url, err := s.d.Links.Presign(ctx, doc)
	if errors.Is(err, ErrLinkCredentialsExpiring) {
		return unavailable(fmt.Errorf("presign: %w", err))
	}
	if err != nil {
		return Grant{}, internal(fmt.Errorf("presign: %w", err))
	}
	// Read the clock again: expiry may have passed since the attempt was
	// counted, and the store's condition checks it once more, with the
	// hash the guess matched.
	if err := s.d.Store.MarkVerified(ctx, in.RequestID, s.d.Now().UTC().Truncate(time.Second), c.Hash); err != nil {
		log.Info("verify refused", "reason", err.Error())
		return Grant{}, codeStateError(err)
	}
	log.Info("access granted", "document", doc.Slug, "attempts", c.Attempts)
	if s.d.Verified != nil {
		s.d.Verified(ctx, in.RequestID)
	}
	return Grant{URL: url, ExpiresIn: doc.LinkTTL}, nil
}

// checkDocument starts Links.Check for doc unless it has passed in this
// process already, and returns a wait for its answer, bounded by ctx. A
// pass is remembered, whenever it arrives; a failure is not, so the next
// verify checks again and sees the fix as soon as it is made.
func (s *Service) checkDocument(ctx context.Context, doc Document) (wait func() error) {
	if _, ok := s.ready.Load(doc.Slug); ok {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		// This goroutine is outside the edge's recover: a panic in the
		// adapter must fail the check, not the process.
		defer func() {
			if p := recover(); p != nil {
				done <- errors.New("document check panicked")
			}
		}()
		err := s.d.Links.Check(ctx, doc)
		if err == nil {
			s.ready.Store(doc.Slug, true)
		}
		done <- err
	}()
	return func() error {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			select {
			case err := <-done: // answered as time ran out: take the answer
				return err
			default:
				return fmt.Errorf("document check unanswered: %w", ctx.Err())
			}
		}
	}
}

// cleanupTime is kept back from a send's deadline for the undo steps.
const cleanupTime = 1500 * time.Millisecond

// cleanup gives undo steps their own short deadline: they must run even
// when the invocation's context is done, which is exactly when a send has
// timed out.
func cleanup(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTime)
}

func (s *Service) restore(ctx context.Context, old Code, newHash []byte) {
	if err := s.d.Store.RestoreCode(ctx, old, newHash); err != nil {
		logctx.From(ctx).Error("previous code not restored", "error", err.Error())
	}
}

// expiry is when a code issued now stops working, rounded up to the whole
// second the stores keep, so no code lives less than its stated lifetime.
func (s *Service) expiry() time.Time {
	return s.d.Now().UTC().Add(s.policy.CodeTTL + time.Second - 1).Truncate(time.Second)
}

// markExpired records for the owner that a request's code can no longer be
// used. It is bookkeeping: a failure is logged, never shown to the visitor.
func (s *Service) markExpired(ctx context.Context, requestID string) {
	if err := s.d.Store.MarkExpired(ctx, requestID); err != nil {
		logctx.From(ctx).Warn("status not updated", "error", err.Error())
	}
}

func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
