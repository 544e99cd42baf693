package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/api"
)

// What only payload format 2.0 has, and how Function.Lambda tells the
// shapes apart.

func TestV2CookiesAreIgnoredAndNoneAreSet(t *testing.T) {
	v2 := shapes[1]
	for _, e := range endpoints {
		t.Run(e.name, func(t *testing.T) {
			svc := &recorder{}
			resp := v2.send(t, e.new(svc, siteConfig()), sent{method: "POST", headers: fromSite(nil), body: e.body,
				cookies: []string{"session=abc", "x-nf-client-connection-ip=198.51.100.9"}})
			require.Equal(t, 200, resp.StatusCode, resp.Body)
			assert.Empty(t, svc.clientIP(t), "a cookie is not a header")
			assert.Empty(t, resp.SetCookie, "the visitors' functions set no cookie")
		})
	}
}

// invokeRaw sends a hand-written event, as the platform would, and returns
// the answer's JSON.
func invokeRaw(t *testing.T, f *api.Function, event string) map[string]any {
	t.Helper()
	out, err := f.Lambda(context.Background(), json.RawMessage(event))
	require.NoError(t, err)
	b, err := json.Marshal(out)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

const v2Headers = `"headers":{"content-type":"application/json","origin":"` + ownOrigin + `","x-nf-client-connection-ip":"203.0.113.7"}`

func TestLambdaReadsTheShapeFromTheVersion(t *testing.T) {
	body, _ := json.Marshal(endpoints[2].body)
	t.Run("2.0 is payload format 2.0", func(t *testing.T) {
		var logs bytes.Buffer
		svc := &recorder{}
		cfg := siteConfig()
		cfg.Log = slog.New(slog.NewJSONHandler(&logs, nil))
		m := invokeRaw(t, api.VerifyAccess(svc, cfg), `{"version":"2.0","rawPath":"/api/verify-access",`+v2Headers+
			`,"requestContext":{"requestId":"v2-req-1","http":{"method":"POST","sourceIp":"192.0.2.1"}},"body":`+string(body)+`}`)
		assert.EqualValues(t, 200, m["statusCode"])
		assert.NotContains(t, m, "multiValueHeaders", "a Function URL answer has no multiValueHeaders")
		assert.Equal(t, "203.0.113.7", svc.clientIP(t))
		assert.Contains(t, logs.String(), `"invocation":"v2-req-1"`, "the event's request id names the log line")
	})
	t.Run("the method is requestContext.http.method", func(t *testing.T) {
		svc := &recorder{}
		m := invokeRaw(t, api.VerifyAccess(svc, siteConfig()), `{"version":"2.0","httpMethod":"POST",`+v2Headers+
			`,"requestContext":{"http":{"method":"GET"}},"body":`+string(body)+`}`)
		assert.EqualValues(t, 405, m["statusCode"])
		assert.Zero(t, svc.calls())
	})
	for _, version := range []string{``, `"version":"1.0",`} {
		t.Run("REST v1 "+version, func(t *testing.T) {
			svc := &recorder{}
			m := invokeRaw(t, api.VerifyAccess(svc, siteConfig()), `{`+version+`"httpMethod":"POST",`+v2Headers+`,"body":`+string(body)+`}`)
			assert.EqualValues(t, 200, m["statusCode"])
			assert.Equal(t, "203.0.113.7", svc.clientIP(t))
		})
	}
}

func TestLambdaRefusesAnUnknownShapeWithoutPanicking(t *testing.T) {
	for name, event := range map[string]string{
		"a later version":        `{"version":"3.0","requestContext":{"http":{"method":"POST"}}}`,
		"a version not a string": `{"version":2}`,
		"version carrying text":  `{"version":"ada@example.com"}`,
		"headers not a map":      `{"version":"2.0","headers":5}`,
		"not an object":          `[1,2]`,
	} {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			svc := &recorder{}
			cfg := siteConfig()
			cfg.Log = slog.New(slog.NewJSONHandler(&logs, nil))
			out, err := api.RequestAccess(svc, cfg).Lambda(context.Background(), json.RawMessage(event))
			require.ErrorIs(t, err, api.ErrUnknownEventShape)
			assert.Nil(t, out)
			assert.Zero(t, svc.calls())
			assert.Contains(t, logs.String(), `"msg":"unknown event shape"`)
			assert.NotContains(t, logs.String(), "ada@example.com")
		})
	}
}

// The client-address rule is Config's to choose, on every shape: the seam
// the AWS target's signed-proxy rule plugs into.
func TestClientIPRuleIsConfigurable(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			var seen api.Request
			cfg := siteConfig()
			cfg.ClientIP = func(r api.Request) string {
				seen = r
				if r.Header.Get("x-test-signed") != "yes" {
					return ""
				}
				return api.NetlifyClientIP(r)
			}
			for signed, want := range map[string]string{"yes": "203.0.113.7", "no": ""} {
				svc := &recorder{}
				resp := sh.send(t, api.VerifyAccess(svc, cfg), sent{method: "POST", body: endpoints[2].body, sourceIP: "192.0.2.9",
					headers: fromSite(map[string]string{"x-nf-client-connection-ip": "203.0.113.7", "X-Test-Signed": signed})})
				require.Equal(t, 200, resp.StatusCode, resp.Body)
				assert.Equal(t, want, svc.clientIP(t), "signed %s", signed)
				assert.Equal(t, "192.0.2.9", seen.SourceIP)
				assert.Equal(t, "POST", seen.Method)
				assert.JSONEq(t, endpoints[2].body, string(seen.Body))
			}
		})
	}
}
