package awsbackend_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsdefault"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
)

// presignerAt is the production presigner with its own S3 client, built
// from the production configuration (credentials, retries) but pointed at
// endpoint and signing with the given secret key.
func presignerAt(t *testing.T, endpoint, secretKey, bucket string) *awsbackend.Presigner {
	t.Helper()
	cfg, err := awsdefault.LoadAWSConfig(context.Background(), awsbackend.Config{
		Region: emulators.Region, AccessKeyID: emulators.AccessKeyID, SecretAccessKey: secretKey})
	require.NoError(t, err)
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
	return awsbackend.NewPresigner(client, bucket, time.Now)
}

// s3Stub answers every request with status and body, as S3 would, and
// counts the requests it saw by method.
func s3Stub(t *testing.T, status int, body string) (string, *atomic.Int32) {
	t.Helper()
	var heads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads.Add(1)
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("x-amz-request-id", "STUB")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body) // dropped on HEAD, as S3 sends none
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &heads
}

// S3 refuses HeadObject with 403 both when s3:GetObject is missing and
// when the object is missing and s3:ListBucket is too. gofakes3 has no
// IAM, so the 403 comes from a stub answering as S3 does.
func TestCVCheckMapsS3Answers(t *testing.T) {
	const denied = `<?xml version="1.0" encoding="UTF-8"?>` +
		`<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>STUB</RequestId></Error>`
	for _, tc := range []struct {
		name     string
		status   int
		body     string
		sentinel error // nil: neither
		says     []string
	}{
		{"403 AccessDenied", 403, denied, access.ErrCVDenied,
			[]string{"AWS denied s3:GetObject ", "s3:ListBucket", "s3://cv-bucket/cv/ada.pdf", "403"}},
		{"404", 404, "", access.ErrCVMissing, []string{"s3://cv-bucket/cv/ada.pdf", "404", "s3:GetObject"}},
		{"500", 500, `<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>`, nil,
			[]string{"s3://cv-bucket/cv/ada.pdf", "s3:GetObject"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint, heads := s3Stub(t, tc.status, tc.body)
			err := presignerAt(t, endpoint, emulators.SecretAccessKey, "cv-bucket").Check(context.Background(), cvAt("cv/ada.pdf", 2*time.Minute))
			require.Error(t, err)
			for _, sentinel := range []error{access.ErrCVDenied, access.ErrCVMissing} {
				assert.Equal(t, sentinel == tc.sentinel, errors.Is(err, sentinel), "errors.Is(%v)", sentinel)
			}
			for _, s := range tc.says {
				assert.Contains(t, err.Error(), s)
			}
			t.Log(err)
			assert.NotContains(t, err.Error(), "Signature", "no signature in the log text")
			assert.Positive(t, heads.Load())
		})
	}
}

func TestCVCheckOnTheEmulators(t *testing.T) {
	f := backend(t)
	for _, tc := range []struct {
		name      string
		bucket    string
		key       string
		secretKey string
		sentinel  error
	}{
		{"the CV is there", f.cfg.Bucket, testCVKey, emulators.SecretAccessKey, nil},
		{"no such object", f.cfg.Bucket, "cv/none.pdf", emulators.SecretAccessKey, access.ErrCVMissing},
		{"no such bucket", "cv-no-such-bucket", testCVKey, emulators.SecretAccessKey, access.ErrCVMissing},
		{"keys S3 refuses", f.cfg.Bucket, testCVKey, "not-the-secret", access.ErrCVDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := presignerAt(t, stack.S3, tc.secretKey, tc.bucket).Check(context.Background(), cvAt(tc.key, 2*time.Minute))
			if tc.sentinel == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tc.sentinel)
			assert.Contains(t, err.Error(), fmt.Sprintf("s3://%s/%s", tc.bucket, tc.key))
		})
	}
}

// A CV missing from the bucket must not cost the visitor their code: the
// verify answers 503 and logs why; once the CV is uploaded the same code
// gives a working link. Only a pass is remembered.
func TestVerifyWithTheCVMissingOnAWS(t *testing.T) {
	f := backend(t)
	ctx := context.Background()
	key := fmt.Sprintf("cv/missing-%d.pdf", time.Now().UnixNano())
	links := awsbackend.NewPresigner(f.backend.S3, f.cfg.Bucket, f.clock.Now)
	svc := serviceWith(t, f, links, access.SingleDocument(key))
	logs := &flowtest.Buffer{}
	h := api.VerifyAccess(svc, api.Config{Log: slog.New(slog.NewJSONHandler(logs, nil)), Origins: []string{"https://cv.example.com"}}).V1

	email := fmt.Sprintf("missing-%d@example.com", time.Now().UnixNano())
	out, err := svc.RequestAccess(ctx, access.AccessInput{Name: "Ada Lovelace", Email: email, Consent: true, ClientIP: "198.51.100.40"})
	require.NoError(t, err)
	mails, err := stack.EmailsTo(ctx, email)
	require.NoError(t, err)
	require.Len(t, mails, 1)
	code := sixDigits.FindString(mails[0].Body.Text)
	body := fmt.Sprintf(`{"requestId":%q,"otp":%q}`, out.RequestID, code)

	f.counter.reset()
	for range 2 {
		resp, err := h(ctx, post(body))
		require.NoError(t, err)
		assert.Equal(t, 503, resp.StatusCode, resp.Body)
		assert.Contains(t, resp.Body, `"error":"download_unavailable"`)
		assert.Equal(t, "30", resp.Headers["Retry-After"])
	}
	calls, _ := f.counter.reset()
	assert.Equal(t, 2, calls["S3.HeadObject"], "a failed check is not remembered")
	assert.Equal(t, 2, calls["DynamoDB.TransactWriteItems"], "two attempts counted; the code never marked used")

	var errorLines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var line map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &line))
		if line["level"] == "ERROR" {
			errorLines = append(errorLines, line)
		}
	}
	require.Len(t, errorLines, 2, "one error line per failed verify:\n%s", logs.String())
	for _, line := range errorLines {
		assert.Equal(t, out.RequestID, line["access_request"])
		assert.NotEmpty(t, line["invocation"])
		cause, _ := line["error"].(string)
		assert.Contains(t, cause, "s3://"+f.cfg.Bucket+"/"+key)
		assert.Contains(t, cause, "s3:GetObject")
	}
	flowtest.AssertAbsent(t, logs.String(), email, code, "X-Amz-Signature")

	_, err = f.backend.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(f.cfg.Bucket), Key: aws.String(key),
		Body: bytes.NewReader(embedded.SampleCV)})
	require.NoError(t, err)
	f.counter.reset()
	resp, err := h(ctx, post(body))
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	var grant struct{ RedirectURL string }
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &grant))
	dl, got := download(t, grant.RedirectURL)
	assert.Equal(t, 200, dl.StatusCode)
	assert.Equal(t, embedded.SampleCV, got, "the same code gives a link that downloads")

	// Warm: more visitors, no more checks.
	for i := range 3 {
		email := fmt.Sprintf("warm-%d-%d@example.com", i, time.Now().UnixNano())
		out, err := svc.RequestAccess(ctx, access.AccessInput{Name: "Ada Lovelace", Email: email, Consent: true,
			ClientIP: fmt.Sprintf("198.51.100.%d", 41+i)})
		require.NoError(t, err)
		mails, err := stack.EmailsTo(ctx, email)
		require.NoError(t, err)
		require.Len(t, mails, 1)
		resp, err := h(ctx, post(fmt.Sprintf(`{"requestId":%q,"otp":%q}`, out.RequestID, sixDigits.FindString(mails[0].Body.Text))))
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, resp.Body)
	}
	calls, _ = f.counter.reset()
	assert.Equal(t, 1, calls["S3.HeadObject"], "one check for four verifies: its pass is remembered")
}
