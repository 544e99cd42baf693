package infratest_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
	"github.com/cv-access/cv-access/functions-src/internal/infratest"
	"github.com/cv-access/cv-access/functions-src/internal/proxysign/proxysigntest"
)

// The aws target's deploy guide (README.md), command for command, in
// order: TestDeployGuidesRunOnlyTestedCommands holds the README to it.
var guideAWS = []string{
	"cp infra/example.tfvars infra/terraform.tfvars",
	"make lambda-packages",
	`umask 077 && mkdir -p .local && { [ -f .local/aws-secrets.env ] || printf 'TF_VAR_otp_secret=%s\nTF_VAR_proxy_sign_secret=%s\n' "$(openssl rand -hex 32)" "$(openssl rand -hex 32)" > .local/aws-secrets.env; }`,
	"terraform -chdir=infra init",
	"(umask 077; set -a; . ./.local/aws-secrets.env; set +a; terraform -chdir=infra apply)",
	"terraform -chdir=infra output ses_dns_records",
	"umask 077 && mkdir -p .local && terraform -chdir=infra output -raw netlify_env > .local/netlify.env",
}

// destroyAWS ends the aws target's stack, as the README says.
const destroyAWS = "(umask 077; set -a; . ./.local/aws-secrets.env; set +a; terraform -chdir=infra destroy)"

// netlifySiteID is the test's Netlify site.
const netlifySiteID = "0b5c1a7e-4d2f-4e6a-9c3b-7f8e9d0a1b2c"

// lambdaFunctions are the functions behind the HTTP API: the visitors'
// two and, with owner_email, the owner page's.
var lambdaFunctions = []string{"request-access", "verify-access", ownerFunction}

// ownerFunction is the owner page's function.
const ownerFunction = "owner"

// notifierFunction is the owner's notifier, deployed when owner_email is
// set; it is on Lambda, fed by the stream, and behind no API.
const notifierFunction = "notify-access"

// ownerEmail is the test's owner_email.
const ownerEmail = "owner@example.com"

// allFunctions are every function the aws target deploys in this test.
var allFunctions = append(slices.Clone(lambdaFunctions), notifierFunction)

// lambdaTarget is what the aws target made on moto, as the functions
// would meet it on Lambda.
type lambdaTarget struct {
	config      map[string]map[string]string // each function's environment, as Lambda holds it
	memory      map[string]int32
	roles       map[string]infratest.Credentials // each role's credentials, from sts:AssumeRole
	proxySecret string
}

// env is what Lambda hands the function's process: its configuration,
// its role's credentials, the region and memory.
func (l *lambdaTarget) env(name string) []string {
	c := l.roles[name]
	env := []string{
		"AWS_ACCESS_KEY_ID=" + c.ID, "AWS_SECRET_ACCESS_KEY=" + c.Secret, "AWS_SESSION_TOKEN=" + c.Token,
		"AWS_REGION=" + infratest.Region, "AWS_DEFAULT_REGION=" + infratest.Region,
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", l.memory[name]),
	}
	for k, v := range l.config[name] {
		env = append(env, k+"="+v)
	}
	return env
}

// post sends a payload 2.0 event as the HTTP API hands it on behind
// Netlify's signed proxy: the event's source address is Netlify's, the
// visitor's is in x-nf-client-connection-ip.
func (l *lambdaTarget) post(t *testing.T, f infratest.Function, ip, body string) (int, map[string]any) {
	t.Helper()
	token := proxysigntest.Sign(proxysigntest.HS256, proxysigntest.Claims(netlifySiteID, siteURL, "production", time.Now()), l.proxySecret)
	return invoke(t, f, v2Event(map[string]string{"x-nf-sign": token, "x-nf-client-connection-ip": ip}, body))
}

func v2Event(headers map[string]string, body string) []byte {
	h := map[string]string{"content-type": "application/json", "origin": siteURL, "x-nf-request-id": "01TESTREQUEST"}
	maps.Copy(h, headers)
	ev, _ := json.Marshal(events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "ANY /x", RawPath: "/x", Headers: h, Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "req-1", Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/x", Protocol: "HTTP/1.1", SourceIP: "3.5.140.2"},
		},
	})
	return ev
}

func TestAWSTargetOnMoto(t *testing.T) {
	t.Parallel()
	tl := need(t)
	ctx := context.Background()
	// The test runs the packages it uploads, so it builds them for this
	// machine; an owner builds arm64, the default.
	s := applyStack(t, ctx, tl, deployGuide{
		commands: guideAWS,
		tfvars: fmt.Sprintf("deploy_target = \"aws\"\nnetlify_site_id = %q\nlambda_architecture = \"x86_64\"\nowner_email = %q\n",
			netlifySiteID, ownerEmail),
		env: []string{"LAMBDA_ARCH=x86_64"},
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("moto's log:\n%s", s.moto.Logs())
		}
	})
	admin := s.moto.Config(s.moto.Admin)
	admin.BaseEndpoint = aws.String(s.adminURL)
	secrets := readEnvFile(t, filepath.Join(s.dir, ".local", "aws-secrets.env"))
	api := onlyAPI(t, ctx, admin)

	t.Run("netlify_env holds the API's origin and the proxy's secret", func(t *testing.T) {
		assert.Equal(t, map[string]string{
			"CV_API_ORIGIN":        aws.ToString(api.ApiEndpoint),
			"CV_PROXY_SIGN_SECRET": secrets["TF_VAR_proxy_sign_secret"],
		}, s.env)
	})

	l := &lambdaTarget{config: map[string]map[string]string{}, memory: map[string]int32{},
		roles: map[string]infratest.Credentials{}, proxySecret: secrets["TF_VAR_proxy_sign_secret"]}
	lc := lambda.NewFromConfig(admin)
	for _, fn := range allFunctions {
		out, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("cv-access-" + fn)})
		require.NoError(t, err, fn)
		c := out.Configuration
		l.config[fn], l.memory[fn] = c.Environment.Variables, aws.ToInt32(c.MemorySize)

		// The function runs here from the very package Lambda holds.
		pkg := filepath.Join(s.dir, ".local", "lambda", "x86_64", fn+".zip")
		b, err := os.ReadFile(pkg)
		require.NoError(t, err)
		sum := sha256.Sum256(b)
		assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), aws.ToString(c.CodeSha256), "%s: Lambda holds %s", fn, pkg)
		s.bins[fn] = filepath.Join(s.dir, ".local", "lambda", "x86_64", fn, "bootstrap")

		t.Run(fn+" is configured as the README says", func(t *testing.T) {
			assert.Equal(t, "provided.al2023", string(c.Runtime))
			assert.Equal(t, "bootstrap", aws.ToString(c.Handler))
			assert.Equal(t, "x86_64", string(c.Architectures[0]))
			assert.Equal(t, int32(256), aws.ToInt32(c.MemorySize))
			assert.Equal(t, "arn:aws:iam::123456789012:role/cv-access/cv-access-"+fn, aws.ToString(c.Role))
			if fn == notifierFunction {
				assert.Equal(t, int32(60), aws.ToInt32(c.Timeout), "time for SES, and to give a claim back")
				assert.True(t, out.Concurrency == nil || out.Concurrency.ReservedConcurrentExecutions == nil, "no reservation: one shard, one copy")
			} else {
				assert.Equal(t, int32(10), aws.ToInt32(c.Timeout))
				require.NotNil(t, out.Concurrency, "a reserved concurrency")
				assert.Equal(t, int32(5), aws.ToInt32(out.Concurrency.ReservedConcurrentExecutions), "a cost cap against floods")
			}
			env := c.Environment.Variables
			assert.Equal(t, repoDocuments, env["CV_DOCUMENTS"], "the document list: every function names the documents")
			if fn == ownerFunction {
				assert.Equal(t, []string{"CV_AWS_REGION", "CV_BACKEND", "CV_DOCUMENTS", "CV_MAIL_FROM", "CV_NETLIFY_SITE_ID", "CV_OTP_SECRET",
					"CV_OWNER_EMAIL", "CV_OWNER_NAME", "CV_PROXY_SIGN_SECRET", "CV_S3_BUCKET", "CV_SITE_URL",
					"CV_TABLE_LIMITS", "CV_TABLE_OTPS", "CV_TABLE_REQUESTS"}, slices.Sorted(maps.Keys(env)), "no static key")
				assert.Equal(t, ownerEmail, env["CV_OWNER_EMAIL"])
				return
			}
			if fn == notifierFunction {
				assert.Equal(t, []string{"CV_AWS_REGION", "CV_BACKEND", "CV_DOCUMENTS", "CV_MAIL_FROM", "CV_OWNER_EMAIL", "CV_S3_BUCKET",
					"CV_SITE_URL", "CV_TABLE_LIMITS", "CV_TABLE_OTPS", "CV_TABLE_REQUESTS"}, slices.Sorted(maps.Keys(env)),
					"no secret: the notifier needs neither the code key nor the proxy's")
				assert.Equal(t, ownerEmail, env["CV_OWNER_EMAIL"])
				return
			}
			assert.Equal(t, []string{"CV_AWS_REGION", "CV_BACKEND", "CV_DOCUMENTS", "CV_MAIL_FROM", "CV_NETLIFY_SITE_ID", "CV_OTP_SECRET",
				"CV_OWNER_NAME", "CV_PROXY_SIGN_SECRET", "CV_S3_BUCKET", "CV_SITE_URL",
				"CV_TABLE_LIMITS", "CV_TABLE_OTPS", "CV_TABLE_REQUESTS"}, slices.Sorted(maps.Keys(env)), "no static key")
			assert.Equal(t, secrets["TF_VAR_otp_secret"], env["CV_OTP_SECRET"])
			assert.Equal(t, netlifySiteID, env["CV_NETLIFY_SITE_ID"])
		})

		cred, err := sts.NewFromConfig(s.moto.Config(s.moto.Admin)).AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn: c.Role, RoleSessionName: aws.String(fn), DurationSeconds: aws.Int32(3600),
		})
		require.NoError(t, err)
		l.roles[fn] = infratest.Credentials{ID: aws.ToString(cred.Credentials.AccessKeyId),
			Secret: aws.ToString(cred.Credentials.SecretAccessKey), Token: aws.ToString(cred.Credentials.SessionToken)}
	}
	s.lambda = l

	t.Run("logs are kept a week", func(t *testing.T) {
		out, err := cloudwatchlogs.NewFromConfig(admin).DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{
			LogGroupNamePrefix: aws.String("/aws/lambda/cv-access-")})
		require.NoError(t, err)
		got := map[string]int32{}
		for _, g := range out.LogGroups {
			got[aws.ToString(g.LogGroupName)] = aws.ToInt32(g.RetentionInDays)
		}
		assert.Equal(t, map[string]int32{"/aws/lambda/cv-access-request-access": 7, "/aws/lambda/cv-access-verify-access": 7,
			"/aws/lambda/cv-access-notify-access": 7, "/aws/lambda/cv-access-owner": 7}, got)
	})

	t.Run("the requests table has a stream for the notifier", func(t *testing.T) {
		desc, err := dynamodb.NewFromConfig(admin).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(l.config[notifierFunction]["CV_TABLE_REQUESTS"])})
		require.NoError(t, err)
		require.NotNil(t, desc.Table.StreamSpecification)
		assert.True(t, aws.ToBool(desc.Table.StreamSpecification.StreamEnabled))
		assert.Equal(t, "NEW_AND_OLD_IMAGES", string(desc.Table.StreamSpecification.StreamViewType))
		// No mapping on moto (infra/notify.tf says why): the plan test
		// checks the one AWS gets, and these tests hand the notifier its
		// records as Lambda would.
		esm, err := lc.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String("cv-access-" + notifierFunction)})
		require.NoError(t, err)
		assert.Empty(t, esm.EventSourceMappings)
	})

	t.Run("one HTTP API routes each path to its function, throttled", func(t *testing.T) {
		gw := apigatewayv2.NewFromConfig(admin)
		routes, err := gw.GetRoutes(ctx, &apigatewayv2.GetRoutesInput{ApiId: api.ApiId})
		require.NoError(t, err)
		integrations, err := gw.GetIntegrations(ctx, &apigatewayv2.GetIntegrationsInput{ApiId: api.ApiId})
		require.NoError(t, err)
		uri := map[string]string{}
		for _, in := range integrations.Items {
			assert.Equal(t, "2.0", aws.ToString(in.PayloadFormatVersion))
			uri["integrations/"+aws.ToString(in.IntegrationId)] = aws.ToString(in.IntegrationUri)
		}
		got := map[string]string{}
		for _, r := range routes.Items {
			got[aws.ToString(r.RouteKey)] = uri[aws.ToString(r.Target)]
		}
		require.Len(t, got, len(lambdaFunctions))
		for _, fn := range lambdaFunctions {
			assert.Contains(t, got["ANY /"+fn], ":function:cv-access-"+fn+"/invocations", fn)
		}
		stage, err := gw.GetStage(ctx, &apigatewayv2.GetStageInput{ApiId: api.ApiId, StageName: aws.String("$default")})
		require.NoError(t, err)
		assert.True(t, aws.ToBool(stage.AutoDeploy))
		require.NotNil(t, stage.DefaultRouteSettings)
		assert.Equal(t, 5.0, aws.ToFloat64(stage.DefaultRouteSettings.ThrottlingRateLimit))
		assert.Equal(t, int32(20), aws.ToInt32(stage.DefaultRouteSettings.ThrottlingBurstLimit))
	})

	t.Run("no IAM user holds a key for the functions", func(t *testing.T) {
		_, err := s.moto.IAM(s.moto.Admin).GetUser(ctx, &iam.GetUserInput{UserName: aws.String("cv-access-functions")})
		var missing *iamtypes.NoSuchEntityException
		assert.ErrorAs(t, err, &missing, "target aws has no functions' user")
	})

	for _, rt := range runtimes {
		t.Run("the visitor flow under "+rt.name+" with the roles' credentials", func(t *testing.T) {
			p := s.start(t, rt)
			v := newVisitor()
			status, body := s.post(t, p.request, v.ip, v.requestBody())
			require.Equal(t, 200, status, "%v\n%s", body, p.request.Logs())
			id, _ := body["requestId"].(string)
			code, texted := s.code(t, v)
			assert.True(t, texted, "the same code went by SMS through moto's SNS")

			status, body = s.post(t, p.verify, v.ip, `{"requestId":"`+id+`","otp":"`+code+`"}`)
			require.Equal(t, 200, status, "%v\n%s", body, p.verify.Logs())
			url, _ := body["redirectUrl"].(string)
			require.Contains(t, url, "X-Amz-Credential="+l.roles["verify-access"].ID, "signed with the verify role's credentials")
			require.Contains(t, url, "X-Amz-Security-Token=", "temporary credentials sign with their session token")
			assert.Equal(t, embedded.SampleCV, s.download(t, url, "cv.pdf"), "the bytes Terraform uploaded")

			logs := p.request.Logs() + p.verify.Logs()
			flowtest.AssertAbsent(t, logs, v.email, v.phone[3:], "Ada", code, v.ip, "X-Amz-Signature",
				l.roles["verify-access"].Secret, l.proxySecret, secrets["TF_VAR_otp_secret"])
		})
	}

	t.Run("a request for the second document downloads that document, signed by the verify role", func(t *testing.T) {
		got, url := s.documentFlow(t, runtimes[1], "portfolio", "portfolio.pdf")
		assert.Contains(t, url, "X-Amz-Credential="+l.roles["verify-access"].ID)
		assert.Equal(t, portfolioBytes, string(got), "the portfolio's bytes, as Terraform uploaded them")
	})

	t.Run("the owner is emailed once for a verified request, with its role's credentials", func(t *testing.T) {
		for _, rt := range runtimes {
			id, v := s.verifiedRequest(t, rt)
			n := s.startNotifier(t, rt)
			for hand := 1; hand <= 2; hand++ {
				failed := s.notify(t, n, id)
				assert.Empty(t, failed, "%s, hand %d", rt.name, hand)
				assert.Len(t, s.ownerEmailsAbout(t, v), 1, "%s, hand %d: one email however often the stream hands it over", rt.name, hand)
			}
			flowtest.AssertAbsent(t, n.Logs(), v.email, "Ada", "Analytical", ownerEmail)
		}
	})

	for _, rt := range runtimes {
		t.Run("the owner page under "+rt.name+" with its role's credentials", func(t *testing.T) { ownerPageFlow(t, s, rt) })
	}

	t.Run("a call that did not come through Netlify's signed proxy gets nothing", func(t *testing.T) {
		p := s.start(t, runtimes[0])
		for name, headers := range map[string]map[string]string{
			"no x-nf-sign": {"x-nf-client-connection-ip": "198.51.100.9"},
			"another key": {"x-nf-sign": proxysigntest.Sign(proxysigntest.HS256,
				proxysigntest.Claims(netlifySiteID, siteURL, "production", time.Now()), strings.Repeat("x", 64))},
			"another site": {"x-nf-sign": proxysigntest.Sign(proxysigntest.HS256,
				proxysigntest.Claims("11111111-2222-4333-8444-555555555555", siteURL, "production", time.Now()), l.proxySecret)},
		} {
			v := newVisitor()
			status, body := invoke(t, p.request, v2Event(headers, v.requestBody()))
			assert.Equal(t, 403, status, name)
			assert.Equal(t, "proxy_signature_invalid", body["error"], name)
			sent, err := s.moto.Sent(ctx)
			require.NoError(t, err)
			for _, m := range sent.Emails {
				assert.NotContains(t, m.Destinations.ToAddresses, v.email, "%s: nothing was sent", name)
			}
		}
	})

	t.Run("each role may do what its function does", func(t *testing.T) { leastPrivilegeRoles(t, s) })
	t.Run("each role is refused what its function does not do", func(t *testing.T) { rolesRefused(t, s) })

	t.Run("destroy leaves nothing behind", func(t *testing.T) {
		s.run(t, destroyAWS)
		fns, err := lc.ListFunctions(ctx, &lambda.ListFunctionsInput{})
		require.NoError(t, err)
		assert.Empty(t, fns.Functions)
		apis, err := apigatewayv2.NewFromConfig(admin).GetApis(ctx, &apigatewayv2.GetApisInput{})
		require.NoError(t, err)
		assert.Empty(t, apis.Items)
		groups, err := cloudwatchlogs.NewFromConfig(admin).DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{})
		require.NoError(t, err)
		assert.Empty(t, groups.LogGroups)
		roles, err := s.moto.IAM(s.moto.Admin).ListRoles(ctx, &iam.ListRolesInput{PathPrefix: aws.String("/cv-access/")})
		require.NoError(t, err)
		assert.Empty(t, roles.Roles)
		tables, err := dynamodb.NewFromConfig(admin).ListTables(ctx, &dynamodb.ListTablesInput{})
		require.NoError(t, err)
		assert.Empty(t, tables.TableNames)
		assert.Empty(t, strings.TrimSpace(s.run(t, "terraform -chdir=infra state list")))
	})
}

func onlyAPI(t *testing.T, ctx context.Context, cfg aws.Config) struct{ ApiId, ApiEndpoint *string } {
	t.Helper()
	apis, err := apigatewayv2.NewFromConfig(cfg).GetApis(ctx, &apigatewayv2.GetApisInput{})
	require.NoError(t, err)
	require.Len(t, apis.Items, 1)
	a := apis.Items[0]
	assert.Equal(t, "HTTP", string(a.ProtocolType))
	return struct{ ApiId, ApiEndpoint *string }{a.ApiId, a.ApiEndpoint}
}

func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "%s is the owner's alone", path)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	env, err := infratest.ParseEnv(string(b))
	require.NoError(t, err)
	return env
}

// roleSteps are, per function, the parts of its flow each action of its
// role is needed for. moto authorises a transaction as its own action, not
// as its parts, and some calls happen only when another fails (deleting a
// request whose code could not be sent): those actions have no step here,
// and `cv-setup check` tries them one by one.
var roleSteps = map[string]map[string]func(t *testing.T, s *stack){
	"request-access": {
		"dynamodb:TransactWriteItems": steps["dynamodb:TransactWriteItems"],
		"dynamodb:TransactGetItems":   steps["dynamodb:TransactGetItems"],
		"ses:SendEmail":               steps["ses:SendEmail"],
		"sns:Publish":                 steps["sns:Publish"],
	},
	"verify-access": {
		"dynamodb:GetItem": steps["dynamodb:GetItem"],
		"s3:GetObject":     steps["s3:GetObject"],
		"dynamodb:TransactWriteItems": func(t *testing.T, s *stack) {
			// Every attempt is counted in one transaction before the
			// code is compared.
			p := s.start(t, runtimes[0])
			id := s.issued(t, p)
			status, body := s.post(t, p.verify, "198.51.100.252", `{"requestId":"`+id+`","otp":"123456"}`)
			assert.Equal(t, 500, status, "%v", body)
			assertLogged(t, p.verify.Logs, "dynamodb:TransactWriteItems")
		},
		"dynamodb:UpdateItem": verifyUpdateStep,
	},
	ownerFunction: ownerSteps,
	notifierFunction: {
		"dynamodb:UpdateItem": func(t *testing.T, s *stack) {
			// The claim is refused: no email, and the record is handed
			// back for a retry.
			notificationRefused(t, s, "dynamodb:UpdateItem")
		},
		"ses:SendEmail": func(t *testing.T, s *stack) {
			// The email is refused: the claim is given back and the record
			// handed back, so once the permission is back the retry sends.
			n, id, v := notificationRefused(t, s, "ses:SendEmail")
			s.restorePolicy(t)
			assert.Empty(t, s.notify(t, n, id), "the retry")
			assert.Len(t, s.ownerEmailsAbout(t, v), 1)
		},
	},
}

// notificationRefused runs the notifier on a verified request while the
// role lacks action: no email goes out, the record is handed back, and
// the log names the action.
func notificationRefused(t *testing.T, s *stack, action string) (infratest.Function, string, visitor) {
	t.Helper()
	id, v := s.verifiedRequest(t, runtimes[0])
	n := s.startNotifier(t, runtimes[0])
	assert.Len(t, s.notify(t, n, id), 1, "the record is handed back")
	assert.Empty(t, s.ownerEmailsAbout(t, v))
	assertLogged(t, n.Logs, action)
	return n, id, v
}

// verifiedRequest takes a visitor through the flow under rt with every
// permission as it is now and returns the verified request's id.
func (s *stack) verifiedRequest(t *testing.T, rt runtimeKind) (string, visitor) {
	t.Helper()
	return s.verifiedRequestFor(t, rt, "")
}

// verifiedRequestFor is verifiedRequest for the document slug ("": the
// request names none).
func (s *stack) verifiedRequestFor(t *testing.T, rt runtimeKind, slug string) (string, visitor) {
	t.Helper()
	p := s.start(t, rt)
	v := newVisitor()
	body := v.requestBody()
	if slug != "" {
		body = v.requestBodyFor(slug)
	}
	status, resp := s.post(t, p.request, v.ip, body)
	require.Equal(t, 200, status, "%v", resp)
	id := resp["requestId"].(string)
	code, _ := s.code(t, v)
	status, resp = s.post(t, p.verify, v.ip, `{"requestId":"`+id+`","otp":"`+code+`"}`)
	require.Equal(t, 200, status, "%v", resp)
	return id, v
}

// verifyUpdateStep: the last wrong guess marks the request expired for
// the owner: bookkeeping, so the visitor's answer is unchanged and the
// log says what failed.
func verifyUpdateStep(t *testing.T, s *stack) {
	p := s.start(t, runtimes[0])
	id := s.issued(t, p)
	var status int
	var body map[string]any
	for range 5 {
		status, body = s.post(t, p.verify, "198.51.100.253", `{"requestId":"`+id+`","otp":"000000"}`)
	}
	assert.Equal(t, 400, status, "%v", body)
	assert.Equal(t, "otp_incorrect", body["error"])
	assert.Equal(t, float64(0), body["attemptsLeft"])
	assertLogged(t, p.verify.Logs, "dynamodb:UpdateItem", "WARN")
}

// lambdaOnly are the roles' actions that only Lambda itself uses (writing
// the function's log, reading the stream for the notifier), which no call
// of the functions can show on moto: the plan test checks AWS gets them.
var lambdaOnly = []string{"logs:CreateLogStream", "logs:PutLogEvents",
	"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}

// startNotifier runs notify-access as Lambda would, with its role.
func (s *stack) startNotifier(t *testing.T, rt runtimeKind) infratest.Function {
	t.Helper()
	n, err := rt.start(s, notifierFunction)
	require.NoError(t, err)
	t.Cleanup(n.Stop)
	return n
}

// notify hands the notifier the stream record of a request turning
// VERIFIED, as Lambda does, and returns the records it handed back.
func (s *stack) notify(t *testing.T, n infratest.Function, requestID string) []events.DynamoDBBatchItemFailure {
	t.Helper()
	img := func(status string) map[string]any {
		return map[string]any{"request_id": map[string]string{"S": requestID}, "otp_status": map[string]string{"S": status}}
	}
	seq := fmt.Sprint(time.Now().UnixNano())
	ev, err := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"eventID": seq, "eventName": "MODIFY", "eventSource": "aws:dynamodb", "awsRegion": infratest.Region,
		"dynamodb": map[string]any{"Keys": map[string]any{"request_id": map[string]string{"S": requestID}},
			"OldImage": img("PENDING"), "NewImage": img("VERIFIED"), "SequenceNumber": seq, "StreamViewType": "NEW_AND_OLD_IMAGES"},
	}}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := n.Invoke(ctx, ev)
	require.NoError(t, err, n.Logs())
	var resp events.DynamoDBEventResponse
	require.NoError(t, json.Unmarshal(out, &resp), "%s", out)
	return resp.BatchItemFailures
}

// ownerEmailsAbout are the emails moto recorded to the owner naming v.
func (s *stack) ownerEmailsAbout(t *testing.T, v visitor) []string {
	t.Helper()
	sent, err := s.moto.Sent(context.Background())
	require.NoError(t, err)
	var out []string
	for _, m := range sent.Emails {
		if slices.Contains(m.Destinations.ToAddresses, ownerEmail) && strings.Contains(m.Body, v.email) {
			out = append(out, m.Body)
		}
	}
	return out
}

// roleCheck runs `cv-setup check` with a role's credentials (as Lambda
// hands them over, hence -default-credentials) and returns each action's
// verdict.
func (s *stack) roleCheck(t *testing.T, fn string) map[string]string {
	t.Helper()
	cmd := exec.Command(command(t, s.root, "cv-setup"), "check", "-default-credentials")
	cmd.Env = s.functionEnv(fn)
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("cv-setup check did not run: %v", err)
	}
	v := verdicts(string(out))
	require.NotEmpty(t, v, "%s", out)
	return v
}

// leastPrivilegeRoles takes each action out of each role's policy in
// turn: `cv-setup check` with the role's credentials names it, and the
// step of its function's flow that needs it fails with a clear answer and
// a log line naming it. With the full policy, the check finds allowed
// exactly what the role holds.
func leastPrivilegeRoles(t *testing.T, s *stack) {
	for _, fn := range allFunctions {
		full := s.policy(t, fn)
		all := actions(full)
		t.Logf("%s's role on moto allows: %s", fn, strings.Join(all, ", "))
		t.Run(fn+" with its whole policy", func(t *testing.T) {
			for action, verdict := range s.roleCheck(t, fn) {
				want := "DENIED"
				if slices.Contains(all, action) {
					want = "ok"
				}
				assert.Equal(t, want, verdict, "%s for %s's role", action, fn)
			}
		})
		for _, action := range all {
			t.Run(fn+" without "+action, func(t *testing.T) {
				s.fullPolicy, s.underTest = full, fn
				s.putPolicy(t, fn, without(full, action))
				t.Cleanup(func() { s.putPolicy(t, fn, full) })
				shown := false
				if verdict, tried := s.roleCheck(t, fn)[action]; tried {
					assert.Equal(t, "DENIED", verdict, "the check names %s", action)
					shown = true
				}
				if step, ok := roleSteps[fn][action]; ok {
					step(t, s)
					shown = true
				}
				if !shown {
					assert.Contains(t, lambdaOnly, action, "%s is neither tried by the check nor needed by a step of the flow", action)
				}
			})
		}
	}
}

// rolesRefused shows each role refused what the other function needs,
// and what neither needs.
func rolesRefused(t *testing.T, s *stack) {
	ctx := context.Background()
	s.putOutsideObject(t)
	s.readsExactlyTheDocuments(t, "verify-access's role", s.lambda.roles["verify-access"])
	tables := s.lambda.config["request-access"]
	for _, fn := range allFunctions {
		cfg := s.moto.Config(s.lambda.roles[fn])
		db := dynamodb.NewFromConfig(cfg)
		s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
		key := map[string]ddbtypes.AttributeValue{"request_id": &ddbtypes.AttributeValueMemberS{Value: "x"}}
		denied := map[string]error{}
		if fn != ownerFunction { // the owner page lists the requests
			_, denied["dynamodb:Scan"] = db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(tables["CV_TABLE_REQUESTS"])})
		}
		_, denied["dynamodb:DeleteTable"] = db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(tables["CV_TABLE_OTPS"])})
		_, denied["s3:PutObject"] = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("cv.pdf"), Body: strings.NewReader("not a cv")})
		_, denied["iam:ListRoles"] = s.moto.IAM(s.lambda.roles[fn]).ListRoles(ctx, &iam.ListRolesInput{})
		_, denied["lambda:ListFunctions"] = lambda.NewFromConfig(cfg).ListFunctions(ctx, &lambda.ListFunctionsInput{})
		switch fn {
		case "request-access":
			_, denied["s3:GetObject"] = s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("cv.pdf")})
			_, denied["s3:GetObject on portfolio.pdf"] = s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("portfolio.pdf")})
		case ownerFunction:
			// On moto a statement's resources are "*" (main.tf says why):
			// which tables each action reaches, the plan test checks.
			_, denied["s3:GetObject"] = s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("cv.pdf")})
			_, denied["s3:GetObject on portfolio.pdf"] = s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("portfolio.pdf")})
			_, denied["sns:Publish"] = sns.NewFromConfig(cfg).Publish(ctx, &sns.PublishInput{PhoneNumber: aws.String("+447400900001"), Message: aws.String("x")})
		case notifierFunction:
			_, denied["s3:GetObject"] = s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("cv.pdf")})
			_, denied["s3:GetObject on portfolio.pdf"] = s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("portfolio.pdf")})
			_, denied["dynamodb:GetItem"] = db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tables["CV_TABLE_OTPS"]), Key: key})
			_, denied["dynamodb:PutItem"] = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables["CV_TABLE_REQUESTS"]), Item: key})
			_, denied["sns:Publish"] = sns.NewFromConfig(cfg).Publish(ctx, &sns.PublishInput{PhoneNumber: aws.String("+447400900001"), Message: aws.String("x")})
		case "verify-access":
			_, denied["dynamodb:PutItem"] = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables["CV_TABLE_REQUESTS"]), Item: key})
			_, denied["dynamodb:DeleteItem"] = db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(tables["CV_TABLE_REQUESTS"]), Key: key})
			_, denied["ses:SendEmail"] = sesv2.NewFromConfig(cfg).SendEmail(ctx, &sesv2.SendEmailInput{
				FromEmailAddress: aws.String("cv@example.com"),
				Destination:      &sestypes.Destination{ToAddresses: []string{"success@simulator.amazonses.com"}},
				Content: &sestypes.EmailContent{Simple: &sestypes.Message{Subject: &sestypes.Content{Data: aws.String("x")},
					Body: &sestypes.Body{Text: &sestypes.Content{Data: aws.String("x")}}}},
			})
			_, denied["sns:Publish"] = sns.NewFromConfig(cfg).Publish(ctx, &sns.PublishInput{PhoneNumber: aws.String("+447400900001"), Message: aws.String("x")})
		}
		for action, err := range denied {
			assert.Truef(t, awsbackend.IsAccessDenied(err), "%s's role, %s: want access denied, got %v", fn, action, err)
		}
	}
}
