package infratest_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/infratest"
)

// table is what the functions depend on in a table, as DynamoDB describes
// it: keys, indexes, billing, encryption, TTL and recovery.
type table struct {
	Keys, Attributes map[string]string
	Indexes          int
	Billing          string
	Encryption       string
	TTL              string
	PITR             string
}

func describe(t *testing.T, db *dynamodb.Client, name string) table {
	t.Helper()
	ctx := context.Background()
	d, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	require.NoError(t, err)
	out := table{Keys: map[string]string{}, Attributes: map[string]string{}}
	for _, k := range d.Table.KeySchema {
		out.Keys[aws.ToString(k.AttributeName)] = string(k.KeyType)
	}
	for _, a := range d.Table.AttributeDefinitions {
		out.Attributes[aws.ToString(a.AttributeName)] = string(a.AttributeType)
	}
	out.Indexes = len(d.Table.GlobalSecondaryIndexes) + len(d.Table.LocalSecondaryIndexes)
	if b := d.Table.BillingModeSummary; b != nil {
		out.Billing = string(b.BillingMode)
	}
	if e := d.Table.SSEDescription; e != nil {
		out.Encryption = string(e.Status) + " " + string(e.SSEType)
	}
	ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	require.NoError(t, err)
	if d := ttl.TimeToLiveDescription; d != nil {
		out.TTL = aws.ToString(d.AttributeName) + " " + string(d.TimeToLiveStatus)
	}
	pitr, err := db.DescribeContinuousBackups(ctx, &dynamodb.DescribeContinuousBackupsInput{TableName: aws.String(name)})
	require.NoError(t, err)
	if c := pitr.ContinuousBackupsDescription; c != nil && c.PointInTimeRecoveryDescription != nil {
		out.PITR = string(c.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus)
	}
	return out
}

// sameTables: `make aws-setup` (for owners without Terraform) makes the
// tables exactly as infra/ does.
func sameTables(t *testing.T, s *stack) {
	ctx := context.Background()
	setupNames := awsbackend.Tables{Requests: "setup-requests", OTPs: "setup-otps", Limits: "setup-limits"}
	b, err := awsbackend.New(ctx, awsbackend.Config{
		Region: infratest.Region, AccessKeyID: s.moto.Admin.ID, SecretAccessKey: s.moto.Admin.Secret,
		Tables:    setupNames,
		Endpoints: awsbackend.Endpoints{DynamoDB: s.moto.URL, SESv2: s.moto.URL, SNS: s.moto.URL, S3: s.moto.URL},
		Emulated:  true,
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, n := range []string{setupNames.Requests, setupNames.OTPs, setupNames.Limits} {
			_, _ = b.DynamoDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(n)})
		}
	})
	require.NoError(t, awsbackend.SetupTables(ctx, b.DynamoDB, setupNames, func(string) {}))

	for _, pair := range [][2]string{
		{s.env["CV_TABLE_REQUESTS"], setupNames.Requests},
		{s.env["CV_TABLE_OTPS"], setupNames.OTPs},
		{s.env["CV_TABLE_LIMITS"], setupNames.Limits},
	} {
		tf, setup := describe(t, b.DynamoDB, pair[0]), describe(t, b.DynamoDB, pair[1])
		assert.Equal(t, tf, setup, "Terraform's %s and aws-setup's %s", pair[0], pair[1])
		assert.Equal(t, "ENABLED", tf.PITR, pair[0])
		assert.Equal(t, "ttl ENABLED", tf.TTL, pair[0])
		assert.Equal(t, "PAY_PER_REQUEST", tf.Billing, pair[0])
		assert.Equal(t, 0, tf.Indexes, pair[0])
	}
}
