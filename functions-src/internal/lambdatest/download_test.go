package lambdatest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
)

// The compiled verify-access with its CV missing from the bucket: the
// visitor's right code gets 503 and stays usable, the function's log says
// which object and which permission, and once the CV is uploaded the same
// code gets a link that downloads it.
func TestProductionVerifyKeepsTheCodeWhileTheCVIsMissing(t *testing.T) {
	env := prodEnv(t)
	key := fmt.Sprintf("missing-%d.pdf", time.Now().UnixNano())
	for i, kv := range env {
		if strings.HasPrefix(kv, "CV_DOCUMENTS=") {
			env[i] = `CV_DOCUMENTS={"documents":[{"slug":"cv","title":"CV","key":"` + key + `"}]}`
		}
	}
	id := seedRequests(t, 1)[0]
	body := `{"requestId":"` + id + `","otp":"123456"}`
	va := start(t, "verify-access", env)

	resp := va.post(t, body)
	require.Equal(t, 503, resp.StatusCode, resp.Body)
	assert.Contains(t, resp.Body, `"error":"download_unavailable"`)
	assert.Equal(t, "30", resp.Headers["Retry-After"])
	// stderr is copied from a pipe: wait for the invocation's last line.
	require.Eventually(t, func() bool { return strings.Contains(va.stderr.String(), `"msg":"done"`) }, 5*time.Second, 10*time.Millisecond)
	var errorLines []string
	for _, l := range strings.Split(va.stderr.String(), "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			errorLines = append(errorLines, l)
		}
	}
	require.Len(t, errorLines, 1, va.stderr.String())
	var line map[string]any
	require.NoError(t, json.Unmarshal([]byte(errorLines[0]), &line))
	assert.Equal(t, id, line["access_request"])
	assert.NotEmpty(t, line["invocation"])
	assert.Contains(t, line["error"], "s3://"+deployment.Config.Bucket+"/"+key)
	assert.Contains(t, line["error"], "s3:GetObject")

	be, err := awsbackend.New(context.Background(), deployment.Config, time.Now)
	require.NoError(t, err)
	_, err = be.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(deployment.Config.Bucket),
		Key: aws.String(key), Body: bytes.NewReader(embedded.SampleCV)})
	require.NoError(t, err)

	resp = va.post(t, body)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	var grant struct{ RedirectURL string }
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &grant))
	dl, err := http.Get(grant.RedirectURL)
	require.NoError(t, err)
	got, err := io.ReadAll(dl.Body)
	dl.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, 200, dl.StatusCode, string(got))
	assert.Equal(t, embedded.SampleCV, got)
	flowtest.AssertAbsent(t, va.stderr.String(), "123456", "X-Amz-Signature")
}
