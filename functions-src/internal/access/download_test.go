package access_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// A right code is not spent on a link that cannot download: the service
// checks the CV (Presigner.Check) before marking the code used.

// requestN makes a request from its own inbox and network, so that many
// fit in one test under the limits, and returns its id and code.
func (h *harness) requestN(t *testing.T, i int) (string, string) {
	t.Helper()
	out, err := h.svc.RequestAccess(context.Background(), visitor(i, fmt.Sprintf("198.51.100.%d", i)))
	require.NoError(t, err)
	return out.RequestID, h.mail.lastCode(t)
}

func TestAFailedDownloadCheckDoesNotSpendTheCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(p *presigner)
	}{
		{"denied", func(p *presigner) { p.failCheck(fmt.Errorf("%w: s3:GetObject refused", access.ErrDocumentDenied)) }},
		{"missing", func(p *presigner) { p.failCheck(fmt.Errorf("%w: no such object", access.ErrDocumentMissing)) }},
		{"unreachable", func(p *presigner) { p.failCheck(errors.New("dial tcp: connection refused")) }},
		{"adapter panics", func(p *presigner) { p.setCheck(func(context.Context) { panic("boom") }, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			id, code := h.request(t)
			tc.fail(h.links)

			_, err := h.verify(id, code)
			var e *access.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, access.KindNotReady, e.Kind)
			assert.Equal(t, "download_unavailable", e.Code)
			assert.Equal(t, "The document cannot be downloaded right now. Please try again later; "+
				"your code stays valid for its remaining attempts (4 left).", e.Message)
			require.NotNil(t, e.AttemptsLeft)
			assert.Equal(t, 4, *e.AttemptsLeft, "the attempt was counted")
			assert.Positive(t, e.RetryAfter)
			assert.Zero(t, h.links.calls.Load(), "no link is signed")
			req, err := h.store.GetRequest(context.Background(), id, h.clock.Now())
			require.NoError(t, err)
			assert.Equal(t, access.StatusPending, req.Status, "the code is not spent")

			h.links.setCheck(nil, nil)
			g, err := h.verify(id, code)
			require.NoError(t, err, "the same code works once the CV can be downloaded")
			assert.NotEmpty(t, g.URL)
		})
	}
}

// Each verify that waits on a failed check still counts an attempt: the
// answer says how many are left, and when none are, that the code is done
// for, rather than that it is still valid.
func TestAFailedDownloadCheckSaysHowManyAttemptsAreLeft(t *testing.T) {
	h := newHarness(t)
	id, code := h.request(t)
	h.links.failCheck(access.ErrDocumentMissing)
	for want := 4; want >= 0; want-- {
		_, err := h.verify(id, code)
		var e *access.Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, "download_unavailable", e.Code)
		require.NotNil(t, e.AttemptsLeft)
		assert.Equal(t, want, *e.AttemptsLeft)
		switch want {
		case 0:
			assert.Equal(t, "The document cannot be downloaded right now, and this code has no attempts left. "+
				"Please start again later for a new code.", e.Message)
		default:
			assert.Equal(t, fmt.Sprintf("The document cannot be downloaded right now. Please try again later; "+
				"your code stays valid for its remaining attempts (%d left).", want), e.Message)
		}
	}
	req, err := h.store.GetRequest(context.Background(), id, h.clock.Now())
	require.NoError(t, err)
	assert.Equal(t, access.StatusExpired, req.Status, "a code with no attempts left is over, as after wrong guesses")

	h.links.failCheck(nil)
	_, err = h.verify(id, code)
	assert.Equal(t, "otp_locked", errCode(t, err), "the right code, once the CV is back, has no attempt left: as the answer said")
}

func TestAWrongCodeIsToldSoWhateverTheDownloadCheckSays(t *testing.T) {
	h := newHarness(t)
	id, code := h.request(t)
	h.links.failCheck(access.ErrDocumentDenied)
	_, err := h.verify(id, wrong(code))
	assert.Equal(t, "otp_incorrect", errCode(t, err), "only a right code acts on the check")
}

// attemptHookStore runs hook as CountAttempt starts.
type attemptHookStore struct {
	access.Store
	hook func()
}

func (s attemptHookStore) CountAttempt(ctx context.Context, id string, now time.Time, maxAttempts int, limits []access.Limit) (access.Code, error) {
	s.hook()
	return s.Store.CountAttempt(ctx, id, now, maxAttempts, limits)
}

func TestDownloadCheckRunsBesideTheAttempt(t *testing.T) {
	h := newHarness(t)
	id, code := h.request(t)
	// Each waits for the other to start. One after the other, the first
	// would see no overlap (it gives up waiting rather than hang).
	checkStarted, countStarted := make(chan struct{}), make(chan struct{})
	var checkSawCount, countSawCheck atomic.Bool
	overlap := func(other chan struct{}, saw *atomic.Bool) {
		select {
		case <-other:
			saw.Store(true)
		case <-time.After(5 * time.Second):
		}
	}
	h.links.setCheck(func(context.Context) { close(checkStarted); overlap(countStarted, &checkSawCount) }, nil)
	svc := h.build(t, withStore(attemptHookStore{Store: h.store, hook: func() { close(countStarted); overlap(checkStarted, &countSawCheck) }}))
	_, err := svc.VerifyAccess(context.Background(), access.VerifyInput{RequestID: id, OTP: code, ClientIP: "198.51.100.7"})
	require.NoError(t, err)
	assert.True(t, checkSawCount.Load() && countSawCheck.Load(), "the check and the attempt were in flight together")
}

func TestADownloadCheckPassIsRememberedAFailureIsNot(t *testing.T) {
	h := newHarness(t)
	h.links.failCheck(access.ErrDocumentMissing)
	for i := range 3 {
		id, code := h.requestN(t, i)
		_, err := h.verify(id, code)
		assert.Equal(t, "download_unavailable", errCode(t, err))
	}
	assert.EqualValues(t, 3, h.links.checks.Load(), "a failure is checked again next time")

	h.links.failCheck(nil)
	for i := 3; i < 8; i++ {
		id, code := h.requestN(t, i)
		_, err := h.verify(id, wrong(code))
		assert.Equal(t, "otp_incorrect", errCode(t, err))
		_, err = h.verify(id, code)
		require.NoError(t, err)
	}
	assert.EqualValues(t, 4, h.links.checks.Load(), "after the first pass, verifies check nothing")

	h.links.failCheck(access.ErrDocumentMissing)
	id, code := h.requestN(t, 8)
	_, err := h.verify(id, code)
	assert.NoError(t, err, "a pass holds for the life of the process")
	assert.EqualValues(t, 4, h.links.checks.Load())
}

func TestAHangingDownloadCheckEndsAtTheDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		hook func(release <-chan struct{}) func(context.Context)
	}{
		{"honours ctx", func(<-chan struct{}) func(context.Context) {
			return func(ctx context.Context) { <-ctx.Done() }
		}},
		{"ignores ctx", func(release <-chan struct{}) func(context.Context) {
			return func(context.Context) { <-release }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			id, code := h.request(t)
			// Let a check that ignores ctx go in the end, so that a verify
			// that waits for it fails the time check rather than hangs.
			release := make(chan struct{})
			time.AfterFunc(5*time.Second, func() { close(release) })
			h.links.setCheck(tc.hook(release), context.DeadlineExceeded)

			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := h.svc.VerifyAccess(ctx, access.VerifyInput{RequestID: id, OTP: code, ClientIP: "198.51.100.7"})
			assert.Equal(t, "download_unavailable", errCode(t, err))
			// Not a speed test: without the bound this call never returns.
			assert.Less(t, time.Since(start), 3*time.Second)

			h.links.setCheck(nil, nil)
			_, err = h.verify(id, code)
			assert.NoError(t, err, "the code was not spent")
		})
	}
}

func TestAFailedDownloadCheckIsLoggedOnceAsAnError(t *testing.T) {
	h := newHarness(t)
	id, code := h.request(t)
	h.links.failCheck(fmt.Errorf("%w: HeadObject s3://bucket/cv.pdf answered 403: lacks s3:GetObject", access.ErrDocumentDenied))
	lines := logged(t, func(ctx context.Context) {
		_, err := h.svc.VerifyAccess(ctx, access.VerifyInput{RequestID: id, OTP: code, ClientIP: "198.51.100.7"})
		assert.Equal(t, "download_unavailable", errCode(t, err))
	})
	var errs []map[string]any
	for _, l := range lines {
		if l["level"] == "ERROR" {
			errs = append(errs, l)
		}
	}
	require.Len(t, errs, 1, "%v", lines)
	assert.Equal(t, "download unavailable", errs[0]["msg"])
	assert.Equal(t, id, errs[0]["access_request"])
	cause, _ := errs[0]["error"].(string)
	assert.Contains(t, cause, "s3:GetObject")
	assert.Contains(t, cause, "s3://bucket/cv.pdf")
	for _, l := range lines {
		assert.NotContains(t, fmt.Sprint(l), code)
		assert.False(t, strings.Contains(fmt.Sprint(l), "ada@example.com"))
	}
}
