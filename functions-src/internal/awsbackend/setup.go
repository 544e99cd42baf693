package awsbackend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"path"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// TTLAttribute is the attribute DynamoDB TTL deletes items by, on both tables.
const TTLAttribute = "ttl"

// Setup creates, if missing, the tables (with TTL) and the
// private bucket, and uploads the CV when cv is not nil. Running it again
// changes nothing that is already right, so it is safe on every deploy.
func Setup(ctx context.Context, b *Backend, c Config, cv []byte, say func(string)) error {
	if err := ensureTable(ctx, b.DynamoDB, requestsTable(c.Tables.Requests), say); err != nil {
		return err
	}
	if err := ensureTable(ctx, b.DynamoDB, otpsTable(c.Tables.OTPs), say); err != nil {
		return err
	}
	if err := ensureTable(ctx, b.DynamoDB, limitsTable(c.Tables.Limits), say); err != nil {
		return err
	}
	if err := ensureBucket(ctx, b.S3, c.Bucket, say); err != nil {
		return err
	}
	if cv == nil {
		// Verify presigns without asking S3 (that keeps it at two round
		// trips), so a missing CV would only show as a failed download.
		// Say so here, where the owner is looking.
		_, err := b.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(c.Key)})
		var nf *s3types.NotFound
		switch {
		case errors.As(err, &nf):
			say(fmt.Sprintf("WARNING: there is no CV at s3://%s/%s yet: visitors' links would fail. Upload one with -cv", c.Bucket, c.Key))
		case err != nil:
			return fmt.Errorf("check s3://%s/%s: %w", c.Bucket, c.Key, err)
		default:
			say(fmt.Sprintf("CV present at s3://%s/%s", c.Bucket, c.Key))
		}
		return nil
	}
	ctype := mime.TypeByExtension(path.Ext(c.Key))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	_, err := b.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(c.Bucket), Key: aws.String(c.Key), Body: bytes.NewReader(cv),
		ContentType: aws.String(ctype), ServerSideEncryption: s3types.ServerSideEncryptionAes256,
	})
	if err != nil {
		return fmt.Errorf("upload s3://%s/%s: %w", c.Bucket, c.Key, err)
	}
	say(fmt.Sprintf("uploaded the CV to s3://%s/%s (%d bytes)", c.Bucket, c.Key, len(cv)))
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
		return nil
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               in.TableName,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(TTLAttribute), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", name, err)
	}
	say("TTL on " + name + "." + TTLAttribute + " enabled")
	return nil
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
	_, err = s3c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
		Bucket: aws.String(bucket),
		PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
			BlockPublicAcls: aws.Bool(true), IgnorePublicAcls: aws.Bool(true),
			BlockPublicPolicy: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true),
		},
	})
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "NotImplemented" {
		say("bucket " + bucket + ": this endpoint does not implement public access blocks (an emulator); skipped")
		return nil
	}
	if err != nil {
		return fmt.Errorf("block public access on %s: %w", bucket, err)
	}
	say("bucket " + bucket + ": public access blocked")
	return nil
}
