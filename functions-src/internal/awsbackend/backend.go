// Package awsbackend holds the adapters for production, all of them wired
// together for the owner's tools (cv-setup, cv-owner) and the tests:
// DynamoDB for requests and codes, SES v2 for email, SNS for SMS, and S3
// presigned links to the private documents, with Setup and Check. The
// adapters themselves live in awsbase (DynamoDB and what every function
// shares), awsmail (SES v2), awssms (SNS) and awslinks (S3), so that each
// function links only the services it calls: the functions import those,
// never this package. None of them calls AWS while being built, so a
// Lambda container starts without a network round trip.
package awsbackend

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awslinks"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsmail"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awssms"
)

// The settings and adapters, from the packages that hold them.
type (
	Config           = awsbase.Config
	Endpoints        = awsbase.Endpoints
	Tables           = awsbase.Tables
	Store            = awsbase.Store
	OwnerStore       = awsbase.OwnerStore
	DynamoDBAPI      = awsbase.DynamoDBAPI
	DynamoDBOwnerAPI = awsbase.DynamoDBOwnerAPI
	Preconnector     = awsbase.Preconnector
	Mailer           = awsmail.Mailer
	SESAPI           = awsmail.SESAPI
	SMSSender        = awssms.SMSSender
	SNSAPI           = awssms.SNSAPI
	Presigner        = awslinks.Presigner
)

// Constants of the packages that hold them.
const (
	RetryMaxAttempts      = awsbase.RetryMaxAttempts
	RequestKeyAttr        = awsbase.RequestKeyAttr
	RequestStatusAttr     = awsbase.RequestStatusAttr
	LinkCredentialsMargin = awslinks.LinkCredentialsMargin
)

// NewStore is awsbase.NewStore.
func NewStore(db DynamoDBAPI, t Tables) *Store { return awsbase.NewStore(db, t) }

// NewOwnerStore is awsbase.NewOwnerStore.
func NewOwnerStore(db DynamoDBOwnerAPI, t Tables) *OwnerStore { return awsbase.NewOwnerStore(db, t) }

// NewPreconnector is awsbase.NewPreconnector.
func NewPreconnector() *Preconnector { return awsbase.NewPreconnector() }

// NewMailer is awsmail.NewMailer.
func NewMailer(ses SESAPI, from, configurationSet string) *Mailer {
	return awsmail.NewMailer(ses, from, configurationSet)
}

// NewSMSSender is awssms.NewSMSSender.
func NewSMSSender(client SNSAPI, senderID string) *SMSSender {
	return awssms.NewSMSSender(client, senderID)
}

// NewPresigner is awslinks.NewPresigner.
func NewPresigner(client *s3.Client, bucket string, now func() time.Time) *Presigner {
	return awslinks.NewPresigner(client, bucket, now)
}

// Retryer is awsbase.Retryer.
func Retryer() aws.Retryer { return awsbase.Retryer() }

// HTTPClient is awsbase.HTTPClient: the HTTP client of the owner's tools.
func HTTPClient(c Config, pc *Preconnector) (*awshttp.BuildableClient, error) {
	return awsbase.HTTPClient(c, pc)
}

// IsAccessDenied is awsbase.IsAccessDenied.
func IsAccessDenied(err error) bool { return awsbase.IsAccessDenied(err) }

// Backend is the wired set of AWS adapters.
type Backend struct {
	Store    *Store
	Owner    *OwnerStore // for the owner's list and erasure: cv-owner and the owner page
	Mailer   *Mailer
	SMS      *SMSSender
	Links    *Presigner
	DynamoDB *dynamodb.Client
	S3       *s3.Client
	SES      *sesv2.Client
	SNS      *sns.Client
}

// New builds the clients and adapters from c and the process environment
// (awsbase.EnvConfig), as the functions do. It makes no network call.
func New(ctx context.Context, c Config, now func() time.Time) (*Backend, error) {
	pc := awsbase.NewPreconnector()
	cfg, err := awsbase.EnvConfig(c, os.Getenv, pc)
	if err != nil {
		return nil, err
	}
	return FromConfig(ctx, cfg, c, now, pc, os.Getenv), nil
}

// FromConfig builds the clients and adapters over cfg, whose HTTP client
// dials through pc (nil for none). Endpoints come from c, else from the
// SDK's AWS_ENDPOINT_URL_<SERVICE> and AWS_ENDPOINT_URL in getenv. It
// makes no network call.
func FromConfig(ctx context.Context, cfg aws.Config, c Config, now func() time.Time, pc *Preconnector, getenv func(string) string) *Backend {
	b := awsbase.NewBuild(cfg, c, now, pc, getenv)
	db := awsbase.NewDynamoDB(b)
	s3c := awslinks.NewClient(b)
	ses := awsmail.NewClient(b)
	smsc := awssms.NewClient(b)
	return &Backend{
		Store:    awsbase.NewStore(db, c.Tables),
		Owner:    awsbase.NewOwnerStore(db, c.Tables),
		Mailer:   awsmail.FromClient(b, ses),
		SMS:      awssms.FromClient(b, smsc),
		Links:    awslinks.NewPresigner(s3c, c.Bucket, now),
		DynamoDB: db,
		S3:       s3c,
		SES:      ses,
		SNS:      smsc,
	}
}
