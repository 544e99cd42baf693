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
	Config       = awsbase.Config
	Endpoints    = awsbase.Endpoints
	Tables       = awsbase.Tables
	Store        = awsbase.Store
	OwnerStore   = awsbase.OwnerStore
	DynamoDBAPI  = awsbase.DynamoDBAPI
	Preconnector = awsbase.Preconnector
	Mailer       = awsmail.Mailer
	SMSSender    = awssms.SMSSender
	Presigner    = awslinks.Presigner
)

// Constants of the packages that hold them.
const (
	RetryMaxAttempts      = awsbase.RetryMaxAttempts
	LinkCredentialsMargin = awslinks.LinkCredentialsMargin
)

// NewStore is awsbase.NewStore.
func NewStore(db DynamoDBAPI, t Tables) *Store { return awsbase.NewStore(db, t) }

// NewPresigner is awslinks.NewPresigner.
func NewPresigner(client *s3.Client, bucket string, now func() time.Time) *Presigner {
	return awslinks.NewPresigner(client, bucket, now)
}

// IsAccessDenied is awsbase.IsAccessDenied.
func IsAccessDenied(err error) bool { return awsbase.IsAccessDenied(err) }

// Backend is every AWS adapter and client, concrete, for the owner's tools
// and the tests; a function builds awsbase.Adapters with only its parts.
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

// New builds every client and adapter from c and the process environment
// (awsbase.EnvConfig, the functions' configuration), with all four
// services; the tools use awsdefault.New. It makes no network call.
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
		Links:    awslinks.NewPresigner(s3c, c.Bucket, b.Now),
		DynamoDB: db,
		S3:       s3c,
		SES:      ses,
		SNS:      smsc,
	}
}
