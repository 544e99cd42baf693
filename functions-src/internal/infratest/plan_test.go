package infratest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/infratest"
	"github.com/cv-access/cv-access/functions-src/internal/streams"
)

// The policies AWS gets are not the ones moto can enforce (see the
// package doc), so this reads them from a plan with the real settings and
// checks every statement: exact ARNs, exact actions, the conditions.

type statement struct {
	Sid         string
	Effect      string
	Action      strings1
	Resource    strings1
	NotResource strings1
	Principal   any
	Condition   map[string]map[string]strings1
}

// strings1 is IAM's "a string or a list of strings".
type strings1 []string

func (s *strings1) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = strings1{one}
		return nil
	}
	var many []string
	err := json.Unmarshal(b, &many)
	*s = many
	return err
}

func policy(t *testing.T, plan map[string]any, address string) map[string]statement {
	t.Helper()
	after := planned(t, plan, address)
	doc, ok := after["policy"].(string)
	require.Truef(t, ok, "%s: policy is not known at plan time: %v", address, after["policy"])
	var p struct {
		Version   string
		Statement []statement
	}
	require.NoError(t, json.Unmarshal([]byte(doc), &p))
	assert.Equal(t, "2012-10-17", p.Version)
	out := map[string]statement{}
	for _, s := range p.Statement {
		require.NotContains(t, out, s.Sid, "statement ids are unique")
		out[s.Sid] = s
	}
	return out
}

// hasResource reports whether the plan makes address.
func hasResource(plan map[string]any, address string) bool {
	changes, _ := plan["resource_changes"].([]any)
	for _, c := range changes {
		if rc, _ := c.(map[string]any); rc["address"] == address {
			return true
		}
	}
	return false
}

func planned(t *testing.T, plan map[string]any, address string) map[string]any {
	t.Helper()
	changes, _ := plan["resource_changes"].([]any)
	for _, c := range changes {
		rc, _ := c.(map[string]any)
		if rc["address"] == address {
			change, _ := rc["change"].(map[string]any)
			after, _ := change["after"].(map[string]any)
			return after
		}
	}
	t.Fatalf("the plan has no %s", address)
	return nil
}

// documentsEnv is the document list as the plan gives it to the functions
// (CV_DOCUMENTS), from the guard that checks it.
func documentsEnv(t *testing.T, plan map[string]any) string {
	t.Helper()
	v, _ := planned(t, plan, "terraform_data.documents_guard")["input"].(string)
	return v
}

// failingPlan is a plan with bad -var arguments, and what its errors say.
type failingPlan struct {
	name string
	args []string
	says []string
}

// runFailingPlans runs the plans, three at a time (a plan without a state
// or a plan file writes nothing, so they can share one copy), and checks
// each fails saying what it should. Not parallel subtests: those would
// wait for a free slot of -parallel, which the moto tests hold for
// minutes on a machine of two CPUs.
func runFailingPlans(t *testing.T, ctx context.Context, tf *infratest.Terraform, plans []failingPlan) {
	t.Helper()
	errs := make([]error, len(plans))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 3)
	for i, p := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			args := []string{"plan", "-no-color", "-lock=false", "-var-file=example.tfvars"}
			for _, a := range p.args {
				args = append(args, "-var", a)
			}
			_, errs[i] = tf.Run(ctx, args...)
		}()
	}
	wg.Wait()
	for i, p := range plans {
		t.Run(p.name, func(t *testing.T) {
			require.Error(t, errs[i], p.args)
			out := strings.Join(strings.Fields(errs[i].Error()), " ")
			for _, want := range p.says {
				assert.Contains(t, out, want)
			}
		})
	}
}

// upload is one document's planned object.
type upload struct{ key, source, contentType string }

// resourcesOfType are the addresses of the plan's resources of a type.
func resourcesOfType(plan map[string]any, typ string) []string {
	var out []string
	changes, _ := plan["resource_changes"].([]any)
	for _, c := range changes {
		if rc, _ := c.(map[string]any); rc["type"] == typ {
			out = append(out, rc["address"].(string))
		}
	}
	return out
}

// writeFile writes text to a file of its own and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

// documentFiles are two documents' files with different bytes: the
// sample CV, and a portfolio.
func documentFiles(t *testing.T) map[string]string {
	t.Helper()
	root, err := emulators.FindRoot()
	require.NoError(t, err)
	return map[string]string{
		"cv":        filepath.Join(root, "functions-src", "internal", "embedded", "sample-cv.pdf"),
		"portfolio": writeFile(t, portfolioBytes),
	}
}

// portfolioBytes are the second document's bytes in these tests.
const portfolioBytes = "%PDF-1.4\n% the portfolio, not the CV\n%%EOF\n"

func TestPlanGivesAWSExactPolicies(t *testing.T) {
	t.Parallel()
	tl := need(t)
	ctx := context.Background()
	m, err := infratest.StartMoto(ctx)
	require.NoError(t, err)
	t.Cleanup(m.Stop)
	// A copy of infra/ beside the repository's site/, so the default
	// documents_file (../site/data/cv_access.json) is the repository's list.
	work := t.TempDir()
	require.NoError(t, os.Symlink(filepath.Join(tl.root, "site"), filepath.Join(work, "site")))
	require.NoError(t, os.Mkdir(filepath.Join(work, "infra"), 0o755))
	tf, err := infratest.NewTerraform(tl.root, filepath.Join(work, "infra"), tl.rc)
	require.NoError(t, err)
	// Endpoints only: the emulator switches stay off, as on AWS.
	require.NoError(t, tf.Override("moto", infratest.MotoOverride(m.AdminEndpoint(t), m.Admin, false)))
	_, err = tf.Run(ctx, "init", "-no-color")
	require.NoError(t, err)

	const arn = "arn:aws:dynamodb:us-east-2:123456789012:table/"
	files := documentFiles(t)
	// Another list: a nested key, a .docx, a title with an apostrophe.
	// And one at the edges of every rule, which both must accept.
	adaList := writeFile(t, `{"documents": [
  {"slug": "cv", "title": "Ada's CV", "key": "docs/ada.pdf"},
  {"slug": "letters", "title": "Letters", "key": "letters.docx", "page": "/letters/", "link_seconds": 600},
  {"slug": "a-0123456789012345678901234567-z", "title": " `+strings.Repeat("é", 60)+` ", "key": "x/y(1)!_'.pdf", "page": "/p/~a@b;c=d&e%20f", "link_seconds": 3600}
]}`)
	for _, tc := range []struct {
		name     string
		args     []string
		list     string    // the document list's file
		tables   [3]string // requests, otps, limits
		objects  []string  // the documents' ARNs
		uploads  map[string]upload
		docs     string // CV_DOCUMENTS
		identity string
		from     string
		sending  []string // extra SES resources
	}{
		{
			name:    "example.tfvars, the repository's document list, both files uploaded",
			args:    []string{"-var-file=example.tfvars", "-var", fmt.Sprintf("document_files={cv=%q,portfolio=%q}", files["cv"], files["portfolio"])},
			list:    filepath.Join(tl.root, "site", "data", "cv_access.json"),
			tables:  [3]string{"cv-requests", "otps", "cv-rate-limits"},
			objects: []string{"arn:aws:s3:::example-private-cv/cv.pdf", "arn:aws:s3:::example-private-cv/portfolio.pdf"},
			uploads: map[string]upload{"cv": {"cv.pdf", files["cv"], "application/pdf"}, "portfolio": {"portfolio.pdf", files["portfolio"], "application/pdf"}},
			docs: `{"documents":[{"key":"cv.pdf","link_seconds":120,"page":"/cv/","slug":"cv","title":"CV"},` +
				`{"key":"portfolio.pdf","link_seconds":120,"page":"/portfolio/","slug":"portfolio","title":"portfolio"}]}`,
			identity: "arn:aws:ses:us-east-2:123456789012:identity/example.com", from: "cv@example.com",
		},
		{
			name: "renamed tables, an address identity, a configuration set, another list with a nested key, the older cv_path and cv_key",
			args: []string{"-var-file=example.tfvars", "-var", `tables={requests="a-req",otps="a-otp",limits="a-lim"}`,
				"-var", "ses_identity=ada@example.net", "-var", "mail_from=Ada's CV <Ada@Example.net>",
				"-var", "ses_configuration_set=cv-events", "-var", "bucket_name=ada-cv", "-var", "documents_file=" + adaList,
				"-var", "cv_path=" + files["cv"], "-var", "cv_key=docs/ada.pdf", "-var", fmt.Sprintf("document_files={letters=%q}", files["portfolio"])},
			list:    adaList,
			tables:  [3]string{"a-req", "a-otp", "a-lim"},
			objects: []string{"arn:aws:s3:::ada-cv/docs/ada.pdf", "arn:aws:s3:::ada-cv/letters.docx", "arn:aws:s3:::ada-cv/x/y(1)!_'.pdf"},
			uploads: map[string]upload{"cv": {"docs/ada.pdf", files["cv"], "application/pdf"},
				"letters": {"letters.docx", files["portfolio"], "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}},
			// Defaults filled in; the apostrophe written \u0027, for the
			// value's single quotes in an env file.
			docs: `{"documents":[{"key":"docs/ada.pdf","link_seconds":120,"page":"/","slug":"cv","title":"Ada\u0027s CV"},` +
				`{"key":"letters.docx","link_seconds":600,"page":"/letters/","slug":"letters","title":"Letters"},` +
				`{"key":"x/y(1)!_\u0027.pdf","link_seconds":3600,"page":"/p/~a@b;c=d\u0026e%20f","slug":"a-0123456789012345678901234567-z","title":" ` + strings.Repeat("é", 60) + ` "}]}`,
			// IAM compares ses:FromAddress case-sensitively: the policy
			// names the address exactly as the functions send from it.
			identity: "arn:aws:ses:us-east-2:123456789012:identity/ada@example.net", from: "Ada@Example.net",
			sending: []string{"arn:aws:ses:us-east-2:123456789012:configuration-set/cv-events"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := tf.PlanJSON(ctx, tc.args...)
			require.NoError(t, err)

			assert.True(t, hasResource(plan, "aws_iam_user.functions[0]"), "target netlify: the functions' user")
			assert.True(t, hasResource(plan, "aws_iam_access_key.functions[0]"))
			assert.False(t, hasResource(plan, `aws_lambda_function.function["request-access"]`), "and no Lambda")
			fn := policy(t, plan, "aws_iam_user_policy.functions[0]")
			assert.ElementsMatch(t, []string{"RequestsAndCodes", "RateLimitCounters", "SendCodeEmail", "SendCodeSMSToPhoneNumbersOnly", "ReadTheDocuments"}, slices.Collect(maps.Keys(fn)))
			for sid, s := range fn {
				assert.Equal(t, "Allow", s.Effect, sid)
				assert.NotContains(t, s.Resource, "*", sid)
			}
			assert.ElementsMatch(t, strings1{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}, fn["RequestsAndCodes"].Action)
			assert.ElementsMatch(t, strings1{arn + tc.tables[0], arn + tc.tables[1]}, fn["RequestsAndCodes"].Resource)
			assert.Equal(t, strings1{"dynamodb:UpdateItem"}, fn["RateLimitCounters"].Action, "counters are only ever incremented")
			assert.Equal(t, strings1{arn + tc.tables[2]}, fn["RateLimitCounters"].Resource)

			assert.Equal(t, strings1{"ses:SendEmail"}, fn["SendCodeEmail"].Action)
			assert.ElementsMatch(t, append(strings1{tc.identity}, tc.sending...), fn["SendCodeEmail"].Resource)
			assert.Equal(t, map[string]map[string]strings1{"StringEquals": {"ses:FromAddress": {tc.from}}}, fn["SendCodeEmail"].Condition)

			sms := fn["SendCodeSMSToPhoneNumbersOnly"]
			assert.Equal(t, strings1{"sns:Publish"}, sms.Action)
			assert.Empty(t, sms.Resource, "a text to a number has no ARN: AWS needs a wildcard, written as NotResource")
			assert.Equal(t, strings1{"arn:aws:sns:*:*:*"}, sms.NotResource, "no topic")

			assert.Equal(t, strings1{"s3:GetObject"}, fn["ReadTheDocuments"].Action)
			assert.ElementsMatch(t, tc.objects, fn["ReadTheDocuments"].Resource, "each document by its ARN, nothing else in the bucket")

			for slug, up := range tc.uploads {
				obj := planned(t, plan, `aws_s3_object.document["`+slug+`"]`)
				assert.Equal(t, up.key, obj["key"], slug)
				assert.Equal(t, up.source, obj["source"], slug)
				assert.Equal(t, up.contentType, obj["content_type"], slug)
				assert.Equal(t, "AES256", obj["server_side_encryption"], slug)
			}
			assert.Len(t, resourcesOfType(plan, "aws_s3_object"), len(tc.uploads), "one object per uploaded document")
			assert.Equal(t, tc.docs, documentsEnv(t, plan), "CV_DOCUMENTS: the list as the functions read it, defaults filled in")
			// The functions read what Terraform gives them as they read
			// the file itself.
			fromEnv, err := access.ParseDocuments([]byte(tc.docs))
			require.NoError(t, err, "the functions accept the list Terraform gives them")
			raw, err := os.ReadFile(tc.list)
			require.NoError(t, err)
			fromFile, err := access.ParseDocuments(raw)
			require.NoError(t, err)
			assert.Equal(t, fromFile.All(), fromEnv.All())

			owner := policy(t, plan, "aws_iam_user_policy.owner")
			assert.ElementsMatch(t, []string{"ListRequests", "EraseRequests"}, slices.Collect(maps.Keys(owner)))
			assert.Equal(t, strings1{"dynamodb:Scan"}, owner["ListRequests"].Action)
			assert.Equal(t, strings1{arn + tc.tables[0]}, owner["ListRequests"].Resource)
			assert.Equal(t, strings1{"dynamodb:DeleteItem"}, owner["EraseRequests"].Action)
			assert.ElementsMatch(t, strings1{arn + tc.tables[0], arn + tc.tables[1]}, owner["EraseRequests"].Resource)

			bucket := policy(t, plan, "aws_s3_bucket_policy.cv[0]")
			deny := bucket["DenyInsecureTransport"]
			assert.Equal(t, "Deny", deny.Effect)
			assert.Equal(t, strings1{"s3:*"}, deny.Action)
			b, _, _ := strings.Cut(tc.objects[0], "/")
			assert.ElementsMatch(t, strings1{b, b + "/*"}, deny.Resource)
			assert.Equal(t, map[string]map[string]strings1{"Bool": {"aws:SecureTransport": {"false"}}}, deny.Condition)

			for _, role := range []string{"requests", "otps", "limits"} {
				tbl := planned(t, plan, `aws_dynamodb_table.this["`+role+`"]`)
				assert.Equal(t, "PAY_PER_REQUEST", tbl["billing_mode"], role)
				assert.Equal(t, []any{map[string]any{"enabled": true}}, tbl["point_in_time_recovery"], role)
				assert.Equal(t, []any{map[string]any{"attribute_name": "ttl", "enabled": true}}, tbl["ttl"], role)
				sse, _ := tbl["server_side_encryption"].([]any)
				require.Len(t, sse, 1, role)
				assert.Equal(t, true, sse[0].(map[string]any)["enabled"], role)
			}
			pab := planned(t, plan, "aws_s3_bucket_public_access_block.cv")
			for _, k := range []string{"block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"} {
				assert.Equal(t, true, pab[k], k)
			}
			own := planned(t, plan, "aws_s3_bucket_ownership_controls.cv")
			assert.Equal(t, "BucketOwnerEnforced", own["rule"].([]any)[0].(map[string]any)["object_ownership"])
		})
	}

	packages := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(packages, "arm64"), 0o755))
	for _, fn := range allFunctions {
		require.NoError(t, os.WriteFile(filepath.Join(packages, "arm64", fn+".zip"), []byte("a package"), 0o644))
	}

	t.Run("target netlify with owner_email: the functions' user may also scan the requests, for the owner page", func(t *testing.T) {
		plan, err := tf.PlanJSON(ctx, "-var-file=example.tfvars", "-var", "lambda_packages="+packages, "-var", "owner_email=owner@example.com")
		require.NoError(t, err)
		fn := policy(t, plan, "aws_iam_user_policy.functions[0]")
		assert.ElementsMatch(t, []string{"RequestsAndCodes", "RateLimitCounters", "SendCodeEmail", "SendCodeSMSToPhoneNumbersOnly", "ReadTheDocuments", "ListRequests"},
			slices.Collect(maps.Keys(fn)))
		assert.Equal(t, strings1{"dynamodb:Scan"}, fn["ListRequests"].Action)
		assert.Equal(t, strings1{arn + "cv-requests"}, fn["ListRequests"].Resource, "the requests, not the codes or counters")
		assert.False(t, hasResource(plan, `aws_lambda_function.function["owner"]`), "the owner page runs on Netlify with the other functions")
	})

	t.Run("target aws: a role per function, exactly what its code calls", func(t *testing.T) {
		plan, err := tf.PlanJSON(ctx, "-var-file=example.tfvars", "-var", "deploy_target=aws",
			"-var", "netlify_site_id="+netlifySiteID, "-var", "otp_secret="+strings.Repeat("o", 64),
			"-var", "proxy_sign_secret="+strings.Repeat("p", 64), "-var", "lambda_packages="+packages,
			"-var", "owner_email=Owner@Example.com")
		require.NoError(t, err)
		assert.False(t, hasResource(plan, "aws_iam_user.functions[0]"), "no user, no static key")
		assert.False(t, hasResource(plan, "aws_iam_access_key.functions[0]"))

		logs := "arn:aws:logs:us-east-2:123456789012:log-group:/aws/lambda/cv-access-"
		req := policy(t, plan, `aws_iam_role_policy.function["request-access"]`)
		assert.ElementsMatch(t, []string{"RequestsAndCodes", "RateLimitCounters", "SendCodeEmail", "SendCodeSMSToPhoneNumbersOnly", "WriteItsOwnLog"},
			slices.Collect(maps.Keys(req)))
		assert.ElementsMatch(t, strings1{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}, req["RequestsAndCodes"].Action)
		assert.ElementsMatch(t, strings1{arn + "cv-requests", arn + "otps"}, req["RequestsAndCodes"].Resource)
		assert.Equal(t, map[string]map[string]strings1{"StringEquals": {"ses:FromAddress": {"cv@example.com"}}}, req["SendCodeEmail"].Condition)
		assert.Equal(t, strings1{"arn:aws:sns:*:*:*"}, req["SendCodeSMSToPhoneNumbersOnly"].NotResource)
		assert.Equal(t, strings1{logs + "request-access:*"}, req["WriteItsOwnLog"].Resource)
		assert.ElementsMatch(t, strings1{"logs:CreateLogStream", "logs:PutLogEvents"}, req["WriteItsOwnLog"].Action)

		ver := policy(t, plan, `aws_iam_role_policy.function["verify-access"]`)
		assert.ElementsMatch(t, []string{"ReadAndMarkRequestsAndCodes", "RateLimitCounters", "ReadTheDocuments", "WriteItsOwnLog"},
			slices.Collect(maps.Keys(ver)), "verify-access sends nothing and creates nothing")
		assert.ElementsMatch(t, strings1{"dynamodb:GetItem", "dynamodb:UpdateItem"}, ver["ReadAndMarkRequestsAndCodes"].Action)
		assert.ElementsMatch(t, strings1{arn + "cv-requests", arn + "otps"}, ver["ReadAndMarkRequestsAndCodes"].Resource)
		assert.Equal(t, strings1{"dynamodb:UpdateItem"}, ver["RateLimitCounters"].Action)
		assert.Equal(t, strings1{arn + "cv-rate-limits"}, ver["RateLimitCounters"].Resource)
		assert.Equal(t, strings1{"s3:GetObject"}, ver["ReadTheDocuments"].Action)
		assert.ElementsMatch(t, strings1{"arn:aws:s3:::example-private-cv/cv.pdf", "arn:aws:s3:::example-private-cv/portfolio.pdf"},
			ver["ReadTheDocuments"].Resource, "each listed document by its ARN, nothing else in the bucket")
		assert.Equal(t, strings1{logs + "verify-access:*"}, ver["WriteItsOwnLog"].Resource)

		for _, fn := range allFunctions {
			for sid, s := range policy(t, plan, `aws_iam_role_policy.function["`+fn+`"]`) {
				assert.Equal(t, "Allow", s.Effect, sid)
				if sid != "ListStreams" {
					assert.NotContains(t, s.Resource, "*", sid)
				}
			}
			role := planned(t, plan, `aws_iam_role.function["`+fn+`"]`)
			var trust struct{ Statement []statement }
			require.NoError(t, json.Unmarshal([]byte(role["assume_role_policy"].(string)), &trust))
			require.Len(t, trust.Statement, 1)
			assert.Equal(t, map[string]any{"Service": "lambda.amazonaws.com"}, trust.Statement[0].Principal, "only Lambda assumes it")
			assert.Equal(t, map[string]map[string]strings1{"StringEquals": {"aws:SourceAccount": {"123456789012"}}}, trust.Statement[0].Condition)

			f := planned(t, plan, `aws_lambda_function.function["`+fn+`"]`)
			assert.Equal(t, "provided.al2023", f["runtime"])
			assert.Equal(t, []any{"arm64"}, f["architectures"])
			if fn != notifierFunction {
				assert.Equal(t, float64(5), f["reserved_concurrent_executions"])
			}
			// Its environment holds the secrets, so the plan does not show
			// it: TestAWSTargetOnMoto reads it back from Lambda.
			assert.Equal(t, float64(7), planned(t, plan, `aws_cloudwatch_log_group.function["`+fn+`"]`)["retention_in_days"])
		}
		notifier := policy(t, plan, `aws_iam_role_policy.function["notify-access"]`)
		assert.ElementsMatch(t, []string{"ClaimNotifications", "SendOwnerEmail", "ReadRequestsStream", "ListStreams", "WriteItsOwnLog"},
			slices.Collect(maps.Keys(notifier)), "the notifier reads no code and no CV, and emails the owner alone")
		assert.Equal(t, strings1{"dynamodb:UpdateItem"}, notifier["ClaimNotifications"].Action)
		assert.Equal(t, strings1{arn + "cv-requests"}, notifier["ClaimNotifications"].Resource)
		assert.Equal(t, map[string]map[string]strings1{
			"StringEquals":              {"ses:FromAddress": {"cv@example.com"}},
			"ForAllValues:StringEquals": {"ses:Recipients": {"owner@example.com"}},
			"Null":                      {"ses:Recipients": {"false"}},
		}, notifier["SendOwnerEmail"].Condition, "to the owner alone, and never with no recipient at all")
		nf := planned(t, plan, `aws_lambda_function.function["notify-access"]`)
		assert.Equal(t, float64(60), nf["timeout"], "time for SES, and to give a claim back")
		assert.Equal(t, float64(-1), nf["reserved_concurrent_executions"], "one shard, one copy: no reservation to refuse")
		assert.ElementsMatch(t, strings1{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}, notifier["ReadRequestsStream"].Action)
		assert.Equal(t, strings1{arn + "cv-requests/stream/*"}, notifier["ReadRequestsStream"].Resource)
		assert.Equal(t, strings1{"*"}, notifier["ListStreams"].Resource, "ListStreams names no resource")
		assert.Equal(t, strings1{logs + "notify-access:*"}, notifier["WriteItsOwnLog"].Resource)

		owner := policy(t, plan, `aws_iam_role_policy.function["owner"]`)
		assert.ElementsMatch(t, []string{"OwnerSignInAndSessions", "ListRequests", "EraseRequests", "RateLimitCounters", "SendOwnerEmail", "WriteItsOwnLog"},
			slices.Collect(maps.Keys(owner)), "the owner page reads no CV, texts nobody, and emails the owner alone")
		assert.ElementsMatch(t, strings1{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}, owner["OwnerSignInAndSessions"].Action)
		assert.Equal(t, strings1{arn + "otps"}, owner["OwnerSignInAndSessions"].Resource, "its codes: no request is created or changed")
		assert.Equal(t, map[string]map[string]strings1{
			"ForAllValues:StringLike": {"dynamodb:LeadingKeys": {"owner-*"}},
			"Null":                    {"dynamodb:LeadingKeys": {"false"}},
		}, owner["OwnerSignInAndSessions"].Condition, "its own codes only, never a visitor's")
		assert.Equal(t, strings1{"dynamodb:Scan"}, owner["ListRequests"].Action)
		assert.Equal(t, strings1{arn + "cv-requests"}, owner["ListRequests"].Resource)
		assert.Equal(t, strings1{"dynamodb:DeleteItem"}, owner["EraseRequests"].Action)
		assert.ElementsMatch(t, strings1{arn + "cv-requests", arn + "otps"}, owner["EraseRequests"].Resource, "a request and its code; a session")
		assert.Equal(t, strings1{"dynamodb:UpdateItem"}, owner["RateLimitCounters"].Action)
		assert.Equal(t, notifier["SendOwnerEmail"].Condition, owner["SendOwnerEmail"].Condition, "the sign-in code goes to the owner alone")
		assert.Equal(t, strings1{logs + "owner:*"}, owner["WriteItsOwnLog"].Resource)
		route := planned(t, plan, `aws_apigatewayv2_route.function["owner"]`)
		assert.Equal(t, "ANY /owner", route["route_key"])
		for _, fn := range []string{"request-access", "verify-access"} {
			for sid, st := range policy(t, plan, `aws_iam_role_policy.function["`+fn+`"]`) {
				assert.NotContains(t, st.Action, "dynamodb:Scan", "%s's %s: the visitors' functions cannot list the requests", fn, sid)
			}
		}

		reqTable := planned(t, plan, `aws_dynamodb_table.this["requests"]`)
		assert.Equal(t, true, reqTable["stream_enabled"])
		assert.Equal(t, "NEW_AND_OLD_IMAGES", reqTable["stream_view_type"])
		assert.Equal(t, false, planned(t, plan, `aws_dynamodb_table.this["otps"]`)["stream_enabled"])
		esm := planned(t, plan, "aws_lambda_event_source_mapping.notify[0]")
		assert.Equal(t, "LATEST", esm["starting_position"])
		assert.Equal(t, []any{"ReportBatchItemFailures"}, esm["function_response_types"], "failed records are handed back")
		assert.Equal(t, float64(20), esm["maximum_retry_attempts"])
		assert.Equal(t, float64(86400), esm["maximum_record_age_in_seconds"])
		assert.Equal(t, true, esm["bisect_batch_on_function_error"])
		filter := esm["filter_criteria"].([]any)[0].(map[string]any)["filter"].([]any)[0].(map[string]any)
		assert.JSONEq(t, streams.FilterPattern, filter["pattern"].(string))
		assert.False(t, hasResource(plan, `aws_apigatewayv2_route.function["notify-access"]`), "the notifier is behind no API")

		stage := planned(t, plan, "aws_apigatewayv2_stage.default[0]")
		settings := stage["default_route_settings"].([]any)[0].(map[string]any)
		assert.Equal(t, float64(5), settings["throttling_rate_limit"])
		assert.Equal(t, float64(20), settings["throttling_burst_limit"])
	})

	t.Run("bad settings stop the plan with a message naming each", func(t *testing.T) {
		var failing []failingPlan
		// Terraform checks every variable before it stops, so one plan
		// (each costs seconds: the provider starts) shows them all.
		for _, tc := range []struct {
			args []string
			says []string
		}{
			{
				args: []string{"site_url=http://cv.example.com", "bucket_name=My_Bucket", "region=mars-1",
					`tables={requests="same",otps="same"}`, "sms_monthly_spend_limit=-1", "cv_path=/nonexistent/cv.pdf",
					"ses_identity=example.org", "sms_sender_id=12345", "owner_name=Ada\nCV_SITE_URL=https://evil.example",
					`ses_configuration_set=x"$(id)`, "function_user_name=cv access"},
				says: []string{"site_url must be an https origin", "bucket_name must be 3 to 63 characters",
					"region must be an AWS region name", "The three table names must differ",
					"sms_monthly_spend_limit must be a whole number", "cv_path must name a readable file",
					"mail_from's address must be ses_identity", "sms_sender_id must be 3 to 11 letters or digits",
					"owner_name must be 1 to 100 characters, without control characters",
					"ses_configuration_set must be an SES configuration set name", "function_user_name must be an IAM user name"},
			},
			// A check that reads another variable is skipped while that
			// one is invalid, hence the separate plans.
			{args: []string{"mail_from=CV \"quoted\" <cv@example.com>", "site_url=https://cv.example.com/", `tables={requests="a b"}`,
				"owner_user_name=cv-access-functions"},
				says: []string{"mail_from must be an email address, optionally with a name: CV <cv@example.com>, without control characters, quotes",
					"site_url must be an https origin", "Each table name must be 3 to 255", "owner_user_name must be an IAM user name"}},
			{args: []string{"ses_identity=Example.com"}, says: []string{"ses_identity must be a lower-case domain"}},
			{args: []string{"deploy_target=aws", "otp_secret=short", "lambda_architecture=sparc", "log_retention_days=400",
				"reserved_concurrency=0", "netlify_site_id=My Site"},
				says: []string{"otp_secret (TF_VAR_otp_secret), each comma-separated key at least 32 characters",
					"deploy_target = \"aws\" needs proxy_sign_secret", "lambda_architecture must be arm64 or x86_64",
					"log_retention_days must be one of", "reserved_concurrency must be a whole number",
					"netlify_site_id must be the site's id"}},
			{args: []string{"deploy_target=aws"}, says: []string{"deploy_target = \"aws\" needs netlify_site_id"}},
			{args: []string{"deploy_target=aws", "netlify_site_id=" + netlifySiteID, "otp_secret=" + strings.Repeat("o", 32),
				"proxy_sign_secret=" + strings.Repeat("p", 32), "lambda_packages=/nonexistent"},
				says: []string{"No package at /nonexistent/arm64/request-access.zip: run `make lambda-packages LAMBDA_ARCH=arm64`"}},
			{args: []string{"deploy_target=lambda"}, says: []string{"deploy_target must be \"netlify\" or \"aws\""}},
			{args: []string{"owner_email=Ada <ada@example.com>"}, says: []string{"owner_email must be one address"}},
			{args: []string{"ses_identity=v@example.com"}, says: []string{"mail_from's address must be ses_identity"}},
		} {
			failing = append(failing, failingPlan{name: strings.Join(tc.args, " "), args: tc.args, says: tc.says})
		}
		runFailingPlans(t, ctx, tf, failing)
	})

	t.Run("a wrong document list or document_files stops the plan, naming the document and field", func(t *testing.T) {
		// 20 documents whose list alone is over 4 KB in the environment.
		var big []string
		for i := range 20 {
			big = append(big, fmt.Sprintf(`{"slug":"d%d","title":%q,"key":"%s-%d.pdf"}`, i, strings.Repeat("t", 60), strings.Repeat("k", 150), i))
		}
		tooMany := []string{`{"slug":"cv","title":"CV"}`}
		for i := range 20 {
			tooMany = append(tooMany, fmt.Sprintf(`{"slug":"d%d","title":"D"}`, i))
		}
		// Each breaks one rule: the functions refuse each alone, and the
		// plan names each (one plan for all: each costs seconds).
		oneFault := []string{
			`{"slug": "Bad_Slug", "title": "T"}`, `{"slug": "-a", "title": "T"}`, `{"slug": "` + strings.Repeat("s", 33) + `", "title": "T"}`,
			`{"slug": "t1", "title": ""}`, `{"slug": "t2", "title": "  "}`, `{"slug": "t3", "title": "Two\nlines"}`,
			`{"slug": "t4", "title": "\u202eevil"}`, `{"slug": "t5", "title": "` + strings.Repeat("é", 61) + `"}`,
			`{"slug": "t6", "title": 5}`, `{"slug": "k1", "title": "T", "key": "/k.pdf"}`, `{"slug": "k2", "title": "T", "key": "k*.pdf"}`,
			`{"slug": "k3", "title": "T", "key": "a/../k.pdf"}`, `{"slug": "k4", "title": "T", "key": "a//k.pdf"}`,
			`{"slug": "k5", "title": "T", "key": "a/"}`, `{"slug": "k6", "title": "T", "key": "` + strings.Repeat("k", 513) + `"}`,
			`{"slug": "p1", "title": "T", "page": "p/"}`, `{"slug": "p2", "title": "T", "page": "/p/<x>"}`,
			`{"slug": "p3", "title": "T", "page": "/` + strings.Repeat("p", 200) + `"}`, `{"slug": "l1", "title": "T", "link_seconds": 29}`,
			`{"slug": "l2", "title": "T", "link_seconds": 3601}`, `{"slug": "l3", "title": "T", "link_seconds": "120"}`,
			`{"slug": "l4", "title": "T", "link_seconds": 90.5}`, `{"slug": "u1", "title": "T", "colour": "red"}`,
		}
		for _, d := range oneFault {
			_, err := access.ParseDocuments([]byte(`{"documents": [` + d + `]}`))
			assert.Error(t, err, "the functions refuse %s", d)
		}
		for _, f := range []string{`{"documents": [{"slug": "cv", "title": "CV"}], "extra": 1}`, `{"documents": []}`, `{"documents": [`} {
			_, err := access.ParseDocuments([]byte(f))
			assert.Error(t, err, "the functions refuse %s", f)
		}
		var oneFaultSays []string
		for i, d := range oneFault {
			slug := regexp.MustCompile(`"slug": "([^"]+)"`).FindStringSubmatch(d)[1]
			oneFaultSays = append(oneFaultSays, fmt.Sprintf("document %d (%q): ", i+1, slug))
		}

		// Terraform checks every variable and the list's guard before it
		// stops, so one plan (each costs seconds) shows many messages.
		failing := []failingPlan{
			{
				name: "every rule of the list; document_files; the older cv_key and cv_path",
				args: []string{"documents_file=" + writeFile(t, `{"documents": [
  {"slug": "cv", "title": "CV"},
  {"slug": "Bad_Slug", "title": "Bad"},
  {"slug": "cv", "title": "Again", "key": "again.pdf"},
  {"slug": "b", "title": "B", "key": "cv.pdf"},
  {"slug": "c", "title": "Two\nlines", "link_seconds": 10, "page": "c/", "colour": "red"},
  {"slug": "d", "title": "", "key": "/d.pdf", "link_seconds": "120"},
  {"slug": "e", "title": "E", "key": "e*.pdf", "link_seconds": 90.5},
  {"slug": "f", "title": "\u202eevil", "key": "a/../f.pdf", "page": "/f/<x>"},
  {"slug": "g", "title": "\ufffd", "page": "//evil.example/g"}
], "extra": 1}`),
					fmt.Sprintf(`document_files={cv=%q,brochure=%q,b="/nonexistent/b.pdf"}`, files["cv"], files["cv"]),
					"cv_key=docs/old.pdf", "cv_path=" + files["cv"]},
				says: []string{
					`document 2 ("Bad_Slug"): slug must be 1 to 32 lower-case letters, digits or hyphens`,
					`document 3 ("cv"): slug "cv" is document 1's too: slugs must be unique`,
					`document 4 ("b"): key "cv.pdf" is document 1's too: keys must be unique`,
					`document 5 ("c"): has the unknown field "colour" (the fields are slug, title, key, page, link_seconds)`,
					`document 5 ("c"): title must be 1 to 60 characters of plain text, without control characters or line breaks`,
					`document 5 ("c"): page must be the site path of the document's form`,
					`document 5 ("c"): link_seconds must be a whole number from 30 to 3600`,
					`document 6 ("d"): title must be 1 to 60 characters`,
					`document 6 ("d"): key must be 1 to 512 safe characters`,
					`document 6 ("d"): link_seconds must be a whole number from 30 to 3600`,
					`document 7 ("e"): key must be 1 to 512 safe characters (letters, digits, and !_.'()/-; no *, which IAM reads as a wildcard)`,
					`document 7 ("e"): link_seconds must be a whole number from 30 to 3600`,
					`document 8 ("f"): title must be 1 to 60 characters of plain text`,
					`document 8 ("f"): key must be 1 to 512 safe characters (letters, digits, and !_.'()/-; no *, which IAM reads as a wildcard), not starting with / and without empty, . or .. segments`,
					`document 8 ("f"): page must be the site path of the document's form`,
					`document 9 ("g"): title must be 1 to 60 characters of plain text`,
					`document 9 ("g"): page must be the site path of the document's form`,
					`it has the unknown field "extra" (only "documents")`,
					`document_files names "brochure", which the document list`,
					`document_files must name readable files: b = "/nonexistent/b.pdf" cannot be read`,
					`cv_key is superseded by the document list`, `which gives "cv" the key "cv.pdf": set "key" there and remove cv_key`,
				},
			},
			{
				name: "one fault in each document",
				args: []string{"documents_file=" + writeFile(t, `{"documents": [`+strings.Join(oneFault, ",")+`]}`)},
				says: oneFaultSays,
			},
			{name: "not JSON", args: []string{"documents_file=" + writeFile(t, `{"documents": [`)}, says: []string{"(documents_file) is not right: it cannot be read as JSON"}},
			{
				// A check that reads another variable is skipped while that
				// one is invalid: document_files must be right here.
				name: "21 documents; cv_path beside document_files' cv",
				args: []string{"documents_file=" + writeFile(t, `{"documents": [`+strings.Join(tooMany, ",")+`]}`),
					"cv_path=" + files["cv"], fmt.Sprintf(`document_files={cv=%q}`, files["cv"])},
				says: []string{"it lists 21 documents: at most 20",
					`cv_path and document_files["cv"] both name the CV's file: keep document_files and remove cv_path`},
			},
			{
				name: "over 4 KB in the environment; cv_path with no document cv",
				args: []string{"documents_file=" + writeFile(t, `{"documents": [`+strings.Join(big, ",")+`]}`), "cv_path=" + files["cv"]},
				says: []string{"The functions' environment on Netlify would be", "over the 4 KB (4096) Lambda allows: the document list (CV_DOCUMENTS) takes",
					`cv_path uploads the document with slug "cv", which the document list`, `does not hold: set document_files = { <slug> =`},
			},
		}
		runFailingPlans(t, ctx, tf, failing)
	})
}
