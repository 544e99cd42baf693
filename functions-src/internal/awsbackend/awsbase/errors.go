package awsbase

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// awsError keeps an AWS failure's operation and error code for the logs and
// drops its message: service messages can quote request values (SES names
// the unverified recipient address, for one), and logs carry no personal
// data. The original error stays reachable through Unwrap for errors.As.
type awsError struct {
	op     string
	code   string
	action string // the IAM action AWS refused, when it refused one
	keys   bool   // AWS refused the keys themselves, not one action
	owner  bool   // the call listed or erased requests (forOwner): cv-owner's, or the owner page's
	err    error
}

func (e *awsError) Error() string {
	who := "the functions'"
	fix := "the functions' IAM policy must allow it; `make aws-check` lists what is missing"
	if e.owner {
		// Never "the functions' policy must allow it": the visitors'
		// functions are denied Scan on purpose; cv-owner and the owner
		// page get it elsewhere.
		who = "the owner's"
		fix = "run cv-owner with the owner's key (Terraform's owner_env output), whose IAM policy allows " +
			"dynamodb:Scan on the requests table and dynamodb:DeleteItem on the requests and codes tables; " +
			"the owner page gets them from infra/ with owner_email set (its own role on target aws)"
	}
	switch {
	case e.keys:
		// Not a policy matter: the key is unknown, its secret wrong, or
		// its session over; the IAM policy cannot help.
		return fmt.Sprintf("%s: AWS refused %s key (%s): check CV_AWS_ACCESS_KEY_ID and CV_AWS_SECRET_ACCESS_KEY",
			e.op, who, e.code)
	case e.action != "":
		return fmt.Sprintf("%s: AWS denied %s (%s%s): %s", e.op, e.action, e.code, transactionNote[e.action], fix)
	}
	return e.op + ": " + e.code
}

// forOwner words err's AWS refusal, if it is one, for the owner's command.
func forOwner(err error) error {
	var ae *awsError
	if errors.As(err, &ae) {
		ae.owner = true
	}
	return err
}

// transactionNote says what a refused transaction means: AWS authorises a
// transaction as the item actions inside it, so on AWS the policy lacks
// one of those (an AWS look-alike may ask for the transaction by name).
var transactionNote = map[string]string{
	"dynamodb:TransactWriteItems": "; on AWS, one of the PutItem, UpdateItem or DeleteItem inside it",
	"dynamodb:TransactGetItems":   "; on AWS, one of the GetItem inside it",
}

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

// Wrap names a failed AWS call's operation, op, and keeps the failure's
// error code for the logs, never its message (awsError); every adapter's
// error goes through it.
func Wrap(op string, err error) error {
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
	if code := deniedCode(err); code != "" {
		return &awsError{op: op, code: code, action: iamAction(err), keys: credentialCodes[code], err: err}
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

// IsAccessDenied reports whether err is AWS refusing an action or the
// keys. A bare 403 counts too: S3 answers one with no body to a HEAD, and
// an AWS look-alike may answer a JSON API's refusal in XML that the SDK
// cannot decode; every AWS service means "forbidden" by it.
func IsAccessDenied(err error) bool { return deniedCode(err) != "" }

// DeniedCode reports whether an error code is AWS refusing an action.
func DeniedCode(code string) bool { return deniedCodes[code] }

// CredentialsCode reports whether an error code is AWS refusing the keys
// themselves (unknown, wrong secret, session over) rather than one action.
func CredentialsCode(code string) bool { return credentialCodes[code] }

// deniedCode is the refusal's error code, "HTTP 403" for a bare 403, or ""
// when err is no refusal.
func deniedCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) && (deniedCodes[api.ErrorCode()] || credentialCodes[api.ErrorCode()]) {
		return api.ErrorCode()
	}
	if HTTPStatus(err) == http.StatusForbidden {
		return "HTTP 403"
	}
	return ""
}

// iamAction names the IAM action behind a failed SDK call, as a policy
// writes it: dynamodb:GetItem, ses:SendEmail, s3:GetObject.
func iamAction(err error) string {
	var oe *smithy.OperationError
	if !errors.As(err, &oe) {
		return "an action"
	}
	service := map[string]string{"DynamoDB": "dynamodb", "SESv2": "ses", "SNS": "sns", "S3": "s3"}[oe.ServiceID]
	if service == "" {
		service = strings.ToLower(oe.ServiceID)
	}
	op := oe.OperationName
	if op == "HeadObject" { // authorised as the read it answers for
		op = "GetObject"
	}
	return service + ":" + op
}

// HTTPStatus is the HTTP status of a failed call's response, or 0 when
// there was none.
func HTTPStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
