package awsbackend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"path"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awslinks"
)

// TTLAttribute is the attribute DynamoDB TTL deletes items by, on both tables.
const TTLAttribute = "ttl"

// Setup creates, if missing, the tables (with TTL and point-in-time
// recovery, encrypted with the AWS managed KMS key) and the private bucket
// (public access blocked, SSE-S3 default encryption, ACLs off, TLS only),
// and uploads cv as the first document when it is not nil. Running it again changes nothing
// that is already right, so it is safe on every deploy. What an emulator
// does not implement is skipped with a message.
func Setup(ctx context.Context, b *Backend, c Config, cv []byte, say func(string)) error {
	if err := SetupTables(ctx, b.DynamoDB, c.Tables, say); err != nil {
		return err
	}
	if err := ensureBucket(ctx, b.S3, c.Bucket, say); err != nil {
		return err
	}
	docs := c.Documents.All()
	if cv != nil && len(docs) == 0 {
		return errors.New("no document is listed to upload the file as (CV_DOCUMENTS)")
	}
	if cv != nil {
		// The file given is the default document's, the one a request
		// that names none is for.
		first := c.Documents.Default()
		if err := upload(ctx, b, c.Bucket, first.Key, cv); err != nil {
			return err
		}
		say(fmt.Sprintf("uploaded document %q to s3://%s/%s (%d bytes)", first.Slug, c.Bucket, first.Key, len(cv)))
		docs = slices.DeleteFunc(docs, func(d access.Document) bool { return d.Slug == first.Slug })
	}
	// Verify refuses to spend codes while a document is missing (it
	// answers 503 download_unavailable); say so here, before any visitor
	// meets it, where the owner is looking.
	for _, d := range docs {
		_, err := b.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(d.Key)})
		var nf *s3types.NotFound
		switch {
		case errors.As(err, &nf):
			say(fmt.Sprintf("WARNING: document %q is not at s3://%s/%s yet: visitors' links to it would fail; %s",
				d.Slug, c.Bucket, d.Key, UploadHint))
		case err != nil:
			return fmt.Errorf("check s3://%s/%s: %w", c.Bucket, d.Key, err)
		default:
			say(fmt.Sprintf("document %q present at s3://%s/%s", d.Slug, c.Bucket, d.Key))
		}
	}
	return nil
}

// UploadHint is awslinks.UploadHint.
const UploadHint = awslinks.UploadHint

func upload(ctx context.Context, b *Backend, bucket, key string, body []byte) error {
	ctype := mime.TypeByExtension(path.Ext(key))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	_, err := b.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String(ctype), ServerSideEncryption: s3types.ServerSideEncryptionAes256,
	})
	if err != nil {
		return fmt.Errorf("upload s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// SetupTables creates, if missing, the three tables as infra/ makes them
// (a test compares the two), and turns on what a table lacks.
func SetupTables(ctx context.Context, db *dynamodb.Client, t Tables, say func(string)) error {
	for _, in := range []*dynamodb.CreateTableInput{requestsTable(t.Requests), otpsTable(t.OTPs), limitsTable(t.Limits)} {
		if err := ensureTable(ctx, db, in, say); err != nil {
			return err
		}
	}
	return nil
}

func requestsTable(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("request_id"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema:        []types.KeySchemaElement{{AttributeName: aws.String("request_id"), KeyType: types.KeyTypeHash}},
		SSESpecification: &types.SSESpecification{Enabled: aws.Bool(true)},
	}
}

func otpsTable(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("request_id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("request_id"), KeyType: types.KeyTypeHash}},
		SSESpecification:     &types.SSESpecification{Enabled: aws.Bool(true)},
	}
}

func limitsTable(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("limit_key"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("limit_key"), KeyType: types.KeyTypeHash}},
		SSESpecification:     &types.SSESpecification{Enabled: aws.Bool(true)},
	}
}

func ensureTable(ctx context.Context, db *dynamodb.Client, in *dynamodb.CreateTableInput, say func(string)) error {
	name := aws.ToString(in.TableName)
	_, err := db.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		say("table " + name + " exists")
	case err != nil:
		return fmt.Errorf("create table %s: %w", name, err)
	default:
		say("table " + name + " created")
	}
	if err := dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName}, 2*time.Minute); err != nil {
		return fmt.Errorf("table %s not active: %w", name, err)
	}
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName})
	if err != nil {
		return fmt.Errorf("describe table %s: %w", name, err)
	}
	want := aws.ToString(in.KeySchema[0].AttributeName)
	if ks := desc.Table.KeySchema; len(ks) != 1 || aws.ToString(ks[0].AttributeName) != want {
		return fmt.Errorf("table %s exists with another key schema; want %s as its only key", name, want)
	}

	ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: in.TableName})
	if err != nil {
		return fmt.Errorf("describe TTL of %s: %w", name, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == TTLAttribute &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return ensurePITR(ctx, db, name, say)
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               in.TableName,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(TTLAttribute), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", name, err)
	}
	say("TTL on " + name + "." + TTLAttribute + " enabled")
	return ensurePITR(ctx, db, name, say)
}

// pitrRetryEvery is how long to wait before asking again when AWS is still
// preparing a new table's backups; pitrRetryFor bounds the waiting.
var (
	pitrRetryEvery = 5 * time.Second
	pitrRetryFor   = 2 * time.Minute
)

// ensurePITR turns on point-in-time recovery (35 days of restorable
// history), as Terraform's point_in_time_recovery { enabled = true } does.
// DynamoDB Local has no backups: it answers UnknownOperationException.
func ensurePITR(ctx context.Context, db *dynamodb.Client, name string, say func(string)) error {
	desc, err := db.DescribeContinuousBackups(ctx, &dynamodb.DescribeContinuousBackupsInput{TableName: aws.String(name)})
	if errorCode(err) == "UnknownOperationException" {
		say("table " + name + ": this endpoint does not implement point-in-time recovery (an emulator); skipped")
		return nil
	}
	if err != nil {
		return fmt.Errorf("describe backups of %s: %w", name, err)
	}
	if d := desc.ContinuousBackupsDescription; d != nil && d.PointInTimeRecoveryDescription != nil &&
		d.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus == types.PointInTimeRecoveryStatusEnabled {
		return nil
	}
	deadline := time.Now().Add(pitrRetryFor)
	for {
		_, err = db.UpdateContinuousBackups(ctx, &dynamodb.UpdateContinuousBackupsInput{
			TableName:                        aws.String(name),
			PointInTimeRecoverySpecification: &types.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: aws.Bool(true)},
		})
		// A table just created takes a while before its backups can be
		// turned on: AWS says ContinuousBackupsUnavailableException.
		var busy *types.ContinuousBackupsUnavailableException
		if !errors.As(err, &busy) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("enable point-in-time recovery on %s: %w", name, ctx.Err())
		case <-time.After(pitrRetryEvery):
		}
	}
	if err != nil {
		return fmt.Errorf("enable point-in-time recovery on %s: %w", name, err)
	}
	say("point-in-time recovery on " + name + " enabled")
	return nil
}

func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func ensureBucket(ctx context.Context, s3c *s3.Client, bucket string, say func(string)) error {
	_, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	var nf *s3types.NotFound
	switch {
	case err == nil:
		say("bucket " + bucket + " exists")
	case errors.As(err, &nf):
		in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
		if r := s3c.Options().Region; r != "us-east-1" {
			in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(r)}
		}
		if _, err := s3c.CreateBucket(ctx, in); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucket, err)
		}
		say("bucket " + bucket + " created")
	default:
		return fmt.Errorf("head bucket %s: %w", bucket, err)
	}
	skipped := func(what string) {
		say("bucket " + bucket + ": this endpoint does not implement " + what + " (an emulator); skipped")
	}
	_, err = s3c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
		Bucket: aws.String(bucket),
		PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
			BlockPublicAcls: aws.Bool(true), IgnorePublicAcls: aws.Bool(true),
			BlockPublicPolicy: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true),
		},
	})
	switch {
	case errorCode(err) == "NotImplemented":
		skipped("public access blocks")
	case err != nil:
		return fmt.Errorf("block public access on %s: %w", bucket, err)
	default:
		say("bucket " + bucket + ": public access blocked")
	}
	for _, step := range []struct {
		what   string
		ensure func(context.Context, *s3.Client, string, func(string)) error
	}{
		{"default encryption", ensureBucketEncryption},
		{"object ownership controls", ensureOwnerEnforced},
		{"bucket policies", ensureTLSOnly},
	} {
		err := step.ensure(ctx, s3c, bucket, say)
		if errorCode(err) == "NotImplemented" {
			skipped(step.what)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ensureBucketEncryption sets SSE-S3 (AES256) as the default encryption,
// unless a default is already set (S3 sets SSE-S3 on every bucket made
// since 2023; an owner's SSE-KMS is kept).
func ensureBucketEncryption(ctx context.Context, s3c *s3.Client, bucket string, say func(string)) error {
	out, err := s3c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(bucket)})
	switch {
	case errorCode(err) == "ServerSideEncryptionConfigurationNotFoundError":
	case err != nil:
		return fmt.Errorf("get default encryption of %s: %w", bucket, err)
	case out.ServerSideEncryptionConfiguration != nil && len(out.ServerSideEncryptionConfiguration.Rules) > 0:
		return nil
	}
	_, err = s3c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
		Bucket: aws.String(bucket),
		ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256},
		}}},
	})
	if err != nil {
		return fmt.Errorf("set default encryption of %s: %w", bucket, err)
	}
	say("bucket " + bucket + ": default encryption SSE-S3 (AES256) set")
	return nil
}

// ensureOwnerEnforced sets object ownership to BucketOwnerEnforced, which
// turns ACLs off: access is then the bucket's and IAM's policies alone.
func ensureOwnerEnforced(ctx context.Context, s3c *s3.Client, bucket string, say func(string)) error {
	out, err := s3c.GetBucketOwnershipControls(ctx, &s3.GetBucketOwnershipControlsInput{Bucket: aws.String(bucket)})
	switch {
	case errorCode(err) == "OwnershipControlsNotFoundError":
	case err != nil:
		return fmt.Errorf("get object ownership of %s: %w", bucket, err)
	case out.OwnershipControls != nil && len(out.OwnershipControls.Rules) == 1 &&
		out.OwnershipControls.Rules[0].ObjectOwnership == s3types.ObjectOwnershipBucketOwnerEnforced:
		return nil
	}
	_, err = s3c.PutBucketOwnershipControls(ctx, &s3.PutBucketOwnershipControlsInput{
		Bucket: aws.String(bucket),
		OwnershipControls: &s3types.OwnershipControls{Rules: []s3types.OwnershipControlsRule{
			{ObjectOwnership: s3types.ObjectOwnershipBucketOwnerEnforced},
		}},
	})
	if err != nil {
		return fmt.Errorf("set object ownership of %s: %w", bucket, err)
	}
	say("bucket " + bucket + ": object ownership BucketOwnerEnforced (ACLs off)")
	return nil
}

// TLSOnlySid names the bucket policy statement that refuses plain HTTP.
const TLSOnlySid = "DenyInsecureTransport"

// ensureTLSOnly puts a statement in the bucket policy that denies every
// request made without TLS. A policy the owner already has keeps its other
// statements; a statement by the same Sid is replaced.
func ensureTLSOnly(ctx context.Context, s3c *s3.Client, bucket string, say func(string)) error {
	arn := "arn:" + partition(s3c.Options().Region) + ":s3:::" + bucket
	want := map[string]any{
		"Sid": TLSOnlySid, "Effect": "Deny", "Principal": "*", "Action": "s3:*",
		"Resource":  []any{arn, arn + "/*"},
		"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
	}
	policy := map[string]any{"Version": "2012-10-17"}
	var statements []any
	out, err := s3c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(bucket)})
	switch {
	case errorCode(err) == "NoSuchBucketPolicy":
	case err != nil:
		return fmt.Errorf("get the policy of %s: %w", bucket, err)
	default:
		if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &policy); err != nil {
			return fmt.Errorf("read the policy of %s: %w", bucket, err)
		}
		switch st := policy["Statement"].(type) {
		case []any:
			statements = st
		case map[string]any:
			statements = []any{st}
		}
	}
	var kept, ours []any
	for _, st := range statements {
		if m, _ := st.(map[string]any); m != nil && m["Sid"] == TLSOnlySid {
			ours = append(ours, st)
		} else {
			kept = append(kept, st)
		}
	}
	if len(ours) == 1 && reflect.DeepEqual(ours[0], want) {
		return nil
	}
	policy["Statement"] = append(kept, want)
	doc, err := json.Marshal(policy)
	if err != nil {
		return err
	}
	if _, err := s3c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(string(doc))}); err != nil {
		return fmt.Errorf("put the TLS-only policy on %s: %w", bucket, err)
	}
	say("bucket " + bucket + ": policy denies requests without TLS")
	return nil
}

// partition is the ARN partition of a region.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}
