package awsbackend_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/phone"
)

// contendedDB is a DynamoDB stand-in for the one thing DynamoDB Local
// cannot show: it runs one transaction at a time, so it never has
// conflicts. Like DynamoDB, this one cancels a transaction that touches an
// item another transaction in flight holds, with a TransactionConflict
// reason on that item and nothing applied; each transaction holds its
// items for hold, the time a real one is in flight (DynamoDB's take ten to
// twenty milliseconds). It evaluates exactly the conditions the store
// writes for a new request and its counters, and refuses anything else, so
// a change in those expressions fails here loudly rather than passing.
type contendedDB struct {
	awsbackend.DynamoDBAPI // nil: any other call panics the test
	hold                   time.Duration

	mu        sync.Mutex
	held      map[string]bool
	items     map[string]map[string]types.AttributeValue
	conflicts atomic.Int32
}

func itemID(table *string, key map[string]types.AttributeValue) string {
	var parts []string
	for k, v := range key {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			parts = append(parts, k+"="+s.Value)
		}
	}
	sort.Strings(parts)
	return aws.ToString(table) + "/" + strings.Join(parts, ",")
}

func number(v types.AttributeValue) int {
	n, _ := v.(*types.AttributeValueMemberN)
	if n == nil {
		return 0
	}
	i, _ := strconv.Atoi(n.Value)
	return i
}

func (d *contendedDB) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput,
	_ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	ids := make([]string, len(in.TransactItems))
	for i, it := range in.TransactItems {
		switch {
		case it.Put != nil:
			ids[i] = itemID(it.Put.TableName, map[string]types.AttributeValue{"request_id": it.Put.Item["request_id"]})
		case it.Update != nil:
			ids[i] = itemID(it.Update.TableName, it.Update.Key)
		default:
			return nil, fmt.Errorf("contendedDB: unexpected transaction item %d", i)
		}
	}
	reasons := make([]types.CancellationReason, len(ids))
	for i := range reasons {
		reasons[i].Code = aws.String("None")
	}
	d.mu.Lock()
	conflict := false
	for i, id := range ids {
		if d.held[id] {
			reasons[i].Code, conflict = aws.String("TransactionConflict"), true
		}
	}
	if conflict {
		d.mu.Unlock()
		d.conflicts.Add(1)
		return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}
	}
	for _, id := range ids {
		d.held[id] = true
	}
	d.mu.Unlock()
	time.Sleep(d.hold)

	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		delete(d.held, id)
	}
	failed := false
	for i, it := range in.TransactItems {
		ok := true
		switch {
		case it.Put != nil && aws.ToString(it.Put.ConditionExpression) == "attribute_not_exists(request_id)":
			ok = d.items[ids[i]] == nil
		case it.Update != nil && aws.ToString(it.Update.ConditionExpression) == "attribute_not_exists(#count) OR #count < :max":
			ok = number(d.items[ids[i]]["count"]) < number(it.Update.ExpressionAttributeValues[":max"])
		default:
			return nil, fmt.Errorf("contendedDB: unexpected condition on item %d", i)
		}
		if !ok {
			reasons[i].Code, failed = aws.String("ConditionalCheckFailed"), true
		}
	}
	if failed {
		return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}
	}
	for i, it := range in.TransactItems {
		if it.Put != nil {
			d.items[ids[i]] = it.Put.Item
			continue
		}
		counter := map[string]types.AttributeValue{"count": &types.AttributeValueMemberN{
			Value: strconv.Itoa(number(d.items[ids[i]]["count"]) + number(it.Update.ExpressionAttributeValues[":one"]))}}
		d.items[ids[i]] = counter
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

// counted sums the counters whose key starts with prefix.
func (d *contendedDB) counted(table, prefix string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for id, it := range d.items {
		if strings.HasPrefix(id, table+"/limit_key="+prefix) {
			n += number(it["count"])
		}
	}
	return n
}

type noLinks struct{}

func (noLinks) Presign(context.Context, access.Document) (string, error) {
	return "https://files.example/cv", nil
}

func (noLinks) Check(context.Context, access.Document) error { return nil }

// quietMailer accepts every message: this test is about the store.
type quietMailer struct{ emails, texts atomic.Int32 }

func (m *quietMailer) SendEmail(context.Context, access.Email) error { m.emails.Add(1); return nil }
func (m *quietMailer) SendSMS(context.Context, access.SMS) error     { m.texts.Add(1); return nil }

// A link shared widely brings many visitors at once. Each one's
// transaction bumps the site-wide email budget (and, with a phone, the SMS
// budget); none may be turned away because others are in flight.
func TestSpikeOfVisitorsIsNotRefusedForContention(t *testing.T) {
	tables := awsbackend.Tables{Requests: "cv-requests", OTPs: "otps", Limits: "cv-rate-limits"}
	db := &contendedDB{hold: 10 * time.Millisecond, held: map[string]bool{}, items: map[string]map[string]types.AttributeValue{}}
	mail := &quietMailer{}
	codes, err := access.NewCodes(rand.Reader, []byte(strings.Repeat("k", 32)))
	require.NoError(t, err)
	p := access.DefaultPolicy()
	p.Limits.SiteEmailsPerDay, p.Limits.SMSPerDay = 1000, 1000
	svc, err := access.NewService(access.Deps{
		Store: awsbackend.NewStore(db, tables), Mailer: mail, SMS: mail, Links: noLinks{}, Phones: phone.Numbers{},
		Codes: codes, Rand: rand.Reader, Now: time.Now, LimitKeys: [][]byte{[]byte("limit-key")},
	}, p, access.Sender{OwnerName: "Alex Sample", SiteURL: "https://cv.example.com"})
	require.NoError(t, err)

	const visitors = 200
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, visitors)
	for i := range visitors {
		wg.Go(func() {
			in := access.AccessInput{Name: "Visitor", Email: fmt.Sprintf("spike-%d@example.com", i),
				Consent: true, ClientIP: fmt.Sprintf("198.18.%d.%d", i/250, i%250)}
			if i%2 == 0 {
				in.Phone = fmt.Sprintf("+447400900%03d", i)
			}
			<-start
			// The edge's deadline for one invocation.
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			defer cancel()
			_, err := svc.RequestAccess(ctx, in)
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	refused := map[string]int{}
	for err := range errs {
		if err != nil {
			var e *access.Error
			require.ErrorAs(t, err, &e)
			refused[e.Code]++
		}
	}
	assert.Empty(t, refused, "no visitor is refused because others were in flight")
	assert.EqualValues(t, visitors, mail.emails.Load())
	assert.EqualValues(t, visitors/2, mail.texts.Load())
	assert.Equal(t, visitors, db.counted(tables.Limits, "email-daily:"), "every email counted once in the site's budget")
	assert.Equal(t, visitors/2, db.counted(tables.Limits, "sms-daily:"), "every SMS counted once in the site's budget")
	assert.Positive(t, db.conflicts.Load(), "the stand-in did conflict: the test measures what it claims")
	t.Logf("%d visitors, %d transactions cancelled for conflicts and sent again", visitors, db.conflicts.Load())
}

// firstReadFails fails the first GetItem, as a timed-out read would.
type firstReadFails struct {
	awsbackend.DynamoDBAPI
	failed atomic.Bool
}

func (f *firstReadFails) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if f.failed.CompareAndSwap(false, true) {
		return nil, errors.New("read timed out")
	}
	return f.DynamoDBAPI.GetItem(ctx, in, opts...)
}

// An attempt counted while the read beside it failed is still answered,
// not spent unanswered.
func TestCountedAttemptIsAnsweredWhenTheReadBesideItFails(t *testing.T) {
	f := backend(t)
	store := awsbackend.NewStore(&firstReadFails{DynamoDBAPI: f.backend.DynamoDB}, f.cfg.Tables)
	now := time.Now().UTC().Truncate(time.Second)
	id := uuid.NewString()
	r := access.Request{ID: id, Name: "Ada", Email: "ada@example.com", Status: access.StatusPending,
		Consent: access.Consent{PolicyVersion: "v", At: now}, CreatedAt: now, DeleteAt: now.Add(time.Hour)}
	c := access.Code{RequestID: id, Hash: []byte("hash-" + id), ExpiresAt: now.Add(10 * time.Minute), SentAt: now,
		DeleteAt: now.Add(time.Hour)}
	require.NoError(t, store.CreateRequest(context.Background(), r, c, nil))
	got, err := store.CountAttempt(context.Background(), id, now, 5, nil)
	require.NoError(t, err)
	assert.Equal(t, c.Hash, got.Hash)
	assert.Equal(t, 1, got.Attempts)
}
