package awsbackend

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go/middleware"
)

// Config is what the AWS backend needs. Endpoints for emulators come from
// the SDK's own AWS_ENDPOINT_URL_<SERVICE> variables.
type Config struct {
	// Region and static keys (CV_AWS_*: Netlify reserves the AWS_* names).
	// With no keys the SDK's default credential chain is used.
	Region          string
	AccessKeyID     string
	SecretAccessKey string

	Tables Tables
	Bucket string
	Key    string // the CV object

	MailFrom            string
	SESConfigurationSet string
	SMSSenderID         string

	// OwnerPage says these credentials also serve the owner page
	// (CV_OWNER_EMAIL is set), which lists the requests: Check then tries
	// dynamodb:Scan too.
	OwnerPage bool

	// Endpoints override the service endpoints when set. Production leaves
	// them empty (the SDK's AWS_ENDPOINT_URL_<SERVICE> variables still
	// apply); the emulator stack fills them so tests need not touch the
	// process environment.
	Endpoints Endpoints
	// Emulated says the endpoints are local emulators: S3 is addressed in
	// the path, and DynamoDB's response CRC32 is not checked (DynamoDB
	// Local sends a wrong one on some error responses).
	Emulated bool
	// CallTimeout bounds each HTTP attempt to AWS.
	CallTimeout time.Duration
	// APIOptions are extra SDK middleware, e.g. a call counter in tests.
	APIOptions []func(*middleware.Stack) error
}

// Endpoints are per-service endpoint URLs; empty means the SDK's default.
type Endpoints struct {
	DynamoDB, SESv2, SNS, S3 string
}

// base sets an endpoint override on a client's options when there is one.
func base(url string) *string {
	if url == "" {
		return nil
	}
	return aws.String(url)
}

// RetryMaxAttempts bounds the SDK's attempts per call, first try included.
const RetryMaxAttempts = 3

// Backend is the wired set of AWS adapters.
type Backend struct {
	Store    *Store
	Owner    *OwnerStore // for the owner's list and erasure: cv-owner and the owner page
	Mailer   *Mailer
	SMS      *SMSSender
	Links    *Presigner
	DynamoDB *dynamodb.Client
	S3       *s3.Client
}

// LoadAWSConfig resolves region and credentials without any network call.
func LoadAWSConfig(ctx context.Context, c Config) (aws.Config, error) {
	return loadAWSConfig(ctx, c, nil)
}

// loadAWSConfig is LoadAWSConfig, its HTTP transport dialing through pc
// when there is one.
func loadAWSConfig(ctx context.Context, c Config, pc *Preconnector) (aws.Config, error) {
	timeout := c.CallTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	// The SDK's own transport (one per process, shared by every client:
	// keep-alive, TLS 1.2 at least, 90 s idle connections), each attempt
	// bounded by timeout.
	client := awshttp.NewBuildableClient().WithTimeout(timeout)
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(client),
		// Throttling is retried, but briefly: 3 attempts with at most 1 s
		// between them, so a busy table answers "busy" well inside the
		// function's deadline instead of the SDK's 20 s default backoff.
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = RetryMaxAttempts
				o.MaxBackoff = time.Second
			})
		}),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.AccessKeyID != "" || c.SecretAccessKey != "" {
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return aws.Config{}, errors.New("set both CV_AWS_ACCESS_KEY_ID and CV_AWS_SECRET_ACCESS_KEY, or neither")
		}
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, err
	}
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok && pc != nil {
		// Last, so that it sees the transport every other option made
		// (AWS_CA_BUNDLE's roots among them).
		cfg.HTTPClient = bc.WithTransportOptions(pc.Install)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("CV_AWS_REGION is not set (and no AWS region was found): the region of your tables, bucket and SES identity")
	}
	cfg.APIOptions = append(cfg.APIOptions, c.APIOptions...)
	return cfg, nil
}

// New builds the clients and adapters. It makes no network call.
func New(ctx context.Context, c Config, now func() time.Time) (*Backend, error) {
	pc := NewPreconnector()
	cfg, err := loadAWSConfig(ctx, c, pc)
	if err != nil {
		return nil, err
	}
	e := c.Endpoints
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = c.Emulated
		if e.DynamoDB != "" {
			o.BaseEndpoint = base(e.DynamoDB)
		}
	})
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = c.Emulated
		if e.S3 != "" {
			o.BaseEndpoint = base(e.S3)
		}
	})
	ses := sesv2.NewFromConfig(cfg, func(o *sesv2.Options) {
		if e.SESv2 != "" {
			o.BaseEndpoint = base(e.SESv2)
		}
	})
	smsc := sns.NewFromConfig(cfg, func(o *sns.Options) {
		if e.SNS != "" {
			o.BaseEndpoint = base(e.SNS)
		}
	})
	mailer := NewMailer(ses, c.MailFrom, c.SESConfigurationSet)
	mailer.warm = pc.warmer(func(ctx context.Context) (string, error) {
		o := ses.Options()
		ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, sesv2.EndpointParameters{Region: &o.Region, Endpoint: o.BaseEndpoint,
			UseFIPS:      aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
			UseDualStack: aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled)})
		return ep.URI.String(), err
	})
	sms := NewSMSSender(smsc, c.SMSSenderID)
	sms.warm = pc.warmer(func(ctx context.Context) (string, error) {
		o := smsc.Options()
		ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, sns.EndpointParameters{Region: &o.Region, Endpoint: o.BaseEndpoint,
			UseFIPS:      aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
			UseDualStack: aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled)})
		return ep.URI.String(), err
	})
	return &Backend{
		Store:    NewStore(db, c.Tables),
		Owner:    NewOwnerStore(db, c.Tables),
		Mailer:   mailer,
		SMS:      sms,
		Links:    NewPresigner(s3c, c.Bucket, c.Key, now),
		DynamoDB: db,
		S3:       s3c,
	}, nil
}
