package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/require"
)

// Header maps have no order, so each case runs many times: a reading that
// depends on which copy of a header comes first shows up as two answers.
func TestHeaderCopiesAreReadTheSameWayEveryTime(t *testing.T) {
	const (
		netlify = "203.0.113.7"
		claimed = "198.51.100.9"
		evil    = "https://evil.example"
	)
	tests := []struct {
		name     string
		headers  map[string]string
		multi    map[string][]string
		status   int
		clientIP string // what the service gets when status is 200
	}{
		{"one copy", map[string]string{"x-nf-client-connection-ip": netlify}, nil, 200, netlify},
		{"copies that agree in several casings",
			map[string]string{"x-nf-client-connection-ip": netlify, "X-Nf-Client-Connection-Ip": netlify, "X-NF-CLIENT-CONNECTION-IP": netlify},
			map[string][]string{"x-nf-client-connection-ip": {netlify}, "X-Nf-Client-Connection-Ip": {netlify, netlify}}, 200, netlify},
		{"a client copy in another casing",
			map[string]string{"x-nf-client-connection-ip": netlify, "X-Nf-Client-Connection-Ip": claimed}, nil, 200, ""},
		{"three casings, one disagreeing",
			map[string]string{"x-nf-client-connection-ip": netlify, "X-NF-Client-Connection-IP": netlify, "X-Nf-Client-Connection-Ip": claimed}, nil, 200, ""},
		{"a multi-value header that disagrees",
			map[string]string{"x-nf-client-connection-ip": netlify},
			map[string][]string{"x-nf-client-connection-ip": {netlify, claimed}}, 200, ""},
		{"single and multi-value disagreeing",
			map[string]string{"x-nf-client-connection-ip": netlify},
			map[string][]string{"X-Nf-Client-Connection-Ip": {claimed}}, 200, ""},
		{"only multi-value", map[string]string{}, map[string][]string{"X-Nf-Client-Connection-Ip": {netlify}}, 200, netlify},
		{"an empty copy", map[string]string{"x-nf-client-connection-ip": netlify, "X-Nf-Client-Connection-Ip": ""}, nil, 200, ""},
		{"origins that agree",
			map[string]string{"origin": ownOrigin, "Origin": ownOrigin},
			map[string][]string{"ORIGIN": {ownOrigin}}, 200, ""},
		{"a second origin", map[string]string{"origin": ownOrigin, "Origin": evil}, nil, 403, ""},
		{"a second origin, multi-value", nil, map[string][]string{"Origin": {ownOrigin, evil}}, 403, ""},
		{"a second content type", map[string]string{"content-type": "application/json", "Content-Type": "text/plain"}, nil, 415, ""},
		{"a second content type, multi-value", nil, map[string][]string{"content-type": {"application/json", "text/plain"}}, 415, ""},
	}
	for _, tt := range tests {
		for _, e := range endpoints {
			t.Run(tt.name+"/"+e.name, func(t *testing.T) {
				for range 200 {
					ev := events.APIGatewayProxyRequest{HTTPMethod: "POST", Body: e.body,
						Headers: map[string]string{}, MultiValueHeaders: map[string][]string{}}
					for k, v := range fromSite(nil) {
						if !names(tt.headers, tt.multi, k) {
							ev.Headers[k] = v
						}
					}
					for k, v := range tt.headers {
						ev.Headers[k] = v
					}
					for k, v := range tt.multi {
						ev.MultiValueHeaders[k] = v
					}
					svc := &recorder{}
					resp, err := e.new(svc, siteConfig()).V1(context.Background(), ev)
					require.NoError(t, err)
					require.Equal(t, tt.status, resp.StatusCode, resp.Body)
					if tt.status != 200 {
						require.Zero(t, svc.calls())
						continue
					}
					require.Equal(t, tt.clientIP, svc.clientIP(t))
				}
			})
		}
	}
}

// names reports whether either map has a header called name, in any casing.
func names(single map[string]string, multi map[string][]string, name string) bool {
	for k := range single {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	for k := range multi {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}
