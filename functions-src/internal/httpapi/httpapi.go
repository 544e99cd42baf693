// Package httpapi is a local stand-in for the AWS target's API Gateway
// HTTP API: an http.Handler that routes ANY /request-access and ANY
// /verify-access (the $default stage) to a function, handing it the
// payload format 2.0 event HTTP API would and turning its 2.0 response
// back into HTTP. Tests run it in front of the compiled binaries
// (lambdatest.Run), so what reaches them is the event shape they get
// on AWS, with the TCP peer (Netlify's proxy, in production) as
// requestContext.http.sourceIp.
//
// The event follows aws-lambda-go's events.APIGatewayV2HTTPRequest
// (events/apigw.go) and AWS's "Working with AWS Lambda proxy
// integrations for HTTP APIs" (payload format version 2.0): header names
// lower-cased, repeated headers and query parameters joined with commas,
// cookies apart from the headers, a body that is not UTF-8 text
// base64-encoded. The response may be the 2.0 shape (statusCode, headers,
// cookies, body, isBase64Encoded) or, as HTTP API allows, any other JSON,
// which is served as a 200 application/json body. An unknown route is 404
// {"message":"Not Found"} and a failed invocation 500 {"message":"Internal
// Server Error"}, HTTP API's own answers.
package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
)

// Function takes one event and returns the function's answer
// (lambdatest.Process is one).
type Function interface {
	Invoke(ctx context.Context, event []byte) ([]byte, error)
}

// Seen is what the stand-in saw of one routed request, for tests to
// check where calls came from. It holds no header value.
type Seen struct {
	Route       string // "ANY /request-access"
	SourceIP    string // the TCP peer
	Signed      bool   // an x-nf-sign header was present
	ClientIPSet bool   // an x-nf-client-connection-ip header was present
}

// API is the stand-in. Routes maps a path ("/request-access") to the
// function behind "ANY <path>".
type API struct {
	Routes    map[string]Function
	APIID     string        // requestContext.apiId; "local" when empty
	AccountID string        // requestContext.accountId; "000000000000" when empty
	Timeout   time.Duration // per invocation; HTTP API's 30 s when zero

	mu   sync.Mutex
	seen []Seen
}

// Seen lists the routed requests so far, oldest first.
func (a *API) Seen() []Seen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Seen(nil), a.seen...)
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fn, ok := a.Routes[r.URL.Path]
	if !ok {
		message(w, http.StatusNotFound, "Not Found")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20)) // HTTP API's payload quota: 10 MB
	if err != nil {
		message(w, http.StatusBadRequest, "Bad Request")
		return
	}
	ev := a.Event(r, body, time.Now())
	a.mu.Lock()
	a.seen = append(a.seen, Seen{Route: ev.RouteKey, SourceIP: ev.RequestContext.HTTP.SourceIP,
		Signed: ev.Headers["x-nf-sign"] != "", ClientIPSet: ev.Headers["x-nf-client-connection-ip"] != ""})
	a.mu.Unlock()

	payload, err := json.Marshal(ev)
	if err != nil {
		message(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	timeout := a.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	out, err := fn.Invoke(ctx, payload)
	if err != nil {
		if ctx.Err() != nil {
			message(w, http.StatusServiceUnavailable, "Service Unavailable")
			return
		}
		message(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	writeResponse(w, out)
}

// Event is the payload format 2.0 event HTTP API builds for r, whose body
// is body, received at now.
func (a *API) Event(r *http.Request, body []byte, now time.Time) events.APIGatewayV2HTTPRequest {
	apiID, account := a.APIID, a.AccountID
	if apiID == "" {
		apiID = "local"
	}
	if account == "" {
		account = "000000000000"
	}
	route := "ANY " + r.URL.Path
	headers := map[string]string{}
	for k, vs := range r.Header {
		if k = strings.ToLower(k); k != "cookie" {
			headers[k] = strings.Join(vs, ",")
		}
	}
	headers["host"] = r.Host
	var cookies []string
	for _, c := range r.Header.Values("Cookie") {
		for _, part := range strings.Split(c, ";") {
			if part = strings.TrimSpace(part); part != "" {
				cookies = append(cookies, part)
			}
		}
	}
	var query map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		query = map[string]string{}
		for k, vs := range q {
			query[k] = strings.Join(vs, ",")
		}
	}
	source, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		source = r.RemoteAddr
	}
	domain, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		domain = r.Host
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: route, RawPath: r.URL.EscapedPath(), RawQueryString: r.URL.RawQuery,
		Cookies: cookies, Headers: headers, QueryStringParameters: query,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: route, AccountID: account, Stage: "$default", RequestID: uuid.NewString(),
			APIID: apiID, DomainName: domain, DomainPrefix: strings.SplitN(domain, ".", 2)[0],
			Time: now.UTC().Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: source, UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return ev
}

func writeResponse(w http.ResponseWriter, out []byte) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(out, &probe) != nil || probe["statusCode"] == nil {
		// Not the 2.0 response shape: HTTP API serves the payload itself.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
		return
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode < 100 || resp.StatusCode > 599 {
		message(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			message(w, http.StatusInternalServerError, "Internal Server Error")
			return
		}
		body = b
	}
	h := w.Header()
	keys := make([]string, 0, len(resp.Headers))
	for k := range resp.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.Set(k, resp.Headers[k])
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	if h.Get("Content-Type") == "" && len(body) > 0 {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, bytes.NewReader(body))
}

// message answers the way HTTP API itself does: {"message":"..."}.
func message(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
