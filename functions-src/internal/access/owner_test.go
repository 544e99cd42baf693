package access_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

const ownerAddress = "alex.owner@example.com"

var sessionKey = []byte("owner-session-test-key")

// ownerHarness is the owner service on the same store, clock and mailbox
// as a visitors' harness, so a visitor's request shows up in its list.
type ownerHarness struct {
	*harness
	owner *access.Owner
	mail  *mailbox // the owner's sign-in codes
}

func newOwnerHarness(t *testing.T, opts ...func(*access.OwnerDeps)) *ownerHarness {
	t.Helper()
	h := newHarness(t)
	oh := &ownerHarness{harness: h, mail: &mailbox{}}
	oh.owner = oh.build(t, opts...)
	return oh
}

func (h *ownerHarness) build(t *testing.T, opts ...func(*access.OwnerDeps)) *access.Owner {
	t.Helper()
	codes, err := access.NewCodes(rand.Reader, secretA)
	require.NoError(t, err)
	d := access.OwnerDeps{Codes: h.store, Requests: h.store, Mailer: h.mail, OTP: codes, Rand: rand.Reader,
		Now: h.clock.Now, LimitKeys: [][]byte{limitKey}, SessionKeys: [][]byte{sessionKey},
		To: ownerAddress, SiteURL: "https://cv.example.com"}
	for _, o := range opts {
		o(&d)
	}
	o, err := access.NewOwner(d, access.DefaultPolicy())
	require.NoError(t, err)
	return o
}

var ctx = context.Background()

// signIn signs the owner in from an address of its own and returns the
// session token.
func (h *ownerHarness) signIn(t *testing.T) string {
	t.Helper()
	out, err := h.owner.SignIn(ctx, ownerAddress, "192.0.2.10")
	require.NoError(t, err)
	s, err := h.owner.Verify(ctx, access.VerifyInput{RequestID: out.RequestID, OTP: h.mail.lastCode(t), ClientIP: "192.0.2.10"})
	require.NoError(t, err)
	return s.Token
}

func TestOwnerSignsInListsErasesAndSignsOut(t *testing.T) {
	h := newOwnerHarness(t)
	h.request(t) // Ada asks for the CV
	h.clock.Advance(time.Minute)
	grace := ada
	grace.Name, grace.Email = "Grace Hopper", "grace@example.com"
	_, err := h.svc.RequestAccess(ctx, grace)
	require.NoError(t, err)

	// Any spelling of the owner's inbox; the code goes to the configured
	// address, never to what was typed.
	out, err := h.owner.SignIn(ctx, "Alex.Owner+page@Example.com", "192.0.2.10")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out.RequestID, "owner-"), out.RequestID)
	assert.Equal(t, 10*time.Minute, out.ExpiresIn)
	require.Len(t, h.mail.emails, 1)
	email := h.mail.emails[0]
	assert.Equal(t, ownerAddress, email.To)
	assert.Equal(t, access.OwnerCodeSubject, email.Subject)
	assert.Contains(t, email.Text, "https://cv.example.com/owner/")

	s, err := h.owner.Verify(ctx, access.VerifyInput{RequestID: out.RequestID, OTP: h.mail.lastCode(t), ClientIP: "192.0.2.10"})
	require.NoError(t, err)
	assert.Equal(t, access.SessionTTL, s.ExpiresIn)
	tokens := []string{"forged.1.AAAA", s.Token} // the first valid one counts

	l, err := h.owner.List(ctx, tokens)
	require.NoError(t, err)
	reqs, left := l.Requests, l.SessionExpiresIn
	assert.Equal(t, 2, l.Total)
	require.Len(t, reqs, 2)
	assert.Equal(t, "grace@example.com", reqs[0].Email, "newest first")
	assert.Equal(t, "ada@example.com", reqs[1].Email)
	assert.Equal(t, access.SessionTTL, left)

	n, err := h.owner.Erase(ctx, tokens, "ADA+cv@example.com")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	l, err = h.owner.List(ctx, tokens)
	require.NoError(t, err)
	reqs = l.Requests
	require.Len(t, reqs, 1)
	assert.Equal(t, "grace@example.com", reqs[0].Email)

	require.NoError(t, h.owner.SignOut(ctx, tokens))
	_, err = h.owner.List(ctx, tokens)
	assert.Equal(t, "session_required", errCode(t, err), "signed out: the token is dead everywhere")
	require.NoError(t, h.owner.SignOut(ctx, tokens), "signing out twice is not an error")
}

func TestOwnerSignInAnswersAlikeForAnyAddress(t *testing.T) {
	h := newOwnerHarness(t)
	mine, err := h.owner.SignIn(ctx, ownerAddress, "192.0.2.10")
	require.NoError(t, err)
	theirs, err := h.owner.SignIn(ctx, "someone@example.net", "192.0.2.11")
	require.NoError(t, err)
	assert.Equal(t, mine.ExpiresIn, theirs.ExpiresIn)
	assert.Len(t, theirs.RequestID, len(mine.RequestID))
	assert.True(t, strings.HasPrefix(theirs.RequestID, "owner-"))
	require.Len(t, h.mail.emails, 1, "a code went to the owner only")
	assert.Empty(t, h.harness.mail.emails, "and nothing to the typed address")

	// The code step answers the same too: a wrong guess at either is
	// counted against the same five attempts.
	for i := 4; i >= 0; i-- {
		for _, id := range []string{mine.RequestID, theirs.RequestID} {
			_, err := h.owner.Verify(ctx, access.VerifyInput{RequestID: id, OTP: wrong(h.mail.lastCode(t)), ClientIP: "192.0.2.12"})
			var e *access.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "otp_incorrect", e.Code)
			assert.Equal(t, i, *e.AttemptsLeft)
		}
	}
	for _, id := range []string{mine.RequestID, theirs.RequestID} {
		_, err := h.owner.Verify(ctx, access.VerifyInput{RequestID: id, OTP: "123456", ClientIP: "192.0.2.12"})
		assert.Equal(t, "otp_locked", errCode(t, err))
	}
}

func TestOwnerSignInRefusals(t *testing.T) {
	h := newOwnerHarness(t)
	_, err := h.owner.SignIn(ctx, "not an address", "192.0.2.10")
	assert.Equal(t, "invalid_input", errCode(t, err))

	out, err := h.owner.SignIn(ctx, ownerAddress, "192.0.2.10")
	require.NoError(t, err)
	code := h.mail.lastCode(t)
	verify := func(id, otp string) error {
		_, err := h.owner.Verify(ctx, access.VerifyInput{RequestID: id, OTP: otp, ClientIP: "192.0.2.10"})
		return err
	}
	assert.Equal(t, "invalid_input", errCode(t, verify(out.RequestID, "12345")))
	assert.Equal(t, "request_not_found", errCode(t, verify("owner-"+uuid.NewString(), code)))

	// A visitor's own request id and code do not sign anyone in, and the
	// owner's id is no visitor request.
	visitorID, visitorCode := h.request(t)
	assert.Equal(t, "invalid_input", errCode(t, verify(visitorID, visitorCode)))
	assert.Equal(t, "request_not_found", errCode(t, verify("owner-"+visitorID, visitorCode)), "an owner id that was never issued")
	_, err = h.svc.VerifyAccess(ctx, access.VerifyInput{RequestID: out.RequestID, OTP: code, ClientIP: "192.0.2.10"})
	assert.Equal(t, "invalid_input", errCode(t, err))

	require.NoError(t, verify(out.RequestID, code))
	assert.Equal(t, "otp_used", errCode(t, verify(out.RequestID, code)), "single use")

	out, err = h.owner.SignIn(ctx, ownerAddress, "192.0.2.10")
	require.NoError(t, err)
	h.clock.Advance(10 * time.Minute)
	assert.Equal(t, "otp_expired", errCode(t, verify(out.RequestID, h.mail.lastCode(t))))
}

func TestOwnerSessionsEndAndCannotBeForged(t *testing.T) {
	h := newOwnerHarness(t)
	tok := h.signIn(t)
	list := func(tokens ...string) error {
		_, err := h.owner.List(ctx, tokens)
		return err
	}
	require.NoError(t, list(tok))
	assert.Equal(t, "session_required", errCode(t, list()), "no cookie")

	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	// flip changes one character in the middle of s.
	flip := func(s string) string {
		b := []byte(s)
		if i := len(b) / 2; b[i] == '1' {
			b[i] = '2'
		} else {
			b[i] = '1'
		}
		return string(b)
	}
	// The last character of a 32-byte MAC in base64 carries two unused
	// bits: set, they spell the same MAC another way, refused all the same.
	last := parts[2][len(parts[2])-1]
	respelled := parts[2][:len(parts[2])-1] + string(rune(last+1))
	for name, forged := range map[string]string{
		"signature":        parts[0] + "." + parts[1] + "." + flip(parts[2]),
		"respelled":        parts[0] + "." + parts[1] + "." + respelled,
		"later expiry":     parts[0] + "." + flip(parts[1]) + "." + parts[2],
		"another session":  "owner-" + uuid.NewString() + "." + parts[1] + "." + parts[2],
		"no signature":     parts[0] + "." + parts[1] + ".",
		"huge":             strings.Repeat("a", 5000),
		"visitor's id":     strings.TrimPrefix(parts[0], "owner-") + "." + parts[1] + "." + parts[2],
		"other key signed": signedWith(t, h, []byte("someone-else's-session-key")),
	} {
		assert.Equal(t, "session_required", errCode(t, list(forged)), name)
	}

	// A code that was sent but not used is no session, even well signed.
	out, err := h.owner.SignIn(ctx, ownerAddress, "192.0.2.10")
	require.NoError(t, err)
	assert.Equal(t, "session_required", errCode(t, list(signToken(out.RequestID, h.clock.Now().Add(time.Hour)))))
	assert.NoError(t, list(signToken(parts[0], h.clock.Now().Add(time.Hour))),
		"signToken signs as the service does: the used code's own token, re-signed, opens its session")

	// Sessions end after 12 hours, cookie or not.
	h.clock.Advance(access.SessionTTL - time.Second)
	require.NoError(t, list(tok))
	h.clock.Advance(time.Second)
	assert.Equal(t, "session_required", errCode(t, list(tok)))
	_, err = h.owner.Erase(ctx, []string{tok}, "ada@example.com")
	assert.Equal(t, "session_required", errCode(t, err))
}

// signedWith signs the owner in on a service whose session key is key,
// over the same store: its token must not open h's sessions.
func signedWith(t *testing.T, h *ownerHarness, key []byte) string {
	other := &ownerHarness{harness: h.harness, mail: h.mail}
	other.owner = other.build(t, func(d *access.OwnerDeps) { d.SessionKeys = [][]byte{key} })
	return other.signIn(t)
}

func TestOwnerSessionKeysRotate(t *testing.T) {
	h := newOwnerHarness(t)
	old := h.signIn(t)
	rotated := &ownerHarness{harness: h.harness, mail: h.mail}
	rotated.owner = rotated.build(t, func(d *access.OwnerDeps) { d.SessionKeys = [][]byte{[]byte("the new session key"), sessionKey} })
	_, err := rotated.owner.List(ctx, []string{old})
	assert.NoError(t, err, "a session signed under the previous key lasts through a rotation")
}

// createdCodes records the ids of the codes created through it.
type createdCodes struct {
	access.OwnerCodes
	ids []string
}

func (c *createdCodes) CreateCode(ctx context.Context, code access.Code, limits []access.Limit) error {
	c.ids = append(c.ids, code.RequestID)
	return c.OwnerCodes.CreateCode(ctx, code, limits)
}

func TestOwnerCodeUndeliveredKeepsNothing(t *testing.T) {
	created := &createdCodes{}
	h := newOwnerHarness(t, func(d *access.OwnerDeps) { created.OwnerCodes = d.Codes; d.Codes = created })
	h.mail.fail = errors.New("ses: throttled")
	out, err := h.owner.SignIn(ctx, ownerAddress, "192.0.2.10")
	assert.Equal(t, "delivery_failed", errCode(t, err))
	assert.Empty(t, out.RequestID)
	require.Len(t, created.ids, 1)
	_, err = h.store.GetCode(ctx, created.ids[0], h.clock.Now())
	assert.ErrorIs(t, err, access.ErrNotFound, "the code nobody got is deleted")
	h.mail.fail = nil
	// The counters stay spent, as for visitors.
	for i := range 9 {
		_, err := h.owner.SignIn(ctx, ownerAddress, fmt.Sprintf("192.0.2.%d", 20+i))
		require.NoError(t, err)
	}
	_, err = h.owner.SignIn(ctx, ownerAddress, "192.0.2.40")
	assert.Equal(t, "rate_limited_email", errCode(t, err), "the owner's ten sign-in codes a day, the failed one included")
}

func TestVisitorsCannotSpendTheOwnersSignIns(t *testing.T) {
	h := newOwnerHarness(t)
	mine := ada
	mine.Email, mine.Phone = ownerAddress, ""
	for range 5 {
		_, err := h.svc.RequestAccess(ctx, mine)
		require.NoError(t, err)
	}
	_, err := h.svc.RequestAccess(ctx, mine)
	require.Equal(t, "rate_limited_email", errCode(t, err), "the inbox's five CV codes a day are spent")
	_, err = h.owner.SignIn(ctx, ownerAddress, "192.0.2.99")
	assert.NoError(t, err, "the sign-in has a budget of its own")
}

func TestOwnerSignInRateLimitsAnswerAlike(t *testing.T) {
	h := newOwnerHarness(t)
	ip := "198.51.100.7"
	// The network's ten sends an hour, spent on addresses that are not
	// the owner's, refuse the owner's too, with the same answer.
	for i := range 10 {
		_, err := h.owner.SignIn(ctx, "probe"+string(rune('a'+i))+"@example.net", ip)
		require.NoError(t, err)
	}
	_, errOther := h.owner.SignIn(ctx, "probe-z@example.net", ip)
	_, errOwner := h.owner.SignIn(ctx, ownerAddress, ip)
	assert.Equal(t, "rate_limited_ip", errCode(t, errOther))
	assert.Equal(t, "rate_limited_ip", errCode(t, errOwner))
	assert.Empty(t, h.mail.emails)
}

func TestOwnerSessionCheckFailsClosed(t *testing.T) {
	h := newOwnerHarness(t)
	tok := h.signIn(t)
	broken := &ownerHarness{harness: h.harness, mail: h.mail}
	broken.owner = broken.build(t, func(d *access.OwnerDeps) { d.Codes = failingCodes{d.Codes} })
	_, err := broken.owner.List(ctx, []string{tok})
	var e *access.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, access.KindInternal, e.Kind, "an unreadable session is an error, never a pass")
}

type failingCodes struct{ access.OwnerCodes }

func (failingCodes) GetCode(context.Context, string, time.Time) (access.Code, error) {
	return access.Code{}, errors.New("dynamodb: connection reset")
}

// zeros is a random source that always reads zeros: its codes are all
// "000000", a code an attacker would be sure to guess.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestNoCodeOpensASignInForAnotherAddress(t *testing.T) {
	known, err := access.NewCodes(zeros{}, secretA)
	require.NoError(t, err)
	h := newOwnerHarness(t, func(d *access.OwnerDeps) { d.OTP = known })
	theirs, err := h.owner.SignIn(ctx, "someone@example.net", "192.0.2.11")
	require.NoError(t, err)
	_, err = h.owner.Verify(ctx, access.VerifyInput{RequestID: theirs.RequestID, OTP: "000000", ClientIP: "192.0.2.11"})
	assert.Equal(t, "otp_incorrect", errCode(t, err), "the code every sign-in would have had opens nothing: nobody was sent one")

	mine, err := h.owner.SignIn(ctx, ownerAddress, "192.0.2.10")
	require.NoError(t, err)
	require.Equal(t, "000000", h.mail.lastCode(t))
	_, err = h.owner.Verify(ctx, access.VerifyInput{RequestID: mine.RequestID, OTP: "000000", ClientIP: "192.0.2.10"})
	assert.NoError(t, err, "the owner's own code still works")
}

func TestOneNetworkCannotSpendTheOwnersSignIns(t *testing.T) {
	h := newOwnerHarness(t)
	for range 3 {
		_, err := h.owner.SignIn(ctx, ownerAddress, "198.51.100.20")
		require.NoError(t, err)
	}
	_, err := h.owner.SignIn(ctx, "ALEX.OWNER+x@example.com", "198.51.100.20")
	assert.Equal(t, "rate_limited_email", errCode(t, err), "three a day from one network")
	_, err = h.owner.SignIn(ctx, ownerAddress, "2001:db8:1:1::1")
	require.NoError(t, err, "the owner, elsewhere, still signs in")
	for i := range 2 {
		_, err = h.owner.SignIn(ctx, ownerAddress, fmt.Sprintf("2001:db8:1:%x::1", 2+i))
		require.NoError(t, err)
	}
	_, err = h.owner.SignIn(ctx, ownerAddress, "2001:db8:1:ff::1")
	assert.Equal(t, "rate_limited_email", errCode(t, err), "an IPv6 client counts by its /48")
	require.Len(t, h.mail.emails, 6)
}

func TestAPileOfCookiesDoesNotHideTheSession(t *testing.T) {
	h := newOwnerHarness(t)
	tok := h.signIn(t)
	var pile []string
	for range 40 {
		pile = append(pile, "owner-"+uuid.NewString()+".9999999999.AAAA")
	}
	_, err := h.owner.List(ctx, append(pile, tok))
	assert.NoError(t, err, "cookies planted ahead of the owner's (a sibling subdomain can) are skipped")
}

// manyRequests is an OwnerStore holding n requests, oldest first.
type manyRequests struct {
	access.OwnerStore
	n int
}

func (m manyRequests) ListRequests(context.Context, time.Time) ([]access.Request, error) {
	out := make([]access.Request, m.n)
	for i := range out {
		out[i] = access.Request{ID: fmt.Sprint(i), CreatedAt: time.Unix(int64(i), 0)}
	}
	return out, nil
}

func TestTheListStopsAtItsNewestMaxListed(t *testing.T) {
	h := newOwnerHarness(t)
	tok := h.signIn(t)
	big := &ownerHarness{harness: h.harness, mail: h.mail}
	big.owner = big.build(t, func(d *access.OwnerDeps) { d.Requests = manyRequests{d.Requests, access.MaxListed + 7} })
	l, err := big.owner.List(ctx, []string{tok})
	require.NoError(t, err)
	assert.Equal(t, access.MaxListed+7, l.Total)
	require.Len(t, l.Requests, access.MaxListed, "an answer fits what a function may return")
	assert.Equal(t, fmt.Sprint(access.MaxListed+6), l.Requests[0].ID, "the newest first")
	assert.Equal(t, "7", l.Requests[access.MaxListed-1].ID, "the oldest seven left for cv-owner")
}

// signToken signs a session token as the service does (id, expiry, an
// HMAC under sessionKey), for sessions a test cannot get by signing in.
func signToken(id string, exp time.Time) string {
	payload := id + "." + strconv.FormatInt(exp.Unix(), 10)
	m := hmac.New(sha256.New, sessionKey)
	m.Write([]byte("cv-access/owner-session/v1\x00" + payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// failingOwnerStore fails the owner's list and erasure, as DynamoDB can.
type failingOwnerStore struct{ access.OwnerStore }

func (failingOwnerStore) ListRequests(context.Context, time.Time) ([]access.Request, error) {
	return nil, errors.New("dynamodb: scan: connection reset")
}

func (failingOwnerStore) EraseEmail(context.Context, string) (int, error) {
	return 1, fmt.Errorf("dynamodb: delete: %w", access.ErrBusy)
}

// failingDelete fails to delete a code.
type failingDelete struct{ access.OwnerCodes }

func (failingDelete) DeleteCode(context.Context, string) error {
	return errors.New("dynamodb: connection reset")
}

func TestOwnerStoreFailuresAreAnswered(t *testing.T) {
	h := newOwnerHarness(t)
	tok := h.signIn(t)
	broken := &ownerHarness{harness: h.harness, mail: h.mail}
	broken.owner = broken.build(t, func(d *access.OwnerDeps) {
		d.Requests = failingOwnerStore{d.Requests}
		d.Codes = failingDelete{d.Codes}
	})
	_, err := broken.owner.List(ctx, []string{tok})
	assert.Equal(t, "internal", errCode(t, err), "a failed scan is ours, and lists nothing")
	n, err := broken.owner.Erase(ctx, []string{tok}, "ada@example.com")
	assert.Equal(t, "busy", errCode(t, err), "a throttled erasure asks for a retry")
	assert.Equal(t, 1, n, "what was erased before the failure is said")
	assert.Equal(t, "internal", errCode(t, broken.owner.SignOut(ctx, []string{tok})))
	_, err = h.owner.List(ctx, []string{tok})
	assert.NoError(t, err, "a sign-out that failed ends nothing")
}
