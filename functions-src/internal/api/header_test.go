package api_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Header maps have no order, so each case runs many times: a reading that
// depends on which copy of a header comes first shows up as two answers.
// In v2 the copies arrive joined with commas under one lower-case name, and
// must be read the same way.
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
		{"a comma-joined origin", map[string]string{"Origin": ownOrigin + ", " + evil}, nil, 403, ""},
		{"a comma-joined content type", map[string]string{"Content-Type": "application/json, text/plain"}, nil, 415, ""},
		{"a comma-joined client address", map[string]string{"x-nf-client-connection-ip": netlify + ", " + claimed}, nil, 200, ""},
	}
	for _, sh := range shapes {
		for _, tt := range tests {
			for _, e := range endpoints {
				t.Run(sh.name+"/"+tt.name+"/"+e.name, func(t *testing.T) {
					for range 200 {
						s := sent{method: "POST", body: e.body, headers: map[string]string{}, multi: tt.multi}
						for k, v := range fromSite(nil) {
							if !names(tt.headers, tt.multi, k) {
								s.headers[k] = v
							}
						}
						for k, v := range tt.headers {
							s.headers[k] = v
						}
						svc := &recorder{}
						resp := sh.send(t, e.new(svc, siteConfig()), s)
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
