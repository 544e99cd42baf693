// Package embedded holds the adapters for running with no AWS at all: a
// file-backed store, an outbox folder for mail and SMS, and HMAC-signed
// local download links. `make dev` uses them; so can `netlify dev`.
package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

var (
	bucketRequests = []byte("requests")
	bucketCodes    = []byte("codes")
	bucketLimits   = []byte("limits")
)

// Store keeps requests and codes in one bbolt file. Every method runs in a
// single read-write transaction, which bbolt serialises, so the domain's
// rules hold under concurrency within a process. Across processes (netlify
// dev runs one per request) the file lock does the same: the file is held
// open only while some call is in flight, and a second process waits for it.
type Store struct {
	path        string
	openTimeout time.Duration

	mu    sync.Mutex
	db    *bolt.DB
	users int
}

var _ access.Store = (*Store)(nil)

// OpenStore prepares the store file at path, creating it and its folder if
// needed. The file is not kept open between calls.
func OpenStore(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	s := &Store{path: path, openTimeout: 10 * time.Second}
	err := s.update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRequests, bucketCodes, bucketLimits} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		purgeExpired(tx, time.Now())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded store %s: %w", path, err)
	}
	return s, nil
}

// acquire returns the shared handle, opening the file if no call holds it.
func (s *Store) acquire() (*bolt.DB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: s.openTimeout})
		if err != nil {
			return nil, err
		}
		s.db = db
	}
	s.users++
	return s.db, nil
}

// release closes the file when the last in-flight call is done, so other
// processes can take the lock.
func (s *Store) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users--
	if s.users == 0 && s.db != nil {
		_ = s.db.Close()
		s.db = nil
	}
}

func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	db, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.release()
	return db.Update(fn)
}

func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	db, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.release()
	return db.View(fn)
}

// CreateRequest implements access.Store.
func (s *Store) CreateRequest(_ context.Context, r access.Request, c access.Code, limits []access.Limit) error {
	return s.update(func(tx *bolt.Tx) error {
		reqs, codes := tx.Bucket(bucketRequests), tx.Bucket(bucketCodes)
		if reqs.Get([]byte(r.ID)) != nil || codes.Get([]byte(c.RequestID)) != nil {
			return access.ErrDuplicateID
		}
		purgeExpired(tx, r.CreatedAt)
		if err := consume(tx, limits); err != nil {
			return err
		}
		if err := putJSON(reqs, r.ID, toRequestRecord(r)); err != nil {
			return err
		}
		return putJSON(codes, c.RequestID, toCodeRecord(c))
	})
}

// Consume implements access.Store.
func (s *Store) Consume(_ context.Context, limits []access.Limit) error {
	return s.update(func(tx *bolt.Tx) error { return consume(tx, limits) })
}

type limitRecord struct {
	Count    int   `json:"count"`
	DeleteAt int64 `json:"delete_at"`
}

// consume checks every counter, then bumps them all: inside one bbolt
// transaction, so it is all or nothing. Keys name their window, so an old
// window's counter is never read again; purgeExpired drops it.
func consume(tx *bolt.Tx, limits []access.Limit) error {
	b := tx.Bucket(bucketLimits)
	recs := make([]limitRecord, len(limits))
	for i, l := range limits {
		getJSON(b, l.Key, &recs[i])
		if recs[i].Count >= l.Max {
			return &access.LimitError{Limit: l}
		}
	}
	for i, l := range limits {
		recs[i].Count++
		recs[i].DeleteAt = l.Until.Unix()
		if err := putJSON(b, l.Key, recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// CountAttempt implements access.Store.
func (s *Store) CountAttempt(_ context.Context, requestID string, now time.Time, maxAttempts int, limits []access.Limit) (access.Code, error) {
	var (
		out     access.Code
		refused error
	)
	err := s.update(func(tx *bolt.Tx) error {
		// Counters first: over a limit, the answer says nothing of the code.
		if err := consume(tx, limits); err != nil {
			return err
		}
		c, err := getCode(tx, requestID, now)
		if err == nil {
			err = c.CheckAttempt(now, maxAttempts)
		}
		if err != nil {
			refused = err // the counters stay bumped: every guess costs
			return nil
		}
		c.Attempts++
		out = c
		return putJSON(tx.Bucket(bucketCodes), requestID, toCodeRecord(c))
	})
	if err != nil {
		return access.Code{}, err
	}
	return out, refused
}

// MarkVerified implements access.Store.
func (s *Store) MarkVerified(_ context.Context, requestID string, now time.Time, hash []byte) error {
	return s.update(func(tx *bolt.Tx) error {
		if _, err := getCode(tx, requestID, now); err != nil {
			return err
		}
		r, err := getRequest(tx, requestID, now)
		if err != nil {
			return err
		}
		if err := useCode(tx, requestID, now, hash); err != nil {
			return err
		}
		r.Status, r.VerifiedAt = access.StatusVerified, now.UTC().Truncate(time.Second)
		return putJSON(tx.Bucket(bucketRequests), requestID, toRequestRecord(r))
	})
}

// useCode marks a code used if Code.CheckUse allows it at now and its
// hash is still hash (the one the guess was compared with): MarkVerified's
// and UseCode's step, inside their transaction.
func useCode(tx *bolt.Tx, id string, now time.Time, hash []byte) error {
	c, err := getCode(tx, id, now)
	if err != nil {
		return err
	}
	if err := c.CheckUse(now); err != nil {
		return err
	}
	if !bytes.Equal(c.Hash, hash) {
		return access.ErrCodeReplaced
	}
	c.Used = true
	return putJSON(tx.Bucket(bucketCodes), id, toCodeRecord(c))
}

// ClaimNotification implements access.Notifications.
func (s *Store) ClaimNotification(_ context.Context, requestID string, now time.Time) (access.Request, error) {
	var r access.Request
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		if r, err = getRequest(tx, requestID, now); err != nil {
			return err
		}
		if r.Status != access.StatusVerified || !r.NotifiedAt.IsZero() {
			r = access.Request{}
			return access.ErrNoNotificationDue
		}
		r.NotifiedAt = now.UTC().Truncate(time.Second)
		return putJSON(tx.Bucket(bucketRequests), requestID, toRequestRecord(r))
	})
	return r, err
}

// ReleaseNotification implements access.Notifications.
func (s *Store) ReleaseNotification(_ context.Context, requestID string, at time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		var rec requestRecord
		if !getJSON(tx.Bucket(bucketRequests), requestID, &rec) || rec.NotifiedAt != at.Unix() {
			return nil
		}
		rec.NotifiedAt = 0
		return putJSON(tx.Bucket(bucketRequests), requestID, rec)
	})
}

// GetRequest implements access.Store.
func (s *Store) GetRequest(_ context.Context, requestID string, now time.Time) (access.Request, error) {
	var r access.Request
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		r, err = getRequest(tx, requestID, now)
		return err
	})
	return r, err
}

// MarkExpired implements access.Store.
func (s *Store) MarkExpired(_ context.Context, requestID string) error {
	return s.update(func(tx *bolt.Tx) error {
		var rec requestRecord
		if !getJSON(tx.Bucket(bucketRequests), requestID, &rec) || rec.Status != string(access.StatusPending) {
			return nil
		}
		rec.Status = string(access.StatusExpired)
		return putJSON(tx.Bucket(bucketRequests), requestID, rec)
	})
}

// Lookup implements access.Store.
func (s *Store) Lookup(_ context.Context, requestID string, now time.Time) (access.Request, access.Code, error) {
	var (
		req access.Request
		c   access.Code
	)
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if req, err = getRequest(tx, requestID, now); err != nil {
			return err
		}
		c, err = getCode(tx, requestID, now)
		return err
	})
	return req, c, err
}

// RotateCode implements access.Store.
func (s *Store) RotateCode(_ context.Context, prev access.Code, rot access.Rotation, limits []access.Limit) error {
	return s.update(func(tx *bolt.Tx) error {
		id := prev.RequestID
		c, err := getCode(tx, id, rot.SentAt)
		if err != nil {
			return err
		}
		if err := c.CheckResend(rot.SentAt, rot.Policy); err != nil {
			return err
		}
		if !bytes.Equal(c.Hash, prev.Hash) {
			return fmt.Errorf("%w: the code was replaced meanwhile", access.ErrBusy)
		}
		req, err := getRequest(tx, id, rot.SentAt)
		if err != nil {
			return err
		}
		if err := consume(tx, limits); err != nil {
			return err
		}
		c.Hash, c.SentAt, c.ExpiresAt, c.DeleteAt = rot.Hash, rot.SentAt, rot.ExpiresAt, rot.DeleteAt
		c.Resends++
		if err := putJSON(tx.Bucket(bucketCodes), id, toCodeRecord(c)); err != nil {
			return err
		}
		req.Status = access.StatusPending
		return putJSON(tx.Bucket(bucketRequests), id, toRequestRecord(req))
	})
}

// RestoreCode implements access.Store.
func (s *Store) RestoreCode(_ context.Context, prev access.Code, ifHash []byte) error {
	return s.update(func(tx *bolt.Tx) error {
		var rec codeRecord
		if !getJSON(tx.Bucket(bucketCodes), prev.RequestID, &rec) || !bytes.Equal(rec.Hash, ifHash) {
			return nil
		}
		rec.Hash, rec.ExpiresAt, rec.SentAt, rec.Resends, rec.DeleteAt =
			prev.Hash, prev.ExpiresAt.Unix(), prev.SentAt.Unix(), prev.Resends, prev.DeleteAt.Unix()
		return putJSON(tx.Bucket(bucketCodes), prev.RequestID, rec)
	})
}

// DeleteRequest implements access.Store.
func (s *Store) DeleteRequest(_ context.Context, requestID string) error {
	return s.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketRequests).Delete([]byte(requestID)); err != nil {
			return err
		}
		return tx.Bucket(bucketCodes).Delete([]byte(requestID))
	})
}

var _ access.OwnerCodes = (*Store)(nil)

// CreateCode implements access.OwnerCodes.
func (s *Store) CreateCode(_ context.Context, c access.Code, limits []access.Limit) error {
	return s.update(func(tx *bolt.Tx) error {
		codes := tx.Bucket(bucketCodes)
		if codes.Get([]byte(c.RequestID)) != nil {
			return access.ErrDuplicateID
		}
		purgeExpired(tx, c.SentAt)
		if err := consume(tx, limits); err != nil {
			return err
		}
		return putJSON(codes, c.RequestID, toCodeRecord(c))
	})
}

// UseCode implements access.OwnerCodes.
func (s *Store) UseCode(_ context.Context, id string, now time.Time, hash []byte) error {
	return s.update(func(tx *bolt.Tx) error { return useCode(tx, id, now, hash) })
}

// GetCode implements access.OwnerCodes.
func (s *Store) GetCode(_ context.Context, id string, now time.Time) (access.Code, error) {
	var c access.Code
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		c, err = getCode(tx, id, now)
		return err
	})
	return c, err
}

// DeleteCode implements access.OwnerCodes.
func (s *Store) DeleteCode(_ context.Context, id string) error {
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketCodes).Delete([]byte(id)) })
}

var _ access.OwnerStore = (*Store)(nil)

// ListRequests implements access.OwnerStore.
func (s *Store) ListRequests(_ context.Context, now time.Time) ([]access.Request, error) {
	var out []access.Request
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRequests).ForEach(func(k, v []byte) error {
			var rec requestRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("request %s: %w", k, err)
			}
			if now.Before(unix(rec.DeleteAt)) {
				out = append(out, rec.request(string(k)))
			}
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// EraseEmail implements access.OwnerStore.
func (s *Store) EraseEmail(_ context.Context, email string) (int, error) {
	inbox := access.InboxOf(email)
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		reqs, codes := tx.Bucket(bucketRequests), tx.Bucket(bucketCodes)
		var ids [][]byte
		err := reqs.ForEach(func(k, v []byte) error {
			var rec requestRecord
			if json.Unmarshal(v, &rec) == nil && access.InboxOf(rec.Email) == inbox {
				ids = append(ids, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := reqs.Delete(id); err != nil {
				return err
			}
			if err := codes.Delete(id); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	return n, err
}

// getCode reads a code, treating one past its deletion time as gone, just
// as DynamoDB's TTL would eventually make it.
func getCode(tx *bolt.Tx, id string, now time.Time) (access.Code, error) {
	var rec codeRecord
	if !getJSON(tx.Bucket(bucketCodes), id, &rec) || !now.Before(unix(rec.DeleteAt)) {
		return access.Code{}, access.ErrNotFound
	}
	return rec.code(id), nil
}

func getRequest(tx *bolt.Tx, id string, now time.Time) (access.Request, error) {
	var rec requestRecord
	if !getJSON(tx.Bucket(bucketRequests), id, &rec) || !now.Before(unix(rec.DeleteAt)) {
		return access.Request{}, access.ErrNotFound
	}
	return rec.request(id), nil
}

// purgeExpired deletes records past their deletion time: the embedded
// counterpart of DynamoDB TTL, so nothing is kept longer than stated.
func purgeExpired(tx *bolt.Tx, now time.Time) {
	for _, name := range [][]byte{bucketRequests, bucketCodes, bucketLimits} {
		b := tx.Bucket(name)
		var stale [][]byte
		_ = b.ForEach(func(k, v []byte) error {
			var rec struct {
				DeleteAt int64 `json:"delete_at"`
			}
			if json.Unmarshal(v, &rec) == nil && !now.Before(unix(rec.DeleteAt)) {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range stale {
			_ = b.Delete(k)
		}
	}
}

func getJSON(b *bolt.Bucket, key string, v any) bool {
	raw := b.Get([]byte(key))
	return raw != nil && json.Unmarshal(raw, v) == nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}
