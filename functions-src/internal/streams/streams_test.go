package streams_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/streams"
)

type recorder struct {
	asked []string
	fail  map[string]bool
}

func (r *recorder) Notify(_ context.Context, id string) (bool, error) {
	r.asked = append(r.asked, id)
	if r.fail[id] {
		return false, errors.New("SES throttled")
	}
	return true, nil
}

// record is one stream record as Lambda hands it over (the JSON of the
// stream's GetRecords, which the event's dynamodb field repeats).
func record(t *testing.T, event, seq, id, oldStatus, newStatus string) events.DynamoDBEventRecord {
	t.Helper()
	img := func(status string) map[string]any {
		if status == "" {
			return nil
		}
		return map[string]any{"request_id": map[string]string{"S": id}, "otp_status": map[string]string{"S": status},
			"email": map[string]string{"S": "ada@example.com"}}
	}
	raw, err := json.Marshal(map[string]any{"eventID": seq, "eventName": event, "eventSource": "aws:dynamodb",
		"dynamodb": map[string]any{"Keys": map[string]any{"request_id": map[string]string{"S": id}},
			"OldImage": img(oldStatus), "NewImage": img(newStatus), "SequenceNumber": seq, "StreamViewType": "NEW_AND_OLD_IMAGES"}})
	require.NoError(t, err)
	var rec events.DynamoDBEventRecord
	require.NoError(t, json.Unmarshal(raw, &rec))
	return rec
}

func TestOnlyATurnToVerifiedIsNotified(t *testing.T) {
	n := &recorder{}
	var logs bytes.Buffer
	h := streams.Handler(n, slog.New(slog.NewJSONHandler(&logs, nil)))
	resp, err := h(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		record(t, "INSERT", "1", "a-new-request", "", "PENDING"),
		record(t, "MODIFY", "2", "verified", "PENDING", "VERIFIED"),
		record(t, "MODIFY", "3", "verified", "VERIFIED", "VERIFIED"), // the claim's own write
		record(t, "MODIFY", "4", "expired", "PENDING", "EXPIRED"),
		record(t, "MODIFY", "5", "resent", "EXPIRED", "PENDING"),
		record(t, "REMOVE", "6", "erased", "VERIFIED", ""),
		record(t, "MODIFY", "7", "verified-after-expiry", "EXPIRED", "VERIFIED"),
	}})
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Equal(t, []string{"verified", "verified-after-expiry"}, n.asked)
	assert.NotContains(t, logs.String(), "ada@example.com", "no personal data in logs")
	assert.Contains(t, logs.String(), `"request":"verified"`)
}

func TestAFailedNotificationIsHandedBack(t *testing.T) {
	n := &recorder{fail: map[string]bool{"b": true}}
	h := streams.Handler(n, slog.New(slog.DiscardHandler))
	resp, err := h(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		record(t, "MODIFY", "100", "a", "PENDING", "VERIFIED"),
		record(t, "MODIFY", "200", "b", "PENDING", "VERIFIED"),
		record(t, "MODIFY", "300", "c", "PENDING", "VERIFIED"),
	}})
	require.NoError(t, err)
	assert.Equal(t, []events.DynamoDBBatchItemFailure{{ItemIdentifier: "200"}}, resp.BatchItemFailures)
	assert.Equal(t, []string{"a", "b", "c"}, n.asked)
}

func TestRecordsWithoutTheKeyAreSkipped(t *testing.T) {
	n := &recorder{}
	rec := record(t, "MODIFY", "1", "x", "PENDING", "VERIFIED")
	rec.Change.Keys = nil
	resp, err := streams.Handler(n, slog.New(slog.DiscardHandler))(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}})
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Empty(t, n.asked)
}

// deadlineSeen records the deadline each notification was given.
type deadlineSeen struct{ got []time.Time }

func (d *deadlineSeen) Notify(ctx context.Context, _ string) (bool, error) {
	dl, _ := ctx.Deadline()
	d.got = append(d.got, dl)
	return true, nil
}

func TestEachRecordEndsBeforeLambdaStopsTheFunction(t *testing.T) {
	n := &deadlineSeen{}
	lambdaDeadline := time.Now().Add(time.Minute)
	ctx, cancel := context.WithDeadline(context.Background(), lambdaDeadline)
	defer cancel()
	_, err := streams.Handler(n, slog.New(slog.DiscardHandler))(ctx, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		record(t, "MODIFY", "1", "a", "PENDING", "VERIFIED")}})
	require.NoError(t, err)
	require.Len(t, n.got, 1)
	assert.True(t, n.got[0].Before(lambdaDeadline.Add(-5*time.Second)), "time is kept to give a claim back: %v", lambdaDeadline.Sub(n.got[0]))
}
