package awsbase

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/middleware"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// Config is what the AWS backend needs. Endpoints for emulators come from
// the SDK's own AWS_ENDPOINT_URL_<SERVICE> variables.
type Config struct {
	// Region and static keys (CV_AWS_*: Netlify reserves the AWS_* names).
	// With no keys, New takes Lambda's (AWS_ACCESS_KEY_ID and the rest),
	// and awsdefault.New the SDK's default credential chain.
	Region          string
	AccessKeyID     string
	SecretAccessKey string

	Tables Tables
	Bucket string
	// Documents are the gated objects in Bucket, each at its key.
	Documents access.Documents

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

// RetryMaxAttempts bounds the SDK's attempts per call, first try included.
const RetryMaxAttempts = 3

// EnvConfig is the functions' aws.Config, from their settings and the
// process environment alone: the region (CV_AWS_REGION, else AWS_REGION
// or AWS_DEFAULT_REGION), the CV_AWS_* key or, on Lambda, the role's
// credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN; endpoints are read per client (Build.Endpoint). It does not use
// the SDK's config package: its default chain (shared files, SSO, STS,
// IMDS) is what the owner's tools need, not the functions, and linking it
// costs every cold start its package initialisation. The tools use
// awsdefault, which has the whole chain.
func EnvConfig(c Config, getenv func(string) string, pc *Preconnector) (aws.Config, error) {
	region := c.Region
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if region == "" {
			region = strings.TrimSpace(getenv(k))
		}
	}
	if region == "" {
		return aws.Config{}, errors.New("CV_AWS_REGION is not set (and no AWS region was found): the region of your tables, bucket and SES identity")
	}
	var provider aws.CredentialsProvider
	switch {
	case c.AccessKeyID != "" || c.SecretAccessKey != "":
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return aws.Config{}, errors.New("set both CV_AWS_ACCESS_KEY_ID and CV_AWS_SECRET_ACCESS_KEY, or neither")
		}
		provider = credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")
	case getenv("AWS_ACCESS_KEY_ID") != "" && getenv("AWS_SECRET_ACCESS_KEY") != "":
		// Lambda's: the execution role's, replaced with the environment.
		provider = credentials.NewStaticCredentialsProvider(getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN"))
	default:
		// Said on the first call, as the SDK's chain would: a process
		// that never calls AWS (a test, a misconfigured start) still builds.
		msg := "no AWS credentials: set CV_AWS_ACCESS_KEY_ID and CV_AWS_SECRET_ACCESS_KEY " +
			"(target netlify), or run on Lambda with an execution role (target aws)"
		if getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI") != "" || getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != "" {
			msg += "; the functions do not read container credentials (AWS_CONTAINER_CREDENTIALS_*)"
		}
		provider = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New(msg)
		})
	}
	client, err := httpClient(c, getenv("AWS_CA_BUNDLE"), pc)
	if err != nil {
		return aws.Config{}, err
	}
	return aws.Config{
		Region:      region,
		Credentials: aws.NewCredentialsCache(provider),
		HTTPClient:  client,
		Retryer:     Retryer,
		APIOptions:  append([]func(*middleware.Stack) error(nil), c.APIOptions...),
	}, nil
}

// Retryer retries throttling, but briefly: 3 attempts with at most 1 s
// between them, so a busy table answers "busy" well inside the function's
// deadline instead of the SDK's 20 s default backoff.
func Retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = RetryMaxAttempts
		o.MaxBackoff = time.Second
	})
}

// HTTPClient is the HTTP client of the owner's tools (awsdefault): the
// SDK reads AWS_CA_BUNDLE itself there.
func HTTPClient(c Config, pc *Preconnector) (*awshttp.BuildableClient, error) {
	return httpClient(c, "", pc)
}

// httpClient is the one HTTP client a process's AWS clients share: the
// SDK's own transport (keep-alive, TLS 1.2 at least, 90 s idle
// connections), each attempt bounded by CallTimeout (5 s by default), a
// CA bundle (AWS_CA_BUNDLE) as the only roots trusted, as the SDK makes it
// for the tools, and pc, if any, as the dialer, installed last.
func httpClient(c Config, caBundle string, pc *Preconnector) (*awshttp.BuildableClient, error) {
	timeout := c.CallTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	client := awshttp.NewBuildableClient().WithTimeout(timeout)
	if caBundle != "" {
		pem, err := os.ReadFile(caBundle)
		if err != nil {
			return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("AWS_CA_BUNDLE=%s holds no PEM certificate", caBundle)
		}
		client = client.WithTransportOptions(func(tr *http.Transport) {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			tr.TLSClientConfig.RootCAs = roots
		})
	}
	if pc != nil {
		client = client.WithTransportOptions(pc.Install)
	}
	return client, nil
}

// endpoint is a client's endpoint override: the emulator stack's, else the
// SDK's AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL; nil for AWS's.
func endpoint(set, service string, getenv func(string) string) *string {
	for _, v := range []string{set, getenv("AWS_ENDPOINT_URL_" + service), getenv("AWS_ENDPOINT_URL")} {
		if v = strings.TrimSpace(v); v != "" {
			return aws.String(v)
		}
	}
	return nil
}
