package awsbackend_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
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
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
)

// checked are the lines Check prints when all is well, for the fixture's
// configuration: every permission the functions use, and no other.
func checked(f *fixture) []string {
	t := f.cfg.Tables
	return []string{
		"ok     dynamodb:GetItem on table " + t.Requests,
		"ok     dynamodb:PutItem on table " + t.Requests,
		"ok     dynamodb:UpdateItem on table " + t.Requests,
		"ok     dynamodb:DeleteItem on table " + t.Requests,
		"ok     dynamodb:GetItem on table " + t.OTPs,
		"ok     dynamodb:PutItem on table " + t.OTPs,
		"ok     dynamodb:UpdateItem on table " + t.OTPs,
		"ok     dynamodb:DeleteItem on table " + t.OTPs,
		"ok     dynamodb:UpdateItem on table " + t.Limits,
		"ok     dynamodb:TransactWriteItems on table " + t.OTPs + " (on AWS authorised as the item actions above)",
		"ok     dynamodb:TransactGetItems on tables " + t.Requests + " and " + t.OTPs + " (on AWS authorised as the item actions above)",
		"ok     ses:SendEmail from cv@example.com (to success@simulator.amazonses.com, SES's mailbox simulator: a real send, which SES documents for testing)",
		"ok     sns:Publish to a phone number (to the invalid number +0, which SNS refuses after authorising the call: nothing is sent)",
		"ok     s3:GetObject on s3://" + f.cfg.Bucket + "/" + testCVKey + ` (document "cv")`,
	}
}

func lines(results []awsbackend.CheckResult) []string {
	out := make([]string, len(results))
	for i, r := range results {
		out[i] = r.String()
	}
	return out
}

// itemCounts is the number of items in each table, by a consistent scan.
func itemCounts(t *testing.T, f *fixture) map[string]int32 {
	t.Helper()
	out := map[string]int32{}
	for _, table := range []string{f.cfg.Tables.Requests, f.cfg.Tables.OTPs, f.cfg.Tables.Limits} {
		res, err := f.backend.DynamoDB.Scan(context.Background(), &dynamodb.ScanInput{
			TableName: aws.String(table), ConsistentRead: aws.Bool(true), Select: "COUNT",
		})
		require.NoError(t, err)
		out[table] = res.Count
	}
	return out
}

func TestCheckOnTheEmulatorsIsAllOKAndChangesNothing(t *testing.T) {
	f := backend(t)
	ctx := context.Background()
	require.NoError(t, stack.ClearEmails(ctx))
	before := itemCounts(t, f)
	texts := len(stack.SNSFake.Messages())
	f.counter.reset()

	results := awsbackend.Check(ctx, f.backend, f.cfg, time.Now())
	assert.Equal(t, checked(f), lines(results))
	for _, r := range results {
		assert.True(t, r.Allowed(), r.String())
	}

	calls, _ := f.counter.reset()
	assert.Equal(t, map[string]int{
		"DynamoDB.GetItem": 2, "DynamoDB.PutItem": 2, "DynamoDB.UpdateItem": 3, "DynamoDB.DeleteItem": 2,
		"DynamoDB.TransactWriteItems": 1, "DynamoDB.TransactGetItems": 1,
		"SESv2.SendEmail": 1, "SNS.Publish": 1, "S3.HeadObject": 1,
	}, calls, "one call per permission, none retried")
	assert.Equal(t, before, itemCounts(t, f), "no item written or deleted")
	assert.Len(t, stack.SNSFake.Messages(), texts, "no text sent")
	mails, err := stack.Emails(ctx)
	require.NoError(t, err)
	require.Len(t, mails, 1, "one email, to SES's mailbox simulator")
	assert.Equal(t, []string{awsbackend.SESSimulatorSuccess}, mails[0].Destination.To)
	assert.Equal(t, "CV <cv@example.com>", mails[0].From)
}

// With the owner page on, the check tries the page's Scan too, reading
// nothing (TestCheckNamesWhatIsDeniedOrBroken: denied, it names it).
func TestCheckTriesTheOwnerPagesScan(t *testing.T) {
	f := backend(t)
	ctx := context.Background()
	cfg := f.cfg
	cfg.OwnerPage = true
	f.counter.reset()
	results := awsbackend.Check(ctx, f.backend, cfg, time.Now())
	want := checked(f)
	scan := "ok     dynamodb:Scan on table " + cfg.Tables.Requests + " (the owner page's list (CV_OWNER_EMAIL is set); counts at most one item, reads none)"
	assert.Equal(t, append(want[:11:11], append([]string{scan}, want[11:]...)...), lines(results))
	calls, _ := f.counter.reset()
	assert.Equal(t, 1, calls["DynamoDB.Scan"])
}

// denyAll answers every request as AWS does when the policy lacks the action.
func denyAll(protocol string) func(http.ResponseWriter, *http.Request, []byte) bool {
	return func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		msg := "User: arn:aws:iam::123456789012:user/cv-functions is not authorized to perform this action"
		switch protocol {
		case "ses":
			emulators.SESError(w, http.StatusForbidden, "AccessDeniedException", msg)
		case "sns":
			emulators.SNSError(w, http.StatusForbidden, "AuthorizationError", msg)
		case "s3":
			emulators.S3Error(w, r, http.StatusForbidden, "AccessDenied", "Access Denied")
		}
		return true
	}
}

// denyDynamoDB refuses one operation on one table ("" for any), as AWS
// does when the policy lacks it.
func denyDynamoDB(operation, table, code string) func(http.ResponseWriter, *http.Request, []byte) bool {
	return func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		op, tbl := emulators.DynamoDBOperation(r, body)
		if op != operation || (table != "" && tbl != table) {
			return false
		}
		emulators.DynamoDBError(w, http.StatusBadRequest, code, "User: arn:aws:iam::123456789012:user/cv-functions is not authorized to perform: dynamodb:"+op)
		return true
	}
}

func TestCheckNamesWhatIsDeniedOrBroken(t *testing.T) {
	f := backend(t)
	tables := f.cfg.Tables
	tests := []struct {
		name   string
		config func(c *awsbackend.Config)
		want   map[int]string // line index -> the line, for the lines that are not ok
	}{
		{"PutItem on the requests table", func(c *awsbackend.Config) {
			c.Endpoints.DynamoDB = emulators.StandIn(t, stack.DynamoDB, denyDynamoDB("PutItem", tables.Requests, "AccessDeniedException"))
		}, map[int]string{1: "DENIED dynamodb:PutItem on table " + tables.Requests + " (AccessDeniedException)"}},
		{"UpdateItem on the limits table", func(c *awsbackend.Config) {
			c.Endpoints.DynamoDB = emulators.StandIn(t, stack.DynamoDB, denyDynamoDB("UpdateItem", tables.Limits, "AccessDeniedException"))
		}, map[int]string{8: "DENIED dynamodb:UpdateItem on table " + tables.Limits + " (AccessDeniedException)"}},
		{"a transaction, as moto asks for it", func(c *awsbackend.Config) {
			c.Endpoints.DynamoDB = emulators.StandIn(t, stack.DynamoDB, denyDynamoDB("TransactWriteItems", "", "AccessDeniedException"))
		}, map[int]string{9: "DENIED dynamodb:TransactWriteItems on table " + tables.OTPs +
			" (AccessDeniedException; on AWS authorised as the item actions above)"}},
		{"the owner page's Scan", func(c *awsbackend.Config) {
			c.OwnerPage = true
			c.Endpoints.DynamoDB = emulators.StandIn(t, stack.DynamoDB, denyDynamoDB("Scan", tables.Requests, "AccessDeniedException"))
		}, map[int]string{11: "DENIED dynamodb:Scan on table " + tables.Requests +
			" (AccessDeniedException; the owner page's list (CV_OWNER_EMAIL is set); counts at most one item, reads none)"}},
		{"SES", func(c *awsbackend.Config) {
			c.Endpoints.SESv2 = emulators.StandIn(t, "", denyAll("ses"))
		}, map[int]string{11: "DENIED ses:SendEmail from cv@example.com (AccessDeniedException; to success@simulator.amazonses.com, SES's mailbox simulator: a real send, which SES documents for testing)"}},
		{"SNS", func(c *awsbackend.Config) {
			c.Endpoints.SNS = emulators.StandIn(t, "", denyAll("sns"))
		}, map[int]string{12: "DENIED sns:Publish to a phone number (AuthorizationError; to the invalid number +0, which SNS refuses after authorising the call: nothing is sent)"}},
		{"S3", func(c *awsbackend.Config) {
			c.Endpoints.S3 = emulators.StandIn(t, "", denyAll("s3"))
		}, map[int]string{13: "DENIED s3:GetObject on s3://" + f.cfg.Bucket + "/" + testCVKey + ` (document "cv")` +
			" (403: denied, or the object is missing (without s3:ListBucket S3 answers 403 for both))"}},
		{"the CV is not uploaded", func(c *awsbackend.Config) { c.Documents = access.SingleDocument("no-such-cv.pdf") },
			map[int]string{13: "FAILED s3:GetObject on s3://" + f.cfg.Bucket + "/no-such-cv.pdf" +
				` (document "cv") (404: the document is not uploaded; infra/'s document_files (or ` + "`make aws-setup CV=path/to/file`" + ` for the first document) uploads it)`}},
		{"a missing table", func(c *awsbackend.Config) { c.Tables.Limits = "no-such-table" },
			map[int]string{8: "FAILED dynamodb:UpdateItem on table no-such-table (ResourceNotFoundException: Cannot do operations on a non-existent table)"}},
		{"no sender", func(c *awsbackend.Config) { c.MailFrom = "" },
			map[int]string{11: "FAILED ses:SendEmail from CV_MAIL_FROM (not set) (set CV_MAIL_FROM to the verified SES sender the functions send from; " +
				"to success@simulator.amazonses.com, SES's mailbox simulator: a real send, which SES documents for testing)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.cfg
			cfg.APIOptions = nil
			tt.config(&cfg)
			b, err := awsbackend.New(context.Background(), cfg, time.Now)
			require.NoError(t, err)
			results := awsbackend.Check(context.Background(), b, cfg, time.Now())
			n := len(checked(f))
			if cfg.OwnerPage {
				n++ // the page's Scan
			}
			require.Len(t, results, n)
			for i, r := range results {
				if want, ok := tt.want[i]; ok {
					assert.False(t, r.Allowed())
					assert.Equal(t, want, r.String())
				} else {
					assert.True(t, r.Allowed(), r.String())
				}
			}
		})
	}
}

func TestCheckSaysWhenTheKeysThemselvesAreRefused(t *testing.T) {
	f := backend(t)
	cfg := f.cfg
	cfg.APIOptions = nil
	cfg.Endpoints.DynamoDB = emulators.StandIn(t, "", func(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
		emulators.DynamoDBError(w, http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return true
	})
	b, err := awsbackend.New(context.Background(), cfg, time.Now)
	require.NoError(t, err)
	results := awsbackend.Check(context.Background(), b, cfg, time.Now())
	for _, r := range results {
		if strings.HasPrefix(r.Action, "dynamodb:") {
			assert.True(t, r.CredentialsRefused(), r.String())
			assert.Contains(t, r.String(), "DENIED "+r.Action)
			assert.Contains(t, r.String(), "(credentials refused: UnrecognizedClientException")
		} else {
			assert.True(t, r.Allowed(), r.String())
		}
	}
	assert.True(t, awsbackend.IsAccessDenied(results[0].Err))
}

// The check's writes are safe by construction, not only because their
// random keys are new: aimed by a stand-in at items that exist, every
// write still answers ConditionalCheckFailed (ok) and changes nothing.
func TestCheckWritesCannotChangeAnItemThatExists(t *testing.T) {
	f := backend(t)
	ctx := context.Background()
	target := "existing-" + uuid.NewString()
	keys := map[string]string{f.cfg.Tables.Requests: "request_id", f.cfg.Tables.OTPs: "request_id", f.cfg.Tables.Limits: "limit_key"}
	item := func(table string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{
			keys[table]: &types.AttributeValueMemberS{Value: target},
			"kept":      &types.AttributeValueMemberS{Value: "as it was"},
		}
	}
	get := func(table string) map[string]types.AttributeValue {
		out, err := f.backend.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{keys[table]: &types.AttributeValueMemberS{Value: target}}})
		require.NoError(t, err)
		return out.Item
	}
	for table := range keys {
		_, err := f.backend.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item(table)})
		require.NoError(t, err)
		t.Cleanup(func() {
			_, _ = f.backend.DynamoDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
				Key: map[string]types.AttributeValue{keys[table]: &types.AttributeValueMemberS{Value: target}}})
		})
	}

	// Every probe key becomes the existing item's, on the way to DynamoDB
	// Local (which reads the signature's key id, not the signature).
	probe := regexp.MustCompile(`cv-setup-check-[0-9a-f-]{36}`)
	var aimed atomic.Int32
	cfg := f.cfg
	cfg.APIOptions = nil
	cfg.Endpoints.DynamoDB = emulators.StandIn(t, "", func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if probe.Match(body) {
			aimed.Add(1)
		}
		body = probe.ReplaceAll(body, []byte(target))
		req, err := http.NewRequestWithContext(r.Context(), r.Method, stack.DynamoDB+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return true
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return true
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		return true
	})
	b, err := awsbackend.New(ctx, cfg, time.Now)
	require.NoError(t, err)
	results := awsbackend.Check(ctx, b, cfg, time.Now())
	assert.EqualValues(t, 11, aimed.Load(), "every DynamoDB probe was aimed at the existing items")
	for _, r := range results {
		assert.True(t, r.Allowed(), r.String())
	}
	for table := range keys {
		assert.Equal(t, item(table), get(table), "table %s: the item is as it was", table)
	}
}
