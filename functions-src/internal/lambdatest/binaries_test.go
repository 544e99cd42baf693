package lambdatest_test

import (
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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
	"github.com/cv-access/cv-access/functions-src/internal/lambdatest"
)

var stack *emulators.Stack

func TestMain(m *testing.M) { emulators.RunTests(m, func(s *emulators.Stack) { stack = s }) }

// binary returns the path of a `make build` output, or skips when it is
// not built and the run did not require it (`make test` builds them).
func binary(t testing.TB, name string) string {
	t.Helper()
	root, err := emulators.FindRoot()
	require.NoError(t, err)
	path := filepath.Join(root, "netlify", "functions", name)
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CV_REQUIRE_BUILD") != "" {
			t.Fatalf("%s is not built (%v): run `make functions`", path, err)
		}
		t.Skipf("%s is not built; `make test` builds it", path)
	}
	return path
}

var (
	setupOnce  sync.Once
	deployment emulators.Deployment
)

// otpSecret is the functions' CV_OTP_SECRET in these tests.
var otpSecret = strings.Repeat("p", 64)

// prodEnv is the configuration a Netlify deploy would carry, pointed at
// the emulators, with tables and bucket made by the setup code.
func prodEnv(t testing.TB) []string {
	t.Helper()
	if stack == nil {
		t.Skip("the emulator stack is not running (see TestMain output)")
	}
	setupOnce.Do(func() {
		var err error
		deployment, err = stack.Deploy(context.Background(), "-bin", nil)
		require.NoError(t, err)
	})
	env := maps.Clone(deployment.Env)
	env["CV_SITE_URL"] = "https://cv.example.com"
	env["CV_OTP_SECRET"] = otpSecret
	out := []string{"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_FUNCTION_NAME=cv-access", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024"}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// function is a compiled function running under the fake Runtime API.
type function struct {
	rt      *lambdatest.Runtime
	cmd     *exec.Cmd
	stderr  *flowtest.Buffer
	started time.Time // when the process was spawned

	proxySecret string // target aws: what Netlify's proxy signs with
}

func start(t testing.TB, name string, env []string) *function {
	t.Helper()
	rt, err := lambdatest.Start()
	require.NoError(t, err)
	cmd := exec.Command(binary(t, name))
	cmd.Env = append(env, "AWS_LAMBDA_RUNTIME_API="+rt.Addr)
	f := &function{rt: rt, cmd: cmd, stderr: &flowtest.Buffer{}}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "CV_PROXY_SIGN_SECRET="); ok {
			f.proxySecret = v // target aws: events come as payload 2.0, signed
		}
	}
	cmd.Stderr = f.stderr
	f.started = time.Now()
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		rt.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return f
}

func (f *function) post(t testing.TB, body string) events.APIGatewayProxyResponse {
	t.Helper()
	return f.postWith(t, body, nil)
}

// postWith is post with extra headers, e.g. a cookie.
func (f *function) postWith(t testing.TB, body string, extra map[string]string) events.APIGatewayProxyResponse {
	t.Helper()
	headers := map[string]string{"content-type": "application/json", "x-nf-client-connection-ip": "203.0.113.9",
		"origin": "https://cv.example.com"}
	maps.Copy(headers, extra)
	ev, err := json.Marshal(events.APIGatewayProxyRequest{
		HTTPMethod: "POST", Path: "/.netlify/functions/x", Headers: headers, Body: body,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := f.rt.Invoke(ctx, ev)
	require.NoError(t, err, "function output: %s", f.stderr)
	require.False(t, res.Error, "the handler returned an error to the runtime: %s", res.Payload)
	var resp events.APIGatewayProxyResponse
	require.NoError(t, json.Unmarshal(res.Payload, &resp))
	return resp
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

func TestProductionBinariesAnswerOnTheEmulators(t *testing.T) {
	env := prodEnv(t)
	for _, name := range []string{"request-access", "verify-access"} {
		st, err := os.Stat(binary(t, name))
		require.NoError(t, err)
		t.Logf("%s: %.1f MB", name, float64(st.Size())/1e6)
		assert.Less(t, st.Size(), int64(15<<20), "a stripped function binary stays under 15 MB")
	}

	email := fmt.Sprintf("bin-%d@example.com", time.Now().UnixNano())
	ra := start(t, "request-access", env)
	resp := ra.post(t, `{"name":"Ada Lovelace","email":"`+email+`","phone":"+447400900123","consent":true}`)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	assert.Equal(t, "no-store", resp.Headers["Cache-Control"])
	var issued struct {
		Message   string `json:"message"`
		RequestID string `json:"requestId"`
		ExpiresIn int    `json:"expiresIn"`
	}
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &issued))
	assert.Equal(t, "OTP sent", issued.Message)
	assert.Equal(t, 600, issued.ExpiresIn)

	mails, err := stack.EmailsTo(context.Background(), email)
	require.NoError(t, err)
	require.Len(t, mails, 1)
	code := sixDigits.FindString(mails[0].Body.Text)
	require.NotEmpty(t, code)
	assert.Contains(t, mails[0].Body.Text, "https://cv.example.com/cv/")
	// The phone was given: the same code went by SMS too (request-access
	// links SNS and hands in its part).
	var texted []string
	for _, m := range stack.SNSFake.Messages() {
		if m.PhoneNumber == "+447400900123" && strings.Contains(m.Message, code) {
			texted = append(texted, m.Message)
		}
	}
	assert.Len(t, texted, 1, "the code is texted to the phone given")

	va := start(t, "verify-access", env)
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	resp = va.post(t, `{"requestId":"`+issued.RequestID+`","otp":"`+wrong+`"}`)
	assert.Equal(t, 400, resp.StatusCode)
	assert.Contains(t, resp.Body, `"attemptsLeft":4`)

	resp = va.post(t, `{"requestId":"`+issued.RequestID+`","otp":"`+code+`"}`)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	var grant struct {
		RedirectURL string `json:"redirectUrl"`
		ExpiresIn   int    `json:"expiresIn"`
	}
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &grant))
	assert.Equal(t, 120, grant.ExpiresIn)
	dl, err := http.Get(grant.RedirectURL)
	require.NoError(t, err)
	body, err := io.ReadAll(dl.Body)
	dl.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, 200, dl.StatusCode, string(body))
	assert.Equal(t, embedded.SampleCV, body)

	resp = va.post(t, `{"requestId":"`+issued.RequestID+`","otp":"`+code+`"}`)
	assert.Equal(t, 409, resp.StatusCode, "the same warm container refuses the replay")

	// The deployment's second document, through its own request only.
	second := fmt.Sprintf("bin2-%d@example.com", time.Now().UnixNano())
	resp = ra.post(t, `{"name":"Grace Hopper","email":"`+second+`","consent":true,"document":"portfolio"}`)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &issued))
	mails, err = stack.EmailsTo(context.Background(), second)
	require.NoError(t, err)
	require.Len(t, mails, 1)
	assert.Contains(t, mails[0].Subject, "Alex Sample's portfolio")
	assert.Contains(t, mails[0].Body.Text, "https://cv.example.com/portfolio/")
	resp = va.post(t, `{"requestId":"`+issued.RequestID+`","otp":"`+sixDigits.FindString(mails[0].Body.Text)+`","document":"cv"}`)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &grant))
	dl, err = http.Get(grant.RedirectURL)
	require.NoError(t, err)
	body, err = io.ReadAll(dl.Body)
	dl.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, emulators.SecondDocument, body, "the request's own document, whatever the page's hint")

	// The functions log JSON lines with the invocation id and no personal data.
	logs := ra.stderr.String() + va.stderr.String()
	assert.Contains(t, logs, `"fn":"request-access"`)
	assert.Contains(t, logs, `"fn":"verify-access"`)
	flowtest.AssertAbsent(t, logs, email, "Ada", "7400900123", code, "203.0.113.9", "X-Amz-Signature")
}

func TestProductionBinaryRefusesToGuessItsBackend(t *testing.T) {
	env := prodEnv(t)
	var without []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "CV_BACKEND=") {
			without = append(without, kv)
		}
	}
	f := start(t, "verify-access", without)
	done := make(chan error, 1)
	go func() { done <- f.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		assert.Equal(t, 1, exit.ExitCode())
	case <-time.After(10 * time.Second):
		t.Fatal("the function started without CV_BACKEND on Lambda")
	}
	assert.Contains(t, f.stderr.String(), "CV_BACKEND is not set")
}
