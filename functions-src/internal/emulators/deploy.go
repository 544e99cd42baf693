package emulators

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
)

// Endpoints are the stack's endpoints, for an awsbackend.Config.
func (s *Stack) Endpoints() awsbackend.Endpoints {
	return awsbackend.Endpoints{DynamoDB: s.DynamoDB, SESv2: s.SES, SNS: s.SNS, S3: s.S3}
}

// Deployment is cv-access set up on the stack the way production is: its
// own tables and private bucket, with the sample CV and a second
// document uploaded.
type Deployment struct {
	// Config reaches the deployment from Go (setup, seeding, the owner's view).
	Config awsbackend.Config
	// Env is the CV_BACKEND=aws configuration a function process needs,
	// endpoints included; callers add CV_SITE_URL and CV_OTP_SECRET.
	Env map[string]string
}

// DocumentsJSON is the emulated deployments' document list: the CV and a
// second document, as the site's own data/cv_access.json lists them.
const DocumentsJSON = `{"documents":[{"slug":"cv","title":"CV","key":"cv.pdf","page":"/cv/"},` +
	`{"slug":"portfolio","title":"portfolio","key":"portfolio.pdf","page":"/portfolio/"}]}`

// SecondDocument is what the emulated deployments keep at the second
// document's key.
var SecondDocument = embedded.SamplePDF("Sample document: portfolio")

// Deploy sets up a deployment whose table and bucket names end in suffix,
// so several can share one stack. say reports each setup step (nil: quiet).
func (s *Stack) Deploy(ctx context.Context, suffix string, say func(string)) (Deployment, error) {
	if say == nil {
		say = func(string) {}
	}
	docs, err := access.ParseDocuments([]byte(DocumentsJSON))
	if err != nil {
		return Deployment{}, err
	}
	cfg := awsbackend.Config{
		Region: Region, AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey,
		Tables: awsbackend.Tables{
			Requests: "cv-requests" + suffix, OTPs: "otps" + suffix, Limits: "cv-rate-limits" + suffix,
		},
		Bucket:    "cv-private" + suffix,
		Documents: docs,
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
	// The second document, told apart from the CV by its text.
	second := docs.All()[1]
	if _, err := b.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(cfg.Bucket), Key: aws.String(second.Key),
		Body: bytes.NewReader(SecondDocument), ContentType: aws.String("application/pdf")}); err != nil {
		return Deployment{}, fmt.Errorf("upload %s: %w", second.Key, err)
	}
	env := s.Env()
	env["CV_BACKEND"] = "aws"
	env["CV_OWNER_NAME"] = "Alex Sample"
	env["CV_MAIL_FROM"] = cfg.MailFrom
	env["CV_S3_BUCKET"] = cfg.Bucket
	env["CV_DOCUMENTS"] = DocumentsJSON
	env["CV_TABLE_REQUESTS"] = cfg.Tables.Requests
	env["CV_TABLE_OTPS"] = cfg.Tables.OTPs
	env["CV_TABLE_LIMITS"] = cfg.Tables.Limits
	return Deployment{Config: cfg, Env: env}, nil
}
