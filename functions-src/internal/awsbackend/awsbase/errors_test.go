package awsbase

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

func TestTransientErrorsAreBusy(t *testing.T) {
	conflict := &types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{
		{Code: aws.String("None")}, {Code: aws.String("TransactionConflict")},
	}}
	assert.ErrorIs(t, Wrap("create request", conflict), access.ErrBusy, "a transaction conflict is worth a retry")
	assert.Equal(t, "create request: TransactionConflict", Wrap("create request", conflict).Error())
	assert.ErrorIs(t, Wrap("count attempt", &types.TransactionConflictException{}), access.ErrBusy)
	assert.ErrorIs(t, Wrap("x", &types.ProvisionedThroughputExceededException{}), access.ErrBusy)

	notBusy := &types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{{Code: aws.String("ValidationError")}}}
	assert.False(t, errors.Is(Wrap("x", notBusy), access.ErrBusy))
	assert.False(t, errors.Is(Wrap("x", &types.ResourceNotFoundException{}), access.ErrBusy))
}

// refused is an SDK call's failure as AWS answers a refusal.
func refused(service, operation, code string) error {
	return &smithy.OperationError{ServiceID: service, OperationName: operation,
		Err: &smithy.GenericAPIError{Code: code, Message: "User: arn:aws:iam::123456789012:user/cv-functions is not authorized"}}
}

func TestARefusedActionNamesItAndThePolicy(t *testing.T) {
	const fix = ": the functions' IAM policy must allow it; `make aws-check` lists what is missing"
	for _, tc := range []struct {
		service, operation, code, want string
	}{
		{"DynamoDB", "GetItem", "AccessDeniedException", "op: AWS denied dynamodb:GetItem (AccessDeniedException)" + fix},
		{"SESv2", "SendEmail", "AccessDeniedException", "op: AWS denied ses:SendEmail (AccessDeniedException)" + fix},
		{"SNS", "Publish", "AuthorizationError", "op: AWS denied sns:Publish (AuthorizationError)" + fix},
		{"S3", "HeadObject", "AccessDenied", "op: AWS denied s3:GetObject (AccessDenied)" + fix},
		{"DynamoDB", "TransactWriteItems", "AccessDeniedException", "op: AWS denied dynamodb:TransactWriteItems " +
			"(AccessDeniedException; on AWS, one of the PutItem, UpdateItem or DeleteItem inside it)" + fix},
		{"DynamoDB", "TransactGetItems", "AccessDeniedException", "op: AWS denied dynamodb:TransactGetItems " +
			"(AccessDeniedException; on AWS, one of the GetItem inside it)" + fix},
	} {
		err := Wrap("op", refused(tc.service, tc.operation, tc.code))
		assert.Equal(t, tc.want, err.Error())
		assert.True(t, IsAccessDenied(err))
		assert.NotContains(t, err.Error(), "not authorized", "AWS's message stays out of the logs")
	}
}

func TestRefusedKeysPointAtTheKeysNotThePolicy(t *testing.T) {
	for _, tc := range []struct{ service, operation, code string }{
		{"DynamoDB", "GetItem", "UnrecognizedClientException"},
		{"SNS", "Publish", "InvalidClientTokenId"},
		{"S3", "HeadObject", "SignatureDoesNotMatch"},
		{"S3", "GetObject", "InvalidAccessKeyId"},
		{"SESv2", "SendEmail", "ExpiredToken"},
		{"DynamoDB", "TransactWriteItems", "ExpiredTokenException"},
		{"SESv2", "SendEmail", "InvalidSignatureException"},
	} {
		err := Wrap("op", refused(tc.service, tc.operation, tc.code))
		assert.Equal(t, "op: AWS refused the functions' key ("+tc.code+"): check CV_AWS_ACCESS_KEY_ID and CV_AWS_SECRET_ACCESS_KEY",
			err.Error())
		assert.True(t, IsAccessDenied(err))
	}
}

// cv-owner runs with the owner's key: a refusal there must never send the
// owner to widen the functions' policy, which lacks Scan on purpose.
func TestOwnerRefusalsPointAtTheOwnersKey(t *testing.T) {
	err := forOwner(Wrap("scan requests", refused("DynamoDB", "Scan", "AccessDeniedException")))
	assert.Equal(t, "scan requests: AWS denied dynamodb:Scan (AccessDeniedException): run cv-owner with the owner's key "+
		"(Terraform's owner_env output), whose IAM policy allows dynamodb:Scan on the requests table and "+
		"dynamodb:DeleteItem on the requests and codes tables; the owner page gets them from infra/ with owner_email set "+
		"(its own role on target aws)", err.Error())
	assert.True(t, IsAccessDenied(err))

	err = forOwner(Wrap("scan requests", refused("DynamoDB", "Scan", "UnrecognizedClientException")))
	assert.Equal(t, "scan requests: AWS refused the owner's key (UnrecognizedClientException): "+
		"check CV_AWS_ACCESS_KEY_ID and CV_AWS_SECRET_ACCESS_KEY", err.Error())

	assert.NoError(t, forOwner(nil))
	assert.Equal(t, "x: ResourceNotFoundException", forOwner(Wrap("x", &types.ResourceNotFoundException{})).Error())
}
