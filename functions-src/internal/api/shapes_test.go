package api_test

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/api"
)

// sent is one HTTP request as a client sent it, before any platform put it
// into an event.
type sent struct {
	method string
	// headers and multi are every copy the platform passes on; v1 keeps
	// them apart, v2 joins a name's copies with commas, as Function URLs
	// and HTTP APIs do.
	headers  map[string]string
	multi    map[string][]string
	body     string
	base64   bool   // the platform base64-encodes the body
	sourceIP string // the connection's address as the platform saw it
	cookies  []string
}

// answer is what a function answered, read back out of its event shape.
type answer struct {
	StatusCode int
	Headers    map[string]string // one entry per canonical name, Set-Cookie apart
	Body       string
	SetCookie  []string // each cookie set, from whichever place the shape carries them in
}

// cookiesApart moves Set-Cookie out of merged headers: every shape
// carries each cookie whole, and none may be comma-joined.
func cookiesApart(a answer, cookies []string) answer {
	if c, ok := a.Headers["Set-Cookie"]; ok {
		delete(a.Headers, "Set-Cookie")
		a.SetCookie = append(a.SetCookie, c)
	}
	a.SetCookie = append(a.SetCookie, cookies...)
	return a
}

// shape is one way the functions are reached. The event shapes send their
// event as JSON through Function.Lambda, the handler lambda.Start runs, and
// read the answer back from JSON; "http" is net/http, as the dev server
// serves them.
type shape struct {
	name  string
	event func(sent) any
	reply func([]byte) (answer, error)
}

var shapes = []shape{
	{"v1", v1Event, func(b []byte) (answer, error) {
		var r events.APIGatewayProxyResponse
		err := json.Unmarshal(b, &r)
		return v1Answer(r), err
	}},
	{"v2", v2Event, func(b []byte) (answer, error) {
		var r events.LambdaFunctionURLResponse
		err := json.Unmarshal(b, &r)
		if _, inHeaders := r.Headers["Set-Cookie"]; inHeaders {
			return answer{}, errCookieHeader
		}
		return cookiesApart(answer{StatusCode: r.StatusCode, Headers: mergeHeaders(r.Headers, nil), Body: r.Body}, r.Cookies), err
	}},
	{name: "http"},
}

// sendHTTP is the "http" shape: each header copy is one header line, and
// the body arrives as bytes, never base64.
func sendHTTP(t testing.TB, f *api.Function, s sent) answer {
	r := httptest.NewRequest(s.method, "/.netlify/functions/x", strings.NewReader(s.body))
	r.RemoteAddr = net.JoinHostPort(cmp.Or(s.sourceIP, "192.0.2.200"), "4711")
	for k, v := range s.headers {
		r.Header[k] = append(r.Header[k], v) // as sent, casing kept
	}
	for k, vs := range s.multi {
		r.Header[k] = append(r.Header[k], vs...)
	}
	for _, c := range s.cookies {
		r.AddCookie(&http.Cookie{Name: strings.SplitN(c, "=", 2)[0], Value: strings.SplitN(c, "=", 2)[1]})
	}
	w := httptest.NewRecorder()
	f.ServeHTTP(w, r)
	res := w.Result()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	h := map[string][]string(res.Header)
	cookies := h["Set-Cookie"]
	delete(h, "Set-Cookie")
	return cookiesApart(answer{StatusCode: res.StatusCode, Headers: mergeHeaders(nil, h), Body: string(b)}, cookies)
}

var errCookieHeader = errors.New("a payload 2.0 answer carries its cookies in \"cookies\", not in a header")

func v1Event(s sent) any {
	ev := events.APIGatewayProxyRequest{HTTPMethod: s.method, Path: "/.netlify/functions/x", Body: s.body,
		IsBase64Encoded: s.base64, Headers: map[string]string{}, MultiValueHeaders: map[string][]string{},
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "req-v1",
			Identity: events.APIGatewayRequestIdentity{SourceIP: s.sourceIP}}}
	for k, v := range s.headers {
		ev.Headers[k] = v
	}
	for k, vs := range s.multi {
		ev.MultiValueHeaders[k] = vs
	}
	if len(s.cookies) > 0 {
		ev.Headers["cookie"] = strings.Join(s.cookies, "; ")
	}
	return ev
}

func v2Event(s sent) any {
	joined := map[string][]string{}
	for k, v := range s.headers {
		k = strings.ToLower(k)
		joined[k] = append(joined[k], v)
	}
	for k, vs := range s.multi {
		k = strings.ToLower(k)
		joined[k] = append(joined[k], vs...)
	}
	ev := events.LambdaFunctionURLRequest{Version: "2.0", RawPath: "/x", Body: s.body, IsBase64Encoded: s.base64,
		Cookies: s.cookies, Headers: map[string]string{},
		RequestContext: events.LambdaFunctionURLRequestContext{RequestID: "req-v2",
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: s.method, SourceIP: s.sourceIP}}}
	for k, vs := range joined {
		ev.Headers[k] = strings.Join(vs, ",")
	}
	return ev
}

// send delivers s to f in this shape, as the Lambda runtime would.
func (sh shape) send(t testing.TB, f *api.Function, s sent) answer {
	t.Helper()
	if sh.event == nil {
		return sendHTTP(t, f, s)
	}
	if s.base64 {
		s.body = base64.StdEncoding.EncodeToString([]byte(s.body))
	}
	ev, err := json.Marshal(sh.event(s))
	require.NoError(t, err)
	out, err := f.Lambda(context.Background(), ev)
	require.NoError(t, err, "a handler never returns an error to the runtime")
	b, err := json.Marshal(out)
	require.NoError(t, err)
	a, err := sh.reply(b)
	require.NoError(t, err, "%s", b)
	return a
}

// mergeHeaders merges single- and multi-value headers the way API Gateway
// and Netlify do, one entry per canonical name, distinct values joined.
func mergeHeaders(single map[string]string, multi map[string][]string) map[string]string {
	vals := map[string][]string{}
	add := func(k, v string) {
		k = http.CanonicalHeaderKey(k)
		for _, have := range vals[k] {
			if have == v {
				return
			}
		}
		vals[k] = append(vals[k], v)
	}
	for k, v := range single {
		add(k, v)
	}
	for k, vs := range multi {
		for _, v := range vs {
			add(k, v)
		}
	}
	out := map[string]string{}
	for k, vs := range vals {
		sort.Strings(vs)
		out[k] = strings.Join(vs, ", ")
	}
	return out
}

// v1Answer reads a typed v1 response, for tests that call V1 directly.
func v1Answer(r events.APIGatewayProxyResponse) answer {
	cookies := r.MultiValueHeaders["Set-Cookie"]
	multi := maps.Clone(r.MultiValueHeaders)
	delete(multi, "Set-Cookie")
	return cookiesApart(answer{StatusCode: r.StatusCode, Headers: mergeHeaders(r.Headers, multi), Body: r.Body}, cookies)
}
