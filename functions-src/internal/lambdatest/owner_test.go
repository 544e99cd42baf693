package lambdatest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
)

// The compiled owner function on the AWS backend (DynamoDB Local and the
// SES stand-in), as Netlify runs it: the owner signs in with the code
// SES carried, sees a visitor's request, downloads the CSV, erases the
// visitor and signs out.
func TestProductionOwnerFunctionOnTheEmulators(t *testing.T) {
	env := prodEnv(t)
	ownerAddr := fmt.Sprintf("owner-%d@example.com", time.Now().UnixNano())
	env = append(env, "CV_OWNER_EMAIL="+ownerAddr)
	visitor := fmt.Sprintf("visitor-%d@example.com", time.Now().UnixNano())

	ra := start(t, "request-access", env)
	resp := ra.post(t, `{"name":"Ada Lovelace","email":"`+visitor+`","company":"Engines","consent":true}`)
	require.Equal(t, 200, resp.StatusCode, resp.Body)

	o := start(t, "owner", env)
	resp = o.post(t, `{"action":"list"}`)
	require.Equal(t, 401, resp.StatusCode, resp.Body)
	resp = o.post(t, `{"action":"sign-in","email":"someone-else@example.com"}`)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	resp = o.post(t, `{"action":"sign-in","email":"`+strings.ToUpper(ownerAddr)+`"}`)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	var issued struct {
		RequestID string `json:"requestId"`
	}
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &issued))
	mails, err := stack.EmailsTo(context.Background(), ownerAddr)
	require.NoError(t, err)
	require.Len(t, mails, 1, "one code, to the owner's address only")
	code := sixDigits.FindString(mails[0].Body.Text)
	require.NotEmpty(t, code)

	resp = o.post(t, `{"action":"verify","requestId":"`+issued.RequestID+`","otp":"`+code+`"}`)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	set := resp.Headers["Set-Cookie"]
	require.NotEmpty(t, set)
	assert.Contains(t, set, "; Secure", "an https site's session cookie is Secure")
	cookie := map[string]string{"cookie": strings.Split(set, ";")[0]}

	resp = o.postWith(t, `{"action":"list"}`, cookie)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	assert.Contains(t, resp.Body, visitor)
	resp = o.postWith(t, `{"action":"csv"}`, cookie)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	assert.Contains(t, resp.Body, visitor)
	resp = o.postWith(t, `{"action":"erase","email":"`+visitor+`"}`, cookie)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	assert.Contains(t, resp.Body, `"erased":1`)
	resp = o.postWith(t, `{"action":"list"}`, cookie)
	assert.NotContains(t, resp.Body, visitor)
	resp = o.postWith(t, `{"action":"sign-out"}`, cookie)
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	resp = o.postWith(t, `{"action":"list"}`, cookie)
	assert.Equal(t, 401, resp.StatusCode)

	require.Eventually(t, func() bool { return strings.Count(o.stderr.String(), `"msg":"done"`) >= 9 }, 5*time.Second, 10*time.Millisecond)
	logs := o.stderr.String()
	assert.Contains(t, logs, `"fn":"owner"`)
	flowtest.AssertAbsent(t, logs, visitor, ownerAddr, strings.ToUpper(ownerAddr), "someone-else", code, cookie["cookie"], "Ada")
}

func TestProductionOwnerFunctionWithoutTheOwnersAddressSaysThePageIsOff(t *testing.T) {
	o := start(t, "owner", prodEnv(t))
	for _, body := range []string{`{"action":"list"}`, `{"action":"sign-in","email":"owner@example.com"}`} {
		resp := o.post(t, body)
		assert.Equal(t, 404, resp.StatusCode, resp.Body)
		assert.Contains(t, resp.Body, `"error":"owner_page_off"`)
		assert.Contains(t, resp.Body, "CV_OWNER_EMAIL")
	}
	assert.Contains(t, o.stderr.String(), "the owner page is off")
}
