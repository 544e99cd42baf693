package infratest_test

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/infratest"
)

// ownerTool runs cv-owner with exactly owner_env's settings, as the owner
// would after loading them into a shell.
func (s *stack) ownerTool(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	cmd := exec.Command(command(t, s.root, "cv-owner"), args...)
	cmd.Env = infratest.BaseEnv()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for _, svc := range []string{"DYNAMODB", "SESV2", "SNS", "S3"} {
		cmd.Env = append(cmd.Env, "AWS_ENDPOINT_URL_"+svc+"="+s.moto.URL)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "cv-owner %s:\n%s", strings.Join(args, " "), out.String())
	return out.String()
}

// ownerIdentity: owner_env runs cv-owner as the owner's own user, which
// may list and erase requests and nothing else.
func ownerIdentity(t *testing.T, s *stack) {
	require.NotEmpty(t, s.visitors, "the flow ran first and left requests")
	out := s.run(t, "terraform -chdir=infra output -raw owner_env")
	env, err := infratest.ParseEnv(out)
	require.NoError(t, err)
	assert.NotEqual(t, s.env["CV_AWS_ACCESS_KEY_ID"], env["CV_AWS_ACCESS_KEY_ID"], "the owner has a key of their own")
	for _, k := range []string{"CV_SITE_URL", "CV_OWNER_NAME", "CV_MAIL_FROM", "CV_OTP_SECRET"} {
		assert.NotContains(t, env, k, "cv-owner does not need it")
	}

	list := s.ownerTool(t, env, "list")
	for _, v := range s.visitors {
		assert.Contains(t, list, v.email)
	}
	gone := s.visitors[0]
	assert.Contains(t, s.ownerTool(t, env, "erase", "-email", strings.ToUpper(gone.email)), "erased 1 request")
	assert.NotContains(t, s.ownerTool(t, env, "list"), gone.email)

	owner := infratest.Credentials{ID: env["CV_AWS_ACCESS_KEY_ID"], Secret: env["CV_AWS_SECRET_ACCESS_KEY"]}
	ctx := context.Background()
	db := dynamodb.NewFromConfig(s.moto.Config(owner))
	s3c := s3.NewFromConfig(s.moto.Config(owner), func(o *s3.Options) { o.UsePathStyle = true })
	refused := map[string]error{}
	_, refused["dynamodb:PutItem"] = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(env["CV_TABLE_REQUESTS"]),
		Item: map[string]ddbtypes.AttributeValue{"request_id": &ddbtypes.AttributeValueMemberS{Value: "owner-probe"}}})
	_, refused["dynamodb:UpdateItem"] = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(env["CV_TABLE_LIMITS"]),
		Key: map[string]ddbtypes.AttributeValue{"limit_key": &ddbtypes.AttributeValueMemberS{Value: "x"}}, UpdateExpression: aws.String("SET n = :one"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":one": &ddbtypes.AttributeValueMemberN{Value: "1"}}})
	_, refused["s3:GetObject"] = s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("cv.pdf")})
	_, refused["s3:PutObject"] = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("cv.pdf"), Body: strings.NewReader("x")})
	for action, err := range refused {
		assert.Truef(t, awsbackend.IsAccessDenied(err), "the owner's key: %s: want access denied, got %v", action, err)
	}
}
