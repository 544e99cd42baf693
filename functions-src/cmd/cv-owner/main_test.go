package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/ownercsv"
)

var stack *emulators.Stack

func TestMain(m *testing.M) { emulators.RunTests(m, func(s *emulators.Stack) { stack = s }) }

// ownerEnv are the settings Terraform's owner_env output gives cv-owner:
// these and no others.
var ownerEnv = []string{
	"CV_BACKEND", "CV_AWS_REGION", "CV_S3_BUCKET",
	"CV_TABLE_REQUESTS", "CV_TABLE_OTPS", "CV_TABLE_LIMITS",
	"CV_AWS_ACCESS_KEY_ID", "CV_AWS_SECRET_ACCESS_KEY",
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// addRequest stores a pending request with its code.
func addRequest(t *testing.T, s access.Store, id, name, email string) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	r := access.Request{ID: id, Name: name, Email: email, Status: access.StatusPending,
		Consent: access.Consent{PolicyVersion: "2026-11-24", At: now}, CreatedAt: now, DeleteAt: now.Add(time.Hour)}
	c := access.Code{RequestID: id, Hash: []byte("h"), ExpiresAt: now.Add(time.Minute), SentAt: now, DeleteAt: now.Add(time.Hour)}
	require.NoError(t, s.CreateRequest(context.Background(), r, c, nil))
}

func TestListAndEraseOnAWSWithOnlyTheOwnerEnv(t *testing.T) {
	if stack == nil {
		t.Skip("the emulator stack is not running (see TestMain output); `make test` starts it")
	}
	ctx := context.Background()
	dep, err := stack.Deploy(ctx, "-cmd-owner", nil)
	require.NoError(t, err)
	b, err := awsbackend.New(ctx, dep.Config, time.Now)
	require.NoError(t, err)
	addRequest(t, b.Store, "5a0f3c1e-2b4d-4e6f-8a9b-0c1d2e3f4a5b", "Ada Lovelace", "ada@example.com")
	addRequest(t, b.Store, "7c2e4a6b-8d0f-4a1c-9e3b-5d7f9a1c3e5b", "Grace Hopper", "grace@example.com")

	env := ownerEnvOf(t, dep.Env)

	var out bytes.Buffer
	require.NoError(t, run([]string{"list"}, envOf(env), &out), "no CV_SITE_URL, CV_OWNER_NAME, CV_MAIL_FROM or CV_OTP_SECRET needed")
	var recs []ownercsv.Record
	require.NoError(t, json.Unmarshal(out.Bytes(), &recs))
	require.Len(t, recs, 2)
	assert.ElementsMatch(t, []string{"ada@example.com", "grace@example.com"}, []string{recs[0].Email, recs[1].Email})

	out.Reset()
	require.NoError(t, run([]string{"erase", "-email", "ADA@example.com"}, envOf(env), &out))
	assert.Equal(t, "erased 1 request(s) made with that inbox, in any spelling\n", out.String())
	out.Reset()
	require.NoError(t, run([]string{"list", "-format", "csv"}, envOf(env), &out))
	assert.NotContains(t, out.String(), "ada@example.com")
	assert.Contains(t, out.String(), "grace@example.com")

	delete(env, "CV_AWS_SECRET_ACCESS_KEY")
	err = run([]string{"list"}, envOf(env), &out)
	require.Error(t, err, "a half-set key is still refused")
	assert.Contains(t, err.Error(), "CV_AWS_SECRET_ACCESS_KEY")
}

// ownerEnvOf is owner_env's lines of a deployment's settings, and the
// emulators' endpoints (which the SDK reads from the process environment,
// as it would in a shell).
func ownerEnvOf(t *testing.T, deployed map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, k := range ownerEnv {
		require.NotEmpty(t, deployed[k], k)
		env[k] = deployed[k]
	}
	for k, v := range deployed {
		if strings.HasPrefix(k, "AWS_ENDPOINT_URL_") {
			env[k] = v
			t.Setenv(k, v)
		}
	}
	return env
}

// Run with a key whose policy lacks Scan (the functions' key, say), the
// refusal says to use the owner's key, never to widen the functions'
// policy.
func TestARefusalNamesTheOwnersKey(t *testing.T) {
	if stack == nil {
		t.Skip("the emulator stack is not running (see TestMain output); `make test` starts it")
	}
	dep, err := stack.Deploy(context.Background(), "-cmd-owner-denied", nil)
	require.NoError(t, err)
	env := ownerEnvOf(t, dep.Env)
	denied := emulators.StandIn(t, stack.DynamoDB, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if op, _ := emulators.DynamoDBOperation(r, body); op != "Scan" {
			return false
		}
		emulators.DynamoDBError(w, http.StatusBadRequest, "AccessDeniedException",
			"User: arn:aws:iam::123456789012:user/cv-functions is not authorized to perform: dynamodb:Scan")
		return true
	})
	env["AWS_ENDPOINT_URL_DYNAMODB"] = denied
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", denied)
	for _, args := range [][]string{{"list"}, {"erase", "-email", "ada@example.com"}} {
		err := run(args, envOf(env), io.Discard)
		require.Error(t, err, "%v", args)
		assert.Contains(t, err.Error(), "AWS denied dynamodb:Scan (AccessDeniedException): run cv-owner with the owner's key")
		assert.NotContains(t, err.Error(), "functions'")
	}
}

func TestLocalModeNeedsNoneOfTheFunctionsSettings(t *testing.T) {
	dir := t.TempDir()
	s, err := embedded.OpenStore(filepath.Join(dir, "cv-access.db"))
	require.NoError(t, err)
	addRequest(t, s, "6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01", "Ada Lovelace", "ada@example.com")

	// The functions would refuse this secret; the owner's tool never reads it.
	for _, env := range []map[string]string{
		{"CV_DATA_DIR": dir},
		{"CV_BACKEND": "local", "CV_DATA_DIR": dir, "CV_OTP_SECRET": "too-short"},
	} {
		var out bytes.Buffer
		require.NoError(t, run([]string{"list"}, envOf(env), &out), "%v", env)
		assert.Contains(t, out.String(), "ada@example.com")
	}
	_, err = os.Stat(filepath.Join(dir, "otp-secret"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no dev secret made")

	var out bytes.Buffer
	require.NoError(t, run([]string{"erase", "-email", "ada@example.com"}, envOf(map[string]string{"CV_DATA_DIR": dir}), &out))
	assert.Contains(t, out.String(), "erased 1 request")
}

func TestListAndEraseOnTheEmbeddedStore(t *testing.T) {
	s := localStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	add := func(id, name, email string) {
		r := access.Request{ID: id, Name: name, Email: email, Phone: "+447400900123", Status: access.StatusPending,
			Consent: access.Consent{PolicyVersion: "2026-11-24", At: now}, CreatedAt: now, DeleteAt: now.Add(time.Hour)}
		c := access.Code{RequestID: id, Hash: []byte("h"), ExpiresAt: now.Add(time.Minute), SentAt: now, DeleteAt: now.Add(time.Hour)}
		require.NoError(t, s.CreateRequest(context.Background(), r, c, nil))
	}
	add("6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01", "=HYPERLINK(\"http://evil.example\",\"x\")", "ada@example.com")
	add("0b7e2d1f-5a4c-4e3b-8f2a-9c8d7e6f5a4b", "Grace Hopper", "grace@example.com")
	add("9d3c1b2a-1111-4a2b-8c3d-4e5f6a7b8c9d", "Mallory", "=cmd|'/c calc'!a0@example.com")

	var out bytes.Buffer
	require.NoError(t, run([]string{"list"}, os.Getenv, &out))
	var recs []ownercsv.Record
	require.NoError(t, json.Unmarshal(out.Bytes(), &recs))
	require.Len(t, recs, 3)
	assert.Equal(t, "2026-11-24", recs[0].PolicyVersion)
	assert.Equal(t, now.Format(time.RFC3339), recs[0].ConsentAt)

	out.Reset()
	require.NoError(t, run([]string{"list", "-format", "csv"}, os.Getenv, &out))
	rows, err := csv.NewReader(&out).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 4)
	assert.Equal(t, "name", rows[0][3])
	names := []string{rows[1][3], rows[2][3], rows[3][3]}
	for _, row := range rows[1:] {
		assert.NotRegexp(t, `^[=+\-@]`, row[4], "the email column is defused too")
	}
	assert.Contains(t, names, `'=HYPERLINK("http://evil.example","x")`, "a formula is defused")
	assert.Contains(t, names, "Grace Hopper")

	out.Reset()
	require.NoError(t, run([]string{"erase", "-email", "Ada@EXAMPLE.com"}, os.Getenv, &out))
	assert.Contains(t, out.String(), "erased 1 request")
	out.Reset()
	require.NoError(t, run([]string{"list"}, os.Getenv, &out))
	assert.NotContains(t, out.String(), "ada@example.com")
	assert.Contains(t, out.String(), "grace@example.com")

	assert.Error(t, run([]string{"erase", "-email", "not an address"}, os.Getenv, &out))
	assert.Error(t, run([]string{"list", "-format", "xml"}, os.Getenv, &out))
	assert.Error(t, run(nil, os.Getenv, &out))
}

func TestCSVDefusesEveryVisitorColumn(t *testing.T) {
	s := localStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	columns := map[string]int{"name": 3, "email": 4, "phone": 5, "company": 6, "location": 7}
	want := map[string]string{} // request id -> the defused cell
	for col := range columns {
		for _, trigger := range []string{"=", "+", "-", "@", "\t", "\r"} {
			id := uuid.NewString()
			v := trigger + "1+1"
			r := access.Request{ID: id, Name: "Ada", Email: "ada@example.com", Status: access.StatusPending,
				Consent: access.Consent{PolicyVersion: "2026-11-24", At: now}, CreatedAt: now, DeleteAt: now.Add(time.Hour)}
			switch col {
			case "name":
				r.Name = v
			case "email":
				r.Email = v
			case "phone":
				r.Phone = v
			case "company":
				r.Company = v
			case "location":
				r.Location = v
			}
			c := access.Code{RequestID: id, Hash: []byte("h"), ExpiresAt: now.Add(time.Minute), SentAt: now, DeleteAt: now.Add(time.Hour)}
			require.NoError(t, s.CreateRequest(context.Background(), r, c, nil))
			want[id+" "+col] = "'" + v
		}
	}

	var out bytes.Buffer
	require.NoError(t, run([]string{"list", "-format", "csv"}, os.Getenv, &out))
	rows, err := csv.NewReader(&out).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 31)
	for _, row := range rows[1:] {
		for col, i := range columns {
			if w, ok := want[row[0]+" "+col]; ok {
				assert.Equal(t, w, row[i], "%s column", col)
			}
		}
	}
}

// localStore points cv-owner at a fresh embedded store and returns it.
func localStore(t *testing.T) *embedded.Store {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("CV_BACKEND", "local")
	t.Setenv("CV_DATA_DIR", dir)
	s, err := embedded.OpenStore(dir + "/cv-access.db")
	require.NoError(t, err)
	return s
}
