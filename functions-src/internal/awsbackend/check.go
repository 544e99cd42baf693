package awsbackend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
)

// CheckStatus is the outcome of one permission check.
type CheckStatus int

// Outcomes.
const (
	CheckOK     CheckStatus = iota // the call was authorised
	CheckDenied                    // AWS refused the action, or the keys
	CheckFailed                    // something else went wrong: missing table, network, ...
)

func (s CheckStatus) String() string {
	switch s {
	case CheckOK:
		return "ok"
	case CheckDenied:
		return "DENIED"
	}
	return "FAILED"
}

// CheckResult is one permission the functions need, as tried by Check.
type CheckResult struct {
	Action string // the IAM action, e.g. dynamodb:PutItem
	Target string // what it was tried on, e.g. "on table cv-requests"
	Note   string // how it was tried, when that needs saying
	Status CheckStatus
	Reason string // why it is not ok: the error code, and what it means
	Err    error  // the call's error; nil when the call succeeded outright
}

// Allowed reports whether the functions may make this call.
func (r CheckResult) Allowed() bool { return r.Status == CheckOK }

// CredentialsRefused reports whether AWS refused the keys themselves
// rather than one action.
func (r CheckResult) CredentialsRefused() bool {
	var api smithy.APIError
	return r.Status == CheckDenied && errors.As(r.Err, &api) && awsbase.CredentialsCode(api.ErrorCode())
}

// String is the line `cv-setup check` prints.
func (r CheckResult) String() string {
	line := fmt.Sprintf("%-6s %s %s", r.Status, r.Action, r.Target)
	switch {
	case r.Reason != "" && r.Note != "":
		return line + " (" + r.Reason + "; " + r.Note + ")"
	case r.Reason != "":
		return line + " (" + r.Reason + ")"
	case r.Note != "":
		return line + " (" + r.Note + ")"
	}
	return line
}

// CheckTimeout bounds each check's call, the SDK's retries included.
const CheckTimeout = 15 * time.Second

// SESSimulatorSuccess is SES's mailbox simulator address that accepts mail
// as delivered. SES documents it for testing: sending to it works in the
// sandbox too, and counts against neither the sending quota nor the
// bounce and complaint rates.
const SESSimulatorSuccess = "success@simulator.amazonses.com"

// invalidPhone is not E.164, so SNS refuses it as a parameter after
// authorising the call, and no text is sent.
const invalidPhone = "+0"

// neverTrue is the condition on every write Check makes: an attribute
// that both exists and does not can be no item's, so an authorised write
// answers ConditionalCheckFailed and writes nothing, whatever the table
// holds. ExpressionAttributeNames maps #k to the table's key attribute.
const neverTrue = "attribute_exists(#k) AND attribute_not_exists(#k)"

// Check tries, one by one, every AWS permission the functions use, and
// nothing else, with the credentials and settings in b and c. It changes
// nothing: writes go under a condition that can never hold (neverTrue),
// so an authorised call answers ConditionalCheckFailed and writes nothing
// (and to random keys, besides); the email goes to SES's mailbox
// simulator; the SMS goes to a number SNS refuses as invalid once it has
// authorised the call; the CV is read with HeadObject. now dates the test
// email.
func Check(ctx context.Context, b *Backend, c Config, now time.Time) []CheckResult {
	var out []CheckResult
	try := func(action, target, note string, call func(ctx context.Context) error, allowed func(error) bool) {
		cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
		defer cancel()
		err := call(cctx)
		r := CheckResult{Action: action, Target: target, Note: note, Err: err}
		r.Status, r.Reason = classify(err, allowed)
		out = append(out, r)
	}
	db := b.DynamoDB
	probeKey := func(attr string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{attr: &types.AttributeValueMemberS{Value: "cv-setup-check-" + uuid.NewString()}}
	}
	keyName := func(attr string) map[string]string { return map[string]string{"#k": attr} }

	// Each table, with the item actions the store uses on it, directly or
	// inside a transaction (where AWS authorises each item's own action).
	for _, t := range []struct {
		name, key string
		actions   []string
	}{
		{c.Tables.Requests, "request_id", []string{"GetItem", "PutItem", "UpdateItem", "DeleteItem"}},
		{c.Tables.OTPs, "request_id", []string{"GetItem", "PutItem", "UpdateItem", "DeleteItem"}},
		{c.Tables.Limits, "limit_key", []string{"UpdateItem"}},
	} {
		table, attr := aws.String(t.name), t.key
		for _, a := range t.actions {
			var call func(context.Context) error
			switch a {
			case "GetItem":
				call = func(ctx context.Context) error {
					_, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: probeKey(attr), ConsistentRead: aws.Bool(true)})
					return err
				}
			case "PutItem":
				call = func(ctx context.Context) error {
					_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: probeKey(attr),
						ConditionExpression: aws.String(neverTrue), ExpressionAttributeNames: keyName(attr)})
					return err
				}
			case "UpdateItem":
				call = func(ctx context.Context) error {
					_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
						TableName: table, Key: probeKey(attr),
						ConditionExpression: aws.String(neverTrue), ExpressionAttributeNames: keyName(attr),
						UpdateExpression:          aws.String("SET cv_setup_check = :v"),
						ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberBOOL{Value: true}},
					})
					return err
				}
			case "DeleteItem":
				call = func(ctx context.Context) error {
					_, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: table, Key: probeKey(attr),
						ConditionExpression: aws.String(neverTrue), ExpressionAttributeNames: keyName(attr)})
					return err
				}
			}
			try("dynamodb:"+a, "on table "+t.name, "", call, conditionFailed)
		}
	}

	// The transactions themselves: AWS asks for nothing beyond the item
	// actions above, but an AWS look-alike (moto, which the infra tests
	// run on) asks for these two actions by name, so they are tried too.
	const transactNote = "on AWS authorised as the item actions above"
	try("dynamodb:TransactWriteItems", "on table "+c.Tables.OTPs, transactNote, func(ctx context.Context) error {
		_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{{Update: &types.Update{
			TableName: aws.String(c.Tables.OTPs), Key: probeKey("request_id"),
			ConditionExpression: aws.String(neverTrue), ExpressionAttributeNames: keyName("request_id"),
			UpdateExpression:          aws.String("SET cv_setup_check = :v"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberBOOL{Value: true}},
		}}}})
		return err
	}, conditionFailed)
	try("dynamodb:TransactGetItems", "on tables "+c.Tables.Requests+" and "+c.Tables.OTPs, transactNote, func(ctx context.Context) error {
		_, err := db.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: []types.TransactGetItem{
			{Get: &types.Get{TableName: aws.String(c.Tables.Requests), Key: probeKey("request_id")}},
			{Get: &types.Get{TableName: aws.String(c.Tables.OTPs), Key: probeKey("request_id")}},
		}})
		return err
	}, nil)

	// The owner page's list: a scan that counts at most one item, so it
	// reads nothing.
	if c.OwnerPage {
		try("dynamodb:Scan", "on table "+c.Tables.Requests, "the owner page's list (CV_OWNER_EMAIL is set); counts at most one item, reads none",
			func(ctx context.Context) error {
				_, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(c.Tables.Requests), Select: types.SelectCount, Limit: aws.Int32(1)})
				return err
			}, nil)
	}

	// The code email, through the functions' own mailer.
	from := c.MailFrom
	if a, err := mail.ParseAddress(c.MailFrom); err == nil {
		from = a.Address
	} else if from == "" {
		from = "CV_MAIL_FROM (not set)"
	}
	target := "from " + from
	if c.SESConfigurationSet != "" {
		target += " with configuration set " + c.SESConfigurationSet
	}
	try("ses:SendEmail", target, "to "+SESSimulatorSuccess+", SES's mailbox simulator: a real send, which SES documents for testing",
		func(ctx context.Context) error {
			if c.MailFrom == "" {
				return errors.New("set CV_MAIL_FROM to the verified SES sender the functions send from")
			}
			return b.Mailer.SendEmail(ctx, access.Email{
				To:      SESSimulatorSuccess,
				Subject: "cv-setup check",
				Text:    "Sent by cv-setup check at " + now.UTC().Format(time.RFC3339) + " to test the functions' permission to send.",
				HTML:    "<p>Sent by cv-setup check at " + now.UTC().Format(time.RFC3339) + " to test the functions' permission to send.</p>",
			})
		}, nil)

	// The code SMS, through the functions' own sender, to an invalid number.
	// Counting InvalidParameter as allowed assumes SNS authorises the call
	// before it validates the number: true of moto (the infra tests take
	// sns:Publish away and see AuthorizationError), not proven on AWS,
	// which documents no such order. Were AWS to validate first, a missing
	// sns:Publish would show here as ok.
	try("sns:Publish", "to a phone number", "to the invalid number "+invalidPhone+", which SNS refuses after authorising the call: nothing is sent",
		func(ctx context.Context) error {
			return b.SMS.SendSMS(ctx, access.SMS{To: invalidPhone, Text: "cv-setup check"})
		}, func(err error) bool {
			var api smithy.APIError
			return errors.As(err, &api) && (api.ErrorCode() == "InvalidParameter" || api.ErrorCode() == "InvalidParameterValue")
		})

	// The documents, which the functions' links read with s3:GetObject.
	for _, d := range c.Documents.All() {
		try("s3:GetObject", fmt.Sprintf("on s3://%s/%s (document %q)", c.Bucket, d.Key, d.Slug), "", func(ctx context.Context) error {
			_, err := b.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(d.Key)})
			return err
		}, nil)
		last := &out[len(out)-1]
		switch awsbase.HTTPStatus(last.Err) {
		case http.StatusNotFound:
			last.Status, last.Reason = CheckFailed, "404: the document is not uploaded; "+UploadHint
		case http.StatusForbidden:
			if !last.CredentialsRefused() {
				last.Status, last.Reason = CheckDenied, "403: denied, or the object is missing (without s3:ListBucket S3 answers 403 for both)"
			}
		}
	}
	return out
}

// classify names a check's outcome. allowed says which errors still prove
// the call was authorised (a failed condition, an invalid parameter).
func classify(err error, allowed func(error) bool) (CheckStatus, string) {
	if err == nil || (allowed != nil && allowed(err)) {
		return CheckOK, ""
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		switch {
		case awsbase.DeniedCode(code):
			return CheckDenied, code
		case awsbase.CredentialsCode(code):
			return CheckDenied, "credentials refused: " + code
		}
		if msg := api.ErrorMessage(); msg != "" && awsbase.HTTPStatus(err) != http.StatusForbidden {
			return CheckFailed, code + ": " + msg
		}
		if awsbase.HTTPStatus(err) != http.StatusForbidden {
			return CheckFailed, code
		}
	}
	if awsbase.HTTPStatus(err) == http.StatusForbidden {
		// A 403 whose body named no code we know (or could not be read).
		return CheckDenied, "HTTP 403"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return CheckFailed, fmt.Sprintf("no answer within %s", CheckTimeout)
	}
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		return CheckFailed, oe.Err.Error()
	}
	return CheckFailed, err.Error()
}

// conditionFailed is the answer to an authorised write on a missing key.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return true
	}
	var tce *types.TransactionCanceledException
	return errors.As(err, &tce) && awsbase.FailedCondition(tce) >= 0
}
