// Package awsdefault builds the AWS backend for the owner's tools
// (cv-setup, cv-owner) with the SDK's default configuration chain: shared
// config and credentials files, profiles, SSO, roles. The functions use
// awsbase.New, from their settings and environment alone, so that this
// chain's packages are not linked into them nor initialised on each cold
// start.
package awsdefault

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
)

// LoadAWSConfig resolves region and credentials with the default chain,
// without any network call, for c (CV_AWS_* keys win when set).
func LoadAWSConfig(ctx context.Context, c awsbackend.Config) (aws.Config, error) {
	client, err := awsbase.HTTPClient(c, nil)
	if err != nil {
		return aws.Config{}, err
	}
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(client),
		config.WithRetryer(awsbase.Retryer),
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
	if cfg.Region == "" {
		return aws.Config{}, errors.New("CV_AWS_REGION is not set (and no AWS region was found): the region of your tables, bucket and SES identity")
	}
	cfg.APIOptions = append(cfg.APIOptions, c.APIOptions...)
	return cfg, nil
}

// New builds the backend with the default chain. It makes no network call.
func New(ctx context.Context, c awsbackend.Config, now func() time.Time) (*awsbackend.Backend, error) {
	cfg, err := LoadAWSConfig(ctx, c)
	if err != nil {
		return nil, err
	}
	// No getenv: the SDK has read the endpoint variables (and profiles)
	// already, and honoured AWS_IGNORE_CONFIGURED_ENDPOINT_URLS.
	return awsbackend.FromConfig(ctx, cfg, c, now, nil, nil), nil
}
