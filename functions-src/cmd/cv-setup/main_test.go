package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/emulators"
)

var stack *emulators.Stack

func TestMain(m *testing.M) { emulators.RunTests(m, func(s *emulators.Stack) { stack = s }) }

// deployed sets the process environment (the SDK reads its endpoint
// variables from there) to a deployment on the emulators, the way Netlify
// would hold the functions' settings, and returns it.
func deployed(t *testing.T, suffix string) map[string]string {
	t.Helper()
	if stack == nil {
		t.Skip("the emulator stack is not running (see TestMain output); `make test` starts it")
	}
	dep, err := stack.Deploy(context.Background(), suffix, nil)
	require.NoError(t, err)
	for k, v := range dep.Env {
		t.Setenv(k, v)
	}
	return dep.Env
}

func cvSetup(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, os.Getenv, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckOnTheEmulators(t *testing.T) {
	deployed(t, "-cmd-check")
	code, out, errOut := cvSetup("check")
	t.Logf("cv-setup check:\n%s%s", out, errOut)
	assert.Equal(t, 0, code)
	assert.Empty(t, errOut)
	assert.Equal(t, 15, strings.Count(out, "\nok     "), "one line per permission")
	assert.Contains(t, out, "cv-setup check: region eu-west-1, with the functions' keys in CV_AWS_ACCESS_KEY_ID\n")
	assert.True(t, strings.HasSuffix(out, "cv-setup check: all 15 permissions the functions use are granted\n"))
}

func TestCheckFailsNamingTheDeniedPermission(t *testing.T) {
	deployed(t, "-cmd-denied")
	t.Setenv("AWS_ENDPOINT_URL_SNS", emulators.StandIn(t, "", func(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
		emulators.SNSError(w, http.StatusForbidden, "AuthorizationError",
			"User: arn:aws:iam::123456789012:user/cv-functions is not authorized to perform: SNS:Publish on resource: +0")
		return true
	}))
	code, out, errOut := cvSetup("check")
	t.Logf("cv-setup check:\n%s%s", out, errOut)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "\nDENIED sns:Publish to a phone number (AuthorizationError; ")
	assert.Equal(t, 14, strings.Count(out, "\nok     "))
	assert.Contains(t, out, "cv-setup check: 1 of 15 not ok. To fix:\n"+
		"  - allow sns:Publish to a phone number in the functions' IAM policy\n")
	assert.Equal(t, "cv-setup: 1 of 15 permissions not ok\n", errOut)
}

// Without the functions' key the SDK's default credentials (most often
// the administrator's) would pass every check: check refuses, unless told
// that the default credentials are the functions' own.
func TestCheckNeedsTheFunctionsKeyOrTheFlag(t *testing.T) {
	deployed(t, "-cmd-nokey")
	t.Setenv("AWS_ACCESS_KEY_ID", os.Getenv("CV_AWS_ACCESS_KEY_ID"))
	t.Setenv("AWS_SECRET_ACCESS_KEY", os.Getenv("CV_AWS_SECRET_ACCESS_KEY"))
	t.Setenv("CV_AWS_ACCESS_KEY_ID", "")
	t.Setenv("CV_AWS_SECRET_ACCESS_KEY", "")

	code, out, errOut := cvSetup("check")
	assert.Equal(t, 1, code)
	assert.Empty(t, out, "nothing tried")
	assert.Equal(t, "cv-setup: CV_AWS_ACCESS_KEY_ID is not set: check tests the functions' permissions with their key; "+
		"set CV_AWS_ACCESS_KEY_ID and CV_AWS_SECRET_ACCESS_KEY to the functions' key, as in Netlify "+
		"(or, if the functions get their credentials from a role, run check -default-credentials as that role)\n", errOut)

	code, out, errOut = cvSetup("check", "-default-credentials")
	t.Logf("cv-setup check -default-credentials:\n%s%s", out, errOut)
	assert.Equal(t, 0, code)
	assert.Empty(t, errOut)
	assert.True(t, strings.HasPrefix(out, "cv-setup check: region eu-west-1, with the SDK's default credentials "+
		"(-default-credentials): the results are the functions' only if these are theirs\n"))
	assert.True(t, strings.HasSuffix(out, "cv-setup check: all 15 permissions the functions use are granted\n"))

	t.Setenv("CV_AWS_ACCESS_KEY_ID", os.Getenv("AWS_ACCESS_KEY_ID"))
	t.Setenv("CV_AWS_SECRET_ACCESS_KEY", os.Getenv("AWS_SECRET_ACCESS_KEY"))
	code, out, errOut = cvSetup("check", "-default-credentials")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "-default-credentials: CV_AWS_ACCESS_KEY_ID is set")
}

func TestCheckNeedsTheSender(t *testing.T) {
	deployed(t, "-cmd-nosender")
	t.Setenv("CV_MAIL_FROM", "")
	code, _, errOut := cvSetup("check")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "CV_MAIL_FROM is not set")
}

func TestSetupNeedsNoneOfTheFunctionsOwnSettings(t *testing.T) {
	env := deployed(t, "-cmd-setup")
	for _, k := range []string{"CV_OTP_SECRET", "CV_SITE_URL", "CV_OWNER_NAME", "CV_MAIL_FROM"} {
		t.Setenv(k, "")
	}
	code, out, errOut := cvSetup()
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "cv-setup: region eu-west-1, tables "+env["CV_TABLE_REQUESTS"]+", "+env["CV_TABLE_OTPS"]+
		" and "+env["CV_TABLE_LIMITS"]+", bucket "+env["CV_S3_BUCKET"]+"\n")
	assert.Contains(t, out, `document "cv" present at s3://`+env["CV_S3_BUCKET"]+"/cv.pdf")

	t.Setenv("CV_BACKEND", "")
	code, _, errOut = cvSetup()
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "set CV_BACKEND=aws")
}

func TestSetupWithTheFunctionsKeysSaysWhy(t *testing.T) {
	deployed(t, "-cmd-keys")
	// AWS refuses the functions' user everything setup does first.
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", emulators.StandIn(t, stack.DynamoDB, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		op, _ := emulators.DynamoDBOperation(r, body)
		if op != "CreateTable" {
			return false
		}
		emulators.DynamoDBError(w, http.StatusBadRequest, "AccessDeniedException",
			"User: arn:aws:iam::123456789012:user/cv-functions is not authorized to perform: dynamodb:CreateTable")
		return true
	}))
	const why = "cv-setup runs with CV_AWS_ACCESS_KEY_ID (the functions' keys, which may not create tables); " +
		"unset CV_AWS_ACCESS_KEY_ID and CV_AWS_SECRET_ACCESS_KEY to use your administrator credentials"
	code, _, errOut := cvSetup()
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "AccessDeniedException")
	assert.Contains(t, errOut, why)

	// With the SDK's own credentials (the administrator's), a refusal is
	// just a refusal.
	t.Setenv("AWS_ACCESS_KEY_ID", os.Getenv("CV_AWS_ACCESS_KEY_ID"))
	t.Setenv("AWS_SECRET_ACCESS_KEY", os.Getenv("CV_AWS_SECRET_ACCESS_KEY"))
	t.Setenv("CV_AWS_ACCESS_KEY_ID", "")
	t.Setenv("CV_AWS_SECRET_ACCESS_KEY", "")
	code, _, errOut = cvSetup()
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "AccessDeniedException")
	assert.NotContains(t, errOut, "CV_AWS_ACCESS_KEY_ID")
}

func TestArguments(t *testing.T) {
	code, _, errOut := cvSetup("check", "now")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "check takes no arguments but -default-credentials")
	code, _, errOut = cvSetup("check", "-sample")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "flag provided but not defined: -sample")
	code, _, errOut = cvSetup("chek")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `unexpected argument "chek"`)
}
