package lambdatest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsdefault"
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
	"github.com/cv-access/cv-access/functions-src/internal/lambdatest"
	"github.com/cv-access/cv-access/functions-src/internal/streams"
)

// notifier compiles notify-access as a Lambda binary (it is not one of
// Netlify's functions, so `make functions` does not build it; the build
// cache makes this quick after the first time).
func notifier(t *testing.T) string {
	t.Helper()
	root, err := emulators.FindRoot()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "notify-access")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", bin, "./functions-src/lambda/notify-access")
	cmd.Dir = root
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build notify-access: %s", out)
	return bin
}

// rawRecords reads a stream's records as DynamoDB Streams sends them on
// the wire, which is what Lambda hands the function as the event's
// Records: the body of GetRecords, kept by the HTTP client.
type rawRecords struct {
	mu   sync.Mutex
	last []byte
}

func (r *rawRecords) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".GetRecords") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.last = body
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// The owner's notification end to end on DynamoDB Local: the compiled
// functions verify a request; the requests table's stream, read from
// DynamoDB Local, is handed as the event to the compiled notify-access;
// the owner's email reaches the SES emulator once, and handing the same
// records over again (the stream's retry) sends nothing more.
func TestTheStreamTellsTheOwnerOnce(t *testing.T) {
	ctx := context.Background()
	env := prodEnv(t)
	if stack == nil {
		t.Skip("the emulator stack is not running")
	}
	dep, err := stack.Deploy(ctx, fmt.Sprintf("-notify-%d", time.Now().UnixNano()%1e9), nil)
	require.NoError(t, err)
	be, err := awsbackend.New(ctx, dep.Config, time.Now)
	require.NoError(t, err)
	table := dep.Config.Tables.Requests
	_, err = be.DynamoDB.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(table),
		StreamSpecification: &ddbtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: ddbtypes.StreamViewTypeNewAndOldImages}})
	require.NoError(t, err)

	// The functions on this deployment's tables.
	fnEnv := []string{}
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "CV_TABLE_") {
			fnEnv = append(fnEnv, kv)
		}
	}
	for k, v := range dep.Env {
		if strings.HasPrefix(k, "CV_TABLE_") {
			fnEnv = append(fnEnv, k+"="+v)
		}
	}
	// verify-access on AWS is given the owner's address too, and must
	// send nothing itself: the stream's notifier does.
	owner := fmt.Sprintf("owner-%d@example.com", time.Now().UnixNano())
	fnEnv = append(fnEnv, "CV_OWNER_EMAIL="+owner)
	email := fmt.Sprintf("notify-%d@example.com", time.Now().UnixNano())
	ra := start(t, "request-access", fnEnv)
	resp := ra.post(t, `{"name":"Ada <i>Lovelace</i>","email":"`+email+`","company":"Engines & Co","location":"London","consent":true}`)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	var issued struct{ RequestID string }
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &issued))
	mails, err := stack.EmailsTo(ctx, email)
	require.NoError(t, err)
	require.Len(t, mails, 1)
	code := sixDigits.FindString(mails[0].Body.Text)
	va := start(t, "verify-access", fnEnv)
	resp = va.post(t, `{"requestId":"`+issued.RequestID+`","otp":"`+code+`"}`)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	sentByVerify, err := stack.EmailsTo(ctx, owner)
	require.NoError(t, err)
	assert.Empty(t, sentByVerify, "verify-access emails nobody")

	// The stream, as Lambda would read it.
	desc, err := be.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	require.NoError(t, err)
	raw := &rawRecords{}
	cfg, err := awsdefault.LoadAWSConfig(ctx, dep.Config)
	require.NoError(t, err)
	cfg.HTTPClient = &http.Client{Transport: raw}
	streamsClient := dynamodbstreams.NewFromConfig(cfg, func(o *dynamodbstreams.Options) {
		o.BaseEndpoint = aws.String(dep.Env["AWS_ENDPOINT_URL_DYNAMODB"])
	})
	stream, err := streamsClient.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: desc.Table.LatestStreamArn})
	require.NoError(t, err)
	require.NotEmpty(t, stream.StreamDescription.Shards)
	it, err := streamsClient.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: desc.Table.LatestStreamArn,
		ShardId: stream.StreamDescription.Shards[0].ShardId, ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon})
	require.NoError(t, err)
	_, err = streamsClient.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator})
	require.NoError(t, err)
	// The records go to the function as the stream sent them, with the
	// one field Lambda adds to each.
	var batch struct{ Records []map[string]json.RawMessage }
	require.NoError(t, json.Unmarshal(raw.last, &batch))
	require.NotEmpty(t, batch.Records, "the stream holds the request's insert and its turn to VERIFIED")

	// The mapping's filter lets through exactly the request's turn to
	// VERIFIED among these real records (a filter that matched nothing
	// would silently drop every notification).
	var pattern map[string]any
	require.NoError(t, json.Unmarshal([]byte(streams.FilterPattern), &pattern))
	var passed []string
	for _, r := range batch.Records {
		var rec map[string]any
		whole, _ := json.Marshal(r)
		require.NoError(t, json.Unmarshal(whole, &rec))
		if matches(pattern, rec) {
			var name string
			_ = json.Unmarshal(r["eventName"], &name)
			passed = append(passed, name)
		}
	}
	assert.Equal(t, []string{"MODIFY"}, passed, "of the request's insert and its update to VERIFIED, the update alone")
	arn, _ := json.Marshal(aws.ToString(desc.Table.LatestStreamArn))
	for _, r := range batch.Records {
		r["eventSourceARN"] = arn
	}
	event, err := json.Marshal(batch)
	require.NoError(t, err)

	nEnv := []string{"PATH=/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_NAME=cv-access-notify-access", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"CV_OWNER_EMAIL=" + owner}
	for k, v := range dep.Env {
		nEnv = append(nEnv, k+"="+v)
	}
	nEnv = append(nEnv, "CV_SITE_URL=https://cv.example.com")
	p, err := lambdatest.Run(notifier(t), nEnv)
	require.NoError(t, err)
	t.Cleanup(p.Stop)

	for try := 1; try <= 2; try++ {
		out, err := p.Invoke(ctx, event)
		require.NoError(t, err, p.Logs())
		var answer events.DynamoDBEventResponse
		require.NoError(t, json.Unmarshal(out, &answer))
		assert.Empty(t, answer.BatchItemFailures, "hand %d", try)
		got, err := stack.EmailsTo(ctx, owner)
		require.NoError(t, err)
		require.Len(t, got, 1, "hand %d: one email to the owner, however often the stream hands the records over", try)
		assert.Contains(t, got[0].Body.Text, "Ada <i>Lovelace</i>")
		assert.Contains(t, got[0].Body.Text, email)
		assert.Contains(t, got[0].Body.Text, "Engines & Co")
		assert.Contains(t, got[0].Body.Text, "https://cv.example.com")
		assert.Contains(t, got[0].Body.HTML, "Ada &lt;i&gt;Lovelace&lt;/i&gt;")
	}
	flowtest.AssertAbsent(t, p.Logs(), email, "Lovelace", "Engines", owner)
	assert.Contains(t, p.Logs(), issued.RequestID, "the log names the request")
}

// matches applies the subset of Lambda's event filtering the mapping
// uses: a list matches a field equal to one of its values, an object
// matches field by field.
func matches(pattern, event map[string]any) bool {
	for k, want := range pattern {
		got, ok := event[k]
		if !ok {
			return false
		}
		switch w := want.(type) {
		case []any:
			if !slices.Contains(w, got) {
				return false
			}
		case map[string]any:
			sub, ok := got.(map[string]any)
			if !ok || !matches(w, sub) {
				return false
			}
		default:
			return false
		}
	}
	return true
}
