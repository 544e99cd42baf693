package lambdatest_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/lambdatest"
	"github.com/cv-access/cv-access/functions-src/internal/proxysign/proxysigntest"
)

// awsLatency is added to every AWS call in the benchmarks, as DESIGN.md's
// reference figures for the source design were measured with it.
var awsLatency = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("CV_BENCH_AWS_LATENCY")); err == nil {
		return d
	}
	return 20 * time.Millisecond
}()

// connLatency is added to each new connection to an AWS endpoint, before
// its first request is read: a stand-in for the TCP and TLS handshakes a
// fresh process pays on each endpoint it calls.
var connLatency = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("CV_BENCH_CONN_LATENCY")); err == nil {
		return d
	}
	return 40 * time.Millisecond
}()

// slowListener makes each connection it accepts wait connLatency before
// its first read.
type slowListener struct{ net.Listener }

func (l slowListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &slowConn{Conn: c}, nil
}

type slowConn struct {
	net.Conn
	once sync.Once
}

func (c *slowConn) Read(p []byte) (int, error) {
	c.once.Do(func() { time.Sleep(connLatency) })
	return c.Conn.Read(p)
}

// slowEnv is prodEnv with every AWS endpoint behind a proxy that waits
// awsLatency before forwarding each call, and connLatency more on each new
// connection.
func slowEnv(b *testing.B) []string {
	b.Helper()
	// Hundreds of sends in one run: the site's daily email budget is
	// raised rather than turned off, so its counter stays in the
	// transaction as in production.
	env := append(prodEnv(b), "CV_EMAIL_DAILY_LIMIT=1000000")
	for i, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "AWS_ENDPOINT_URL_") {
			continue
		}
		target, err := url.Parse(v)
		require.NoError(b, err)
		proxy := httputil.NewSingleHostReverseProxy(target)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			time.Sleep(awsLatency)
			proxy.ServeHTTP(w, r)
			awsCalls.add(span{start, time.Now()})
		}))
		srv.Listener = slowListener{srv.Listener}
		srv.Start()
		b.Cleanup(srv.Close)
		env[i] = k + "=" + srv.URL
	}
	return env
}

// benchIP gives each invocation its own client network, so the
// per-network limit measures nothing but itself.
func benchIP(i int) string { return fmt.Sprintf("198.%d.%d.%d", 18+i>>16&1, i>>8&255, i&255) }

// benchSiteID is the Netlify site of the target aws benchmarks.
const benchSiteID = "0b5c1a7e-4d2f-4e6a-9c3b-7f8e9d0a1b2c"

// awsTargetEnv is slowEnv as target aws configures a function: the role's
// credentials in the runtime's AWS_* variables rather than CV_AWS_*, and
// the signed proxy's gate.
func awsTargetEnv(b *testing.B) []string {
	var env []string
	for _, kv := range slowEnv(b) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "CV_AWS_ACCESS_KEY_ID":
			env = append(env, "AWS_ACCESS_KEY_ID="+v, "AWS_SESSION_TOKEN=a-session-token")
		case "CV_AWS_SECRET_ACCESS_KEY":
			env = append(env, "AWS_SECRET_ACCESS_KEY="+v)
		default:
			env = append(env, kv)
		}
	}
	return append(env, "CV_PROXY_SIGN_SECRET="+strings.Repeat("s", 64), "CV_NETLIFY_SITE_ID="+benchSiteID)
}

// invoke sends one POST shaped as f's target hands it: Netlify's event, or
// the HTTP API's behind Netlify's signed proxy.
func invoke(b *testing.B, f *function, ip, body string) events.APIGatewayProxyResponse {
	return invokeWith(b, f, ip, body, nil)
}

// invokeWith is invoke with extra headers (a cookie, say).
func invokeWith(b *testing.B, f *function, ip, body string, extra map[string]string) events.APIGatewayProxyResponse {
	headers := map[string]string{"content-type": "application/json", "origin": "https://cv.example.com",
		"x-nf-client-connection-ip": ip}
	maps.Copy(headers, extra)
	ev, _ := json.Marshal(events.APIGatewayProxyRequest{HTTPMethod: "POST", Body: body, Headers: headers})
	if f.proxySecret != "" {
		headers["x-nf-sign"] = proxysigntest.Sign(proxysigntest.HS256,
			proxysigntest.Claims(benchSiteID, "https://cv.example.com", "production", time.Now()), f.proxySecret)
		ev, _ = json.Marshal(events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "ANY /x", RawPath: "/x", Headers: headers, Body: body,
			RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "bench", Stage: "$default",
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/x", SourceIP: "3.5.140.2"}}})
	}
	res, err := f.rt.Invoke(context.Background(), ev)
	if err != nil {
		b.Fatal(err)
	}
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil {
		b.Fatal(err)
	}
	return resp
}

// latencies collects one duration per answer and reports their median,
// which one slow emulator call cannot drag the way it drags the mean.
type latencies []time.Duration

func (l *latencies) time(fn func()) {
	t := time.Now()
	fn()
	*l = append(*l, time.Since(t))
}

func (l latencies) report(b *testing.B, unit string) {
	if len(l) == 0 {
		return
	}
	b.ReportMetric(ms(l.median()), unit)
}

func (l latencies) median() time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[len(s)/2]
}

// peakRSS stops the function and reports its peak resident memory.
func peakRSS(b *testing.B, f *function) {
	f.rt.Close()
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	_ = f.cmd.Wait()
	if ru, ok := f.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	}
}

func requestBody(i int) string {
	return fmt.Sprintf(`{"name":"Ada","email":"bench-%d-%d@example.com","consent":true}`, i, time.Now().UnixNano())
}

// BenchmarkRequestAccessWarm: one warm container answering request-access
// (one DynamoDB transaction, then the email), each AWS call 20 ms away.
func BenchmarkRequestAccessWarm(b *testing.B)          { requestWarm(b, slowEnv(b)) }
func BenchmarkAWSTargetRequestAccessWarm(b *testing.B) { requestWarm(b, awsTargetEnv(b)) }

func requestWarm(b *testing.B, env []string) {
	f := start(b, "request-access", env)
	invoke(b, f, benchIP(1<<17-1), `{"name":"Warm Up","email":"warm@example.com","consent":true}`)
	var lat latencies
	b.ResetTimer()
	for i := range b.N {
		lat.time(func() {
			if resp := invoke(b, f, benchIP(i), requestBody(i)); resp.StatusCode != 200 {
				b.Fatalf("%d %s", resp.StatusCode, resp.Body)
			}
		})
	}
	b.StopTimer()
	lat.report(b, "p50-ms")
	peakRSS(b, f)
}

// BenchmarkVerifyAccessWarm: one warm container answering verify-access on
// the success path (count the attempt, mark used; presigning is local, and
// the CV check passed on the warm-up call, so it calls nothing more).
func BenchmarkVerifyAccessWarm(b *testing.B)          { verifyWarm(b, slowEnv(b)) }
func BenchmarkAWSTargetVerifyAccessWarm(b *testing.B) { verifyWarm(b, awsTargetEnv(b)) }

func verifyWarm(b *testing.B, env []string) {
	ids := seedRequests(b, b.N+1)
	f := start(b, "verify-access", env)
	invoke(b, f, benchIP(1<<17-1), fmt.Sprintf(`{"requestId":%q,"otp":"123456"}`, ids[b.N]))
	var lat latencies
	b.ResetTimer()
	for i := range b.N {
		lat.time(func() {
			if resp := invoke(b, f, benchIP(i), fmt.Sprintf(`{"requestId":%q,"otp":"123456"}`, ids[i])); resp.StatusCode != 200 {
				b.Fatalf("%d %s", resp.StatusCode, resp.Body)
			}
		})
	}
	b.StopTimer()
	lat.report(b, "p50-ms")
	peakRSS(b, f)
}

// awsCalls is when each call reached an AWS endpoint's proxy and when
// its answer left: the time a function waits on AWS for it, the added
// latency and the emulator's own work included, its connection's set-up
// not (that is spent before the proxy reads the call).
var awsCalls callLog

type span struct{ start, end time.Time }

type callLog struct {
	mu    sync.Mutex
	spans []span
}

func (l *callLog) add(s span) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spans = append(l.spans, s)
}

// take returns the calls logged so far and forgets them.
func (l *callLog) take() []span {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.spans
	l.spans = nil
	return s
}

// awsWait is how long a caller waited on the calls in spans, counting
// calls side by side once (the union of their spans), and how many waits
// it made one after the other (the union's pieces).
func awsWait(spans []span) (time.Duration, int) {
	s := slices.Clone(spans)
	slices.SortFunc(s, func(a, b span) int { return a.start.Compare(b.start) })
	var total time.Duration
	var trips int
	var cur span
	for i, c := range s {
		switch {
		case i == 0:
			cur = c
		case !c.start.After(cur.end):
			if c.end.After(cur.end) {
				cur.end = c.end
			}
			continue
		default:
			total += cur.end.Sub(cur.start)
			cur = c
		}
		trips++
	}
	if trips > 0 {
		total += cur.end.Sub(cur.start)
	}
	return total, trips
}

// cold spawns a new process per call and reports the median time from
// spawn to its first answer ("cold-p50-ms") and to its first poll for work,
// which is the end of its init phase ("init-p50-ms"), and the floor it is
// measured against. The floor ("floor-ms") is, for each cold answer, its
// init, one new connection, and the time it waited on AWS ("aws-wait-ms":
// each call as long as it took, calls side by side counted once), which is
// what the path's round trips cost on the emulators; "over-floor-ms" is
// the median difference, what the cold path spends on anything else: its
// own work, and any connection set-up it did not overlap. Every cold
// answer must make exactly the path's calls, in at most its waits in a
// row (coldPaths): a call added to the path, beside another or after it,
// stops the benchmark rather than raise the floor. "model-floor-ms"
// counts each call at the added latency alone, as the issue that set the
// floor did.
func cold(b *testing.B, name string, env []string, body func(i int) string) {
	coldWith(b, name, env, body, nil)
}

// coldPaths are the AWS calls each function's cold path makes, and how
// many times it waits on them one after the other with all the
// connections it needs opened side by side (the floor): request-access's
// transaction, then the email; verify's transaction with the code's read
// and the document's HeadObject beside it, then the code marked used; the
// owner's session read, then its scan.
var coldPaths = map[string]struct{ calls, trips int }{
	"request-access": {calls: 2, trips: 2},
	"verify-access":  {calls: 4, trips: 2},
	"owner":          {calls: 2, trips: 2},
}

// coldWith is cold with extra headers on each call.
func coldWith(b *testing.B, name string, env []string, body func(i int) string, extra map[string]string) {
	path, ok := coldPaths[name]
	if !ok {
		b.Fatalf("no cold path listed for %s", name)
	}
	var answer, init, wait, floor, over latencies
	b.ResetTimer()
	for i := range b.N {
		awsCalls.take()
		f := start(b, name, env)
		resp := invokeWith(b, f, benchIP(i), body(i), extra)
		answered := time.Since(f.started)
		b.StopTimer()
		if resp.StatusCode != 200 {
			b.Fatalf("%d %s", resp.StatusCode, resp.Body)
		}
		calls := awsCalls.take()
		w, trips := awsWait(calls)
		if len(calls) != path.calls || trips > path.trips {
			b.Fatalf("%s's cold answer made %d AWS calls in %d waits in a row, not %d in at most %d: "+
				"a call added to its path?", name, len(calls), trips, path.calls, path.trips)
		}
		initDur := f.rt.FirstPoll().Sub(f.started)
		answer = append(answer, answered)
		init = append(init, initDur)
		wait = append(wait, w)
		floor = append(floor, initDur+connLatency+w)
		over = append(over, answered-(initDur+connLatency+w))
		if i == b.N-1 {
			peakRSS(b, f)
		} else {
			f.rt.Close()
			_ = f.cmd.Process.Kill()
			_ = f.cmd.Wait()
		}
		b.StartTimer()
	}
	answer.report(b, "cold-p50-ms")
	init.report(b, "init-p50-ms")
	wait.report(b, "aws-wait-ms")
	floor.report(b, "floor-ms")
	over.report(b, "over-floor-ms")
	b.ReportMetric(ms(init.median()+connLatency+time.Duration(path.trips)*awsLatency), "model-floor-ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkRequestAccessCold: init, the runtime handshake, the DynamoDB
// transaction and the email, in a new process each time.
func BenchmarkRequestAccessCold(b *testing.B) {
	cold(b, "request-access", slowEnv(b), requestBody)
}

// BenchmarkAWSTargetRequestAccessCold: the same on target aws (payload 2.0,
// the signature checked first, the role's credentials from the runtime).
func BenchmarkAWSTargetRequestAccessCold(b *testing.B) {
	cold(b, "request-access", awsTargetEnv(b), requestBody)
}

// BenchmarkVerifyAccessCold: init, the runtime handshake, two DynamoDB
// round trips (the CV check, an S3 HeadObject, rides beside the first), in
// a new process each time.
func BenchmarkVerifyAccessCold(b *testing.B)          { verifyCold(b, slowEnv(b)) }
func BenchmarkAWSTargetVerifyAccessCold(b *testing.B) { verifyCold(b, awsTargetEnv(b)) }

func verifyCold(b *testing.B, env []string) {
	ids := seedRequests(b, b.N)
	cold(b, "verify-access", env, func(i int) string { return fmt.Sprintf(`{"requestId":%q,"otp":"123456"}`, ids[i]) })
}

// seedRequests stores n pending requests whose code is 123456, hashed
// with the functions' secret, straight into the tables.
func seedRequests(b testing.TB, n int) []string {
	b.Helper()
	prodEnv(b) // sets up the deployment
	be, err := awsbackend.New(context.Background(), deployment.Config, time.Now)
	require.NoError(b, err)
	codes, err := access.NewCodes(rand.Reader, []byte(otpSecret))
	require.NoError(b, err)
	now := time.Now().UTC().Truncate(time.Second)
	ids := make([]string, n)
	for i := range ids {
		id := uuid.NewString()
		ids[i] = id
		r := access.Request{ID: id, Name: "Bench", Email: "bench@example.com", Status: access.StatusPending,
			Consent: access.Consent{PolicyVersion: "2026-11-24", At: now}, CreatedAt: now, DeleteAt: now.Add(time.Hour)}
		c := access.Code{RequestID: id, Hash: codes.Hash(id, "123456"), ExpiresAt: now.Add(10 * time.Minute),
			SentAt: now, DeleteAt: now.Add(time.Hour)}
		require.NoError(b, be.Store.CreateRequest(context.Background(), r, c, nil))
	}
	return ids
}

// ownerSession signs the owner in through f (the owner function) and
// returns the session cookie as the browser sends it back.
func ownerSession(b *testing.B, f *function, owner string) map[string]string {
	b.Helper()
	resp := invoke(b, f, benchIP(1<<17-2), `{"action":"sign-in","email":"`+owner+`"}`)
	require.Equal(b, 200, resp.StatusCode, resp.Body)
	var issued struct{ RequestID string }
	require.NoError(b, json.Unmarshal([]byte(resp.Body), &issued))
	mails, err := stack.EmailsTo(context.Background(), owner)
	require.NoError(b, err)
	require.NotEmpty(b, mails)
	code := sixDigits.FindString(mails[len(mails)-1].Body.Text)
	resp = invoke(b, f, benchIP(1<<17-2), `{"action":"verify","requestId":"`+issued.RequestID+`","otp":"`+code+`"}`)
	require.Equal(b, 200, resp.StatusCode, resp.Body)
	return map[string]string{"cookie": strings.Split(resp.Headers["Set-Cookie"], ";")[0]}
}

// ownerEnv is slowEnv with the owner page on, for a fresh owner address.
func ownerEnv(b *testing.B) ([]string, string) {
	owner := fmt.Sprintf("owner-bench-%d@example.com", time.Now().UnixNano())
	return append(slowEnv(b), "CV_OWNER_EMAIL="+owner), owner
}

// BenchmarkOwnerListWarm: one warm owner function answering list (the
// session read, then the scan of every request the emulator holds), each
// AWS call 20 ms away.
func BenchmarkOwnerListWarm(b *testing.B) {
	env, owner := ownerEnv(b)
	f := start(b, "owner", env)
	session := ownerSession(b, f, owner)
	var lat latencies
	b.ResetTimer()
	for i := range b.N {
		lat.time(func() {
			if resp := invokeWith(b, f, benchIP(i), `{"action":"list"}`, session); resp.StatusCode != 200 {
				b.Fatalf("%d %s", resp.StatusCode, resp.Body)
			}
		})
	}
	b.StopTimer()
	lat.report(b, "p50-ms")
	peakRSS(b, f)
}

// BenchmarkOwnerListCold: the same list, in a new process each time.
func BenchmarkOwnerListCold(b *testing.B) {
	env, owner := ownerEnv(b)
	f := start(b, "owner", env)
	session := ownerSession(b, f, owner)
	coldWith(b, "owner", env, func(int) string { return `{"action":"list"}` }, session)
}

// BenchmarkEmptyLambdaInit: the init of a Go Lambda that does nothing
// (aws-lambda-go and a handler returning), built as the functions are:
// what init costs on this machine before any of cv-access's own.
func BenchmarkEmptyLambdaInit(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "bootstrap")
	// The Makefile's GO_LAMBDA_BUILD.
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid=", "-o", bin, "./testdata/emptylambda")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	var init latencies
	b.ResetTimer()
	for range b.N {
		rt, err := lambdatest.Start()
		require.NoError(b, err)
		cmd := exec.Command(bin)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_RUNTIME_API=" + rt.Addr}
		started := time.Now()
		require.NoError(b, cmd.Start())
		select {
		case <-rt.Polled():
		case <-time.After(10 * time.Second):
		}
		b.StopTimer()
		rt.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if rt.FirstPoll().IsZero() {
			b.Fatal("the empty Lambda did not ask for work within 10 s")
		}
		init = append(init, rt.FirstPoll().Sub(started))
		b.StartTimer()
	}
	init.report(b, "init-p50-ms")
}

func TestAWSWait(t *testing.T) {
	at := func(from, to int) span {
		t0 := time.Unix(0, 0)
		return span{t0.Add(time.Duration(from) * time.Millisecond), t0.Add(time.Duration(to) * time.Millisecond)}
	}
	for _, tc := range []struct {
		name  string
		spans []span
		wait  time.Duration
		trips int
	}{
		{"none", nil, 0, 0},
		{"one", []span{at(10, 40)}, 30 * time.Millisecond, 1},
		{"in a row", []span{at(50, 70), at(10, 40)}, 50 * time.Millisecond, 2},
		{"side by side", []span{at(10, 40), at(15, 45)}, 35 * time.Millisecond, 1},
		{"one inside another, then one more", []span{at(10, 50), at(20, 30), at(60, 65)}, 45 * time.Millisecond, 2},
		{"touching", []span{at(10, 20), at(20, 30)}, 20 * time.Millisecond, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait, trips := awsWait(tc.spans)
			require.Equal(t, tc.wait, wait)
			require.Equal(t, tc.trips, trips)
		})
	}
}
