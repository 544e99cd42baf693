package api_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
)

// An admission refusal comes before every other rule: a direct call to a
// function URL gets 403 proxy_signature_invalid whatever it sends, the
// service is never reached, and the log says why in one line.
func TestContractAdmissionComesFirst(t *testing.T) {
	for _, sh := range shapes {
		for _, e := range endpoints {
			t.Run(sh.name+"/"+e.name, func(t *testing.T) {
				for _, req := range []sent{
					{method: "POST", headers: fromSite(nil), body: e.body},
					{method: "GET", headers: map[string]string{"Origin": "https://evil.example"}},
					{method: "POST", headers: map[string]string{"Content-Type": "text/plain"}, body: strings.Repeat("x", 5000)},
				} {
					var logs flowtest.Buffer
					svc := &recorder{}
					cfg := siteConfig()
					cfg.Log = slog.New(slog.NewJSONHandler(&logs, nil))
					cfg.Admit = func(api.Request) error { return errors.New("x-nf-sign: missing") }
					resp := sh.send(t, e.new(svc, cfg), req)
					assert.Equal(t, 403, resp.StatusCode)
					assert.Equal(t, "proxy_signature_invalid", errorCode(t, resp))
					assertSecurityHeaders(t, resp)
					assert.Zero(t, svc.calls(), "the service is never reached")
					assert.Equal(t, 1, strings.Count(logs.String(), `"reason":"x-nf-sign: missing"`), logs.String())
				}

				svc := &recorder{}
				cfg := siteConfig()
				var seen string
				cfg.Admit = func(r api.Request) error { seen = r.Header.Get("x-nf-sign"); return nil }
				resp := sh.send(t, e.new(svc, cfg), sent{method: "POST", headers: fromSite(map[string]string{"X-Nf-Sign": "token"}), body: e.body})
				assert.Equal(t, 200, resp.StatusCode, resp.Body)
				assert.Equal(t, "token", seen, "Admit sees the request's headers")
				assert.Equal(t, 1, svc.calls())
			})
		}
	}
}

// Without a gate, what Netlify and the dev server hand over is served, and
// a payload 2.0 event (a Function URL: anyone can send one) is refused.
func TestPayload20WithoutAGateIsRefused(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			var logs flowtest.Buffer
			svc := &recorder{}
			cfg := api.Config{Origins: []string{ownOrigin}, Log: slog.New(slog.NewJSONHandler(&logs, nil))}
			resp := sh.send(t, api.VerifyAccess(svc, cfg), sent{method: "POST", headers: fromSite(nil), body: endpoints[2].body})
			if sh.name != "v2" {
				assert.Equal(t, 200, resp.StatusCode, resp.Body)
				return
			}
			assert.Equal(t, 403, resp.StatusCode, resp.Body)
			assert.Equal(t, "proxy_signature_invalid", errorCode(t, resp))
			assert.Zero(t, svc.calls())
			assert.Contains(t, logs.String(), "CV_PROXY_SIGN_SECRET")
		})
	}
}
