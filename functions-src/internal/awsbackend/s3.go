package awsbackend

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// Presigner makes presigned S3 GET links to the private CV. Signing is
// local: no call to S3. The link carries response-content-disposition so
// the browser saves the file instead of showing it.
//
// A link signed with temporary credentials dies with them, whatever its
// expiry says: sign with the IAM user's long-lived keys (CV_AWS_*).
//
// Nor does S3 look at the signer's permissions until the visitor follows
// the link: CheckCV asks S3 ahead, with the same client and credentials.
type Presigner struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
	key     string
}

var _ access.Presigner = (*Presigner)(nil)

// NewPresigner signs links to bucket/key with client's credentials, using
// now for the signing time (tests shift it to make expired links).
func NewPresigner(client *s3.Client, bucket, key string, now func() time.Time) *Presigner {
	pc := s3.NewPresignClient(client, func(o *s3.PresignOptions) {
		o.Presigner = clockedSigner{signer: v4.NewSigner(), now: now}
	})
	return &Presigner{client: client, presign: pc, bucket: bucket, key: key}
}

// PresignCV implements access.Presigner.
func (p *Presigner) PresignCV(ctx context.Context, ttl time.Duration) (string, error) {
	req, err := p.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket:                     aws.String(p.bucket),
		Key:                        aws.String(p.key),
		ResponseContentDisposition: aws.String(fmt.Sprintf("attachment; filename=%q", path.Base(p.key))),
		ResponseCacheControl:       aws.String("no-store"),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", wrap("s3 presign", err)
	}
	return req.URL, nil
}

// CheckCV implements access.Presigner with a HeadObject on the CV, signed
// like the links are: S3 authorises HeadObject as s3:GetObject, the very
// permission a presigned GET of the object needs. A HEAD answer has no
// body, so the status says what went wrong: 403 is a denial, or a missing
// object hidden from an identity without s3:ListBucket; 404 is a missing
// object (or bucket).
func (p *Presigner) CheckCV(ctx context.Context) error {
	_, err := p.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(p.key)})
	if err == nil {
		return nil
	}
	op := fmt.Sprintf("s3 HeadObject s3://%s/%s", p.bucket, p.key)
	switch httpStatus(err) {
	case http.StatusForbidden:
		// wrap names the action refused: s3:GetObject.
		return fmt.Errorf("%w: %w. Or the object is missing and s3:ListBucket is not allowed on the bucket either: "+
			"S3 answers 403 for both", access.ErrCVDenied, wrap(op, err))
	case http.StatusNotFound:
		return fmt.Errorf("%w: %s (allowed by s3:GetObject) answered 404: no such object (or bucket); "+
			"upload the CV with `make aws-setup CV=path/to/cv.pdf`", access.ErrCVMissing, op)
	}
	return wrap(op+" (allowed by s3:GetObject)", err)
}

// clockedSigner is the SDK's SigV4 presigner with our clock, so the
// signing time follows the same injected clock as the rest of the domain.
type clockedSigner struct {
	signer *v4.Signer
	now    func() time.Time
}

func (c clockedSigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	_ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return c.signer.PresignHTTP(ctx, creds, r, payloadHash, service, region, c.now().UTC(), optFns...)
}
