package api_test

// The edge's contract, written against what a function receives and what it
// answers: every expected value is spelled out here, never read back from
// the package, so a change to the edge that breaks the contract fails here
// however the edge is arranged inside. Every case runs in every event
// shape (shapes_test.go) with the same expectations.

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/api"
)

const (
	ownOrigin = "https://cv.example.com"
	requestID = "6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01"
)

type resendCall struct{ RequestID, ClientIP string }

// recorder is a Service that writes down every call it gets.
type recorder struct {
	accessCalls []access.AccessInput
	resendCalls []resendCall
	verifyCalls []access.VerifyInput
	err         error
	panic       bool
}

func (r *recorder) calls() int { return len(r.accessCalls) + len(r.resendCalls) + len(r.verifyCalls) }

// clientIP is the address the one call recorded was given.
func (r *recorder) clientIP(t *testing.T) string {
	t.Helper()
	require.Equal(t, 1, r.calls(), "one call")
	switch {
	case len(r.accessCalls) == 1:
		return r.accessCalls[0].ClientIP
	case len(r.resendCalls) == 1:
		return r.resendCalls[0].ClientIP
	default:
		return r.verifyCalls[0].ClientIP
	}
}

func (r *recorder) answer() error {
	if r.panic {
		panic("boom")
	}
	return r.err
}

func (r *recorder) RequestAccess(_ context.Context, in access.AccessInput) (access.Issued, error) {
	r.accessCalls = append(r.accessCalls, in)
	if err := r.answer(); err != nil {
		return access.Issued{}, err
	}
	return access.Issued{RequestID: requestID, ExpiresIn: 10 * time.Minute}, nil
}

func (r *recorder) Resend(_ context.Context, id, clientIP string) (access.Issued, error) {
	r.resendCalls = append(r.resendCalls, resendCall{id, clientIP})
	if err := r.answer(); err != nil {
		return access.Issued{}, err
	}
	return access.Issued{RequestID: id, ExpiresIn: 10 * time.Minute}, nil
}

func (r *recorder) VerifyAccess(_ context.Context, in access.VerifyInput) (access.Grant, error) {
	r.verifyCalls = append(r.verifyCalls, in)
	if err := r.answer(); err != nil {
		return access.Grant{}, err
	}
	return access.Grant{URL: "https://files.example/cv.pdf?X-Amz-Signature=x", ExpiresIn: 2 * time.Minute}, nil
}

// endpoint is one function with a body it accepts.
type endpoint struct {
	name string
	new  func(api.Service, api.Config) *api.Function
	body string
}

var endpoints = []endpoint{
	{"request-access", api.RequestAccess, `{"name":"Ada Lovelace","email":"ada@example.com","consent":true}`},
	{"resend", api.RequestAccess, `{"requestId":"` + requestID + `","resend":true}`},
	{"verify-access", api.VerifyAccess, `{"requestId":"` + requestID + `","otp":"123456"}`},
}

// siteConfig is a function's edge as the site configures it, behind a
// gate that admits everything: the shapes then differ only in transport
// (a payload 2.0 event without a gate is refused; see admit_test.go).
func siteConfig() api.Config { return api.Config{Origins: []string{ownOrigin}, Admit: admitAll} }

func admitAll(api.Request) error { return nil }

// call sends one POST with the given headers in shape sh.
func call(t *testing.T, sh shape, e endpoint, svc api.Service, body string, headers map[string]string) answer {
	t.Helper()
	return sh.send(t, e.new(svc, siteConfig()), sent{method: "POST", headers: headers, body: body})
}

func fromSite(extra map[string]string) map[string]string {
	h := map[string]string{"Content-Type": "application/json", "Origin": ownOrigin}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

func errorCode(t *testing.T, resp answer) string {
	t.Helper()
	var b struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &b), resp.Body)
	assert.NotEmpty(t, b.Message, "every error carries a human message")
	return b.Error
}

func TestContractOriginMustBeTheSitesOwn(t *testing.T) {
	for _, sh := range shapes {
		for _, e := range endpoints {
			t.Run(sh.name+"/"+e.name, func(t *testing.T) {
				for _, origin := range []string{
					"",
					"https://evil.example",
					"https://cv.example.com.evil.example",
					"http://cv.example.com",
					"https://cv.example.com:8443",
					"null",
					"http://localhost:8888",
					"http://127.0.0.1:8888",
				} {
					svc := &recorder{}
					h := map[string]string{"Content-Type": "application/json"}
					if origin != "" {
						h["Origin"] = origin
					}
					resp := call(t, sh, e, svc, e.body, h)
					assert.Equal(t, 403, resp.StatusCode, "origin %q", origin)
					assert.Equal(t, "origin_not_allowed", errorCode(t, resp), "origin %q", origin)
					assert.Zero(t, svc.calls(), "origin %q reached the service", origin)
				}

				svc := &recorder{}
				resp := call(t, sh, e, svc, e.body, fromSite(nil))
				assert.Equal(t, 200, resp.StatusCode, resp.Body)
				assert.Equal(t, 1, svc.calls())
			})
		}
	}
}

// sized returns e's body padded to exactly n bytes inside its first string.
func sized(t *testing.T, e endpoint, n int) string {
	t.Helper()
	var head, tail string
	if e.name == "verify-access" {
		head, tail = `{"requestId":"`, `","otp":"123456"}`
	} else {
		head, tail = `{"name":"`, `","email":"ada@example.com","consent":true}`
	}
	body := head + strings.Repeat("a", n-len(head)-len(tail)) + tail
	require.Len(t, body, n)
	return body
}

func TestContractBodyLimitIs4096Bytes(t *testing.T) {
	// The resend body has no room to grow, so the form stands in for it.
	for _, sh := range shapes {
		for _, e := range []endpoint{endpoints[0], endpoints[2]} {
			for _, encoded := range []bool{false, true} {
				name := sh.name + "/" + e.name
				if encoded {
					name += "/base64"
				}
				t.Run(name, func(t *testing.T) {
					send := func(n int) (*recorder, answer) {
						svc := &recorder{}
						return svc, sh.send(t, e.new(svc, siteConfig()), sent{method: "POST", headers: fromSite(nil),
							body: sized(t, e, n), base64: encoded})
					}
					// Three sizes each side: every base64 padding case.
					for _, n := range []int{4094, 4095, 4096} {
						svc, resp := send(n)
						assert.Equal(t, 200, resp.StatusCode, "%d bytes: %s", n, resp.Body)
						assert.Equal(t, 1, svc.calls(), "%d bytes reach the service", n)
						if e.name == "verify-access" && svc.calls() == 1 {
							assert.Len(t, svc.verifyCalls[0].RequestID, n-len(`{"requestId":"","otp":"123456"}`), "the whole body was read")
						}
					}
					for _, n := range []int{4097, 4098, 4099, 100_000} {
						svc, resp := send(n)
						assert.Equal(t, 413, resp.StatusCode, "%d bytes", n)
						assert.Equal(t, "body_too_large", errorCode(t, resp), "%d bytes", n)
						assert.Zero(t, svc.calls(), "%d bytes reached the service", n)
					}
				})
			}
		}
	}
}

func TestContractClientIPIsNetlifysHeaderOnly(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"both headers", map[string]string{"x-nf-client-connection-ip": "203.0.113.7", "X-Forwarded-For": "198.51.100.9"}, "203.0.113.7"},
		{"ipv6", map[string]string{"x-nf-client-connection-ip": "2001:db8::1", "X-Forwarded-For": "198.51.100.9"}, "2001:db8::1"},
		{"only X-Forwarded-For", map[string]string{"X-Forwarded-For": "198.51.100.9"}, ""},
		{"X-Real-Ip and Client-Ip are no substitute", map[string]string{"X-Real-Ip": "198.51.100.9", "Client-Ip": "198.51.100.10"}, ""},
		{"longer than any address", map[string]string{"x-nf-client-connection-ip": strings.Repeat("1", 46)}, ""},
		{"45 characters, the longest IPv6 text", map[string]string{
			"x-nf-client-connection-ip": "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"}, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"},
		{"no header: the event's source address is not the client's", map[string]string{}, ""},
		{"a comma-joined list is two copies", map[string]string{"x-nf-client-connection-ip": "203.0.113.7, 198.51.100.9"}, ""},
		{"a comma-joined list without spaces", map[string]string{"x-nf-client-connection-ip": "203.0.113.7,198.51.100.9"}, ""},
		{"a comma-joined list that agrees", map[string]string{"x-nf-client-connection-ip": "203.0.113.7, 203.0.113.7"}, "203.0.113.7"},
		{"a trailing comma", map[string]string{"x-nf-client-connection-ip": "203.0.113.7,"}, ""},
	}
	for _, sh := range shapes {
		for _, tt := range tests {
			for _, e := range endpoints {
				t.Run(sh.name+"/"+tt.name+"/"+e.name, func(t *testing.T) {
					svc := &recorder{}
					resp := sh.send(t, e.new(svc, siteConfig()), sent{method: "POST", headers: fromSite(tt.headers),
						body: e.body, sourceIP: "192.0.2.44"})
					require.Equal(t, 200, resp.StatusCode, resp.Body)
					assert.Equal(t, tt.want, svc.clientIP(t), "never the event's source address")
				})
			}
		}
	}
}

// wantHeaders is the header set of every function answer, whatever the
// outcome; Allow (405) and Retry-After (429, 503) come on top.
var wantHeaders = map[string]string{
	"Cache-Control":                "no-store",
	"Content-Security-Policy":      "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Referrer-Policy":              "no-referrer",
	"Strict-Transport-Security":    "max-age=63072000; includeSubDomains",
	"X-Content-Type-Options":       "nosniff",
	"X-Frame-Options":              "DENY",
	"Content-Type":                 "application/json; charset=utf-8",
}

// assertSecurityHeaders checks the exact header set of an answer.
func assertSecurityHeaders(t *testing.T, resp answer) {
	t.Helper()
	got := maps.Clone(resp.Headers)
	switch resp.StatusCode {
	case 405:
		assert.Equal(t, "POST", got["Allow"])
		delete(got, "Allow")
	case 429, 503:
		assert.Regexp(t, regexp.MustCompile(`^[1-9][0-9]*$`), got["Retry-After"])
		delete(got, "Retry-After")
	}
	assert.Equal(t, wantHeaders, got, "status %d", resp.StatusCode)
}

func TestContractSecurityHeadersOnEveryAnswer(t *testing.T) {
	ok := fromSite(nil)
	tests := []struct {
		name   string
		svc    *recorder
		method string
		hdr    map[string]string
		body   string // "" means the endpoint's own
		status int
	}{
		{"success", &recorder{}, "POST", ok, "", 200},
		{"domain error", &recorder{err: &access.Error{Kind: access.KindIncorrect, Code: "otp_incorrect", Message: "m"}}, "POST", ok, "", 400},
		{"rate limited", &recorder{err: &access.Error{Kind: access.KindRateLimited, Code: "rate_limited", Message: "m", RetryAfter: time.Minute}}, "POST", ok, "", 429},
		{"busy", &recorder{err: &access.Error{Kind: access.KindBusy, Code: "busy", Message: "m"}}, "POST", ok, "", 503},
		{"download unavailable", &recorder{err: &access.Error{Kind: access.KindNotReady, Code: "download_unavailable", Message: "m",
			RetryAfter: 30 * time.Second}}, "POST", ok, "", 503},
		{"internal error", &recorder{err: errors.New("table exploded")}, "POST", ok, "", 500},
		{"foreign origin", &recorder{}, "POST", fromSite(map[string]string{"Origin": "https://evil.example"}), "", 403},
		{"missing origin", &recorder{}, "POST", map[string]string{"Content-Type": "application/json"}, "", 403},
		{"GET", &recorder{}, "GET", ok, "", 405},
		{"text/plain", &recorder{}, "POST", fromSite(map[string]string{"Content-Type": "text/plain"}), "", 415},
		{"too large", &recorder{}, "POST", ok, `{"name":"` + strings.Repeat("a", 5000) + `"}`, 413},
		{"bad JSON", &recorder{}, "POST", ok, `{"name":`, 400},
		{"panic", &recorder{panic: true}, "POST", ok, "", 500},
	}
	for _, sh := range shapes {
		for _, tt := range tests {
			for _, e := range endpoints {
				t.Run(sh.name+"/"+tt.name+"/"+e.name, func(t *testing.T) {
					body := tt.body
					if body == "" {
						body = e.body
					}
					resp := sh.send(t, e.new(tt.svc, siteConfig()), sent{method: tt.method, headers: tt.hdr, body: body})
					require.Equal(t, tt.status, resp.StatusCode, resp.Body)
					assertSecurityHeaders(t, resp)
				})
			}
		}
	}
}
