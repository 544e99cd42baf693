package awsbackend

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// awsError keeps an AWS failure's operation and error code for the logs and
// drops its message: service messages can quote request values (SES names
// the unverified recipient address, for one), and logs carry no personal
// data. The original error stays reachable through Unwrap for errors.As.
type awsError struct {
	op   string
	code string
	err  error
}

func (e *awsError) Error() string { return e.op + ": " + e.code }
func (e *awsError) Unwrap() error { return e.err }

// Is lets the domain see throttling as access.ErrBusy (worth a retry),
// after the SDK's own bounded retries gave up.
func (e *awsError) Is(target error) bool { return target == access.ErrBusy && throttled[e.code] }

var throttled = map[string]bool{
	"ThrottlingException":                    true,
	"ProvisionedThroughputExceededException": true,
	"RequestLimitExceeded":                   true,
	"TooManyRequestsException":               true,
	"Throttling":                             true,
	"SlowDown":                               true,
	// Another transaction held an item we wrote, and the store's own
	// retries ran out of time: nothing was applied, and a retry will do.
	"TransactionConflict":            true,
	"TransactionConflictException":   true,
	"TransactionInProgressException": true,
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			if c := aws.ToString(r.Code); c == "TransactionConflict" {
				return &awsError{op: op, code: c, err: err}
			}
		}
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return &awsError{op: op, code: api.ErrorCode(), err: err}
	}
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		// Transport failures (timeouts, refused connections) name hosts, not people.
		return fmt.Errorf("%s: %w", op, oe.Err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Codes AWS answers when it refuses an action, and when it refuses the
// keys themselves.
var (
	deniedCodes = map[string]bool{
		"AccessDenied": true, "AccessDeniedException": true, "AuthorizationError": true,
	}
	credentialCodes = map[string]bool{
		"UnrecognizedClientException": true, "InvalidClientTokenId": true, "SignatureDoesNotMatch": true,
		"InvalidSignatureException": true, "InvalidAccessKeyId": true, "ExpiredToken": true, "ExpiredTokenException": true,
	}
)

// IsAccessDenied reports whether err is AWS refusing an action or the keys.
func IsAccessDenied(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && (deniedCodes[api.ErrorCode()] || credentialCodes[api.ErrorCode()])
}
