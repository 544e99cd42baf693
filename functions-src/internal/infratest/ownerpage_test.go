package infratest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
	"github.com/cv-access/cv-access/functions-src/internal/infratest"
	"github.com/cv-access/cv-access/functions-src/internal/proxysign/proxysigntest"
)

// The owner page's function on target aws, run with its role's
// credentials behind the signed proxy.

// startOwner runs the owner function as Lambda would, with its role.
func (s *stack) startOwner(t *testing.T, rt runtimeKind) infratest.Function {
	t.Helper()
	o, err := rt.start(s, ownerFunction)
	require.NoError(t, err)
	t.Cleanup(o.Stop)
	return o
}

// ownerCalls counts ownerCall's calls, across the tests running in
// parallel.
var ownerCalls atomic.Int32

// ownerCall sends one owner action as the HTTP API hands it on behind
// Netlify's signed proxy, with the browser's cookies, and returns the
// status, the JSON body (nil for a file) and the cookies set.
func (s *stack) ownerCall(t *testing.T, o infratest.Function, body string, cookies ...string) (int, map[string]any, string, []string) {
	t.Helper()
	// Each call from a network of its own: the owner's sign-ins are three
	// a day per network, and this test signs in more often than that.
	n := ownerCalls.Add(1)
	ip := fmt.Sprintf("198.18.%d.%d", n/250, 1+n%250)
	if s.lambda == nil {
		return ownerCallNetlify(t, o, ip, body, cookies)
	}
	token := proxysigntest.Sign(proxysigntest.HS256, proxysigntest.Claims(netlifySiteID, siteURL, "production", time.Now()), s.lambda.proxySecret)
	h := map[string]string{"content-type": "application/json", "origin": siteURL, "x-nf-sign": token, "x-nf-client-connection-ip": ip}
	ev, err := json.Marshal(events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "ANY /owner", RawPath: "/owner", Headers: h, Body: body, Cookies: cookies,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "req-owner", Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/owner", Protocol: "HTTP/1.1", SourceIP: "3.5.140.2"},
		},
	})
	require.NoError(t, err)
	var resp events.APIGatewayV2HTTPResponse
	invokeInto(t, o, ev, &resp)
	var m map[string]any
	_ = json.Unmarshal([]byte(resp.Body), &m)
	return resp.StatusCode, m, resp.Body, resp.Cookies
}

// ownerCallNetlify is ownerCall on target netlify: an API Gateway v1
// event as Netlify hands it over, the cookies in its Cookie header.
func ownerCallNetlify(t *testing.T, o infratest.Function, ip, body string, cookies []string) (int, map[string]any, string, []string) {
	t.Helper()
	h := map[string]string{"content-type": "application/json", "origin": siteURL, "x-nf-client-connection-ip": ip}
	if len(cookies) > 0 {
		h["cookie"] = strings.Join(cookies, "; ")
	}
	ev, err := json.Marshal(events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/.netlify/functions/owner", Headers: h, Body: body})
	require.NoError(t, err)
	var resp events.APIGatewayProxyResponse
	invokeInto(t, o, ev, &resp)
	var m map[string]any
	_ = json.Unmarshal([]byte(resp.Body), &m)
	var set []string
	if c, ok := resp.Headers["Set-Cookie"]; ok {
		set = append(set, c)
	}
	return resp.StatusCode, m, resp.Body, append(set, resp.MultiValueHeaders["Set-Cookie"]...)
}

// ownerCode is the newest sign-in code moto recorded to the owner.
func (s *stack) ownerCode(t *testing.T) string {
	t.Helper()
	sent, err := s.moto.Sent(context.Background())
	require.NoError(t, err)
	code := ""
	for _, m := range sent.Emails {
		if slices.Contains(m.Destinations.ToAddresses, ownerEmail) && m.Subject == access.OwnerCodeSubject {
			code = sixDigits.FindString(m.Body)
		}
	}
	require.NotEmpty(t, code, "no sign-in code mailed to the owner in moto's records")
	return code
}

// ownerSignIn signs the owner in and returns the session cookie as the
// browser sends it back (name=value).
func (s *stack) ownerSignIn(t *testing.T, o infratest.Function) string {
	t.Helper()
	status, body, raw, _ := s.ownerCall(t, o, `{"action":"sign-in","email":"`+ownerEmail+`"}`)
	require.Equal(t, 200, status, "%s\n%s", raw, o.Logs())
	id, _ := body["requestId"].(string)
	status, _, raw, cookies := s.ownerCall(t, o, `{"action":"verify","requestId":"`+id+`","otp":"`+s.ownerCode(t)+`"}`)
	require.Equal(t, 200, status, "%s\n%s", raw, o.Logs())
	require.Len(t, cookies, 1, "the session cookie, in payload 2.0's cookies")
	return strings.TrimSpace(strings.Split(cookies[0], ";")[0])
}

// ownerPageFlow: the owner signs in with the code SES carried, sees a
// visitor's request for the second document, named so, downloads the
// CSV, erases the visitor and signs out.
func ownerPageFlow(t *testing.T, s *stack, rt runtimeKind) {
	id, v := s.verifiedRequestFor(t, rt, "portfolio")
	o := s.startOwner(t, rt)

	status, body, _, _ := s.ownerCall(t, o, `{"action":"list"}`)
	require.Equal(t, 401, status)
	assert.Equal(t, "session_required", body["error"])

	status, _, _, _ = s.ownerCall(t, o, `{"action":"sign-in","email":"stranger@example.net"}`)
	require.Equal(t, 200, status, "the same answer for any address")
	session := s.ownerSignIn(t, o)
	assert.True(t, strings.HasPrefix(session, "cv_owner=owner-"), session)

	status, body, raw, _ := s.ownerCall(t, o, `{"action":"list"}`, "other=1", session)
	require.Equal(t, 200, status, "%s\n%s", raw, o.Logs())
	assert.GreaterOrEqual(t, body["total"], float64(1))
	assert.Contains(t, raw, id)
	assert.Contains(t, raw, v.email)
	rows, _ := body["requests"].([]any)
	found := false
	for _, r := range rows {
		if row, _ := r.(map[string]any); row["requestId"] == id {
			found = true
			assert.Equal(t, "portfolio", row["document"], "the row names the document asked for")
		}
	}
	assert.True(t, found, "the list holds the request %s", id)
	status, _, raw, _ = s.ownerCall(t, o, `{"action":"csv"}`, session)
	require.Equal(t, 200, status, raw)
	assert.Contains(t, raw, v.email)

	status, body, raw, _ = s.ownerCall(t, o, `{"action":"erase","email":"`+strings.ToUpper(v.email)+`"}`, session)
	require.Equal(t, 200, status, "%s\n%s", raw, o.Logs())
	assert.EqualValues(t, 1, body["erased"])
	_, _, raw, _ = s.ownerCall(t, o, `{"action":"list"}`, session)
	assert.NotContains(t, raw, v.email)

	status, _, _, cookies := s.ownerCall(t, o, `{"action":"sign-out"}`, session)
	require.Equal(t, 200, status)
	require.Len(t, cookies, 1)
	assert.Contains(t, cookies[0], "Max-Age=0")
	status, _, _, _ = s.ownerCall(t, o, `{"action":"list"}`, session)
	assert.Equal(t, 401, status, "the session ended on the server")

	secrets := []string{s.env["CV_AWS_SECRET_ACCESS_KEY"]}
	if s.lambda != nil {
		secrets = []string{s.lambda.roles[ownerFunction].Secret, s.lambda.proxySecret}
	}
	flowtest.AssertAbsent(t, o.Logs(), append(secrets, v.email, strings.ToUpper(v.email), ownerEmail, "stranger@example.net", "Ada",
		strings.TrimPrefix(session, "cv_owner="))...)
}

// guideNetlifyOwner is the netlify target's guide with owner_email set:
// the packages first, for the notifier on Lambda (README, "The owner
// page"), then step 1's apply and step 3's environment, and the check.
var guideNetlifyOwner = []string{
	"cp infra/example.tfvars infra/terraform.tfvars",
	"make lambda-packages",
	"terraform -chdir=infra init",
	"(umask 077; terraform -chdir=infra apply)",
	"umask 077 && mkdir -p .local && terraform -chdir=infra output -raw netlify_env > .local/netlify.env",
	"(set -a; . ./.local/netlify.env; set +a; make aws-check)",
}

// Target netlify with owner_email: the owner page's function runs on
// Netlify beside the visitors' two, with their user's key, which may then
// scan the requests; `make aws-check` tries that Scan too.
func TestNetlifyTargetOwnerPageOnMoto(t *testing.T) {
	t.Parallel()
	tl := need(t)
	s := applyStack(t, context.Background(), tl, deployGuide{
		commands: guideNetlifyOwner,
		tfvars:   fmt.Sprintf("owner_email = %q\nlambda_architecture = \"x86_64\"\n", ownerEmail),
		env:      []string{"LAMBDA_ARCH=x86_64"},
		checked:  16,
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("moto's log:\n%s", s.moto.Logs())
		}
	})
	assert.Equal(t, ownerEmail, s.env["CV_OWNER_EMAIL"], "netlify_env carries the page's address")
	assert.Equal(t, repoDocuments, s.env["CV_DOCUMENTS"], "and the document list")
	t.Run("a request for the second document downloads that document", func(t *testing.T) {
		got, _ := s.documentFlow(t, runtimes[1], "portfolio", "portfolio.pdf")
		assert.Equal(t, portfolioBytes, string(got), "the portfolio's bytes, as Terraform uploaded them")
	})
	for _, rt := range runtimes {
		t.Run("the owner page under "+rt.name+" with the functions' key", func(t *testing.T) { ownerPageFlow(t, s, rt) })
	}
	t.Run("without the Scan, the list fails and says so", func(t *testing.T) {
		full := s.policy(t, "")
		s.fullPolicy, s.underTest = full, ""
		s.putPolicy(t, "", without(full, "dynamodb:Scan"))
		t.Cleanup(func() { s.putPolicy(t, "", full) })
		ownerSteps["dynamodb:Scan"](t, s)
	})
}

// ownerSteps are the owner function's parts of the flow each action of
// its role is needed for: without it, the step fails with a clear answer
// and a log line naming the action.
var ownerSteps = map[string]func(t *testing.T, s *stack){
	"dynamodb:TransactWriteItems": func(t *testing.T, s *stack) {
		// The sign-in code and its counters are one transaction.
		o := s.startOwner(t, runtimes[0])
		status, body, _, _ := s.ownerCall(t, o, `{"action":"sign-in","email":"`+ownerEmail+`"}`)
		assert.Equal(t, 500, status, "%v", body)
		assertLogged(t, o.Logs, "dynamodb:TransactWriteItems")
	},
	"dynamodb:GetItem": func(t *testing.T, s *stack) {
		// The code is read beside its attempt's count.
		o := s.startOwner(t, runtimes[0])
		status, body, _, _ := s.ownerCall(t, o, `{"action":"sign-in","email":"`+ownerEmail+`"}`)
		require.Equal(t, 200, status, "%v", body)
		status, body, _, _ = s.ownerCall(t, o, `{"action":"verify","requestId":"`+body["requestId"].(string)+`","otp":"`+s.ownerCode(t)+`"}`)
		assert.Equal(t, 500, status, "%v", body)
		assertLogged(t, o.Logs, "dynamodb:GetItem")
	},
	"dynamodb:UpdateItem": func(t *testing.T, s *stack) {
		// The right code is marked used with one conditional update.
		o := s.startOwner(t, runtimes[0])
		status, body, _, _ := s.ownerCall(t, o, `{"action":"sign-in","email":"`+ownerEmail+`"}`)
		require.Equal(t, 200, status, "%v", body)
		status, body, _, cookies := s.ownerCall(t, o, `{"action":"verify","requestId":"`+body["requestId"].(string)+`","otp":"`+s.ownerCode(t)+`"}`)
		assert.Equal(t, 500, status, "%v", body)
		assert.Empty(t, cookies, "no session without the code marked used")
		assertLogged(t, o.Logs, "dynamodb:UpdateItem")
	},
	"dynamodb:Scan": func(t *testing.T, s *stack) {
		o := s.startOwner(t, runtimes[0])
		session := s.ownerSignIn(t, o)
		status, body, _, _ := s.ownerCall(t, o, `{"action":"list"}`, session)
		assert.Equal(t, 500, status, "%v", body)
		assert.NotContains(t, body, "requests")
		assertLogged(t, o.Logs, "dynamodb:Scan")
	},
	"dynamodb:DeleteItem": func(t *testing.T, s *stack) {
		// Signing out deletes the session.
		o := s.startOwner(t, runtimes[0])
		session := s.ownerSignIn(t, o)
		status, body, _, _ := s.ownerCall(t, o, `{"action":"sign-out"}`, session)
		assert.Equal(t, 500, status, "%v", body)
		assertLogged(t, o.Logs, "dynamodb:DeleteItem")
		s.restorePolicy(t)
		status, _, _, _ = s.ownerCall(t, o, `{"action":"list"}`, session)
		assert.Equal(t, 200, status, "a sign-out that failed left the session as it was")
	},
	"ses:SendEmail": func(t *testing.T, s *stack) {
		o := s.startOwner(t, runtimes[0])
		status, body, _, _ := s.ownerCall(t, o, `{"action":"sign-in","email":"`+ownerEmail+`"}`)
		assert.Equal(t, 502, status, "%v", body)
		assert.Equal(t, "delivery_failed", body["error"])
		assertLogged(t, o.Logs, "ses:SendEmail")
	},
}
