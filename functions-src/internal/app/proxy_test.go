package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/proxysign/proxysigntest"
)

const (
	proxySecret = "proxy-secret-0123456789abcdef0123456789abcdef"
	siteID      = "5a6b7c8d-0000-4000-8000-123456789abc"
)

// netlifySign makes an x-nf-sign token the way Netlify's signed proxy does.
var netlifySign = proxysigntest.Sign

// ipService records the client address the edge handed the domain.
type ipService struct {
	countingService
	ip string
}

func (s *ipService) VerifyAccess(ctx context.Context, in access.VerifyInput) (access.Grant, error) {
	s.ip = in.ClientIP
	return s.countingService.VerifyAccess(ctx, in)
}

func TestTheAWSTargetServesOnlyNetlifysSignedProxy(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	env := map[string]string{
		"CV_BACKEND": "aws", "CV_DATA_DIR": t.TempDir(), "CV_SITE_URL": "https://cv.example.com",
		"CV_OWNER_NAME": "Ada", "CV_MAIL_FROM": "cv@example.com", "CV_OTP_SECRET": strongSecret,
		"CV_AWS_REGION": "eu-west-2", "CV_S3_BUCKET": "my-cv",
		"CV_PROXY_SIGN_SECRET": proxySecret, "CV_NETLIFY_SITE_ID": siteID,
	}
	c, err := app.LoadConfig(envOf(env))
	require.NoError(t, err)
	a, err := app.New(c, app.Options{Now: func() time.Time { return now }})
	require.NoError(t, err)

	hs256 := map[string]any{"alg": "HS256", "typ": "JWT"}
	claims := func(edit func(map[string]any)) map[string]any {
		m := map[string]any{"iss": "netlify", "netlify_id": siteID, "site_url": "https://cv.example.com",
			"deploy_context": "production", "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(4 * time.Minute).Unix()}
		if edit != nil {
			edit(m)
		}
		return m
	}
	valid := netlifySign(hs256, claims(nil), proxySecret)
	unsigned := strings.Join(strings.Split(netlifySign(map[string]any{"alg": "none"}, claims(nil), proxySecret), ".")[:2], ".") + "."

	call := func(token, ip string) (events.LambdaFunctionURLResponse, *ipService) {
		svc := &ipService{}
		h := map[string]string{"content-type": "application/json", "origin": "https://cv.example.com",
			"x-nf-client-connection-ip": ip}
		if token != "" {
			h["x-nf-sign"] = token
		}
		ev := events.LambdaFunctionURLRequest{Version: "2.0", Headers: h,
			Body: `{"requestId":"6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01","otp":"123456"}`,
			RequestContext: events.LambdaFunctionURLRequestContext{
				HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", SourceIP: "3.5.140.2"}}}
		resp, err := api.VerifyAccess(svc, a.API(nil)).V2(context.Background(), ev)
		require.NoError(t, err)
		return resp, svc
	}

	for _, tc := range []struct{ name, token string }{
		{"no x-nf-sign", ""},
		{"another key", netlifySign(hs256, claims(nil), "another-secret-0123456789abcdef0123456789")},
		{"expired", netlifySign(hs256, claims(func(m map[string]any) {
			m["iat"], m["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-5*time.Minute).Unix()
		}), proxySecret)},
		{"another site", netlifySign(hs256, claims(func(m map[string]any) { m["netlify_id"] = "another-site" }), proxySecret)},
		{"alg none", unsigned},
		{"HS512 header", netlifySign(map[string]any{"alg": "HS512"}, claims(nil), proxySecret)},
		{"not a token", "x"},
		{"a deploy preview's token", netlifySign(hs256, claims(func(m map[string]any) { m["deploy_context"] = "deploy-preview" }), proxySecret)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, svc := call(tc.token, "198.51.100.7")
			assert.Equal(t, 403, resp.StatusCode, resp.Body)
			assert.Contains(t, resp.Body, `"error":"proxy_signature_invalid"`)
			assert.Zero(t, svc.calls, "nothing reaches the service")
		})
	}

	t.Run("a signed request is served, and counted under Netlify's address for the visitor", func(t *testing.T) {
		resp, svc := call(valid, "198.51.100.7")
		assert.Equal(t, 200, resp.StatusCode, resp.Body)
		assert.Equal(t, 1, svc.calls)
		assert.Equal(t, "198.51.100.7", svc.ip, "never the Function URL's source IP (Netlify's own)")
	})

	t.Run("the Netlify target has no gate", func(t *testing.T) {
		delete(env, "CV_PROXY_SIGN_SECRET")
		delete(env, "CV_NETLIFY_SITE_ID")
		c, err := app.LoadConfig(envOf(env))
		require.NoError(t, err)
		a, err := app.New(c, app.Options{})
		require.NoError(t, err)
		assert.Nil(t, a.API(nil).Admit)
	})
}

func TestProxySettingsComeInPairs(t *testing.T) {
	base := map[string]string{
		"CV_BACKEND": "aws", "CV_SITE_URL": "https://cv.example.com", "CV_OWNER_NAME": "Ada",
		"CV_MAIL_FROM": "cv@example.com", "CV_OTP_SECRET": strongSecret, "CV_S3_BUCKET": "my-cv",
	}
	for _, tc := range []struct {
		name string
		set  map[string]string
		says string
	}{
		{"secret without site", map[string]string{"CV_PROXY_SIGN_SECRET": proxySecret}, "CV_NETLIFY_SITE_ID is not"},
		{"site without secret", map[string]string{"CV_NETLIFY_SITE_ID": siteID}, "CV_PROXY_SIGN_SECRET is not"},
		{"short secret", map[string]string{"CV_PROXY_SIGN_SECRET": "short", "CV_NETLIFY_SITE_ID": siteID}, "use at least 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.set {
				env[k] = v
			}
			_, err := app.LoadConfig(envOf(env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.says)
		})
	}
}
