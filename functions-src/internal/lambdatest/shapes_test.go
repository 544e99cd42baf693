package lambdatest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The compiled function reads each event's shape itself: a payload format
// 2.0 event (Function URL, HTTP API) gets a 2.0 answer from the same
// binary Netlify runs (here a refusal: Netlify's configuration sets no
// signed-proxy gate, and a Function URL is served only behind one), and an
// event of no known shape is a function error the log explains, not a
// crash.
func TestProductionBinaryAnswersPayloadFormat2(t *testing.T) {
	f := start(t, "verify-access", prodEnv(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ev, err := json.Marshal(events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: "/api/verify-access", Cookies: []string{"session=x"},
		Headers: map[string]string{"content-type": "application/json", "origin": "https://cv.example.com",
			"x-nf-client-connection-ip": "203.0.113.9"},
		RequestContext: events.LambdaFunctionURLRequestContext{RequestID: "v2-bin-1",
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", SourceIP: "192.0.2.1"}},
		Body: `{"requestId":"` + uuid.NewString() + `","otp":"123456"}`,
	})
	require.NoError(t, err)
	res, err := f.rt.Invoke(ctx, ev)
	require.NoError(t, err, "function output: %s", f.stderr)
	require.False(t, res.Error, "%s", res.Payload)
	var resp events.LambdaFunctionURLResponse
	require.NoError(t, json.Unmarshal(res.Payload, &resp))
	assert.Equal(t, 403, resp.StatusCode, resp.Body)
	assert.Contains(t, resp.Body, `"error":"proxy_signature_invalid"`)
	assert.Equal(t, "no-store", resp.Headers["Cache-Control"])
	assert.Empty(t, resp.Cookies)

	res, err = f.rt.Invoke(ctx, []byte(`{"version":"3.0"}`))
	require.NoError(t, err, "function output: %s", f.stderr)
	assert.True(t, res.Error, "an unknown shape is a function error: %s", res.Payload)
	// stderr is copied from the process as it comes: wait for the line.
	assert.Eventually(t, func() bool { return strings.Contains(f.stderr.String(), `"msg":"unknown event shape"`) },
		5*time.Second, 10*time.Millisecond, "the log says why: %s", f.stderr)

	resp2 := f.post(t, `{"requestId":"`+uuid.NewString()+`","otp":"123456"}`)
	assert.Equal(t, 404, resp2.StatusCode, "the process still serves v1 after both: %s", resp2.Body)
}
