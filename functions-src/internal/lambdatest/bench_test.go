package lambdatest_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
)

// awsLatency is added to every AWS call in the benchmarks, as DESIGN.md's
// reference figures for the source design were measured with it.
var awsLatency = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("CV_BENCH_AWS_LATENCY")); err == nil {
		return d
	}
	return 20 * time.Millisecond
}()

// slowEnv is prodEnv with every AWS endpoint behind a proxy that waits
// awsLatency before forwarding.
func slowEnv(b *testing.B) []string {
	b.Helper()
	env := prodEnv(b)
	for i, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "AWS_ENDPOINT_URL_") {
			continue
		}
		target, err := url.Parse(v)
		require.NoError(b, err)
		proxy := httputil.NewSingleHostReverseProxy(target)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(awsLatency)
			proxy.ServeHTTP(w, r)
		}))
		b.Cleanup(srv.Close)
		env[i] = k + "=" + srv.URL
	}
	return env
}

func invoke(b *testing.B, f *function, body string) events.APIGatewayProxyResponse {
	ev, _ := json.Marshal(events.APIGatewayProxyRequest{HTTPMethod: "POST", Body: body,
		Headers: map[string]string{"content-type": "application/json", "origin": "https://cv.example.com"}})
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

// peakRSS stops the function and reports its peak resident memory.
func peakRSS(b *testing.B, f *function) {
	f.rt.Close()
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	_ = f.cmd.Wait()
	if ru, ok := f.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	}
}

// BenchmarkRequestAccessWarm: one warm container answering request-access
// (one DynamoDB transaction, then the email), each AWS call 20 ms away.
func BenchmarkRequestAccessWarm(b *testing.B) {
	f := start(b, "request-access", slowEnv(b))
	invoke(b, f, `{"name":"Warm Up","email":"warm@example.com","consent":true}`)
	b.ResetTimer()
	for i := range b.N {
		resp := invoke(b, f, fmt.Sprintf(`{"name":"Ada","email":"bench-%d-%d@example.com","consent":true}`, i, time.Now().UnixNano()))
		if resp.StatusCode != 200 {
			b.Fatalf("%d %s", resp.StatusCode, resp.Body)
		}
	}
	b.StopTimer()
	peakRSS(b, f)
}

// BenchmarkVerifyAccessWarm: one warm container answering verify-access on
// the success path (count the attempt, mark used; presigning is local).
func BenchmarkVerifyAccessWarm(b *testing.B) {
	env := slowEnv(b)
	ids := seedRequests(b, b.N+1)
	f := start(b, "verify-access", env)
	invoke(b, f, fmt.Sprintf(`{"requestId":%q,"otp":"123456"}`, ids[b.N]))
	b.ResetTimer()
	for i := range b.N {
		resp := invoke(b, f, fmt.Sprintf(`{"requestId":%q,"otp":"123456"}`, ids[i]))
		if resp.StatusCode != 200 {
			b.Fatalf("%d %s", resp.StatusCode, resp.Body)
		}
	}
	b.StopTimer()
	peakRSS(b, f)
}

// BenchmarkVerifyAccessCold: a new process per call, timed from spawn to
// its answer (init, the runtime handshake, two DynamoDB round trips).
func BenchmarkVerifyAccessCold(b *testing.B) {
	env := slowEnv(b)
	ids := seedRequests(b, b.N)
	b.ResetTimer()
	for i := range b.N {
		f := start(b, "verify-access", env)
		resp := invoke(b, f, fmt.Sprintf(`{"requestId":%q,"otp":"123456"}`, ids[i]))
		if resp.StatusCode != 200 {
			b.Fatalf("%d %s", resp.StatusCode, resp.Body)
		}
		b.StopTimer()
		if i == b.N-1 {
			peakRSS(b, f)
		} else {
			f.rt.Close()
			_ = f.cmd.Process.Kill()
			_ = f.cmd.Wait()
		}
		b.StartTimer()
	}
}

// seedRequests stores n pending requests whose code is 123456, hashed
// with the functions' secret, straight into the tables.
func seedRequests(b *testing.B, n int) []string {
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
