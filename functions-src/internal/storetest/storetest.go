// Package storetest is the contract every access.Store must meet. The same
// suite runs against the embedded store and against DynamoDB, which is what
// keeps the two modes honest.
package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// Concurrency is how many goroutines race in the concurrency tests.
const Concurrency = 50

const maxAttempts = 5

// t0 is now: DynamoDB Local deletes items whose TTL has passed, as
// DynamoDB does, so a fixed date (or the top of the hour, with counters
// that end an hour after it) would see the suite's own records and
// counters vanish under it.
var t0 = time.Now().UTC().Truncate(time.Second)

// Run runs the contract against stores made by open. Each subtest gets a
// fresh store (or at least fresh request ids).
func Run(t *testing.T, open func(t *testing.T) access.Store) {
	ctx := context.Background()

	t.Run("create and read back", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		got, err := s.GetRequest(ctx, r.ID, t0)
		require.NoError(t, err)
		assert.Equal(t, r, got)
	})

	t.Run("duplicate id is refused", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		r.Name = "Someone Else"
		require.ErrorIs(t, s.CreateRequest(ctx, r, c, nil), access.ErrDuplicateID)
		got, err := s.GetRequest(ctx, r.ID, t0)
		require.NoError(t, err)
		assert.Equal(t, "Ada Lovelace", got.Name, "the first record must survive")
	})

	t.Run("unknown request", func(t *testing.T) {
		s := open(t)
		id := uuid.NewString()
		_, err := s.CountAttempt(ctx, id, t0, maxAttempts, nil)
		assert.ErrorIs(t, err, access.ErrNotFound)
		assert.ErrorIs(t, s.MarkVerified(ctx, id, t0, []byte("h")), access.ErrNotFound)
		_, err = s.GetRequest(ctx, id, t0)
		assert.ErrorIs(t, err, access.ErrNotFound)
		_, _, err = s.Lookup(ctx, id, t0)
		assert.ErrorIs(t, err, access.ErrNotFound)
		assert.ErrorIs(t, s.RotateCode(ctx, access.Code{RequestID: id, Hash: []byte("h")}, rotation(t0, []byte("h2")), nil),
			access.ErrNotFound)
		assert.NoError(t, s.MarkExpired(ctx, id))
	})

	t.Run("the document is kept with the request and its code, through a resend", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		require.NoError(t, rotate(ctx, s, r.ID, t0.Add(2*time.Minute), []byte("second")))
		req, code, err := s.Lookup(ctx, r.ID, t0.Add(2*time.Minute))
		require.NoError(t, err)
		assert.Equal(t, "portfolio", req.Document)
		assert.Equal(t, "portfolio", code.Document)
		got, err := s.CountAttempt(ctx, r.ID, t0.Add(2*time.Minute), maxAttempts, nil)
		require.NoError(t, err)
		assert.Equal(t, "portfolio", got.Document, "the verify step learns the document from the attempt")
	})

	t.Run("attempts are counted and returned with the hash", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		for i := 1; i <= maxAttempts; i++ {
			got, err := s.CountAttempt(ctx, r.ID, t0.Add(time.Second), maxAttempts, nil)
			require.NoError(t, err)
			assert.Equal(t, i, got.Attempts)
			assert.Equal(t, c.Hash, got.Hash)
		}
		_, err := s.CountAttempt(ctx, r.ID, t0.Add(time.Second), maxAttempts, nil)
		assert.ErrorIs(t, err, access.ErrCodeLocked)
	})

	t.Run("an expired code that still exists is refused and not counted", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		_, err := s.CountAttempt(ctx, r.ID, c.ExpiresAt, maxAttempts, nil)
		assert.ErrorIs(t, err, access.ErrCodeExpired)
		assert.ErrorIs(t, s.MarkVerified(ctx, r.ID, c.ExpiresAt, c.Hash), access.ErrCodeExpired)
		got, err := s.CountAttempt(ctx, r.ID, c.ExpiresAt.Add(-time.Second), maxAttempts, nil)
		require.NoError(t, err)
		assert.Equal(t, 1, got.Attempts, "the refused attempt must not have been counted")
	})

	t.Run("a guess over a full counter changes nothing", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		full, room := limit(access.LimitVerifyIP, 1), limit(access.LimitVerifySite, 5)
		require.NoError(t, s.Consume(ctx, []access.Limit{full}))
		_, err := s.CountAttempt(ctx, r.ID, t0, maxAttempts, []access.Limit{room, full})
		var le *access.LimitError
		require.ErrorAs(t, err, &le)
		assert.Equal(t, full, le.Limit)
		_, got, err := s.Lookup(ctx, r.ID, t0)
		require.NoError(t, err)
		assert.Zero(t, got.Attempts, "the attempt was not counted")
		room.Max = 1
		require.NoError(t, s.Consume(ctx, []access.Limit{room}), "nor the counter with room")

		_, err = s.CountAttempt(ctx, uuid.NewString(), t0, maxAttempts, []access.Limit{full})
		assert.ErrorIs(t, err, access.ErrRateLimited, "over the limit, even an unknown request says nothing else")
	})

	t.Run("a refused guess still bumps the counters", func(t *testing.T) {
		s := open(t)
		l := limit(access.LimitVerifyIP, 1)
		_, err := s.CountAttempt(ctx, uuid.NewString(), t0, maxAttempts, []access.Limit{l})
		assert.ErrorIs(t, err, access.ErrNotFound)
		assert.ErrorIs(t, s.Consume(ctx, []access.Limit{l}), access.ErrRateLimited, "guessing at unknown ids is not free")

		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		l2 := limit(access.LimitVerifyIP, 2)
		got, err := s.CountAttempt(ctx, r.ID, t0, maxAttempts, []access.Limit{l2})
		require.NoError(t, err)
		assert.Equal(t, 1, got.Attempts)
		assert.Equal(t, c.Hash, got.Hash)
		require.NoError(t, s.Consume(ctx, []access.Limit{l2}))
		assert.ErrorIs(t, s.Consume(ctx, []access.Limit{l2}), access.ErrRateLimited, "the counted guess bumped it")
	})

	t.Run("marking used needs the hash that was compared", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		at := t0.Add(time.Minute)
		require.NoError(t, rotate(ctx, s, r.ID, at, []byte("new")))
		assert.ErrorIs(t, s.MarkVerified(ctx, r.ID, at, c.Hash), access.ErrCodeReplaced, "a resend replaced it")
		require.NoError(t, s.MarkVerified(ctx, r.ID, at, []byte("new")))
	})

	t.Run("verify marks used once and the request verified", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		at := t0.Add(30 * time.Second)
		require.NoError(t, s.MarkVerified(ctx, r.ID, at, c.Hash))
		assert.ErrorIs(t, s.MarkVerified(ctx, r.ID, at, c.Hash), access.ErrCodeUsed)
		_, err := s.CountAttempt(ctx, r.ID, at, maxAttempts, nil)
		assert.ErrorIs(t, err, access.ErrCodeUsed)
		got, err := s.GetRequest(ctx, r.ID, at)
		require.NoError(t, err)
		assert.Equal(t, access.StatusVerified, got.Status)
		assert.Equal(t, at, got.VerifiedAt)
	})

	t.Run("mark expired touches only pending requests", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		require.NoError(t, s.MarkExpired(ctx, r.ID))
		got, err := s.GetRequest(ctx, r.ID, t0)
		require.NoError(t, err)
		assert.Equal(t, access.StatusExpired, got.Status)

		r2, c2 := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r2, c2, nil))
		require.NoError(t, s.MarkVerified(ctx, r2.ID, t0, c2.Hash))
		require.NoError(t, s.MarkExpired(ctx, r2.ID))
		got, err = s.GetRequest(ctx, r2.ID, t0)
		require.NoError(t, err)
		assert.Equal(t, access.StatusVerified, got.Status)
	})

	t.Run("a request past its retention is gone", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		_, err := s.GetRequest(ctx, r.ID, r.DeleteAt)
		assert.ErrorIs(t, err, access.ErrNotFound)
		_, err = s.CountAttempt(ctx, r.ID, c.DeleteAt, maxAttempts, nil)
		assert.ErrorIs(t, err, access.ErrNotFound)
	})

	t.Run("lookup returns the request and its code", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		req, code, err := s.Lookup(ctx, r.ID, t0)
		require.NoError(t, err)
		assert.Equal(t, r, req)
		assert.Equal(t, c, code)
		_, _, err = s.Lookup(ctx, r.ID, c.DeleteAt)
		assert.ErrorIs(t, err, access.ErrNotFound, "a code past its deletion time is gone")
	})

	t.Run("resend replaces the code and keeps the attempt budget", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		for range 3 {
			_, err := s.CountAttempt(ctx, r.ID, t0, maxAttempts, nil)
			require.NoError(t, err)
		}
		require.ErrorIs(t, rotate(ctx, s, r.ID, t0.Add(59*time.Second), []byte("new")), access.ErrResendTooSoon)

		at := t0.Add(60 * time.Second)
		require.NoError(t, rotate(ctx, s, r.ID, at, []byte("new")))
		counted, err := s.CountAttempt(ctx, r.ID, at, maxAttempts, nil)
		require.NoError(t, err)
		assert.Equal(t, []byte("new"), counted.Hash)
		assert.Equal(t, 4, counted.Attempts, "the budget carried over")
		assert.Equal(t, 1, counted.Resends)
		assert.Equal(t, at, counted.SentAt)
		assert.Equal(t, at.Add(10*time.Minute), counted.ExpiresAt)
	})

	t.Run("a rotation on a stale read is refused", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		_, stale, err := s.Lookup(ctx, r.ID, t0)
		require.NoError(t, err)
		require.NoError(t, s.RotateCode(ctx, stale, rotation(t0.Add(time.Minute), []byte("first")), nil))
		err = s.RotateCode(ctx, stale, rotation(t0.Add(2*time.Minute), []byte("second")), nil)
		assert.ErrorIs(t, err, access.ErrBusy, "another rotation replaced the code that was read")
		_, got, err := s.Lookup(ctx, r.ID, t0.Add(2*time.Minute))
		require.NoError(t, err)
		assert.Equal(t, []byte("first"), got.Hash)
		assert.Equal(t, 1, got.Resends)
	})

	t.Run("a rotation carries its counters, all or nothing", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		room, full := limit(access.LimitEmail, 5), limit(access.LimitIP, 1)
		require.NoError(t, s.Consume(ctx, []access.Limit{full}))

		at := t0.Add(time.Minute)
		err := rotate(ctx, s, r.ID, at, []byte("new"), room, full)
		var le *access.LimitError
		require.ErrorAs(t, err, &le)
		assert.Equal(t, full, le.Limit)
		_, got, err := s.Lookup(ctx, r.ID, at)
		require.NoError(t, err)
		assert.Equal(t, c, got, "a refused resend changes nothing")
		room.Max = 1
		require.NoError(t, s.Consume(ctx, []access.Limit{room}), "the counter with room was not bumped")

		room2 := limit(access.LimitEmail, 1)
		require.NoError(t, rotate(ctx, s, r.ID, at, []byte("new"), room2))
		assert.ErrorIs(t, s.Consume(ctx, []access.Limit{room2}), access.ErrRateLimited, "the rotation bumped it")
	})

	t.Run("resend sets an expired request back to pending", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		require.NoError(t, s.MarkExpired(ctx, r.ID))
		at := c.ExpiresAt.Add(time.Minute)
		require.NoError(t, rotate(ctx, s, r.ID, at, []byte("new")))
		got, err := s.GetRequest(ctx, r.ID, at)
		require.NoError(t, err)
		assert.Equal(t, access.StatusPending, got.Status)
	})

	t.Run("restore undoes a rotation but never the attempts", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		at := t0.Add(time.Minute)
		_, prev, err := s.Lookup(ctx, r.ID, at)
		require.NoError(t, err)
		require.NoError(t, s.RotateCode(ctx, prev, rotation(at, []byte("new")), nil))
		_, err = s.CountAttempt(ctx, r.ID, at, maxAttempts, nil)
		require.NoError(t, err)

		require.NoError(t, s.RestoreCode(ctx, prev, []byte("new")))
		got, err := s.CountAttempt(ctx, r.ID, at, maxAttempts, nil)
		require.NoError(t, err)
		assert.Equal(t, c.Hash, got.Hash)
		assert.Equal(t, c.ExpiresAt, got.ExpiresAt)
		assert.Equal(t, c.SentAt, got.SentAt)
		assert.Equal(t, 0, got.Resends, "the resend is given back")
		assert.Equal(t, 2, got.Attempts, "attempts are never given back")

		// A restore that lost to a later rotation changes nothing.
		require.NoError(t, rotate(ctx, s, r.ID, at.Add(time.Minute), []byte("newer")))
		require.NoError(t, s.RestoreCode(ctx, prev, []byte("new")))
		got, err = s.CountAttempt(ctx, r.ID, at.Add(time.Minute), maxAttempts, nil)
		require.NoError(t, err)
		assert.Equal(t, []byte("newer"), got.Hash)
	})

	t.Run("delete removes the request and its code", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		require.NoError(t, s.DeleteRequest(ctx, r.ID))
		_, err := s.GetRequest(ctx, r.ID, t0)
		assert.ErrorIs(t, err, access.ErrNotFound)
		_, err = s.CountAttempt(ctx, r.ID, t0, maxAttempts, nil)
		assert.ErrorIs(t, err, access.ErrNotFound)
		assert.NoError(t, s.DeleteRequest(ctx, r.ID), "deleting twice is fine")
		require.NoError(t, s.CreateRequest(ctx, r, c, nil), "the id is free again")
	})

	t.Run("resend of an expired code is allowed", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		at := c.ExpiresAt.Add(time.Minute)
		require.NoError(t, rotate(ctx, s, r.ID, at, []byte("new")))
		got, err := s.CountAttempt(ctx, r.ID, at, maxAttempts, nil)
		require.NoError(t, err)
		assert.Equal(t, at.Add(10*time.Minute), got.ExpiresAt)
	})

	t.Run("resend limits", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		at := t0
		for i := range 3 {
			at = at.Add(time.Minute)
			require.NoError(t, rotate(ctx, s, r.ID, at, fmt.Appendf(nil, "h%d", i)))
		}
		assert.ErrorIs(t, rotate(ctx, s, r.ID, at.Add(time.Minute), []byte("x")), access.ErrResendsSpent)

		r2, c2 := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r2, c2, nil))
		for range maxAttempts {
			_, err := s.CountAttempt(ctx, r2.ID, t0, maxAttempts, nil)
			require.NoError(t, err)
		}
		assert.ErrorIs(t, rotate(ctx, s, r2.ID, t0.Add(time.Minute), []byte("x")), access.ErrCodeLocked,
			"a spent budget cannot be refreshed by a resend")

		r3, c3 := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r3, c3, nil))
		require.NoError(t, s.MarkVerified(ctx, r3.ID, t0, c3.Hash))
		assert.ErrorIs(t, rotate(ctx, s, r3.ID, t0.Add(time.Minute), []byte("x")), access.ErrCodeUsed)
	})

	t.Run("rate-limit counters are all or nothing", func(t *testing.T) {
		s := open(t)
		a := limit(access.LimitEmail, 2)
		b := limit(access.LimitIP, 1)
		r1, c1 := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r1, c1, []access.Limit{a, b}))

		r2, c2 := fixture(t0)
		err := s.CreateRequest(ctx, r2, c2, []access.Limit{a, b})
		var le *access.LimitError
		require.ErrorAs(t, err, &le)
		assert.Equal(t, b, le.Limit, "the full counter is named")
		assert.ErrorIs(t, err, access.ErrRateLimited)
		_, err = s.GetRequest(ctx, r2.ID, t0)
		assert.ErrorIs(t, err, access.ErrNotFound, "a refused request is not stored")

		require.NoError(t, s.Consume(ctx, []access.Limit{a}), "a's count was not bumped by the refused write")
		err = s.Consume(ctx, []access.Limit{a})
		require.ErrorAs(t, err, &le)
		assert.Equal(t, a, le.Limit)
		assert.NoError(t, s.Consume(ctx, nil))
	})

	t.Run("concurrent requests: a counter admits exactly its max", func(t *testing.T) {
		s := open(t)
		l := limit(access.LimitEmail, 5)
		var ok, limited atomic.Int32
		race(func() {
			r, c := fixture(t0)
			err := s.CreateRequest(ctx, r, c, []access.Limit{l})
			switch {
			case err == nil:
				ok.Add(1)
			case assert.ErrorIs(t, err, access.ErrRateLimited):
				limited.Add(1)
			}
		})
		assert.EqualValues(t, 5, ok.Load())
		assert.EqualValues(t, Concurrency-5, limited.Load())
	})

	t.Run("concurrent wrong guesses: at most the budget is evaluated", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		var allowed, locked atomic.Int32
		race(func() {
			_, err := s.CountAttempt(ctx, r.ID, t0, maxAttempts, nil)
			switch {
			case err == nil:
				allowed.Add(1)
			case assert.ErrorIs(t, err, access.ErrCodeLocked):
				locked.Add(1)
			}
		})
		assert.EqualValues(t, maxAttempts, allowed.Load())
		assert.EqualValues(t, Concurrency-maxAttempts, locked.Load())
	})

	t.Run("concurrent correct verifications: exactly one wins", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		var won, lost atomic.Int32
		race(func() {
			err := s.MarkVerified(ctx, r.ID, t0, c.Hash)
			switch {
			case err == nil:
				won.Add(1)
			case assert.ErrorIs(t, err, access.ErrCodeUsed):
				lost.Add(1)
			}
		})
		assert.EqualValues(t, 1, won.Load())
		assert.EqualValues(t, Concurrency-1, lost.Load())
	})
}

// NotifyingStore is a store that also keeps the owner's notification
// claims.
type NotifyingStore interface {
	access.Store
	access.Notifications
}

// RunNotifications runs the notification contract: a claim only on a
// VERIFIED request, once, even when racing; and a claim given back can be
// made again.
func RunNotifications(t *testing.T, open func(t *testing.T) NotifyingStore) {
	ctx := context.Background()
	verified := func(t *testing.T, s NotifyingStore) access.Request {
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		require.NoError(t, s.MarkVerified(ctx, r.ID, t0, c.Hash))
		return r
	}

	t.Run("only a verified request can be claimed", func(t *testing.T) {
		s := open(t)
		r, c := fixture(t0)
		require.NoError(t, s.CreateRequest(ctx, r, c, nil))
		_, err := s.ClaimNotification(ctx, r.ID, t0)
		assert.ErrorIs(t, err, access.ErrNoNotificationDue, "pending")
		_, err = s.ClaimNotification(ctx, uuid.NewString(), t0)
		assert.ErrorIs(t, err, access.ErrNotFound, "unknown")
	})

	t.Run("a claim returns the request, once", func(t *testing.T) {
		s := open(t)
		r := verified(t, s)
		got, err := s.ClaimNotification(ctx, r.ID, t0.Add(time.Second))
		require.NoError(t, err)
		assert.Equal(t, r.Email, got.Email)
		assert.Equal(t, r.Company, got.Company)
		assert.Equal(t, access.StatusVerified, got.Status)
		assert.Equal(t, t0.Add(time.Second), got.NotifiedAt)
		_, err = s.ClaimNotification(ctx, r.ID, t0.Add(2*time.Second))
		assert.ErrorIs(t, err, access.ErrNoNotificationDue, "claimed already")
		stored, err := s.GetRequest(ctx, r.ID, t0)
		require.NoError(t, err)
		assert.Equal(t, t0.Add(time.Second), stored.NotifiedAt)
	})

	t.Run("a released claim can be made again; another's is not released", func(t *testing.T) {
		s := open(t)
		r := verified(t, s)
		_, err := s.ClaimNotification(ctx, r.ID, t0)
		require.NoError(t, err)
		require.NoError(t, s.ReleaseNotification(ctx, r.ID, t0.Add(time.Second)), "not this claim: nothing to do")
		_, err = s.ClaimNotification(ctx, r.ID, t0.Add(2*time.Second))
		assert.ErrorIs(t, err, access.ErrNoNotificationDue, "the claim still holds")
		require.NoError(t, s.ReleaseNotification(ctx, r.ID, t0))
		_, err = s.ClaimNotification(ctx, r.ID, t0.Add(3*time.Second))
		assert.NoError(t, err, "given back, it can be claimed again")
		require.NoError(t, s.ReleaseNotification(ctx, uuid.NewString(), t0), "an unknown request is not an error")
	})

	t.Run("a request past its retention cannot be claimed", func(t *testing.T) {
		s := open(t)
		r := verified(t, s)
		_, err := s.ClaimNotification(ctx, r.ID, r.DeleteAt)
		assert.ErrorIs(t, err, access.ErrNotFound)
	})

	t.Run("concurrent claims: exactly one wins", func(t *testing.T) {
		s := open(t)
		r := verified(t, s)
		var won, lost atomic.Int32
		race(func() {
			_, err := s.ClaimNotification(ctx, r.ID, t0)
			switch {
			case err == nil:
				won.Add(1)
			case assert.ErrorIs(t, err, access.ErrNoNotificationDue):
				lost.Add(1)
			}
		})
		assert.EqualValues(t, 1, won.Load())
		assert.EqualValues(t, Concurrency-1, lost.Load())
	})
}

// RunOwner runs the owner's contract: listing and erasure.
func RunOwner(t *testing.T, open func(t *testing.T) access.OwnerStore) {
	ctx := context.Background()
	t.Run("erase removes every request of one inbox, in every spelling, and only those", func(t *testing.T) {
		s := open(t)
		local := "erase" + strings.ReplaceAll(uuid.NewString(), "-", "")
		victim := local + "@gmail.com"
		var mine []string
		// The spellings the limits count as one inbox: case, "+tags", and
		// at Gmail dots and googlemail.com.
		for _, spelling := range []string{victim, local[:3] + "." + local[3:] + "+cv@gmail.com", local + "@googlemail.com"} {
			r, c := fixture(t0)
			r.Email = spelling
			require.NoError(t, s.(access.Store).CreateRequest(ctx, r, c, nil))
			mine = append(mine, r.ID)
		}
		other, oc := fixture(t0)
		other.Email = local + "x@gmail.com"
		require.NoError(t, s.(access.Store).CreateRequest(ctx, other, oc, nil))

		n, err := s.EraseEmail(ctx, strings.ToUpper(local[:1])+local[1:]+"+other@gmail.com")
		require.NoError(t, err)
		assert.Equal(t, 3, n)
		for _, id := range mine {
			_, err := s.(access.Store).GetRequest(ctx, id, t0)
			assert.ErrorIs(t, err, access.ErrNotFound)
			_, err = s.(access.Store).CountAttempt(ctx, id, t0, maxAttempts, nil)
			assert.ErrorIs(t, err, access.ErrNotFound, "the code goes too")
		}
		_, err = s.(access.Store).GetRequest(ctx, other.ID, t0)
		assert.NoError(t, err)
		n, err = s.EraseEmail(ctx, victim)
		require.NoError(t, err)
		assert.Zero(t, n)
	})
	t.Run("list holds what is kept, oldest first, and nothing past retention", func(t *testing.T) {
		s := open(t)
		marker := "list-" + uuid.NewString() + "@example.com"
		newer, nc := fixture(t0.Add(time.Hour))
		older, oc := fixture(t0)
		newer.Email, older.Email = marker, marker
		require.NoError(t, s.(access.Store).CreateRequest(ctx, newer, nc, nil))
		require.NoError(t, s.(access.Store).CreateRequest(ctx, older, oc, nil))
		all, err := s.ListRequests(ctx, t0.Add(2*time.Hour))
		require.NoError(t, err)
		var got []access.Request
		for _, r := range all {
			if r.Email == marker {
				got = append(got, r)
			}
		}
		require.Len(t, got, 2)
		assert.Equal(t, older, got[0])
		assert.Equal(t, newer, got[1])

		later, err := s.ListRequests(ctx, older.DeleteAt)
		require.NoError(t, err)
		for _, r := range later {
			assert.NotEqual(t, older.ID, r.ID, "past its retention")
		}
	})
}

// race runs fn Concurrency times at once, released together.
func race(fn func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range Concurrency {
		wg.Go(func() {
			<-start
			fn()
		})
	}
	close(start)
	wg.Wait()
}

// fixture returns a pending request created at now with a fresh code.
func fixture(now time.Time) (access.Request, access.Code) {
	id := uuid.NewString()
	p := access.DefaultPolicy()
	r := access.Request{
		ID: id, Name: "Ada Lovelace", Email: "ada@example.com", Phone: "+447400900123",
		Company: "Analytical Engines", Location: "London", Document: "portfolio",
		Consent:   access.Consent{PolicyVersion: p.PolicyVersion, At: now},
		Status:    access.StatusPending,
		CreatedAt: now,
		DeleteAt:  now.Add(p.Retention),
	}
	c := access.Code{
		RequestID: id,
		Document:  "portfolio",
		Hash:      []byte("hash-of-" + id),
		ExpiresAt: now.Add(p.CodeTTL),
		SentAt:    now,
		DeleteAt:  now.Add(p.CodeTTL + 24*time.Hour),
	}
	return r, c
}

// limit is a fresh counter (a unique key) for the current hour.
func limit(kind access.LimitKind, max int) access.Limit {
	return access.Limit{Key: string(kind) + ":" + uuid.NewString(), Kind: kind, Max: max, Until: t0.Add(time.Hour)}
}

// rotate reads the code as the service does, then replaces it.
func rotate(ctx context.Context, s access.Store, id string, at time.Time, hash []byte, limits ...access.Limit) error {
	_, prev, err := s.Lookup(ctx, id, at)
	if err != nil {
		return err
	}
	return s.RotateCode(ctx, prev, rotation(at, hash), limits)
}

func rotation(at time.Time, hash []byte) access.Rotation {
	p := access.DefaultPolicy()
	return access.Rotation{
		Hash: hash, SentAt: at, ExpiresAt: at.Add(p.CodeTTL), DeleteAt: at.Add(p.CodeTTL + 24*time.Hour),
		Policy: access.ResendPolicy{Cooldown: p.ResendCooldown, MaxResends: p.MaxResends, MaxAttempts: maxAttempts},
	}
}

// OwnerCodesStore is a store that keeps the owner's sign-in codes too.
type OwnerCodesStore interface {
	access.Store
	access.OwnerCodes
}

// RunOwnerCodes runs the contract of the owner's sign-in codes: codes
// with no request, used once, that the visitors' steps cannot use.
func RunOwnerCodes(t *testing.T, open func(t *testing.T) OwnerCodesStore) {
	ctx := context.Background()
	fresh := func() access.Code {
		_, c := fixture(t0)
		c.RequestID = "owner-" + uuid.NewString()
		c.Hash = []byte("hash-of-" + c.RequestID)
		return c
	}

	t.Run("create, read back, delete", func(t *testing.T) {
		s := open(t)
		c := fresh()
		require.NoError(t, s.CreateCode(ctx, c, nil))
		got, err := s.GetCode(ctx, c.RequestID, t0)
		require.NoError(t, err)
		assert.Equal(t, c, got)
		require.ErrorIs(t, s.CreateCode(ctx, c, nil), access.ErrDuplicateID)
		_, err = s.GetCode(ctx, c.RequestID, c.DeleteAt)
		assert.ErrorIs(t, err, access.ErrNotFound, "past its DeleteAt")
		require.NoError(t, s.DeleteCode(ctx, c.RequestID))
		_, err = s.GetCode(ctx, c.RequestID, t0)
		assert.ErrorIs(t, err, access.ErrNotFound)
		require.NoError(t, s.DeleteCode(ctx, c.RequestID), "a missing code is not an error")
	})

	t.Run("a full counter refuses the code and writes nothing", func(t *testing.T) {
		s := open(t)
		lim := limit(access.LimitIP, 1)
		require.NoError(t, s.CreateCode(ctx, fresh(), []access.Limit{lim}))
		c := fresh()
		var le *access.LimitError
		require.ErrorAs(t, s.CreateCode(ctx, c, []access.Limit{limit(access.LimitEmail, 5), lim}), &le)
		assert.Equal(t, lim.Key, le.Limit.Key)
		_, err := s.GetCode(ctx, c.RequestID, t0)
		assert.ErrorIs(t, err, access.ErrNotFound)
	})

	t.Run("attempts are counted and a code is used once, on its own hash", func(t *testing.T) {
		s := open(t)
		c := fresh()
		require.NoError(t, s.CreateCode(ctx, c, nil))
		got, err := s.CountAttempt(ctx, c.RequestID, t0, maxAttempts, nil)
		require.NoError(t, err)
		assert.Equal(t, 1, got.Attempts)
		assert.ErrorIs(t, s.UseCode(ctx, c.RequestID, t0, []byte("another hash")), access.ErrCodeReplaced)
		assert.ErrorIs(t, s.UseCode(ctx, c.RequestID, c.ExpiresAt, c.Hash), access.ErrCodeExpired)
		require.NoError(t, s.UseCode(ctx, c.RequestID, t0, c.Hash))
		assert.ErrorIs(t, s.UseCode(ctx, c.RequestID, t0, c.Hash), access.ErrCodeUsed)
		got, err = s.GetCode(ctx, c.RequestID, t0)
		require.NoError(t, err)
		assert.True(t, got.Used)
		_, err = s.CountAttempt(ctx, c.RequestID, t0, maxAttempts, nil)
		assert.ErrorIs(t, err, access.ErrCodeUsed)
		assert.ErrorIs(t, s.UseCode(ctx, "owner-"+uuid.NewString(), t0, c.Hash), access.ErrNotFound)
	})

	t.Run("concurrent uses: exactly one wins", func(t *testing.T) {
		s := open(t)
		c := fresh()
		require.NoError(t, s.CreateCode(ctx, c, nil))
		var won, lost atomic.Int32
		race(func() {
			switch err := s.UseCode(ctx, c.RequestID, t0, c.Hash); {
			case err == nil:
				won.Add(1)
			case assert.ErrorIs(t, err, access.ErrCodeUsed):
				lost.Add(1)
			}
		})
		assert.EqualValues(t, 1, won.Load())
		assert.EqualValues(t, Concurrency-1, lost.Load())
	})

	t.Run("the visitors' steps cannot use an owner's code", func(t *testing.T) {
		s := open(t)
		c := fresh()
		require.NoError(t, s.CreateCode(ctx, c, nil))
		assert.ErrorIs(t, s.MarkVerified(ctx, c.RequestID, t0, c.Hash), access.ErrNotFound)
		_, _, err := s.Lookup(ctx, c.RequestID, t0)
		assert.ErrorIs(t, err, access.ErrNotFound)
		got, err := s.GetCode(ctx, c.RequestID, t0)
		require.NoError(t, err)
		assert.False(t, got.Used, "a refused MarkVerified leaves the code unused")
	})
}
