package infratest_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
	"github.com/cv-access/cv-access/functions-src/internal/infratest"
)

// The site origin and names example.tfvars gives.
const (
	siteURL = "https://cv.example.com"
	bucket  = "example-private-cv"
)

// tools finds what these tests need, or skips (fails under
// CV_REQUIRE_INFRA, as `make test` sets).
type tools struct {
	root, rc, rie string
	bins          map[string]string
}

func need(t *testing.T) tools {
	t.Helper()
	root, err := emulators.FindRoot()
	require.NoError(t, err)
	tl := tools{root: root, rc: os.Getenv("CV_TERRAFORMRC"), rie: os.Getenv("CV_RIE"), bins: map[string]string{}}
	var missing []string
	if tl.rc == "" {
		tl.rc = filepath.Join(root, ".local", "terraformrc")
	}
	if _, err := os.Stat(tl.rc); err != nil {
		missing = append(missing, "the Terraform CLI configuration "+tl.rc+" (`make test` writes it from the provider mirror)")
	}
	if tl.rie == "" { // `make test` names the pinned one; else the newest built
		found, _ := filepath.Glob(filepath.Join(root, ".local", "rie", "*", "aws-lambda-rie"))
		tl.rie = filepath.Join(root, ".local", "rie", "(none)", "aws-lambda-rie")
		if len(found) > 0 {
			tl.rie = found[len(found)-1]
		}
	}
	if _, err := os.Stat(tl.rie); err != nil {
		missing = append(missing, "Amazon's Lambda Runtime Interface Emulator at "+tl.rie+" (`make test` builds it)")
	}
	for _, name := range []string{"request-access", "verify-access", "owner"} {
		p := filepath.Join(root, "netlify", "functions", name)
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p+" (`make functions`)")
		}
		tl.bins[name] = p
	}
	for _, bin := range []string{"terraform", "moto_server"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin+" on PATH (the machine image ships it)")
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CV_REQUIRE_INFRA") != "" {
			t.Fatalf("CV_REQUIRE_INFRA is set but these are missing:\n  %s", strings.Join(missing, "\n  "))
		}
		t.Skipf("skipped, missing: %s", strings.Join(missing, "; "))
	}
	return tl
}

// stack is infra/ applied to moto by the README's deploy guide.
type stack struct {
	tools
	moto *infratest.Moto
	dir  string // where the guide runs: a copy of infra/, the rest of the repository linked
	// adminURL is moto for the administrator's tools (Moto.AdminEndpoint).
	adminURL string
	env      map[string]string // netlify_env, as written to .local/netlify.env

	fullPolicy map[string]any // the policy of the identity under test, as applied
	underTest  string         // whose policy a least-privilege step takes actions from: "" (the user) or a function's role
	visitors   []visitor      // who went through the flow

	lambda *lambdaTarget // target aws only
}

// guide is the README's deploy guide (and infra/README.md's), command for
// command, in order: TestDeployGuidesRunOnlyTestedCommands holds the
// READMEs to this list, and applyStack runs it against moto.
var guide = []string{
	"cp infra/example.tfvars infra/terraform.tfvars",
	"terraform -chdir=infra init",
	"terraform -chdir=infra plan",
	"(umask 077; terraform -chdir=infra apply)",
	"terraform -chdir=infra output ses_dns_records",
	"umask 077 && mkdir -p .local && terraform -chdir=infra output -raw netlify_env > .local/netlify.env",
	"(set -a; . ./.local/netlify.env; set +a; make aws-check)",
}

// destroyCommand ends the stack, as infra/README.md says.
const destroyCommand = "(umask 077; terraform -chdir=infra destroy)"

// notRunHere are the guides' commands no test can run here, and why.
var notRunHere = map[string]string{
	"npx netlify link": "needs a Netlify account",
	"npx netlify env:import .local/netlify.env > /dev/null": "needs a Netlify account and a linked site",
	`npx netlify env:set CV_AWS_SECRET_ACCESS_KEY "$(sed -n 's/^CV_AWS_SECRET_ACCESS_KEY=//p' .local/netlify.env)" --scope functions > /dev/null`: "needs a Netlify account and a linked site",
	`npx netlify env:set CV_OTP_SECRET "$(openssl rand -hex 32)" --scope functions > /dev/null`:                                                   "needs a Netlify account and a linked site",
	"rm .local/netlify.env": "deletes the file of secrets; the test's copy goes with its temporary folder",
	"aws iam create-access-key --user-name cv-access-functions": "the test makes its keys with Terraform",
}

// run runs one guide command in the stack's copy, as a user would in a
// shell at the repository root; apply and destroy are answered "yes".
func (s *stack) run(t *testing.T, command string, extraEnv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", command)
	cmd.Dir = s.dir
	// Only what a clean shell would hold: nothing from the developer's own
	// (TF_VAR_*, CV_*, MAKEFLAGS) may change what the guide does.
	cmd.Env = append(infratest.BaseEnv(), "TF_CLI_CONFIG_FILE="+s.rc, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdin = strings.NewReader("yes\n")
	// A timeout ends the whole command (make, go run, cv-setup), not just
	// bash, and never waits on a pipe a child still holds.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", command, out)
	t.Logf("%s: %s", command, time.Since(start).Round(time.Millisecond))
	return string(out)
}

// deployGuide is one target's guide as the test runs it.
type deployGuide struct {
	commands []string
	tfvars   string   // the owner's edit of terraform.tfvars, after the copy (the first command)
	env      []string // what the test adds to the guide's shell
	// checked is how many permissions `make aws-check` finds granted: 15
	// (s3:GetObject once per document of the two), or 16 with the owner
	// page's Scan.
	checked int
}

func applyStack(t *testing.T, ctx context.Context, tl tools, g deployGuide) *stack {
	t.Helper()
	m, err := infratest.StartMoto(ctx)
	require.NoError(t, err)
	t.Cleanup(m.Stop)

	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "infra"), 0o755))
	tf, err := infratest.NewTerraform(tl.root, filepath.Join(dir, "infra"), tl.rc)
	require.NoError(t, err)
	adminURL := m.AdminEndpoint(t)
	require.NoError(t, tf.Override("moto", infratest.MotoOverride(adminURL, m.Admin, true)))
	// site/ holds the document list infra/ reads (documents_file's default).
	for _, name := range []string{"Makefile", "go.mod", "go.sum", "functions-src", "site"} {
		require.NoError(t, os.Symlink(filepath.Join(tl.root, name), filepath.Join(dir, name)))
	}
	s := &stack{tools: tl, moto: m, dir: dir, adminURL: adminURL}

	// The guide's edit: the owner's values (example.tfvars's are the
	// test's), and the two listed documents' files to upload.
	s.run(t, g.commands[0])
	files := documentFiles(t)
	f, err := os.OpenFile(filepath.Join(dir, "infra", "terraform.tfvars"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fmt.Fprintf(f, "document_files = {\n  cv        = %q\n  portfolio = %q\n}\n%s", files["cv"], files["portfolio"], g.tfvars)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	env := slices.Clone(g.env)
	for _, svc := range []string{"DYNAMODB", "SESV2", "SNS", "S3"} {
		env = append(env, "AWS_ENDPOINT_URL_"+svc+"="+m.URL)
	}
	for _, command := range g.commands[1:] {
		out := s.run(t, command, env...)
		if strings.Contains(command, "aws-check") {
			assert.Contains(t, out, fmt.Sprintf("cv-setup check: all %d permissions the functions use are granted", cmp.Or(g.checked, 15)))
		}
	}
	for _, state := range []string{"terraform.tfstate", "terraform.tfstate.backup"} {
		if st, err := os.Stat(filepath.Join(dir, "infra", state)); err == nil {
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "%s holds keys and secrets: the owner's alone", state)
		}
	}
	envFile := filepath.Join(dir, ".local", "netlify.env")
	st, err := os.Stat(envFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the file of secrets is the owner's alone")
	b, err := os.ReadFile(envFile)
	require.NoError(t, err)
	s.env, err = infratest.ParseEnv(string(b))
	require.NoError(t, err)
	return s
}

// repoDocuments is the repository's document list (site/data/cv_access.json)
// as the functions get it in CV_DOCUMENTS: defaults filled in, minified.
const repoDocuments = `{"documents":[{"key":"cv.pdf","link_seconds":120,"page":"/cv/","slug":"cv","title":"CV"},` +
	`{"key":"portfolio.pdf","link_seconds":120,"page":"/portfolio/","slug":"portfolio","title":"portfolio"}]}`

// outsideKey is an object in the bucket that the list does not name.
const outsideKey = "notes/not-listed.pdf"

// putOutsideObject puts outsideKey in the bucket as the administrator,
// for a test to show the functions cannot read it; it is deleted when the
// test ends (an object Terraform did not make stops its destroy).
func (s *stack) putOutsideObject(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	admin := s3.NewFromConfig(s.moto.Config(s.moto.Admin), func(o *s3.Options) { o.UsePathStyle = true })
	_, err := admin.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(outsideKey), Body: strings.NewReader("not listed")})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := admin.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(outsideKey)})
		assert.NoError(t, err)
	})
}

// readsExactlyTheDocuments: with these credentials, both listed documents
// can be read (HeadObject is authorised as s3:GetObject), and an object
// the list does not name cannot.
func (s *stack) readsExactlyTheDocuments(t *testing.T, who string, c infratest.Credentials) {
	t.Helper()
	ctx := context.Background()
	s3c := s3.NewFromConfig(s.moto.Config(c), func(o *s3.Options) { o.UsePathStyle = true })
	for _, key := range []string{"cv.pdf", "portfolio.pdf"} {
		_, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		assert.NoError(t, err, "%s: s3:GetObject on %s is allowed", who, key)
	}
	_, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(outsideKey)})
	assert.Truef(t, awsbackend.IsAccessDenied(err), "%s: s3:GetObject on %s, which the list does not name: want access denied, got %v", who, outsideKey, err)
}

// functionEnv is what the function would run with on its target (on
// Netlify: netlify_env and the owner's CV_OTP_SECRET; on Lambda: its
// configuration and its role's credentials), plus the SDK's endpoint
// variables for moto.
func (s *stack) functionEnv(name string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_FUNCTION_NAME=" + name}
	if s.lambda != nil {
		env = append(env, s.lambda.env(name)...)
	} else {
		env = append(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024", "CV_OTP_SECRET="+strings.Repeat("k", 64))
		for k, v := range s.env {
			env = append(env, k+"="+v)
		}
	}
	for _, svc := range []string{"DYNAMODB", "SESV2", "SNS", "S3"} {
		env = append(env, "AWS_ENDPOINT_URL_"+svc+"="+s.moto.URL)
	}
	return env
}

type runtimeKind struct {
	name  string
	start func(s *stack, fn string) (infratest.Function, error)
}

var runtimes = []runtimeKind{
	{"our Runtime API", func(s *stack, fn string) (infratest.Function, error) {
		return infratest.OwnRuntime(s.bins[fn], s.functionEnv(fn))
	}},
	{"Amazon's RIE", func(s *stack, fn string) (infratest.Function, error) {
		return infratest.RIE(s.rie, s.bins[fn], s.functionEnv(fn))
	}},
}

// pair is both functions running.
type pair struct{ request, verify infratest.Function }

func (s *stack) start(t *testing.T, rt runtimeKind) pair {
	t.Helper()
	ra, err := rt.start(s, "request-access")
	require.NoError(t, err)
	t.Cleanup(ra.Stop)
	va, err := rt.start(s, "verify-access")
	require.NoError(t, err)
	t.Cleanup(va.Stop)
	return pair{ra, va}
}

// post sends one event shaped as the target hands it (Netlify's, or the
// HTTP API's behind Netlify's signed proxy) and decodes the answer.
func (s *stack) post(t *testing.T, f infratest.Function, ip, body string) (int, map[string]any) {
	t.Helper()
	if s.lambda != nil {
		return s.lambda.post(t, f, ip, body)
	}
	ev, err := json.Marshal(events.APIGatewayProxyRequest{
		HTTPMethod: "POST", Path: "/.netlify/functions/x",
		Headers: map[string]string{"content-type": "application/json", "x-nf-client-connection-ip": ip, "origin": siteURL},
		Body:    body,
	})
	require.NoError(t, err)
	return invoke(t, f, ev)
}

// invoke hands f one event and decodes its JSON answer.
func invoke(t *testing.T, f infratest.Function, ev []byte) (int, map[string]any) {
	t.Helper()
	var resp events.APIGatewayProxyResponse
	invokeInto(t, f, ev, &resp)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &m), resp.Body)
	return resp.StatusCode, m
}

// invokeInto hands f one event, as Lambda would, and decodes what it
// answered into resp (the event shape's response type).
func invokeInto(t *testing.T, f infratest.Function, ev []byte, resp any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := f.Invoke(ctx, ev)
	require.NoError(t, err, "function output: %s", f.Logs())
	require.NoError(t, json.Unmarshal(out, resp), "%s", out)
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

// visitor is one person going through the flow.
type visitor struct{ email, phone, ip string }

// visitors counts the visitors made, across the tests running in parallel.
var visitors atomic.Int32

func newVisitor() visitor {
	n := visitors.Add(1)
	return visitor{
		email: fmt.Sprintf("visitor-%d-%d@example.org", n, time.Now().UnixNano()),
		phone: fmt.Sprintf("+4474009%05d", n),
		ip:    fmt.Sprintf("198.51.100.%d", n),
	}
}

func (v visitor) requestBody() string {
	return `{"name":"Ada Lovelace","email":"` + v.email + `","phone":"` + v.phone + `","company":"Analytical Engines","consent":true}`
}

// requestBodyFor asks for the listed document with this slug.
func (v visitor) requestBodyFor(slug string) string {
	return strings.TrimSuffix(v.requestBody(), "}") + `,"document":"` + slug + `"}`
}

// documentFlow takes a new visitor through the flow under rt for the
// document slug and returns what its link downloads, and the link.
func (s *stack) documentFlow(t *testing.T, rt runtimeKind, slug, key string) ([]byte, string) {
	t.Helper()
	p := s.start(t, rt)
	v := newVisitor()
	status, body := s.post(t, p.request, v.ip, v.requestBodyFor(slug))
	require.Equal(t, 200, status, "%v\n%s", body, p.request.Logs())
	id, _ := body["requestId"].(string)
	code, _ := s.code(t, v)
	status, body = s.post(t, p.verify, v.ip, `{"requestId":"`+id+`","otp":"`+code+`"}`)
	require.Equal(t, 200, status, "%v\n%s", body, p.verify.Logs())
	url, _ := body["redirectUrl"].(string)
	return s.download(t, url, key), url
}

// code is the code moto recorded as mailed to v, and whether a text with
// the same code went to v's phone.
func (s *stack) code(t *testing.T, v visitor) (code string, texted bool) {
	t.Helper()
	sent, err := s.moto.Sent(context.Background())
	require.NoError(t, err)
	for _, m := range sent.Emails {
		if slices.Contains(m.Destinations.ToAddresses, v.email) {
			assert.Equal(t, "CV <cv@example.com>", m.Source, "sent as mail_from")
			code = sixDigits.FindString(m.Body)
		}
	}
	require.NotEmpty(t, code, "no code mailed to the visitor in moto's records")
	for _, m := range sent.SMS {
		if m.PhoneNumber == v.phone && strings.Contains(m.Message, code) {
			texted = true
		}
	}
	return code, texted
}

// download fetches a presigned link to the object key. moto answers a
// presigned GET with 500 while auth is on, so one unauthenticated call is
// let through for it: SigV4 checks of links are proven against gofakes3
// elsewhere.
func (s *stack) download(t *testing.T, url, key string) []byte {
	t.Helper()
	require.True(t, strings.HasPrefix(url, s.moto.URL+"/"+bucket+"/"+key+"?"), url)
	signer := s.env["CV_AWS_ACCESS_KEY_ID"]
	if s.lambda != nil {
		signer = s.lambda.roles["verify-access"].ID
	}
	require.Contains(t, url, "X-Amz-Credential="+signer+"%2F", "signed with the functions' own credentials")
	require.NoError(t, s.moto.LetThrough(context.Background(), 1))
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, string(b))
	return b
}

func TestInfraOnMoto(t *testing.T) {
	t.Parallel()
	tl := need(t)
	ctx := context.Background()
	s := applyStack(t, ctx, tl, deployGuide{commands: guide})

	t.Run("netlify_env holds exactly the functions' settings", func(t *testing.T) {
		keys := slices.Sorted(maps.Keys(s.env))
		assert.Equal(t, []string{"CV_AWS_ACCESS_KEY_ID", "CV_AWS_REGION", "CV_AWS_SECRET_ACCESS_KEY", "CV_BACKEND",
			"CV_DOCUMENTS", "CV_MAIL_FROM", "CV_OWNER_NAME", "CV_S3_BUCKET", "CV_SITE_URL",
			"CV_TABLE_LIMITS", "CV_TABLE_OTPS", "CV_TABLE_REQUESTS"}, keys, "the list in CV_DOCUMENTS, and no CV_S3_KEY beside it")
		assert.Equal(t, repoDocuments, s.env["CV_DOCUMENTS"], "the repository's list, read back through the env file's quotes")
		assert.Equal(t, "aws", s.env["CV_BACKEND"])
		assert.Equal(t, "CV <cv@example.com>", s.env["CV_MAIL_FROM"])
		assert.Equal(t, siteURL, s.env["CV_SITE_URL"])
	})

	for _, rt := range runtimes {
		t.Run("the visitor flow under "+rt.name, func(t *testing.T) {
			p := s.start(t, rt)
			v := newVisitor()
			s.visitors = append(s.visitors, v)
			status, body := s.post(t, p.request, v.ip, v.requestBody())
			require.Equal(t, 200, status, "%v\n%s", body, p.request.Logs())
			id, _ := body["requestId"].(string)
			require.NotEmpty(t, id)
			code, texted := s.code(t, v)
			assert.True(t, texted, "the same code went by SMS through moto's SNS")

			status, body = s.post(t, p.verify, v.ip, `{"requestId":"`+id+`","otp":"`+code+`"}`)
			require.Equal(t, 200, status, "%v\n%s", body, p.verify.Logs())
			url, _ := body["redirectUrl"].(string)
			assert.Equal(t, embedded.SampleCV, s.download(t, url, "cv.pdf"), "the bytes Terraform uploaded")

			logs := p.request.Logs() + p.verify.Logs()
			flowtest.AssertAbsent(t, logs, v.email, v.phone[3:], "Ada", code, v.ip, "X-Amz-Signature", s.env["CV_AWS_SECRET_ACCESS_KEY"])
		})
	}

	t.Run("a request for the second document downloads that document", func(t *testing.T) {
		got, _ := s.documentFlow(t, runtimes[0], "portfolio", "portfolio.pdf")
		assert.Equal(t, portfolioBytes, string(got), "the portfolio's bytes, as Terraform uploaded them")
	})

	t.Run("the functions' keys are refused what they must not do", func(t *testing.T) {
		fn := infratest.Credentials{ID: s.env["CV_AWS_ACCESS_KEY_ID"], Secret: s.env["CV_AWS_SECRET_ACCESS_KEY"]}
		db := dynamodb.NewFromConfig(s.moto.Config(fn))
		s3c := s3.NewFromConfig(s.moto.Config(fn), func(o *s3.Options) { o.UsePathStyle = true })
		denied := map[string]error{}
		_, denied["dynamodb:Scan"] = db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(s.env["CV_TABLE_REQUESTS"])})
		_, denied["dynamodb:DeleteTable"] = db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(s.env["CV_TABLE_OTPS"])})
		_, denied["dynamodb:Query"] = db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(s.env["CV_TABLE_REQUESTS"]),
			KeyConditionExpression: aws.String("request_id = :id"), ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":id": &ddbtypes.AttributeValueMemberS{Value: "x"}}})
		_, denied["s3:ListBucket"] = s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		_, denied["s3:PutObject"] = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("cv.pdf"), Body: strings.NewReader("not a cv")})
		_, denied["iam:ListUsers"] = s.moto.IAM(fn).ListUsers(ctx, &iam.ListUsersInput{})
		for action, err := range denied {
			assert.Truef(t, awsbackend.IsAccessDenied(err), "%s: want access denied, got %v", action, err)
		}
		// The same key, the same clients: what it may do, it can.
		_, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.env["CV_TABLE_REQUESTS"]),
			Key: map[string]ddbtypes.AttributeValue{"request_id": &ddbtypes.AttributeValueMemberS{Value: "x"}}})
		assert.NoError(t, err, "dynamodb:GetItem is allowed")
		s.putOutsideObject(t)
		s.readsExactlyTheDocuments(t, "the functions' key", fn)
	})

	t.Run("least privilege", func(t *testing.T) { leastPrivilege(t, s) })
	t.Run("aws-setup makes the same tables", func(t *testing.T) { sameTables(t, s) })
	t.Run("the owner's key lists and erases, and nothing more", func(t *testing.T) { ownerIdentity(t, s) })

	t.Run("destroy leaves nothing behind", func(t *testing.T) {
		s.run(t, destroyCommand)
		cfg := s.moto.Config(s.moto.Admin)
		tables, err := dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{})
		require.NoError(t, err)
		assert.Empty(t, tables.TableNames)
		buckets, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).ListBuckets(ctx, &s3.ListBucketsInput{})
		require.NoError(t, err)
		assert.Empty(t, buckets.Buckets)
		users, err := s.moto.IAM(s.moto.Admin).ListUsers(ctx, &iam.ListUsersInput{})
		require.NoError(t, err)
		var names []string
		for _, u := range users.Users {
			names = append(names, aws.ToString(u.UserName))
		}
		sort.Strings(names)
		assert.Equal(t, []string{"admin"}, names, "only the test's own administrator is left")
		assert.Empty(t, strings.TrimSpace(s.run(t, "terraform -chdir=infra state list")))
	})
}
