package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/app"
)

// countingService answers every call with success and counts them.
type countingService struct{ calls int }

func (c *countingService) RequestAccess(context.Context, access.AccessInput) (access.Issued, error) {
	c.calls++
	return access.Issued{RequestID: "6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01", ExpiresIn: 10 * time.Minute}, nil
}

func (c *countingService) Resend(_ context.Context, id, _ string) (access.Issued, error) {
	c.calls++
	return access.Issued{RequestID: id, ExpiresIn: 10 * time.Minute}, nil
}

func (c *countingService) VerifyAccess(context.Context, access.VerifyInput) (access.Grant, error) {
	c.calls++
	return access.Grant{URL: "https://files.example/cv.pdf", ExpiresIn: 2 * time.Minute}, nil
}

func TestDevOriginsAreAllowedOnTheLocalBackendOnly(t *testing.T) {
	awsEnv := func(site string) map[string]string {
		return map[string]string{
			"CV_BACKEND": "aws", "CV_DATA_DIR": t.TempDir(), "CV_SITE_URL": site,
			"CV_OWNER_NAME": "Ada", "CV_MAIL_FROM": "cv@example.com", "CV_OTP_SECRET": strongSecret,
			"CV_AWS_REGION": "eu-west-2", "CV_AWS_ACCESS_KEY_ID": "AKID", "CV_AWS_SECRET_ACCESS_KEY": "secret",
			"CV_S3_BUCKET": "my-cv",
		}
	}
	tests := []struct {
		name    string
		env     map[string]string
		allowed map[string]bool
	}{
		{"aws", awsEnv("https://cv.example.com"), map[string]bool{
			"https://cv.example.com": true, "http://localhost:8888": false, "http://127.0.0.1:8888": false}},
		// netlify dev against the emulators: the dev origin is the site.
		{"aws behind netlify dev", awsEnv("http://localhost:8888"), map[string]bool{
			"https://cv.example.com": false, "http://localhost:8888": true, "http://127.0.0.1:8888": false}},
		{"local", map[string]string{"CV_BACKEND": "local", "CV_DATA_DIR": t.TempDir(), "CV_SITE_URL": "https://cv.example.com"},
			map[string]bool{"https://cv.example.com": true, "http://localhost:8888": true, "http://127.0.0.1:8888": true,
				"http://localhost:9999": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := app.LoadConfig(envOf(tt.env))
			require.NoError(t, err)
			a, err := app.New(c, app.Options{})
			require.NoError(t, err)
			for origin, ok := range tt.allowed {
				svc := &countingService{}
				resp, err := api.RequestAccess(svc, a.API(nil)).V1(context.Background(), events.APIGatewayProxyRequest{
					HTTPMethod: "POST",
					Headers:    map[string]string{"Content-Type": "application/json", "Origin": origin},
					Body:       `{"name":"Ada","email":"ada@example.com","consent":true}`,
				})
				require.NoError(t, err)
				if ok {
					assert.Equal(t, 200, resp.StatusCode, "%s: %s", origin, resp.Body)
					assert.Equal(t, 1, svc.calls, origin)
				} else {
					assert.Equal(t, 403, resp.StatusCode, "%s: %s", origin, resp.Body)
					assert.Contains(t, resp.Body, `"error":"origin_not_allowed"`, origin)
					assert.Zero(t, svc.calls, origin)
				}
			}
		})
	}
}
