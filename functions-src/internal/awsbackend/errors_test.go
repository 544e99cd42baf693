package awsbackend

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

func TestTransientErrorsAreBusy(t *testing.T) {
	conflict := &types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{
		{Code: aws.String("None")}, {Code: aws.String("TransactionConflict")},
	}}
	assert.ErrorIs(t, wrap("create request", conflict), access.ErrBusy, "a transaction conflict is worth a retry")
	assert.Equal(t, "create request: TransactionConflict", wrap("create request", conflict).Error())
	assert.ErrorIs(t, wrap("count attempt", &types.TransactionConflictException{}), access.ErrBusy)
	assert.ErrorIs(t, wrap("x", &types.ProvisionedThroughputExceededException{}), access.ErrBusy)

	notBusy := &types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{{Code: aws.String("ValidationError")}}}
	assert.False(t, errors.Is(wrap("x", notBusy), access.ErrBusy))
	assert.False(t, errors.Is(wrap("x", &types.ResourceNotFoundException{}), access.ErrBusy))
}
