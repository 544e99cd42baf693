package infratest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// policy reads an identity's inline policy as moto holds it: the
// functions' user's (who is "") or a function's execution role's.
func (s *stack) policy(t *testing.T, who string) map[string]any {
	t.Helper()
	var doc string
	if who == "" {
		out, err := s.moto.IAM(s.moto.Admin).GetUserPolicy(context.Background(), &iam.GetUserPolicyInput{
			UserName: aws.String("cv-access-functions"), PolicyName: aws.String("cv-access-functions"),
		})
		require.NoError(t, err)
		doc = aws.ToString(out.PolicyDocument)
	} else {
		out, err := s.moto.IAM(s.moto.Admin).GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{
			RoleName: aws.String("cv-access-" + who), PolicyName: aws.String("cv-access-" + who),
		})
		require.NoError(t, err)
		doc = aws.ToString(out.PolicyDocument)
	}
	if strings.HasPrefix(doc, "%") { // IAM answers it URL-encoded
		var err error
		doc, err = url.QueryUnescape(doc)
		require.NoError(t, err)
	}
	var p map[string]any
	require.NoError(t, json.Unmarshal([]byte(doc), &p))
	return p
}

func (s *stack) putPolicy(t *testing.T, who string, p map[string]any) {
	t.Helper()
	b, err := json.Marshal(p)
	require.NoError(t, err)
	if who == "" {
		_, err = s.moto.IAM(s.moto.Admin).PutUserPolicy(context.Background(), &iam.PutUserPolicyInput{
			UserName: aws.String("cv-access-functions"), PolicyName: aws.String("cv-access-functions"),
			PolicyDocument: aws.String(string(b)),
		})
	} else {
		_, err = s.moto.IAM(s.moto.Admin).PutRolePolicy(context.Background(), &iam.PutRolePolicyInput{
			RoleName: aws.String("cv-access-" + who), PolicyName: aws.String("cv-access-" + who),
			PolicyDocument: aws.String(string(b)),
		})
	}
	require.NoError(t, err)
}

// restorePolicy gives the identity under test its full policy back.
func (s *stack) restorePolicy(t *testing.T) {
	t.Helper()
	s.putPolicy(t, s.underTest, s.fullPolicy)
}

// actions lists every action the policy allows, once each.
func actions(p map[string]any) []string {
	var out []string
	for _, st := range p["Statement"].([]any) {
		switch a := st.(map[string]any)["Action"].(type) {
		case string:
			out = append(out, a)
		case []any:
			for _, x := range a {
				out = append(out, x.(string))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// without is p with action taken out of every statement (a statement left
// with none is dropped).
func without(p map[string]any, action string) map[string]any {
	b, _ := json.Marshal(p)
	var q map[string]any
	_ = json.Unmarshal(b, &q)
	var kept []any
	for _, st := range q["Statement"].([]any) {
		m := st.(map[string]any)
		var acts []any
		switch a := m["Action"].(type) {
		case string:
			acts = []any{a}
		case []any:
			acts = a
		}
		acts = slices.DeleteFunc(acts, func(x any) bool { return x == action })
		if len(acts) > 0 {
			m["Action"] = acts
			kept = append(kept, m)
		}
	}
	q["Statement"] = kept
	return q
}

// check runs `cv-setup check` (make aws-check) as an owner would, with the
// functions' settings from netlify_env.
func (s *stack) check(t *testing.T) (string, bool) {
	t.Helper()
	cmd := exec.Command(command(t, s.root, "cv-setup"), "check")
	cmd.Env = s.functionEnv("cv-setup")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("cv-setup check did not run: %v", err)
	}
	return buf.String(), err == nil
}

var checkLine = regexp.MustCompile(`(?m)^(ok|DENIED|FAILED) +(\S+)`)

// verdicts maps each action the check names to its worst verdict.
func verdicts(out string) map[string]string {
	v := map[string]string{}
	for _, m := range checkLine.FindAllStringSubmatch(out, -1) {
		if v[m[2]] == "" || v[m[2]] == "ok" {
			v[m[2]] = m[1]
		}
	}
	return v
}

// leastPrivilege takes each action out of the functions' policy in turn:
// the check names it, and the step of the flow that needs it fails with a
// clear answer and log line (never a hang or a panic).
func leastPrivilege(t *testing.T, s *stack) {
	full := s.policy(t, "")
	s.fullPolicy, s.underTest = full, ""
	all := actions(full)
	t.Logf("the functions' policy on moto allows: %s", strings.Join(all, ", "))

	out, ok := s.check(t)
	require.True(t, ok, "cv-setup check with every permission:\n%s", out)
	v := verdicts(out)
	for _, a := range all {
		assert.Equal(t, "ok", v[a], "the check tries %s\n%s", a, out)
	}
	if path := os.Getenv("CV_CHECK_OUTPUT"); path != "" { // to refresh the README's quote
		require.NoError(t, os.WriteFile(path, []byte(out), 0o644))
	}
	assert.Equal(t, checkQuote(t, s.root), out, "README.md quotes this output (CV_CHECK_OUTPUT=file writes it)")

	for _, action := range all {
		t.Run("without "+action, func(t *testing.T) {
			s.putPolicy(t, "", without(full, action))
			t.Cleanup(func() { s.putPolicy(t, "", full) })

			out, ok := s.check(t)
			assert.False(t, ok, "the check fails without %s:\n%s", action, out)
			v := verdicts(out)
			assert.Equal(t, "DENIED", v[action], "the check names %s:\n%s", action, out)
			for a, verdict := range v {
				if a != action {
					assert.Equal(t, "ok", verdict, "only %s is named:\n%s", action, out)
				}
			}

			step, ok := steps[action]
			if !ok {
				t.Logf("%s: named by the check only; moto authorises it inside transactions as the transaction's own action, "+
					"so no step of the flow can show its absence here (the plan test checks AWS gets it)", action)
				return
			}
			step(t, s)
		})
	}
}

// steps are the parts of the flow each action is needed for, and what a
// visitor and the log see without it.
var steps = map[string]func(t *testing.T, s *stack){
	"dynamodb:TransactWriteItems": func(t *testing.T, s *stack) {
		p := s.start(t, runtimes[0])
		v := newVisitor()
		status, body := s.post(t, p.request, v.ip, v.requestBody())
		assert.Equal(t, 500, status, "%v", body)
		assert.Equal(t, "internal", body["error"])
		assertLogged(t, p.request.Logs, "dynamodb:TransactWriteItems")
	},
	"dynamodb:TransactGetItems": func(t *testing.T, s *stack) {
		p := s.start(t, runtimes[0])
		id := s.issued(t, p)
		status, body := s.post(t, p.request, "198.51.100.250", `{"requestId":"`+id+`","resend":true}`)
		assert.Equal(t, 500, status, "a resend reads the request and code first: %v", body)
		assertLogged(t, p.request.Logs, "dynamodb:TransactGetItems")
	},
	"dynamodb:GetItem": func(t *testing.T, s *stack) {
		p := s.start(t, runtimes[0])
		id := s.issued(t, p)
		status, body := s.post(t, p.verify, "198.51.100.251", `{"requestId":"`+id+`","otp":"123456"}`)
		assert.Equal(t, 500, status, "%v", body)
		assertLogged(t, p.verify.Logs, "dynamodb:GetItem")
	},
	"ses:SendEmail": func(t *testing.T, s *stack) {
		p := s.start(t, runtimes[0])
		v := newVisitor()
		status, body := s.post(t, p.request, v.ip, `{"name":"Ada","email":"`+v.email+`","consent":true}`)
		assert.Equal(t, 502, status, "%v", body)
		assert.Equal(t, "delivery_failed", body["error"])
		assertLogged(t, p.request.Logs, "ses:SendEmail")
	},
	"sns:Publish": func(t *testing.T, s *stack) {
		// By design the code still goes by email, so the visitor gets
		// 200; the log says the text failed, and why.
		p := s.start(t, runtimes[0])
		v := newVisitor()
		status, body := s.post(t, p.request, v.ip, v.requestBody())
		assert.Equal(t, 200, status, "%v", body)
		_, texted := s.code(t, v)
		assert.False(t, texted)
		assertLogged(t, p.request.Logs, "sns:Publish", "WARN")
	},
	"s3:GetObject": func(t *testing.T, s *stack) {
		p := s.start(t, runtimes[0])
		v := newVisitor()
		status, body := s.post(t, p.request, v.ip, v.requestBody())
		require.Equal(t, 200, status, "%v", body)
		id := body["requestId"].(string)
		code, _ := s.code(t, v)
		status, body = s.post(t, p.verify, v.ip, `{"requestId":"`+id+`","otp":"`+code+`"}`)
		assert.Equal(t, 503, status, "%v", body)
		assert.Equal(t, "download_unavailable", body["error"])
		assertLogged(t, p.verify.Logs, "s3:GetObject")

		s.restorePolicy(t)
		status, body = s.post(t, p.verify, v.ip, `{"requestId":"`+id+`","otp":"`+code+`"}`)
		assert.Equal(t, 200, status, "the code was not spent: once the permission is back it works: %v", body)
	},
}

// issued makes a request with every permission's effect as it is now and
// returns its id (the caller has taken a read permission away, which
// issuing does not need).
func (s *stack) issued(t *testing.T, p pair) string {
	t.Helper()
	v := newVisitor()
	status, body := s.post(t, p.request, v.ip, v.requestBody())
	require.Equal(t, 200, status, "%v", body)
	return body["requestId"].(string)
}

// assertLogged checks that the function said, in one line at level
// (ERROR unless given), that AWS refused it the action, by name.
// The function's output reaches us through a pipe, so a line can arrive
// just after the answer: wait a moment for it.
func assertLogged(t *testing.T, logs func() string, action string, level ...string) {
	t.Helper()
	lvl := "ERROR"
	if len(level) > 0 {
		lvl = level[0]
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		for _, line := range strings.Split(logs(), "\n") {
			if strings.Contains(line, `"level":"`+lvl+`"`) && strings.Contains(line, "AWS denied "+action+" ") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("no %s line says AWS denied %s:\n%s", lvl, action, logs())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
