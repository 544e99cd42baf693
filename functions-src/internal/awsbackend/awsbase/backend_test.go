package awsbase_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
)

// offline is a configuration whose every call would fail fast: nothing
// here may reach for the network.
var offline = awsbase.Config{Region: "eu-west-2", AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret",
	Endpoints: awsbase.Endpoints{DynamoDB: "http://127.0.0.1:1", SESv2: "http://127.0.0.1:1", SNS: "http://127.0.0.1:1", S3: "http://127.0.0.1:1"}}

// A function built without a part starts, and a call that reaches the
// part fails with an error naming it and the part that would build it,
// never a nil-pointer panic: verify-access has no mailer, request-access
// no links, the owner page neither SMS nor links.
func TestAPartLeftOutFailsClearly(t *testing.T) {
	b, err := awsbase.New(offline, time.Now, awsbase.Parts{})
	require.NoError(t, err, "a function without parts still starts")
	require.NotNil(t, b.Store)
	require.NotNil(t, b.Owner)
	ctx := context.Background()
	doc := access.SingleDocument("cv.pdf").Default()
	_, presignErr := b.Links.Presign(ctx, doc)
	for _, tc := range []struct {
		name, service, part string
		err                 error
	}{
		{"email", "email (SES v2)", "awsbase.Parts{Mail: awsmail.Part}", b.Mailer.SendEmail(ctx, access.Email{To: "ada@example.com"})},
		{"sms", "SMS (SNS)", "awsbase.Parts{SMS: awssms.Part}", b.SMS.SendSMS(ctx, access.SMS{To: "+447400900123"})},
		{"presign", "document links (S3)", "awsbase.Parts{Links: awslinks.Part}", presignErr},
		{"check", "document links (S3)", "awsbase.Parts{Links: awslinks.Part}", b.Links.Check(ctx, doc)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.err, awsbase.ErrMissingPart)
			var mp *awsbase.MissingPartError
			require.True(t, errors.As(tc.err, &mp))
			assert.Contains(t, tc.err.Error(), "this function was built without "+tc.service)
			assert.Contains(t, tc.err.Error(), tc.part)
		})
	}
	_, isPreparer := b.Mailer.(access.Preparer)
	assert.False(t, isPreparer, "a missing mailer opens no connection ahead")
}

// The parts a function hands in are the ones it gets, built over the
// same settings.
func TestThePartsHandedInAreUsed(t *testing.T) {
	var got awsbase.Build
	mailer := &fakeMailer{}
	b, err := awsbase.New(offline, time.Now, awsbase.Parts{Mail: func(build awsbase.Build) access.Mailer { got = build; return mailer }})
	require.NoError(t, err)
	assert.Same(t, mailer, b.Mailer)
	assert.Equal(t, offline.Region, got.AWS.Region)
	assert.Equal(t, offline.Endpoints, got.Config.Endpoints)
	require.NotNil(t, got.Preconnector, "the part's Prepare opens connections through the process's preconnector")
	assert.Equal(t, "http://127.0.0.1:1", *got.Endpoint(got.Config.Endpoints.SESv2, "SESV2"))
	assert.ErrorIs(t, b.SMS.SendSMS(context.Background(), access.SMS{}), awsbase.ErrMissingPart)
	assert.Equal(t, "http://127.0.0.1:1", *b.DynamoDB.Options().BaseEndpoint)
}

type fakeMailer struct{}

func (*fakeMailer) SendEmail(context.Context, access.Email) error { return nil }

// Preconnect opens the very host the SDK then calls for DynamoDB: in
// every partition, and at an endpoint override.
func TestPreconnectOpensTheHostDynamoDBIsCalledAt(t *testing.T) {
	for _, tc := range []struct {
		region, endpoint, host string
	}{
		{"eu-west-1", "", "dynamodb.eu-west-1.amazonaws.com:443"},
		{"us-east-2", "", "dynamodb.us-east-2.amazonaws.com:443"},
		{"cn-north-1", "", "dynamodb.cn-north-1.amazonaws.com.cn:443"},
		{"eu-west-1", "http://127.0.0.1:8000", "127.0.0.1:8000"},
	} {
		t.Run(tc.region+tc.endpoint, func(t *testing.T) {
			dialed := make(chan string, 4)
			tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dialed <- addr
				return nil, errors.New("no network in this test")
			}}
			pc := awsbase.NewPreconnector()
			pc.Install(tr)
			cfg := aws.Config{Region: tc.region, HTTPClient: &http.Client{Transport: tr},
				Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}, nil
				}),
				Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
			c := awsbase.Config{Tables: awsbase.Tables{Requests: "r", OTPs: "c", Limits: "l"}, Endpoints: awsbase.Endpoints{DynamoDB: tc.endpoint}}
			b := awsbase.FromBuild(awsbase.NewBuild(cfg, c, nil, pc, nil), awsbase.Parts{})

			b.Preconnect()
			select {
			case got := <-dialed:
				assert.Equal(t, tc.host, got, "the host opened ahead")
			case <-time.After(5 * time.Second):
				t.Fatal("Preconnect opened nothing")
			}
			_, err := b.Store.GetRequest(context.Background(), "a-request", time.Now())
			require.Error(t, err)
			assert.Equal(t, tc.host, <-dialed, "the host the SDK calls")
		})
	}
}
