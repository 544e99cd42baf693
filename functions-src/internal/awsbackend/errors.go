package awsbackend

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
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

func wrap(op string, err error) error {
	if err == nil {
		return nil
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
