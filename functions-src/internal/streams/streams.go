// Package streams is the edge of the owner's notifier: it reads the
// requests table's DynamoDB stream (new and old images) and tells the
// notifier of each request that turned VERIFIED. Records of anything else
// are skipped; a record whose notification failed is reported back as a
// batch item failure, so Lambda hands that record (and those after it in
// its shard) over again, and the notifier's claim keeps a retry from
// sending twice.
package streams

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
	"github.com/cv-access/cv-access/functions-src/internal/logctx"
)

// FilterPattern is the event source mapping's filter in infra/notify.tf
// (the plan test holds Terraform's to it): only updates that leave a
// request VERIFIED reach the function. A test matches it against records
// of a real stream.
const FilterPattern = `{"eventName":["MODIFY"],"dynamodb":{"NewImage":{"otp_status":{"S":["VERIFIED"]}}}}`

// Notifier is what the handler drives: access.Notifier.
type Notifier interface {
	Notify(ctx context.Context, requestID string) (bool, error)
}

// Handler handles one batch of stream records.
func Handler(n Notifier, log *slog.Logger) func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		var resp events.DynamoDBEventResponse
		invocation := ""
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			invocation = lc.AwsRequestID
		}
		for _, rec := range ev.Records {
			id, due := verifiedNow(rec)
			if !due {
				continue
			}
			l := log.With("invocation", invocation, "request", id)
			rctx, cancel := recordContext(logctx.With(ctx, l))
			sent, err := n.Notify(rctx, id)
			cancel()
			switch {
			case err != nil:
				l.Error("owner notification failed: the record is handed back for a retry", "error", err.Error())
				resp.BatchItemFailures = append(resp.BatchItemFailures,
					events.DynamoDBBatchItemFailure{ItemIdentifier: rec.Change.SequenceNumber})
			case sent:
				l.Info("owner notified")
			default:
				l.Info("owner notification not due")
			}
		}
		return resp, nil
	}
}

// recordContext ends a record's work a few seconds before Lambda stops the
// function, so that a claim whose email could not be sent in time is
// still given back (the retry then sends it) rather than left held.
func recordContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl.Add(-releaseReserve))
	}
	return context.WithCancel(ctx)
}

// releaseReserve is the time kept for giving a claim back.
const releaseReserve = 6 * time.Second

// verifiedNow reports the request a record is about, and whether the
// record is its turn to VERIFIED (an update whose old image was not).
func verifiedNow(rec events.DynamoDBEventRecord) (string, bool) {
	if rec.EventName != string(events.DynamoDBOperationTypeModify) {
		return "", false
	}
	status := func(img map[string]events.DynamoDBAttributeValue) string {
		if v, ok := img[awsbase.RequestStatusAttr]; ok && v.DataType() == events.DataTypeString {
			return v.String()
		}
		return ""
	}
	id, ok := rec.Change.Keys[awsbase.RequestKeyAttr]
	if !ok || id.DataType() != events.DataTypeString {
		return "", false
	}
	verified := string(access.StatusVerified)
	return id.String(), status(rec.Change.NewImage) == verified && status(rec.Change.OldImage) != verified
}

// Off is the notifier when CV_NOTIFY=off: it sends nothing.
type Off struct{}

// Notify implements Notifier.
func (Off) Notify(context.Context, string) (bool, error) { return false, nil }
