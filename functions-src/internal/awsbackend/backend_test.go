package awsbackend_test

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsmail"
)

// AWS_CA_BUNDLE's roots reach the handshakes the preconnector makes: they
// are a transport option of their own, installed before the
// preconnector's. Built as a function builds its backend (awsbase.New
// with its parts).
func TestACABundleIsTrusted(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"MessageId":"m-1"}`)
	}))
	t.Cleanup(srv.Close)
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	t.Setenv("AWS_CA_BUNDLE", bundle)
	b, err := awsbase.New(awsbase.Config{Region: "us-east-2", AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret",
		MailFrom: "cv@example.com", Endpoints: awsbase.Endpoints{SESv2: srv.URL}}, time.Now, awsbase.Parts{Mail: awsmail.Part})
	require.NoError(t, err)
	b.Mailer.(access.Preparer).Prepare()
	assert.NoError(t, b.Mailer.SendEmail(context.Background(), access.Email{To: "ada@example.com", Subject: "s", Text: "t", HTML: "h"}))
}

// The functions' configuration, from the environment alone: the region's
// fallbacks, credentials said missing on the first call, and endpoints
// in the SDK's order of precedence.
func TestTheFunctionsConfigurationFromTheEnvironment(t *testing.T) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SESV2", "AWS_ENDPOINT_URL_SNS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE"} {
		t.Setenv(k, "")
	}
	_, err := awsbackend.New(context.Background(), awsbackend.Config{}, time.Now)
	require.ErrorContains(t, err, "CV_AWS_REGION is not set")

	t.Setenv("AWS_DEFAULT_REGION", "eu-west-1")
	b, err := awsbackend.New(context.Background(), awsbackend.Config{}, time.Now)
	require.NoError(t, err, "a process with no credentials still starts")
	assert.Equal(t, "eu-west-1", b.DynamoDB.Options().Region)
	_, err = b.S3.Options().Credentials.Retrieve(context.Background())
	require.ErrorContains(t, err, "no AWS credentials", "and says so on its first call")
	t.Setenv("AWS_REGION", "us-east-2")
	b, err = awsbackend.New(context.Background(), awsbackend.Config{}, time.Now)
	require.NoError(t, err)
	assert.Equal(t, "us-east-2", b.DynamoDB.Options().Region, "AWS_REGION before AWS_DEFAULT_REGION")
	b, err = awsbackend.New(context.Background(), awsbackend.Config{Region: "ap-south-1"}, time.Now)
	require.NoError(t, err)
	assert.Equal(t, "ap-south-1", b.DynamoDB.Options().Region, "CV_AWS_REGION first")

	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_SESV2", "http://127.0.0.1:2")
	b, err = awsbackend.New(context.Background(), awsbackend.Config{Endpoints: awsbackend.Endpoints{SNS: "http://127.0.0.1:3"}}, time.Now)
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:2", aws.ToString(b.SES.Options().BaseEndpoint), "the service's variable before the global one")
	assert.Equal(t, "http://127.0.0.1:1", aws.ToString(b.DynamoDB.Options().BaseEndpoint), "the global one otherwise")
	assert.Equal(t, "http://127.0.0.1:3", aws.ToString(b.SNS.Options().BaseEndpoint), "the configured endpoint before both")
}
