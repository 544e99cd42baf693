package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/httpapi"
)

// fake keeps the event it got and answers with answer.
type fake struct {
	got    []byte
	answer string
	err    error
}

func (f *fake) Invoke(_ context.Context, event []byte) ([]byte, error) {
	f.got = event
	return []byte(f.answer), f.err
}

func serve(t *testing.T, fn *fake) (*httpapi.API, string) {
	t.Helper()
	api := &httpapi.API{Routes: map[string]httpapi.Function{"/request-access": fn}, APIID: "abc123"}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return api, srv.URL
}

func TestTheEventIsPayload20AsHTTPAPISendsIt(t *testing.T) {
	fn := &fake{answer: `{"statusCode":201,"headers":{"content-type":"application/json","x-one":"1"},"cookies":["a=1; Path=/","b=2"],"body":"{\"ok\":true}"}`}
	api, url := serve(t, fn)
	req, err := http.NewRequest(http.MethodPost, url+"/request-access?x=1&x=2&y=%20", strings.NewReader(`{"name":"é"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	req.Header.Set("Cookie", "c1=v1; c2=v2")
	req.Header.Set("User-Agent", "ua/1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	assert.Equal(t, 201, resp.StatusCode)
	assert.Equal(t, `{"ok":true}`, string(body))
	assert.Equal(t, "1", resp.Header.Get("X-One"))
	assert.Equal(t, []string{"a=1; Path=/", "b=2"}, resp.Header.Values("Set-Cookie"))

	var ev events.APIGatewayV2HTTPRequest
	require.NoError(t, json.Unmarshal(fn.got, &ev))
	var raw map[string]any
	require.NoError(t, json.Unmarshal(fn.got, &raw))
	assert.Equal(t, "2.0", raw["version"], "the functions pick their adapter by this field")
	assert.Equal(t, "ANY /request-access", ev.RouteKey)
	assert.Equal(t, "ANY /request-access", ev.RequestContext.RouteKey)
	assert.Equal(t, "/request-access", ev.RawPath)
	assert.Equal(t, "x=1&x=2&y=%20", ev.RawQueryString)
	assert.Equal(t, map[string]string{"x": "1,2", "y": " "}, ev.QueryStringParameters)
	assert.Equal(t, []string{"c1=v1", "c2=v2"}, ev.Cookies)
	assert.NotContains(t, ev.Headers, "cookie", "cookies travel apart from the headers")
	assert.Equal(t, "a,b", ev.Headers["x-multi"])
	assert.Equal(t, "application/json", ev.Headers["content-type"])
	for k := range ev.Headers {
		assert.Equal(t, strings.ToLower(k), k)
	}
	host := strings.TrimPrefix(url, "http://")
	assert.Equal(t, host, ev.Headers["host"])
	assert.Equal(t, `{"name":"é"}`, ev.Body)
	assert.False(t, ev.IsBase64Encoded)

	rc := ev.RequestContext
	assert.Equal(t, "abc123", rc.APIID)
	assert.Equal(t, "000000000000", rc.AccountID)
	assert.Equal(t, "$default", rc.Stage)
	assert.Equal(t, "127.0.0.1", rc.DomainName)
	assert.NotEmpty(t, rc.RequestID)
	assert.NotZero(t, rc.TimeEpoch)
	assert.Regexp(t, `^[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} \+0000$`, rc.Time)
	assert.Equal(t, "POST", rc.HTTP.Method)
	assert.Equal(t, "/request-access", rc.HTTP.Path)
	assert.Equal(t, "HTTP/1.1", rc.HTTP.Protocol)
	assert.Equal(t, "ua/1", rc.HTTP.UserAgent)
	assert.Equal(t, "127.0.0.1", rc.HTTP.SourceIP)
	assert.Equal(t, []httpapi.Seen{{Route: "ANY /request-access", SourceIP: "127.0.0.1"}}, api.Seen())
}

// The source address is the TCP peer's, whatever headers say.
func TestSourceIPIsThePeer(t *testing.T) {
	fn := &fake{answer: `{"statusCode":200,"body":""}`}
	api, url := serve(t, fn)
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.7")}}).DialContext}}
	req, err := http.NewRequest(http.MethodGet, url+"/request-access", nil)
	require.NoError(t, err)
	req.Header.Set("X-Forwarded-For", "203.0.113.1")
	req.Header.Set("X-Nf-Client-Connection-Ip", "203.0.113.2")
	req.Header.Set("X-Nf-Sign", "t")
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	var ev events.APIGatewayV2HTTPRequest
	require.NoError(t, json.Unmarshal(fn.got, &ev))
	assert.Equal(t, "127.0.0.7", ev.RequestContext.HTTP.SourceIP)
	assert.Empty(t, ev.Body)
	assert.Equal(t, []httpapi.Seen{{Route: "ANY /request-access", SourceIP: "127.0.0.7", Signed: true, ClientIPSet: true}}, api.Seen())
}

func TestBinaryBodiesTravelBase64(t *testing.T) {
	bin := []byte{0xff, 0x00, 0xfe, 'x'}
	fn := &fake{answer: `{"statusCode":200,"headers":{"content-type":"application/octet-stream"},"isBase64Encoded":true,"body":"` +
		base64.StdEncoding.EncodeToString(bin) + `"}`}
	_, url := serve(t, fn)
	resp, err := http.Post(url+"/request-access", "application/octet-stream", strings.NewReader(string(bin)))
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, bin, got, "the response body is decoded")
	var ev events.APIGatewayV2HTTPRequest
	require.NoError(t, json.Unmarshal(fn.got, &ev))
	assert.True(t, ev.IsBase64Encoded)
	assert.Equal(t, base64.StdEncoding.EncodeToString(bin), ev.Body)
}

func TestHTTPAPIsOwnAnswers(t *testing.T) {
	for _, c := range []struct {
		name, path string
		fn         *fake
		status     int
		body       string
	}{
		{"unknown route", "/verify-access", &fake{}, 404, `{"message":"Not Found"}`},
		{"stage-style path", "/$default/request-access", &fake{}, 404, `{"message":"Not Found"}`},
		{"the function failed", "/request-access", &fake{err: errors.New("boom")}, 500, `{"message":"Internal Server Error"}`},
		{"a bad status", "/request-access", &fake{answer: `{"statusCode":42}`}, 500, `{"message":"Internal Server Error"}`},
		{"not the 2.0 response shape", "/request-access", &fake{answer: `{"hello":"world"}`}, 200, `{"hello":"world"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, url := serve(t, c.fn)
			resp, err := http.Get(url + c.path)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, c.status, resp.StatusCode)
			assert.JSONEq(t, c.body, string(b))
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		})
	}
}
