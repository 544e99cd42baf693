package netlifydev_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
	"github.com/cv-access/cv-access/functions-src/internal/httpapi"
	"github.com/cv-access/cv-access/functions-src/internal/lambdatest"
	"github.com/cv-access/cv-access/functions-src/internal/proxysign/proxysigntest"
	"github.com/cv-access/cv-access/functions-src/internal/sitebuild"
)

const (
	awsSiteID = "0c5e7a1b-6d2f-4e8a-9b3c-1f2e3d4c5b6a" // what NETLIFY_SITE_ID hands netlify dev
	// CV_RATE_IP_PER_HOUR in this test. Calls through netlify dev carry
	// no visitor address, so they all share the one "unknown" budget:
	// each subtest going through netlify dev spends from these 3.
	perNetwork    = 3
	signSecretLen = 64
)

var awsSignSecret = strings.Repeat("s", signSecretLen)

// awsOwner is the owner's address (CV_OWNER_EMAIL) in this test.
var awsOwner = fmt.Sprintf("owner-%d@example.com", time.Now().UnixNano())

// The AWS target end to end: netlify dev serves a site built with
// CV_API_ORIGIN pointing at the HTTP API stand-in (httpapi), whose routes
// run the compiled binaries with the signed-proxy gate on, against the
// emulators. netlify dev compiles no function here: its functions folder
// is an empty temporary one.
func TestAWSTargetThroughNetlifyDevsSignedProxy(t *testing.T) {
	t.Parallel()
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
	bins := map[string]string{}
	for _, name := range []string{"request-access", "verify-access", "owner"} {
		bins[name] = filepath.Join(root, "netlify", "functions", name)
		if _, err := os.Stat(bins[name]); err != nil {
			if os.Getenv("CV_REQUIRE_BUILD") != "" {
				t.Fatalf("%s is not built (%v): run `make functions`", bins[name], err)
			}
			t.Skipf("%s is not built; `make test` builds it", bins[name])
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	stack, err := emulators.Start(ctx, emulators.Options{Root: root})
	cancel()
	if err != nil && !required {
		t.Skipf("emulators did not start: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(stack.Stop)
	dep, err := stack.Deploy(context.Background(), "-aws-proxy", nil)
	require.NoError(t, err)

	port := freePort(t)
	origin := fmt.Sprintf("http://localhost:%d", port)

	// The functions, as Lambda runs them on the AWS target: gate on, the
	// dev deploy context's proxy admitted (netlify dev signs with "dev").
	env := []string{"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_FUNCTION_NAME=cv-access", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024"}
	for k, v := range dep.Env {
		env = append(env, k+"="+v)
	}
	env = append(env, "CV_SITE_URL="+origin, "CV_OTP_SECRET="+strings.Repeat("a", 64),
		"CV_PROXY_SIGN_SECRET="+awsSignSecret, "CV_NETLIFY_SITE_ID="+awsSiteID, "CV_NETLIFY_DEPLOY_CONTEXT=dev",
		"CV_RATE_IP_PER_HOUR="+strconv.Itoa(perNetwork), "CV_OWNER_EMAIL="+awsOwner)
	api := &httpapi.API{Routes: map[string]httpapi.Function{}, APIID: "local"}
	var procs []*lambdatest.Process
	for name, bin := range bins {
		p, err := lambdatest.Run(bin, env)
		require.NoError(t, err)
		procs = append(procs, p)
		t.Cleanup(p.Stop)
		api.Routes["/"+name] = p
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	apiSrv := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = apiSrv.Serve(ln) }()
	t.Cleanup(func() { _ = apiSrv.Close() })
	apiOrigin := "http://" + ln.Addr().String()

	// The site for the AWS target, and a project folder for netlify dev:
	// the repository's netlify.toml with [dev] pointed at that site and at
	// an empty functions folder.
	project := t.TempDir()
	site := filepath.Join(project, "public")
	bctx, bcancel := context.WithTimeout(context.Background(), time.Minute)
	require.NoError(t, sitebuild.Build(bctx, root, site, map[string]string{"CV_API_ORIGIN": apiOrigin}))
	bcancel()
	toml, err := os.ReadFile(filepath.Join(root, "netlify.toml"))
	require.NoError(t, err)
	devToml := string(toml)
	for _, r := range [][2]string{
		{`functions = "functions-src"`, `functions = "functions"`},
		{`publish = "site/public"` + "\n  autoLaunch", `publish = "public"` + "\n  autoLaunch"},
	} {
		require.Contains(t, devToml, r[0], "netlify.toml's [dev] section changed: update this test")
		devToml = strings.Replace(devToml, r[0], r[1], 1)
	}
	require.NoError(t, os.WriteFile(filepath.Join(project, "netlify.toml"), []byte(devToml), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(project, "functions"), 0o755))
	// netlify dev signs with the variable a rule names only when it is in
	// its own env (netlify.toml, the UI or a .env file), never from the
	// process's environment (netlify-cli 26: dist/utils/proxy.js reads
	// env[match.signingSecret] from @netlify/config's sources): the .env
	// file is what makes it sign.
	require.NoError(t, os.WriteFile(filepath.Join(project, ".env"), []byte("CV_PROXY_SIGN_SECRET="+awsSignSecret+"\n"), 0o600))

	cmd := exec.Command(cli, "dev", "--offline", "--internal-disable-edge-functions", "--port", strconv.Itoa(port))
	cmd.Dir = project
	// Offline, the site id comes from NETLIFY_SITE_ID (or .netlify/state.json):
	// without one the token carries no netlify_id and the gate refuses it.
	cmd.Env = append(os.Environ(), "NETLIFY_SITE_ID="+awsSiteID, "CV_PROXY_SIGN_SECRET="+awsSignSecret)
	out := &flowtest.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("netlify dev output:\n%s", out.String())
			for _, p := range procs {
				t.Logf("function output:\n%s", p.Logs())
			}
		}
	})
	// A start-up deadline, not a speed check: netlify dev on a loaded
	// machine has taken over a minute (the netlify target's test allows 4).
	deadline := time.Now().Add(4 * time.Minute)
	for !strings.Contains(out.String(), "Local dev server ready") {
		require.True(t, time.Now().Before(deadline), "netlify dev did not start:\n%s", out.String())
		time.Sleep(200 * time.Millisecond)
	}
	assert.NotContains(t, out.String(), "Loaded function", "netlify dev builds no function on the AWS target")

	t.Run("the visitor flow through /api/*", func(t *testing.T) {
		before := len(api.Seen())
		visitor := from("127.0.0.2")
		email := fmt.Sprintf("aws-%d@example.com", time.Now().UnixNano())
		status, body := postFrom(t, visitor, origin, "/api/request-access", `{"name":"Ada","email":"`+email+`","consent":true}`)
		require.Equal(t, 200, status, body)
		var issued struct{ RequestID string }
		require.NoError(t, json.Unmarshal([]byte(body), &issued))
		code := codeMailedTo(t, stack, email)
		status, body = postFrom(t, visitor, origin, "/api/verify-access", `{"requestId":"`+issued.RequestID+`","otp":"`+code+`"}`)
		require.Equal(t, 200, status, body)
		var grant struct{ RedirectURL string }
		require.NoError(t, json.Unmarshal([]byte(body), &grant))
		assert.Equal(t, embedded.SampleCV, fetch(t, grant.RedirectURL))

		// What netlify dev forwards: every call signed, from its own
		// address, and with no visitor address at all (see below).
		seen := api.Seen()[before:]
		require.Len(t, seen, 2)
		for _, s := range seen {
			assert.Equal(t, httpapi.Seen{Route: s.Route, SourceIP: "127.0.0.1", Signed: true}, s)
		}
		var logs strings.Builder
		for _, p := range procs {
			logs.WriteString(p.Logs())
		}
		flowtest.AssertAbsent(t, logs.String(), email, "Ada", code, awsSignSecret)
	})

	t.Run("the owner page's session cookie through /api/owner", func(t *testing.T) {
		// netlify dev's proxy passes the Cookie header on and the
		// function's Set-Cookie back; the site is on localhost, so the
		// cookie is not Secure and the jar keeps it over http.
		before := len(api.Seen())
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		owner := from("127.0.0.4")
		owner.Jar = jar
		status, body := postFrom(t, owner, origin, "/api/owner", `{"action":"sign-in","email":"`+awsOwner+`"}`)
		require.Equal(t, 200, status, body)
		var issued struct{ RequestID string }
		require.NoError(t, json.Unmarshal([]byte(body), &issued))
		code := codeMailedTo(t, stack, awsOwner)
		status, body = postFrom(t, owner, origin, "/api/owner", `{"action":"verify","requestId":"`+issued.RequestID+`","otp":"`+code+`"}`)
		require.Equal(t, 200, status, body)
		u, err := url.Parse(origin + "/api/owner")
		require.NoError(t, err)
		require.Len(t, jar.Cookies(u), 1, "the session cookie came back through the proxy")
		status, body = postFrom(t, owner, origin, "/api/owner", `{"action":"list"}`)
		require.Equal(t, 200, status, body)
		assert.Contains(t, body, `"requests":[`)
		status, _ = postFrom(t, owner, origin, "/api/owner", `{"action":"sign-out"}`)
		require.Equal(t, 200, status)
		status, _ = postFrom(t, owner, origin, "/api/owner", `{"action":"list"}`)
		assert.Equal(t, 401, status, "signed out")
		for _, s := range api.Seen()[before:] {
			assert.Equal(t, "ANY /owner", s.Route)
			assert.True(t, s.Signed)
		}
	})

	t.Run("a call that bypasses the proxy is refused", func(t *testing.T) {
		body := `{"name":"Ada","email":"direct@example.com","consent":true}`
		for name, sign := range map[string]string{
			"no x-nf-sign":        "",
			"signed by other key": mint(strings.Repeat("o", signSecretLen), awsSiteID, "dev"),
			"another site":        mint(awsSignSecret, "another-site", "dev"),
			"another context":     mint(awsSignSecret, awsSiteID, "production"),
		} {
			status, got := signedPost(t, apiOrigin, "/request-access", body, origin, sign, "192.0.2.10")
			assert.Equal(t, 403, status, "%s: %s", name, got)
			assert.Contains(t, got, `"proxy_signature_invalid"`, name)
		}
		// The same call signed the way netlify dev signs is served: the
		// refusals above are the signature's doing.
		status, got := signedPost(t, apiOrigin, "/request-access", body, origin, mint(awsSignSecret, awsSiteID, "dev"), "192.0.2.10")
		assert.Equal(t, 200, status, got)
	})

	t.Run("the per-network limit counts the visitor, not the proxy", func(t *testing.T) {
		// netlify dev (netlify-cli 26, proxyToExternalUrl in
		// dist/utils/proxy.js) forwards neither x-nf-client-connection-ip
		// nor X-Forwarded-For to an external target, so behind it every
		// visitor is the same unknown network: it cannot show this.
		// Netlify's edge sets x-nf-client-connection-ip on a proxied
		// request; these calls carry it, signed as Netlify signs, all
		// from one TCP peer, as they would all come from Netlify.
		before := len(api.Seen())
		sign := mint(awsSignSecret, awsSiteID, "dev")
		req := func(visitor string, i int) (int, string) {
			body := fmt.Sprintf(`{"name":"Ada","email":"net-%s-%d-%d@example.com","consent":true}`, visitor, i, time.Now().UnixNano())
			return signedPost(t, apiOrigin, "/request-access", body, origin, sign, visitor)
		}
		for i := range perNetwork {
			status, body := req("127.0.0.2", i)
			require.Equal(t, 200, status, body)
		}
		status, body := req("127.0.0.2", perNetwork)
		assert.Equal(t, 429, status, body)
		assert.Contains(t, body, `"rate_limited_ip"`)
		status, body = req("127.0.0.3", 0)
		assert.Equal(t, 200, status, "another visitor is not limited: %s", body)
		for _, s := range api.Seen()[before:] {
			assert.Equal(t, "127.0.0.1", s.SourceIP, "the stand-in sees every call from the proxy's address")
			assert.True(t, s.ClientIPSet)
		}
	})

	t.Run("the visitor flow in a browser", func(t *testing.T) {
		exe := chromiumPath(t)
		email := fmt.Sprintf("browser-%d@example.com", time.Now().UnixNano())
		downloads := t.TempDir()
		profile, err := os.MkdirTemp("", "cv-chromium-")
		require.NoError(t, err)
		t.Cleanup(func() { _ = os.RemoveAll(profile) })
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(profile))...)
		defer cancelAlloc()
		bctx, cancelB := chromedp.NewContext(alloc)
		defer cancelB()
		bctx, cancelT := context.WithTimeout(bctx, 90*time.Second)
		defer cancelT()
		before := len(api.Seen())
		require.NoError(t, chromedp.Run(bctx,
			browser.SetDownloadBehavior(browser.SetDownloadBehaviorBehaviorAllow).WithDownloadPath(downloads),
			chromedp.Navigate(origin+"/cv/"),
			chromedp.WaitVisible("#cv-access-cv-request-form", chromedp.ByQuery),
			chromedp.SendKeys("#cv-access-cv-name", "Ada Lovelace", chromedp.ByQuery),
			chromedp.SendKeys("#cv-access-cv-email", email, chromedp.ByQuery),
			chromedp.Click("#cv-access-cv-consent", chromedp.ByQuery),
			chromedp.Click("#cv-access-cv-request-form button[type=submit]", chromedp.ByQuery),
			chromedp.WaitVisible("#cv-access-cv-step-verify", chromedp.ByQuery),
		))
		code := codeMailedTo(t, stack, email)
		require.NoError(t, chromedp.Run(bctx,
			chromedp.SendKeys("#cv-access-cv-otp", code, chromedp.ByQuery),
			chromedp.Click("#cv-access-cv-verify-form button[type=submit]", chromedp.ByQuery),
			chromedp.WaitVisible("#cv-access-cv-step-download", chromedp.ByQuery),
			// The page focuses the link last, which may scroll it: click it
			// once it is where it will stay, not mid-scroll.
			chromedp.Poll(`document.activeElement && document.activeElement.id === "cv-access-cv-download-link"`, nil,
				chromedp.WithPollingTimeout(10*time.Second)),
			chromedp.Click("#cv-access-cv-download-link", chromedp.ByQuery),
		))
		assert.Equal(t, embedded.SampleCV, downloaded(t, downloads))
		assert.Len(t, api.Seen()[before:], 2, "both steps went through the signed proxy to the stand-in")
	})
}

// from is a client whose connections come from the loopback address ip.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 60 * time.Second}
}

func postFrom(t *testing.T, c *http.Client, origin, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, origin+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "the function's own headers come back")
	return resp.StatusCode, string(b)
}

// signedPost calls the stand-in directly, as Netlify's proxy would: sign
// ("" for none) as x-nf-sign, clientIP as x-nf-client-connection-ip.
func signedPost(t *testing.T, apiOrigin, path, body, siteOrigin, sign, clientIP string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, apiOrigin+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", siteOrigin)
	req.Header.Set("X-Nf-Client-Connection-Ip", clientIP)
	if sign != "" {
		req.Header.Set("X-Nf-Sign", sign)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mint signs a token as Netlify's proxy would, for calls made straight
// to the stand-in.
func mint(secret, siteID, deployContext string) string {
	return proxysigntest.Sign(proxysigntest.HS256, proxysigntest.Claims(siteID, "", deployContext, time.Now()), secret)
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

func codeMailedTo(t *testing.T, stack *emulators.Stack, email string) string {
	t.Helper()
	var code string
	require.Eventually(t, func() bool {
		mails, err := stack.EmailsTo(context.Background(), email)
		if err != nil || len(mails) != 1 {
			return false
		}
		code = sixDigits.FindString(mails[0].Body.Text)
		return code != ""
	}, 10*time.Second, 100*time.Millisecond, "no code was mailed")
	return code
}

func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, string(b))
	return b
}

func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("CV_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if os.Getenv("CV_REQUIRE_BROWSER") != "" {
		t.Fatal("Debian's chromium is not installed: apt-get install chromium")
	}
	t.Skip("chromium is not installed; `.ci/run` installs it")
	return ""
}

func downloaded(t *testing.T, dir string) []byte {
	t.Helper()
	// Generous: this runs beside the infra tests, which load the machine.
	deadline := time.Now().Add(90 * time.Second)
	var entries []os.DirEntry
	for time.Now().Before(deadline) {
		entries, _ = os.ReadDir(dir)
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".crdownload") {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				require.NoError(t, err)
				return b
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	t.Fatalf("nothing was downloaded in 90 s (the folder holds %q)", names)
	return nil
}
