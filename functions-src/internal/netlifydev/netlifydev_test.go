package netlifydev_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
)

func TestNetlifyDevRunsTheFlowOnTheEmulators(t *testing.T) {
	t.Parallel() // beside the AWS target's run (aws_test.go): each has its own stack and ports
	required := os.Getenv("CV_REQUIRE_NETLIFY") != ""
	root, err := emulators.FindRoot()
	require.NoError(t, err)
	cli := filepath.Join(root, "node_modules", ".bin", "netlify")
	if _, err := os.Stat(cli); err != nil {
		if required {
			t.Fatalf("netlify-cli is not installed (%v): run `npm ci`", err)
		}
		t.Skip("netlify-cli is not installed; `make test` installs it")
	}
	if _, err := os.Stat(filepath.Join(root, "site", "public", "cv", "index.html")); err != nil {
		t.Fatalf("site/public is not built: run `make site` (%v)", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	stack, err := emulators.Start(ctx, emulators.Options{Root: root})
	cancel()
	if err != nil && !required {
		t.Skipf("emulators did not start: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(stack.Stop)

	port := freePort(t)
	origin := fmt.Sprintf("http://localhost:%d", port)
	dep, err := stack.Deploy(context.Background(), "-netlify", nil)
	require.NoError(t, err)
	env := dep.Env
	env["CV_SITE_URL"] = origin
	env["CV_OTP_SECRET"] = strings.Repeat("n", 64)

	// The flags DESIGN.md notes for an offline machine: no Deno download.
	cmd := exec.Command(cli, "dev", "--offline", "--internal-disable-edge-functions", "--port", strconv.Itoa(port))
	cmd.Dir = root
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &flowtest.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("netlify dev output:\n%s", out.String())
		}
	})

	// netlify dev compiles both Go functions before it is ready.
	deadline := time.Now().Add(4 * time.Minute)
	for !strings.Contains(out.String(), "Loaded function verify-access") ||
		!strings.Contains(out.String(), "Loaded function request-access") {
		require.True(t, time.Now().Before(deadline), "netlify dev did not load both functions:\n%s", out.String())
		time.Sleep(500 * time.Millisecond)
	}

	resp, err := http.Get(origin + "/cv/")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(page), `autocomplete=one-time-code`)
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'", "netlify.toml headers apply to pages")

	email := fmt.Sprintf("netlify-%d@example.com", time.Now().UnixNano())
	status, body := postJSON(t, origin, "/api/request-access", `{"name":"Ada","email":"`+email+`","consent":true}`)
	require.Equal(t, 200, status, body)
	var issued struct{ RequestID string }
	require.NoError(t, json.Unmarshal([]byte(body), &issued))

	mails, err := stack.EmailsTo(context.Background(), email)
	require.NoError(t, err)
	require.Len(t, mails, 1)
	code := regexp.MustCompile(`\b[0-9]{6}\b`).FindString(mails[0].Body.Text)
	require.NotEmpty(t, code)

	status, body = postJSON(t, origin, "/.netlify/functions/verify-access", `{"requestId":"`+issued.RequestID+`","otp":"`+code+`"}`)
	require.Equal(t, 200, status, body)
	var grant struct{ RedirectURL string }
	require.NoError(t, json.Unmarshal([]byte(body), &grant))
	resp, err = http.Get(grant.RedirectURL)
	require.NoError(t, err)
	cv, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, embedded.SampleCV, cv)

	status, body = postJSON(t, origin, "/api/verify-access", `{"requestId":"`+issued.RequestID+`","otp":"`+code+`"}`)
	assert.Equal(t, 409, status, body)
}

// emulatorCrash is what netlify dev answers when its Lambda emulator for
// Go (Netlify's local-functions-proxy, built on an old copy of Amazon's
// RIE) panics in its own start-up, before the function runs: now and then
// under load, with a nil pointer in rapidcore.(*SandboxBuilder).Init.
const emulatorCrash = "rapidcore.(*SandboxBuilder).Init"

// postJSON posts body as the page does. An answer that is netlify dev's
// emulator crashing before the function ran is logged and retried once:
// the function never saw it. Any other answer is returned as it came.
func postJSON(t *testing.T, origin, path, body string) (int, string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequest(http.MethodPost, origin+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if attempt == 1 && resp.StatusCode == http.StatusInternalServerError && strings.Contains(string(b), emulatorCrash) {
			t.Logf("netlify dev's Lambda emulator crashed before %s ran; retrying once:\n%s", path, b)
			continue
		}
		assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "functions set their own headers")
		return resp.StatusCode, string(b)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
