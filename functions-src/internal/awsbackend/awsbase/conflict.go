package awsbase

import (
	"context"
	"errors"
	mathrand "math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// DynamoDB cancels a transaction that touches an item another transaction
// holds (TransactionConflict). Nothing was applied, so it is sent again
// after a jittered pause that grows with each loss, for as long as the
// caller's deadline allows. The SDK's own retryer does not do this: a
// cancelled transaction is an ordinary 400 to it.
const (
	conflictBackoff    = 5 * time.Millisecond
	conflictBackoffMax = 200 * time.Millisecond
	conflictTries      = 50
)

// transact sends one write transaction, retrying it while it loses races.
func (s *Store) transact(ctx context.Context, items []types.TransactWriteItem) error {
	return s.retryConflicts(ctx, func() error {
		// A fresh input each time: the SDK writes its idempotency token
		// into the one it is given, and a resend must be a new request.
		_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		return err
	})
}

func (s *Store) retryConflicts(ctx context.Context, call func() error) error {
	pause := conflictBackoff
	for try := 1; ; try++ {
		err := call()
		if err == nil || !conflicted(err) || try == conflictTries {
			return err
		}
		// Full jitter: racers that lost together do not come back together.
		wait := time.Duration(mathrand.Int64N(int64(pause))) + time.Millisecond
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		pause = min(2*pause, conflictBackoffMax)
	}
}

// conflicted reports whether a transaction was cancelled only because
// another held one of its items: a failed condition is an answer, not a
// race, and is never retried.
func conflicted(err error) bool {
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		conflict := false
		for _, r := range tce.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "TransactionConflict":
				conflict = true
			case "", "None":
			default:
				return false
			}
		}
		return conflict
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "TransactionConflictException", "TransactionInProgressException":
			return true
		}
	}
	return false
}
