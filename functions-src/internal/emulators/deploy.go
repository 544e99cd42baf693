package emulators

import (
	"context"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
)

// Endpoints are the stack's endpoints, for an awsbackend.Config.
func (s *Stack) Endpoints() awsbackend.Endpoints {
	return awsbackend.Endpoints{DynamoDB: s.DynamoDB, SESv2: s.SES, SNS: s.SNS, S3: s.S3}
}

// Deployment is cv-access set up on the stack the way production is: its
// own tables and private bucket, with the sample CV uploaded.
type Deployment struct {
	// Config reaches the deployment from Go (setup, seeding, the owner's view).
	Config awsbackend.Config
	// Env is the CV_BACKEND=aws configuration a function process needs,
	// endpoints included; callers add CV_SITE_URL and CV_OTP_SECRET.
	Env map[string]string
}

// Deploy sets up a deployment whose table and bucket names end in suffix,
// so several can share one stack. say reports each setup step (nil: quiet).
func (s *Stack) Deploy(ctx context.Context, suffix string, say func(string)) (Deployment, error) {
	if say == nil {
		say = func(string) {}
	}
	cfg := awsbackend.Config{
		Region: Region, AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey,
		Tables: awsbackend.Tables{
			Requests: "cv-requests" + suffix, OTPs: "otps" + suffix, Limits: "cv-rate-limits" + suffix,
		},
		Bucket:    "cv-private" + suffix,
		Key:       "cv.pdf",
		MailFrom:  "CV <cv@example.com>",
		Endpoints: s.Endpoints(),
		Emulated:  true,
	}
	b, err := awsbackend.New(ctx, cfg, time.Now)
	if err != nil {
		return Deployment{}, err
	}
	if err := awsbackend.Setup(ctx, b, cfg, embedded.SampleCV, say); err != nil {
		return Deployment{}, err
	}
	env := s.Env()
	env["CV_BACKEND"] = "aws"
	env["CV_OWNER_NAME"] = "Alex Sample"
	env["CV_MAIL_FROM"] = cfg.MailFrom
	env["CV_S3_BUCKET"] = cfg.Bucket
	env["CV_S3_KEY"] = cfg.Key
	env["CV_TABLE_REQUESTS"] = cfg.Tables.Requests
	env["CV_TABLE_OTPS"] = cfg.Tables.OTPs
	env["CV_TABLE_LIMITS"] = cfg.Tables.Limits
	return Deployment{Config: cfg, Env: env}, nil
}
