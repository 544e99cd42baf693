// Package awslinks is the links part of a function's AWS backend: S3
// presigned links to the private documents (awsbase.Parts.Links). Only
// verify-access gives out links, so only it links S3's SDK.
package awslinks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
)

// Presigner makes presigned S3 GET links to the private documents. Signing is
// local: no call to S3. The link carries response-content-disposition so
// the browser saves the file instead of showing it.
//
// A link stops working when the credentials that signed it expire,
// whatever its X-Amz-Expires says. So the credentials that sign a link
// always outlive it: Presign signs only with credentials that expire no
// sooner than the signing time plus the link's lifetime plus
// LinkCredentialsMargin (for clock skew between us and S3), as the SDK
// reports their expiry. When the credentials in hand expire sooner, it
// drops them from the client's cache (aws.CredentialsCache.Invalidate)
// and signs once more with fresh ones; when even those expire too soon,
// it gives out no link and returns an error wrapping
// access.ErrLinkCredentialsExpiring. The check is made in the signer on
// the very credentials it is handed, at the signing time of the same
// injected clock, so what is checked is what signs.
//
// Credentials with no known expiry sign as they are: an IAM user's keys
// (CV_AWS_*, the Netlify target), and on AWS Lambda the execution role's
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, which the
// SDK's environment provider reads with no expiry. Those are temporary
// all the same, and AWS documents no bound on how long they last relative
// to the execution environment, so for them the guarantee cannot be
// checked here: it rests on Lambda replacing its environments' credentials
// before they expire. Providers that report an expiry (assume-role, web
// identity, SSO, container and instance credentials) are checked.
//
// Why not the SDK's own aws.CredentialsCache ExpiryWindow (>= ttl+margin)
// alone: a cache refreshes early but still hands out credentials that
// cannot outlive the window (it refuses nothing, and then asks the
// provider again on every call); it judges expiry by the wall clock, not
// the signing clock; and aws.NewCredentialsCache does not unwrap the cache
// config.LoadDefaultConfig already put around the provider, so an outer
// window would refresh from the inner cache's same credentials. Its
// Invalidate is what the refresh here uses.
//
// The check costs nothing on the warm path: the cache answers from memory
// while its credentials last, and a refresh happens only when they would
// die before a link.
//
// Nor does S3 look at the signer's permissions until the visitor follows
// the link: Check asks S3 ahead, with the same client and credentials.
type Presigner struct {
	client  *s3.Client
	presign *s3.PresignClient
	signer  *v4.Signer
	now     func() time.Time
	bucket  string
}

// LinkCredentialsMargin is how long the signing credentials must outlive
// a link, for clock skew between us and S3.
const LinkCredentialsMargin = 30 * time.Second

var _ access.Presigner = (*Presigner)(nil)

// NewPresigner signs links to objects in bucket with client's
// credentials, using now for the signing time (tests shift it to make
// expired links).
func NewPresigner(client *s3.Client, bucket string, now func() time.Time) *Presigner {
	return &Presigner{client: client, presign: s3.NewPresignClient(client), signer: v4.NewSigner(), now: now, bucket: bucket}
}

// Part is S3 presigned links, for awsbase.Parts.Links.
func Part(b awsbase.Build) access.Presigner {
	return NewPresigner(NewClient(b), b.Config.Bucket, b.Now)
}

// NewClient is the S3 client over b: at Config.Endpoints.S3, else
// AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL when set, addressing the bucket
// in the path when emulated.
func NewClient(b awsbase.Build) *s3.Client {
	return s3.NewFromConfig(b.AWS, func(o *s3.Options) {
		o.UsePathStyle = b.Config.Emulated
		if v := b.Endpoint(b.Config.Endpoints.S3, "S3"); v != nil {
			o.BaseEndpoint = v
		}
	})
}

// Presign implements access.Presigner.
func (p *Presigner) Presign(ctx context.Context, doc access.Document) (string, error) {
	ttl := doc.LinkTTL
	link, err := p.presignGet(ctx, doc.Key, ttl)
	var short *shortCredentials
	if !errors.As(err, &short) {
		return link, err
	}
	// The cached credentials would die before the link: fetch fresh ones,
	// once. A provider that is not a cache is asked anew on every signing.
	if c, ok := p.client.Options().Credentials.(*aws.CredentialsCache); ok {
		c.Invalidate()
	}
	link, err = p.presignGet(ctx, doc.Key, ttl)
	if errors.As(err, &short) {
		return "", fmt.Errorf("s3 presign: %w: %v, even after a refresh; no link is given out, for it would stop "+
			"working before its %s are up. The credentials' source must hand out ones that last longer "+
			"(a role session of at least a few minutes)", access.ErrLinkCredentialsExpiring, short, ttl)
	}
	return link, err
}

func (p *Presigner) presignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	req, err := p.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket:                     aws.String(p.bucket),
		Key:                        aws.String(key),
		ResponseContentDisposition: aws.String(fmt.Sprintf("attachment; filename=%q", path.Base(key))),
		ResponseCacheControl:       aws.String("no-store"),
	}, s3.WithPresignExpires(ttl), func(o *s3.PresignOptions) {
		o.Presigner = clockedSigner{signer: p.signer, now: p.now, outlive: ttl + LinkCredentialsMargin}
	})
	var short *shortCredentials
	if errors.As(err, &short) {
		return "", short
	}
	if err != nil {
		return "", awsbase.Wrap("s3 presign", err)
	}
	return req.URL, nil
}

// Check implements access.Presigner with a HeadObject on the document, signed
// like the links are: S3 authorises HeadObject as s3:GetObject, the very
// permission a presigned GET of the object needs. A HEAD answer has no
// body, so the status says what went wrong: 403 is a denial, or a missing
// object hidden from an identity without s3:ListBucket; 404 is a missing
// object (or bucket).
func (p *Presigner) Check(ctx context.Context, doc access.Document) error {
	_, err := p.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(doc.Key)})
	if err == nil {
		return nil
	}
	op := fmt.Sprintf("s3 HeadObject s3://%s/%s (document %q)", p.bucket, doc.Key, doc.Slug)
	switch awsbase.HTTPStatus(err) {
	case http.StatusForbidden:
		// awsbase.Wrap names the action refused: s3:GetObject.
		return fmt.Errorf("%w: %w. Or the object is missing and s3:ListBucket is not allowed on the bucket either: "+
			"S3 answers 403 for both", access.ErrDocumentDenied, awsbase.Wrap(op, err))
	case http.StatusNotFound:
		return fmt.Errorf("%w: %s (allowed by s3:GetObject) answered 404: no such object (or bucket); "+
			"%s", access.ErrDocumentMissing, op, UploadHint)
	}
	return awsbase.Wrap(op+" (allowed by s3:GetObject)", err)
}

// UploadHint says how a missing document gets into the bucket.
const UploadHint = "upload it with infra/'s document_files, `aws s3 cp FILE s3://BUCKET/KEY`, " +
	"or `make aws-setup CV=FILE` for the default document"

// clockedSigner is the SDK's SigV4 presigner with our clock, so the
// signing time follows the same injected clock as the rest of the domain.
// It refuses credentials that expire less than outlive after the signing
// time.
type clockedSigner struct {
	signer  *v4.Signer
	now     func() time.Time
	outlive time.Duration
}

func (c clockedSigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	_ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	t := c.now().UTC()
	if need := t.Add(c.outlive); creds.CanExpire && creds.Expires.Before(need) {
		return "", nil, &shortCredentials{source: creds.Source, expires: creds.Expires, need: need}
	}
	return c.signer.PresignHTTP(ctx, creds, r, payloadHash, service, region, t, optFns...)
}

// shortCredentials says signing credentials expire before need. It names
// their source and times, never a key.
type shortCredentials struct {
	source        string
	expires, need time.Time
}

func (e *shortCredentials) Error() string {
	src := e.source
	if src == "" {
		src = "unnamed provider"
	}
	return fmt.Sprintf("the signing credentials (%s) expire at %s, before the link's end plus a %s margin (%s)",
		src, e.expires.UTC().Format(time.RFC3339), LinkCredentialsMargin, e.need.UTC().Format(time.RFC3339))
}
