package access_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/logctx"
)

func withCodes(c *access.Codes) option {
	return func(d *access.Deps, _ *access.Policy, _ *access.Sender) { d.Codes = c }
}

// visitor is ada with an address and network of her own, and no phone.
func visitor(i int, ip string) access.AccessInput {
	in := ada
	in.Phone, in.Email, in.ClientIP = "", fmt.Sprintf("visitor%d@example.com", i), ip
	return in
}

func TestUnknownNetworksShareOneBucket(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	// Missing, too long for any address, and not an address at all: the
	// platform did not say who connects, and none of them may escape.
	unknown := []string{"", strings.Repeat("1", 60), "not-an-ip", "999.1.1.1", " ", "bogus-a"}
	for i := range 10 {
		_, err := h.svc.RequestAccess(ctx, visitor(i, unknown[i%len(unknown)]))
		require.NoError(t, err)
	}
	_, err := h.svc.RequestAccess(ctx, visitor(10, "bogus-b"))
	assert.Equal(t, "rate_limited_ip", errCode(t, err), "two unreadable addresses are one network")
	_, err = h.svc.RequestAccess(ctx, visitor(11, "198.51.100.40"))
	assert.NoError(t, err, "a known network has its own bucket")
}

func TestIPv6SiteIsLimitedBeyondItsNetworks(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	for i := range 30 { // three /64s' worth, each /64 under its own limit
		_, err := h.svc.RequestAccess(ctx, visitor(i, fmt.Sprintf("2001:db8:7:%x::1", i)))
		require.NoError(t, err)
	}
	_, err := h.svc.RequestAccess(ctx, visitor(30, "2001:db8:7:ffff::1"))
	assert.Equal(t, "rate_limited_ip", errCode(t, err), "one /48 gets three times one network's limit")
	_, err = h.svc.RequestAccess(ctx, visitor(31, "2001:db8:8::1"))
	assert.NoError(t, err, "the next /48 is another site")
}

func TestSiteEmailBudget(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	p := access.DefaultPolicy()
	p.Limits.SiteEmailsPerDay = 3
	svc := h.build(t, withPolicy(p))
	for i := range 3 {
		_, err := svc.RequestAccess(ctx, visitor(i, fmt.Sprintf("198.51.100.%d", 50+i)))
		require.NoError(t, err)
	}
	_, err := svc.RequestAccess(ctx, visitor(3, "198.51.100.60"))
	var e *access.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "rate_limited_site", e.Code)
	assert.Equal(t, access.KindRateLimited, e.Kind)
	assert.Equal(t, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).Sub(h.clock.Now()), e.RetryAfter)
	assert.Len(t, h.mail.emails, 3, "many networks and addresses, one budget")
}

func TestVerifyIsLimitedPerNetwork(t *testing.T) {
	ctx := context.Background()
	t.Run("guesses over the network's limit are refused without a compare", func(t *testing.T) {
		h := newHarness(t)
		id, code := h.request(t)
		guess := func(id, otp, ip string) error {
			_, err := h.svc.VerifyAccess(ctx, access.VerifyInput{RequestID: id, OTP: otp, ClientIP: ip})
			return err
		}
		for i := range 30 {
			err := guess(fmt.Sprintf("6f1c8a53-93a4-4c8e-9a43-1d7c1f6e%04x", i), "123456", "198.51.100.70")
			require.Equal(t, "request_not_found", errCode(t, err), "guess %d", i)
		}
		for range 5 { // as many as the code's whole budget
			err := guess(id, code, "198.51.100.70")
			var e *access.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "rate_limited_ip", e.Code)
		}
		assert.Zero(t, h.links.calls.Load(), "no link was signed for a refused guess")
		_, c, err := h.store.Lookup(ctx, id, h.clock.Now())
		require.NoError(t, err)
		assert.Zero(t, c.Attempts, "a refused guess spends none of the visitor's attempts")
		assert.NoError(t, guess(id, code, "198.51.100.71"), "another network may still verify")
	})
	t.Run("racing guesses from one network: exactly the limit is admitted", func(t *testing.T) {
		h := newHarness(t)
		p := access.DefaultPolicy()
		p.Limits.VerifyPerHour = 10
		svc := h.build(t, withPolicy(p))
		var admitted atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 50 {
			wg.Go(func() {
				<-start
				_, err := svc.VerifyAccess(ctx, access.VerifyInput{
					RequestID: fmt.Sprintf("6f1c8a53-93a4-4c8e-9a43-1d7c1f6e%04x", i), OTP: "123456", ClientIP: "2001:db8:9:1::5"})
				if errCode(t, err) != "rate_limited_ip" {
					admitted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		assert.EqualValues(t, 10, admitted.Load())
	})
}

// sameCode reads the same four bytes forever: every code it makes is equal.
type sameCode struct{}

func (sameCode) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(0x11 * (i%4 + 1))
	}
	return len(p), nil
}

func TestCodeIsBoundToItsRequest(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	codes, err := access.NewCodes(sameCode{}, secretA)
	require.NoError(t, err)
	svc := h.build(t, withCodes(codes))
	first, err := svc.RequestAccess(ctx, emailOnly(ada))
	require.NoError(t, err)
	code := h.mail.lastCode(t)
	in := emailOnly(ada)
	in.Email = "grace@example.com"
	second, err := svc.RequestAccess(ctx, in)
	require.NoError(t, err)
	require.Equal(t, code, h.mail.lastCode(t), "both requests were sent the same code")

	_, c1, err := h.store.Lookup(ctx, first.RequestID, h.clock.Now())
	require.NoError(t, err)
	_, c2, err := h.store.Lookup(ctx, second.RequestID, h.clock.Now())
	require.NoError(t, err)
	assert.NotEqual(t, c1.Hash, c2.Hash, "the same code hashes differently for another request")

	// Give the second request the first one's stored hash: the code that
	// matches it for the first request must not match it for the second.
	moved := c2
	moved.Hash = c1.Hash
	require.NoError(t, h.store.RestoreCode(ctx, moved, c2.Hash))
	_, err = svc.VerifyAccess(ctx, access.VerifyInput{RequestID: second.RequestID, OTP: code, ClientIP: "198.51.100.80"})
	assert.Equal(t, "otp_incorrect", errCode(t, err))
	_, err = svc.VerifyAccess(ctx, access.VerifyInput{RequestID: first.RequestID, OTP: code, ClientIP: "198.51.100.81"})
	assert.NoError(t, err)
}

// gatedStore holds every caller that has counted its attempt until n of
// them have, so that all n pass the compare before any marks the code
// used: the race the used-flip's condition exists for, every time.
type gatedStore struct {
	access.Store
	n       int32
	arrived atomic.Int32
	gate    chan struct{}
}

func (s *gatedStore) CountAttempt(ctx context.Context, id string, now time.Time, max int, limits []access.Limit) (access.Code, error) {
	c, err := s.Store.CountAttempt(ctx, id, now, max, limits)
	if s.arrived.Add(1) == s.n {
		close(s.gate)
	}
	select {
	case <-s.gate:
	case <-time.After(10 * time.Second):
	}
	return c, err
}

func TestRightAnswersThatPassTheCompareTogetherGetOneLink(t *testing.T) {
	h := newHarness(t)
	id, code := h.request(t)
	gated := &gatedStore{Store: h.store, n: 5, gate: make(chan struct{})}
	svc := h.build(t, withStore(gated))
	var granted, used atomic.Int32
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			_, err := svc.VerifyAccess(context.Background(), access.VerifyInput{RequestID: id, OTP: code,
				ClientIP: fmt.Sprintf("198.51.100.%d", 90+i)})
			if err == nil {
				granted.Add(1)
			} else if errCode(t, err) == "otp_used" {
				used.Add(1)
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, 1, granted.Load())
	assert.EqualValues(t, 4, used.Load())
}

// logged runs fn with a JSON logger in its context and returns the lines.
func logged(t *testing.T, fn func(ctx context.Context)) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	fn(logctx.With(context.Background(), slog.New(slog.NewJSONHandler(&buf, nil))))
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(l, &m))
		lines = append(lines, m)
	}
	return lines
}

func lineWith(lines []map[string]any, msg string) map[string]any {
	for _, l := range lines {
		if l["msg"] == msg {
			return l
		}
	}
	return nil
}

func TestLogsSayWhatWasSent(t *testing.T) {
	for _, tc := range []struct {
		name            string
		mailErr, smsErr error
		email, sms      bool
	}{
		{"both", nil, nil, true, true},
		{"SMS failed", nil, errors.New("sns: opted out"), true, false},
		{"email failed", errors.New("ses: paused"), nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.mail.fail, h.sms.fail = tc.mailErr, tc.smsErr
			lines := logged(t, func(ctx context.Context) {
				_, err := h.svc.RequestAccess(ctx, ada)
				require.NoError(t, err)
			})
			l := lineWith(lines, "access requested")
			require.NotNil(t, l, "%v", lines)
			assert.Equal(t, tc.email, l["email"])
			assert.Equal(t, tc.sms, l["sms"])
		})
	}
	t.Run("nothing sent", func(t *testing.T) {
		h := newHarness(t)
		h.mail.fail, h.sms.fail = errors.New("ses: paused"), errors.New("sns: down")
		lines := logged(t, func(ctx context.Context) {
			_, err := h.svc.RequestAccess(ctx, ada)
			require.Error(t, err)
		})
		assert.Nil(t, lineWith(lines, "access requested"))
		l := lineWith(lines, "access not requested")
		require.NotNil(t, l)
		assert.Equal(t, false, l["sms"])
	})
	t.Run("an unknown network is logged as such, without the value", func(t *testing.T) {
		h := newHarness(t)
		lines := logged(t, func(ctx context.Context) {
			_, err := h.svc.RequestAccess(ctx, visitor(1, "bogus-value-9"))
			require.NoError(t, err)
		})
		l := lineWith(lines, "client address unknown")
		require.NotNil(t, l)
		assert.Equal(t, "unknown", l["network"])
		for _, line := range lines {
			raw, _ := json.Marshal(line)
			assert.NotContains(t, string(raw), "bogus-value-9")
		}
	})
}

func TestSMSGoesOutWithTheSMSLimitsOff(t *testing.T) {
	h := newHarness(t)
	p := access.DefaultPolicy()
	p.Limits.PhonePerDay, p.Limits.SMSPerDay = 0, 0
	_, err := h.build(t, withPolicy(p)).RequestAccess(context.Background(), ada)
	require.NoError(t, err)
	assert.Len(t, h.sms.texts, 1, "a limit turned off limits nothing")
}

// keysStore records the counter keys of each write.
type keysStore struct {
	access.Store
	keys [][]string
}

func (k *keysStore) CreateRequest(ctx context.Context, r access.Request, c access.Code, limits []access.Limit) error {
	var keys []string
	for _, l := range limits {
		keys = append(keys, l.Key)
	}
	k.keys = append(k.keys, keys)
	return k.Store.CreateRequest(ctx, r, c, limits)
}

func TestASecretListedTwiceCountsOnce(t *testing.T) {
	h := newHarness(t)
	rec := &keysStore{Store: h.store}
	svc := h.build(t, withStore(rec), func(d *access.Deps, _ *access.Policy, _ *access.Sender) {
		d.LimitKeys = [][]byte{[]byte("same-key"), []byte("same-key")}
	})
	_, err := svc.RequestAccess(context.Background(), ada)
	require.NoError(t, err)
	require.Len(t, rec.keys, 1)
	// DynamoDB refuses a transaction that names one item twice.
	assert.Len(t, rec.keys[0], 6, "network by the hour and the day, inbox, site email, phone, site SMS: one counter each")
	seen := map[string]bool{}
	for _, k := range rec.keys[0] {
		assert.False(t, seen[k], "counter %s twice in one write", k)
		seen[k] = true
	}
}

func TestResendTextsOnlyNumbersTodaysRulesAllow(t *testing.T) {
	h := newHarness(t)
	out, err := h.svc.RequestAccess(context.Background(), ada)
	require.NoError(t, err)
	require.Len(t, h.sms.texts, 1)
	p := access.DefaultPolicy()
	p.Limits.SMSRegions = []string{"IE"} // the owner narrowed the regions since
	h.clock.Advance(time.Minute)
	_, err = h.build(t, withPolicy(p)).Resend(context.Background(), out.RequestID, "198.51.100.130")
	require.NoError(t, err)
	assert.Len(t, h.mail.emails, 2, "the resend went by email")
	assert.Len(t, h.sms.texts, 1, "and not to a number now outside the allowed regions")
}

func TestInboxOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Ada@Example.com", "ada@example.com"},
		{"ada+cv@example.com", "ada@example.com"},
		{"a.d.a+x@googlemail.com", "ada@gmail.com"},
		{"ada@bücher.example", "ada@xn--bcher-kva.example"},
		{"ada@XN--BCHER-KVA.example", "ada@xn--bcher-kva.example"},
		{"a.da@example.com", "a.da@example.com"},
		{"ada@example.com\u3002", "ada@example.com"},
		{"ada@example.com.", "ada@example.com"},
	} {
		assert.Equal(t, tc.want, access.InboxOf(tc.in), tc.in)
	}
}

func TestSiteBudgetSharesAreTriedInTurn(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	p := access.DefaultPolicy()
	p.Limits.SiteEmailsPerDay = 16 // eight shares of two
	var draws []int
	svc := h.build(t, withPolicy(p), func(d *access.Deps, _ *access.Policy, _ *access.Sender) {
		d.Shard = func(n int) int { draws = append(draws, n); return 0 }
	})
	var lines []map[string]any
	for i := range 6 { // shares 0, 1 and 2, two sends each
		lines = append(lines, logged(t, func(ctx context.Context) {
			_, err := svc.RequestAccess(ctx, visitor(i, fmt.Sprintf("198.51.100.%d", 140+i)))
			require.NoError(t, err, "send %d", i)
		})...)
	}
	_, err := svc.RequestAccess(ctx, visitor(6, "198.51.100.150"))
	assert.Equal(t, "rate_limited_site", errCode(t, err), "three shares tried, all full")
	assert.Len(t, h.mail.emails, 6)
	assert.Equal(t, 8, draws[0], "a budget of 16 is drawn from eight shares")
	require.NotNil(t, lineWith(lines, "site budget share full"), "the owner hears the budget filling up")

	q := access.DefaultPolicy()
	q.Limits.SiteEmailsPerDay = 3 // three shares of one: every share is tried
	svc = newHarness(t).build(t, withPolicy(q), func(d *access.Deps, _ *access.Policy, _ *access.Sender) {
		d.Shard = func(int) int { return 2 }
	})
	for i := range 3 {
		_, err := svc.RequestAccess(ctx, visitor(i, fmt.Sprintf("198.51.100.%d", 160+i)))
		require.NoError(t, err, "send %d: its share is full, another is not", i)
	}
}

func TestOneNetworkCannotSpendTheSiteBudget(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	for hour := range 3 {
		for i := range 10 {
			n := hour*10 + i
			_, err := h.svc.RequestAccess(ctx, visitor(n, "198.51.100.170"))
			if n < 20 {
				require.NoError(t, err, "send %d", n)
			} else {
				assert.Equal(t, "rate_limited_ip", errCode(t, err), "send %d: 20 a day from one network", n)
			}
		}
		h.clock.Advance(time.Hour)
	}
	assert.Len(t, h.mail.emails, 20)
}
