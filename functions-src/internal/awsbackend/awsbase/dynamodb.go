package awsbase

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// DynamoDBAPI is the part of the DynamoDB client the store uses.
type DynamoDBAPI interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	TransactGetItems(context.Context, *dynamodb.TransactGetItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactGetItemsOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Tables names the tables.
type Tables struct {
	Requests string // cv-requests: one item per request, keyed by request_id
	OTPs     string // otps: the request's live code, keyed by request_id
	Limits   string // cv-rate-limits: fixed-window counters, keyed by limit_key
}

// Store keeps requests and codes in DynamoDB. Each rule of access.Code is
// written as a condition expression so DynamoDB enforces it atomically; when
// a condition fails, the old item comes back with the error and the same Go
// rule names the reason, so both backends refuse for the same causes.
//
// Round trips: CreateRequest 1 (TransactWriteItems), CountAttempt 1
// (TransactWriteItems, with a GetItem beside it),
// MarkVerified 1 (TransactWriteItems), Lookup 1 (TransactGetItems),
// RotateCode 1 (TransactWriteItems), RestoreCode 1, DeleteRequest 1,
// GetRequest 1. A transaction that loses a race for an item to another
// transaction is sent again (see transact), so these are the counts
// without contention.
type Store struct {
	db     DynamoDBAPI
	tables Tables
}

var _ access.Store = (*Store)(nil)

// NewStore returns a store over db. It makes no call.
func NewStore(db DynamoDBAPI, t Tables) *Store { return &Store{db: db, tables: t} }

// The requests table's key and status attributes, as its stream's records
// carry them (internal/streams reads them there).
const (
	RequestKeyAttr    = "request_id"
	RequestStatusAttr = "otp_status"
)

// requestItem is a cv-requests item. Times are Unix seconds; ttl is the
// DynamoDB TTL attribute (the end of the retention period).
type requestItem struct {
	RequestID     string `dynamodbav:"request_id"`
	Name          string `dynamodbav:"name"`
	Email         string `dynamodbav:"email"`
	Phone         string `dynamodbav:"phone,omitempty"`
	Company       string `dynamodbav:"company,omitempty"`
	Location      string `dynamodbav:"location,omitempty"`
	Document      string `dynamodbav:"document,omitempty"`
	PolicyVersion string `dynamodbav:"consent_policy_version"`
	ConsentAt     int64  `dynamodbav:"consent_at"`
	Status        string `dynamodbav:"otp_status"`
	Timestamp     int64  `dynamodbav:"timestamp"`
	VerifiedAt    int64  `dynamodbav:"verified_at,omitempty"`
	NotifiedAt    int64  `dynamodbav:"notified_at,omitempty"`
	TTL           int64  `dynamodbav:"ttl"`
}

// codeItem is an otps item: the keyed hash of the live code and its state.
type codeItem struct {
	RequestID string `dynamodbav:"request_id"`
	Document  string `dynamodbav:"document,omitempty"`
	OTPHash   []byte `dynamodbav:"otp_hash"`
	Expires   int64  `dynamodbav:"expires"`
	Attempts  int    `dynamodbav:"attempts"`
	Used      bool   `dynamodbav:"used"`
	SentAt    int64  `dynamodbav:"sent_at"`
	Resends   int    `dynamodbav:"resends"`
	TTL       int64  `dynamodbav:"ttl"`
}

func fromRequest(r access.Request) requestItem {
	it := requestItem{
		RequestID: r.ID, Name: r.Name, Email: r.Email, Phone: r.Phone, Company: r.Company, Location: r.Location,
		Document: r.Document, PolicyVersion: r.Consent.PolicyVersion, ConsentAt: r.Consent.At.Unix(),
		Status: string(r.Status), Timestamp: r.CreatedAt.Unix(), TTL: r.DeleteAt.Unix(),
	}
	if !r.VerifiedAt.IsZero() {
		it.VerifiedAt = r.VerifiedAt.Unix()
	}
	if !r.NotifiedAt.IsZero() {
		it.NotifiedAt = r.NotifiedAt.Unix()
	}
	return it
}

func (it requestItem) request() access.Request {
	r := access.Request{
		ID: it.RequestID, Name: it.Name, Email: it.Email, Phone: it.Phone, Company: it.Company, Location: it.Location,
		Document:  it.Document,
		Consent:   access.Consent{PolicyVersion: it.PolicyVersion, At: unix(it.ConsentAt)},
		Status:    access.Status(it.Status),
		CreatedAt: unix(it.Timestamp),
		DeleteAt:  unix(it.TTL),
	}
	if it.VerifiedAt != 0 {
		r.VerifiedAt = unix(it.VerifiedAt)
	}
	if it.NotifiedAt != 0 {
		r.NotifiedAt = unix(it.NotifiedAt)
	}
	return r
}

func fromCode(c access.Code) codeItem {
	return codeItem{
		RequestID: c.RequestID, Document: c.Document, OTPHash: c.Hash, Expires: c.ExpiresAt.Unix(), Attempts: c.Attempts, Used: c.Used,
		SentAt: c.SentAt.Unix(), Resends: c.Resends, TTL: c.DeleteAt.Unix(),
	}
}

func (it codeItem) code() access.Code {
	return access.Code{
		RequestID: it.RequestID, Document: it.Document, Hash: it.OTPHash, ExpiresAt: unix(it.Expires), Attempts: it.Attempts, Used: it.Used,
		SentAt: unix(it.SentAt), Resends: it.Resends, DeleteAt: unix(it.TTL),
	}
}

func unix(s int64) time.Time { return time.Unix(s, 0).UTC() }

func key(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"request_id": &types.AttributeValueMemberS{Value: id}}
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// CreateRequest implements access.Store: both items and the rate-limit
// counters in one transaction, one round trip.
func (s *Store) CreateRequest(ctx context.Context, r access.Request, c access.Code, limits []access.Limit) error {
	reqItem, err := attributevalue.MarshalMap(fromRequest(r))
	if err != nil {
		return fmt.Errorf("marshal request: %w", err)
	}
	codeAV, err := attributevalue.MarshalMap(fromCode(c))
	if err != nil {
		return fmt.Errorf("marshal code: %w", err)
	}
	items := []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.tables.Requests, Item: reqItem,
			ConditionExpression: aws.String("attribute_not_exists(request_id)")}},
		{Put: &types.Put{TableName: &s.tables.OTPs, Item: codeAV,
			ConditionExpression: aws.String("attribute_not_exists(request_id)")}},
	}
	err = s.transact(ctx, append(items, s.counters(limits)...))
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		if i := FailedCondition(tce); i >= 2 {
			return &access.LimitError{Limit: limits[i-2]}
		} else if i >= 0 {
			return access.ErrDuplicateID
		}
	}
	return Wrap("create request", err)
}

// Consume implements access.Store: the counters in one transaction.
func (s *Store) Consume(ctx context.Context, limits []access.Limit) error {
	if len(limits) == 0 {
		return nil
	}
	err := s.transact(ctx, s.counters(limits))
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		if i := FailedCondition(tce); i >= 0 {
			return &access.LimitError{Limit: limits[i]}
		}
	}
	return Wrap("consume limits", err)
}

// counters are conditional increments: each fails the whole transaction
// if its window's count has reached Max. The TTL drops old windows.
func (s *Store) counters(limits []access.Limit) []types.TransactWriteItem {
	out := make([]types.TransactWriteItem, 0, len(limits))
	for _, l := range limits {
		out = append(out, types.TransactWriteItem{Update: &types.Update{
			TableName:                &s.tables.Limits,
			Key:                      map[string]types.AttributeValue{"limit_key": &types.AttributeValueMemberS{Value: l.Key}},
			UpdateExpression:         aws.String("ADD #count :one SET #ttl = :ttl"),
			ConditionExpression:      aws.String("attribute_not_exists(#count) OR #count < :max"),
			ExpressionAttributeNames: map[string]string{"#count": "count", "#ttl": "ttl"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":one": num(1), ":max": num(int64(l.Max)), ":ttl": num(l.Until.Unix()),
			},
		}})
	}
	return out
}

// CountAttempt implements access.Store: the counters and the attempt in
// one transaction, with a consistent read of the code beside it, since a
// transaction hands back nothing on success and the comparison needs the
// hash. The read may land before or after the increment: the increment
// marks the item with a nonce of its own, and the count is read off
// accordingly. MarkVerified's condition ties the comparison to the hash
// read here, should a resend replace the code in between.
func (s *Store) CountAttempt(ctx context.Context, requestID string, now time.Time, maxAttempts int,
	limits []access.Limit) (access.Code, error) {
	nonce := uuid.NewString()
	items := append(s.counters(limits), types.TransactWriteItem{Update: &types.Update{
		TableName:                &s.tables.OTPs,
		Key:                      key(requestID),
		UpdateExpression:         aws.String("SET attempts = attempts + :one, last_attempt = :nonce"),
		ConditionExpression:      aws.String("attribute_exists(request_id) AND #ttl > :now AND used = :false AND expires > :now AND attempts < :max"),
		ExpressionAttributeNames: map[string]string{"#ttl": "ttl"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one": num(1), ":now": num(now.Unix()), ":max": num(int64(maxAttempts)),
			":false": &types.AttributeValueMemberBOOL{Value: false},
			":nonce": &types.AttributeValueMemberS{Value: nonce},
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}})
	var (
		read    *dynamodb.GetItemOutput
		readErr error
		wg      sync.WaitGroup
	)
	wg.Go(func() { read, readErr = s.readCode(ctx, requestID) })
	err := s.transact(ctx, items)
	wg.Wait()
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		switch i := FailedCondition(tce); {
		case i >= 0 && i < len(limits):
			return access.Code{}, &access.LimitError{Limit: limits[i]}
		case i == len(limits):
			refused := refusal(tce.CancellationReasons[i].Item, now,
				func(c access.Code) error { return c.CheckAttempt(now, maxAttempts) })
			// A refused guess still costs its counters, or guessing at
			// unknown ids would be free: a second write, on this path only.
			if err := s.Consume(ctx, limits); err != nil {
				return access.Code{}, err
			}
			return access.Code{}, refused
		}
	}
	if err != nil {
		return access.Code{}, Wrap("count attempt", err)
	}
	if readErr != nil || read.Item == nil {
		// The attempt is counted: read once more rather than spend it
		// unanswered. This read follows the increment, so it sees it.
		read, readErr = s.readCode(ctx, requestID)
		if readErr != nil {
			return access.Code{}, Wrap("read code", readErr)
		}
		if read.Item == nil {
			return access.Code{}, access.ErrNotFound
		}
	}
	var it codeItem
	if err := attributevalue.UnmarshalMap(read.Item, &it); err != nil {
		return access.Code{}, fmt.Errorf("unmarshal code: %w", err)
	}
	if seen, _ := read.Item["last_attempt"].(*types.AttributeValueMemberS); seen == nil || seen.Value != nonce {
		it.Attempts++ // read before this attempt's increment landed
	}
	return it.code(), nil
}

// readCode is a consistent read of a code item.
func (s *Store) readCode(ctx context.Context, requestID string) (*dynamodb.GetItemOutput, error) {
	return s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.tables.OTPs, Key: key(requestID), ConsistentRead: aws.Bool(true),
	})
}

// MarkVerified implements access.Store: the code's used flip (on the hash
// that was compared) and the request's status in one transaction.
func (s *Store) MarkVerified(ctx context.Context, requestID string, now time.Time, hash []byte) error {
	ts := now.Unix()
	err := s.transact(ctx, []types.TransactWriteItem{
		{Update: &types.Update{
			TableName:                &s.tables.OTPs,
			Key:                      key(requestID),
			UpdateExpression:         aws.String("SET used = :true"),
			ConditionExpression:      aws.String("attribute_exists(request_id) AND #ttl > :now AND used = :false AND expires > :now AND otp_hash = :hash"),
			ExpressionAttributeNames: map[string]string{"#ttl": "ttl"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":now": num(ts), ":true": &types.AttributeValueMemberBOOL{Value: true},
				":false": &types.AttributeValueMemberBOOL{Value: false},
				":hash":  &types.AttributeValueMemberB{Value: hash},
			},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}},
		{Update: &types.Update{
			TableName:                &s.tables.Requests,
			Key:                      key(requestID),
			UpdateExpression:         aws.String("SET otp_status = :verified, verified_at = :now"),
			ConditionExpression:      aws.String("attribute_exists(request_id) AND #ttl > :now"),
			ExpressionAttributeNames: map[string]string{"#ttl": "ttl"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":now": num(ts), ":verified": &types.AttributeValueMemberS{Value: string(access.StatusVerified)},
			},
		}},
	})
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		reasons := tce.CancellationReasons
		if len(reasons) > 0 && aws.ToString(reasons[0].Code) == "ConditionalCheckFailed" {
			err := refusal(reasons[0].Item, now, func(c access.Code) error { return c.CheckUse(now) })
			if errors.Is(err, errDrift) {
				// Unused and unexpired: what failed is the hash.
				return access.ErrCodeReplaced
			}
			return err
		}
		if len(reasons) > 1 && aws.ToString(reasons[1].Code) == "ConditionalCheckFailed" {
			return access.ErrNotFound
		}
	}
	return Wrap("mark verified", err)
}

// GetRequest implements access.Store.
func (s *Store) GetRequest(ctx context.Context, requestID string, now time.Time) (access.Request, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.tables.Requests, Key: key(requestID), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return access.Request{}, Wrap("get request", err)
	}
	if out.Item == nil {
		return access.Request{}, access.ErrNotFound
	}
	var it requestItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return access.Request{}, fmt.Errorf("unmarshal request: %w", err)
	}
	// TTL deletes up to ~48 h late: past its time the item is gone to us.
	if !now.Before(unix(it.TTL)) {
		return access.Request{}, access.ErrNotFound
	}
	return it.request(), nil
}

// ClaimNotification implements access.Notifications: one conditional
// update that returns the request as it now stands.
func (s *Store) ClaimNotification(ctx context.Context, requestID string, now time.Time) (access.Request, error) {
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &s.tables.Requests,
		Key:                                 key(requestID),
		UpdateExpression:                    aws.String("SET notified_at = :now"),
		ConditionExpression:                 aws.String("attribute_exists(request_id) AND #ttl > :now AND otp_status = :verified AND attribute_not_exists(notified_at)"),
		ExpressionAttributeNames:            map[string]string{"#ttl": "ttl"},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now":      &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
			":verified": &types.AttributeValueMemberS{Value: string(access.StatusVerified)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		var old requestItem
		if len(ccf.Item) == 0 || attributevalue.UnmarshalMap(ccf.Item, &old) != nil || !now.Before(unix(old.TTL)) {
			return access.Request{}, access.ErrNotFound
		}
		return access.Request{}, access.ErrNoNotificationDue
	}
	if err != nil {
		return access.Request{}, Wrap("claim notification", err)
	}
	var it requestItem
	if err := attributevalue.UnmarshalMap(out.Attributes, &it); err != nil {
		return access.Request{}, fmt.Errorf("unmarshal request: %w", err)
	}
	return it.request(), nil
}

// ReleaseNotification implements access.Notifications.
func (s *Store) ReleaseNotification(ctx context.Context, requestID string, at time.Time) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &s.tables.Requests,
		Key:                 key(requestID),
		UpdateExpression:    aws.String("REMOVE notified_at"),
		ConditionExpression: aws.String("notified_at = :at"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":at": &types.AttributeValueMemberN{Value: strconv.FormatInt(at.Unix(), 10)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // another claim, or none: not ours to give back
	}
	return Wrap("release notification", err)
}

// MarkExpired implements access.Store.
func (s *Store) MarkExpired(ctx context.Context, requestID string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &s.tables.Requests,
		Key:                 key(requestID),
		UpdateExpression:    aws.String("SET otp_status = :expired"),
		ConditionExpression: aws.String("otp_status = :pending"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":expired": &types.AttributeValueMemberS{Value: string(access.StatusExpired)},
			":pending": &types.AttributeValueMemberS{Value: string(access.StatusPending)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // missing or no longer pending: nothing to do
	}
	return Wrap("mark expired", err)
}

// Lookup implements access.Store: both items in one consistent read.
func (s *Store) Lookup(ctx context.Context, requestID string, now time.Time) (access.Request, access.Code, error) {
	in := &dynamodb.TransactGetItemsInput{TransactItems: []types.TransactGetItem{
		{Get: &types.Get{TableName: &s.tables.Requests, Key: key(requestID)}},
		{Get: &types.Get{TableName: &s.tables.OTPs, Key: key(requestID)}},
	}}
	var out *dynamodb.TransactGetItemsOutput
	err := s.retryConflicts(ctx, func() (err error) {
		out, err = s.db.TransactGetItems(ctx, in)
		return err
	})
	if err != nil {
		return access.Request{}, access.Code{}, Wrap("lookup", err)
	}
	if len(out.Responses) != 2 || out.Responses[0].Item == nil || out.Responses[1].Item == nil {
		return access.Request{}, access.Code{}, access.ErrNotFound
	}
	var (
		ri requestItem
		ci codeItem
	)
	if err := attributevalue.UnmarshalMap(out.Responses[0].Item, &ri); err != nil {
		return access.Request{}, access.Code{}, fmt.Errorf("unmarshal request: %w", err)
	}
	if err := attributevalue.UnmarshalMap(out.Responses[1].Item, &ci); err != nil {
		return access.Request{}, access.Code{}, fmt.Errorf("unmarshal code: %w", err)
	}
	// TTL deletes up to ~48 h late: past its time an item is gone to us.
	if !now.Before(unix(ri.TTL)) || !now.Before(unix(ci.TTL)) {
		return access.Request{}, access.Code{}, access.ErrNotFound
	}
	return ri.request(), ci.code(), nil
}

// RotateCode implements access.Store: the code's replacement (under the
// resend rule and on the hash the caller read), the request back to
// PENDING and the counters, in one transaction.
func (s *Store) RotateCode(ctx context.Context, prev access.Code, rot access.Rotation, limits []access.Limit) error {
	now := rot.SentAt.Unix()
	p := rot.Policy
	items := []types.TransactWriteItem{
		{Update: &types.Update{
			TableName: &s.tables.OTPs,
			Key:       key(prev.RequestID),
			UpdateExpression: aws.String("SET otp_hash = :hash, sent_at = :now, expires = :expires, #ttl = :ttl, " +
				"resends = resends + :one"),
			ConditionExpression: aws.String("attribute_exists(request_id) AND #ttl > :now AND used = :false " +
				"AND attempts < :max AND resends < :maxResends AND sent_at <= :cooledAt AND otp_hash = :prev"),
			ExpressionAttributeNames: map[string]string{"#ttl": "ttl"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":hash":       &types.AttributeValueMemberB{Value: rot.Hash},
				":prev":       &types.AttributeValueMemberB{Value: prev.Hash},
				":now":        num(now),
				":expires":    num(rot.ExpiresAt.Unix()),
				":ttl":        num(rot.DeleteAt.Unix()),
				":one":        num(1),
				":false":      &types.AttributeValueMemberBOOL{Value: false},
				":max":        num(int64(p.MaxAttempts)),
				":maxResends": num(int64(p.MaxResends)),
				":cooledAt":   num(rot.SentAt.Add(-p.Cooldown).Unix()),
			},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}},
		{Update: &types.Update{
			TableName:                &s.tables.Requests,
			Key:                      key(prev.RequestID),
			UpdateExpression:         aws.String("SET otp_status = :pending"),
			ConditionExpression:      aws.String("attribute_exists(request_id) AND #ttl > :now"),
			ExpressionAttributeNames: map[string]string{"#ttl": "ttl"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":now": num(now), ":pending": &types.AttributeValueMemberS{Value: string(access.StatusPending)},
			},
		}},
	}
	err := s.transact(ctx, append(items, s.counters(limits)...))
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		switch i := FailedCondition(tce); {
		case i == 0:
			err := refusal(tce.CancellationReasons[0].Item, rot.SentAt, func(c access.Code) error { return c.CheckResend(rot.SentAt, p) })
			if errors.Is(err, errDrift) {
				return fmt.Errorf("%w: the code was replaced meanwhile", access.ErrBusy)
			}
			return err
		case i == 1:
			return access.ErrNotFound
		case i >= 2:
			return &access.LimitError{Limit: limits[i-2]}
		}
	}
	return Wrap("rotate code", err)
}

// RestoreCode implements access.Store.
func (s *Store) RestoreCode(ctx context.Context, prev access.Code, ifHash []byte) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.tables.OTPs,
		Key:                      key(prev.RequestID),
		UpdateExpression:         aws.String("SET otp_hash = :hash, sent_at = :sent, expires = :expires, #ttl = :ttl, resends = :resends"),
		ConditionExpression:      aws.String("otp_hash = :if"),
		ExpressionAttributeNames: map[string]string{"#ttl": "ttl"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":hash":    &types.AttributeValueMemberB{Value: prev.Hash},
			":sent":    num(prev.SentAt.Unix()),
			":expires": num(prev.ExpiresAt.Unix()),
			":ttl":     num(prev.DeleteAt.Unix()),
			":resends": num(int64(prev.Resends)),
			":if":      &types.AttributeValueMemberB{Value: ifHash},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // a later rotation replaced it, or it is gone
	}
	return Wrap("restore code", err)
}

// DeleteRequest implements access.Store: both items in one transaction.
func (s *Store) DeleteRequest(ctx context.Context, requestID string) error {
	err := s.transact(ctx, []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: &s.tables.Requests, Key: key(requestID)}},
		{Delete: &types.Delete{TableName: &s.tables.OTPs, Key: key(requestID)}},
	})
	return Wrap("delete request", err)
}

var _ access.OwnerCodes = (*Store)(nil)

// CreateCode implements access.OwnerCodes: the code and the counters in
// one transaction.
func (s *Store) CreateCode(ctx context.Context, c access.Code, limits []access.Limit) error {
	codeAV, err := attributevalue.MarshalMap(fromCode(c))
	if err != nil {
		return fmt.Errorf("marshal code: %w", err)
	}
	err = s.transact(ctx, append([]types.TransactWriteItem{{Put: &types.Put{TableName: &s.tables.OTPs, Item: codeAV,
		ConditionExpression: aws.String("attribute_not_exists(request_id)")}}}, s.counters(limits)...))
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		if i := FailedCondition(tce); i >= 1 {
			return &access.LimitError{Limit: limits[i-1]}
		} else if i == 0 {
			return access.ErrDuplicateID
		}
	}
	return Wrap("create code", err)
}

// UseCode implements access.OwnerCodes: MarkVerified's condition on the
// code alone, one round trip.
func (s *Store) UseCode(ctx context.Context, id string, now time.Time, hash []byte) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.tables.OTPs,
		Key:                      key(id),
		UpdateExpression:         aws.String("SET used = :true"),
		ConditionExpression:      aws.String("attribute_exists(request_id) AND #ttl > :now AND used = :false AND expires > :now AND otp_hash = :hash"),
		ExpressionAttributeNames: map[string]string{"#ttl": "ttl"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": num(now.Unix()), ":true": &types.AttributeValueMemberBOOL{Value: true},
			":false": &types.AttributeValueMemberBOOL{Value: false},
			":hash":  &types.AttributeValueMemberB{Value: hash},
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		err := refusal(ccf.Item, now, func(c access.Code) error { return c.CheckUse(now) })
		if errors.Is(err, errDrift) {
			return access.ErrCodeReplaced // unused and unexpired: what failed is the hash
		}
		return err
	}
	return Wrap("use code", err)
}

// GetCode implements access.OwnerCodes with a consistent read.
func (s *Store) GetCode(ctx context.Context, id string, now time.Time) (access.Code, error) {
	out, err := s.readCode(ctx, id)
	if err != nil {
		return access.Code{}, Wrap("get code", err)
	}
	if out.Item == nil {
		return access.Code{}, access.ErrNotFound
	}
	var it codeItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return access.Code{}, fmt.Errorf("unmarshal code: %w", err)
	}
	// TTL deletes up to ~48 h late: past its time the item is gone to us.
	if !now.Before(unix(it.TTL)) {
		return access.Code{}, access.ErrNotFound
	}
	return it.code(), nil
}

// DeleteCode implements access.OwnerCodes.
func (s *Store) DeleteCode(ctx context.Context, id string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.tables.OTPs, Key: key(id)})
	return Wrap("delete code", err)
}

// DynamoDBOwnerAPI is the part of the client the owner's tools add.
type DynamoDBOwnerAPI interface {
	DynamoDBAPI
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// OwnerStore adds listing and erasure to Store, for cv-owner and the owner
// page. It needs dynamodb:Scan and dynamodb:DeleteItem, which the
// visitors' functions' policy does not grant (infra/iam.tf: the owner's
// user, and with owner_email the page's role or, on target netlify, the
// functions' user).
type OwnerStore struct {
	*Store
	db DynamoDBOwnerAPI
}

var _ access.OwnerStore = (*OwnerStore)(nil)

// NewOwnerStore returns the owner's view of the tables.
func NewOwnerStore(db DynamoDBOwnerAPI, t Tables) *OwnerStore {
	return &OwnerStore{Store: NewStore(db, t), db: db}
}

// ListRequests implements access.OwnerStore with a consistent scan.
func (s *OwnerStore) ListRequests(ctx context.Context, now time.Time) ([]access.Request, error) {
	var out []access.Request
	p := dynamodb.NewScanPaginator(s.db, &dynamodb.ScanInput{TableName: &s.tables.Requests, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, forOwner(Wrap("scan requests", err))
		}
		for _, item := range page.Items {
			var it requestItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return nil, fmt.Errorf("unmarshal request: %w", err)
			}
			if now.Before(unix(it.TTL)) {
				out = append(out, it.request())
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// EraseEmail implements access.OwnerStore. Every spelling of an inbox
// counts (access.InboxOf), which no index on the stored address can find,
// so it scans: the table holds one personal site's requests for the
// retention period, a few pages at most.
func (s *OwnerStore) EraseEmail(ctx context.Context, email string) (int, error) {
	inbox := access.InboxOf(email)
	var ids []string
	p := dynamodb.NewScanPaginator(s.db, &dynamodb.ScanInput{
		TableName:            &s.tables.Requests,
		ConsistentRead:       aws.Bool(true),
		ProjectionExpression: aws.String("request_id, email"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, forOwner(Wrap("scan requests", err))
		}
		for _, item := range page.Items {
			id, _ := item["request_id"].(*types.AttributeValueMemberS)
			addr, _ := item["email"].(*types.AttributeValueMemberS)
			if id != nil && addr != nil && access.InboxOf(addr.Value) == inbox {
				ids = append(ids, id.Value)
			}
		}
	}
	for i, id := range ids {
		if err := s.DeleteRequest(ctx, id); err != nil {
			return i, forOwner(err)
		}
	}
	return len(ids), nil
}

// refusal names why a condition failed, from the item as it was: missing or
// past its TTL is ErrNotFound, else the domain rule's own answer.
func refusal(old map[string]types.AttributeValue, now time.Time, rule func(access.Code) error) error {
	if old == nil {
		return access.ErrNotFound
	}
	var it codeItem
	if err := attributevalue.UnmarshalMap(old, &it); err != nil {
		return fmt.Errorf("unmarshal code: %w", err)
	}
	c := it.code()
	if !now.Before(c.DeleteAt) {
		return access.ErrNotFound
	}
	if err := rule(c); err != nil {
		return err
	}
	// The item passes the Go rule but failed the condition: the two have
	// drifted apart, or a condition beyond the rule failed. Say so rather
	// than guess.
	return errDrift
}

var errDrift = errors.New("dynamodb: condition failed but the code passes its rule")

// FailedCondition is the index of the first transaction item whose
// condition failed, or -1.
func FailedCondition(tce *types.TransactionCanceledException) int {
	for i, r := range tce.CancellationReasons {
		if aws.ToString(r.Code) == "ConditionalCheckFailed" {
			return i
		}
	}
	return -1
}
