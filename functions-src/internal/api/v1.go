package api

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
)

// V1Handler is what lambda.Start accepts for API Gateway REST (v1)
// events, the shape Netlify hands a Go function.
type V1Handler func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)

// V1 serves an API Gateway REST (v1) event. It never returns an error.
func (f *Function) V1(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	resp := f.Serve(ctx, fromV1(ev))
	out := events.APIGatewayProxyResponse{StatusCode: resp.Status, Headers: resp.Header, Body: string(resp.Body)}
	// One cookie rides in the headers, which every host of this shape
	// passes on; several need multiValueHeaders.
	switch n := len(resp.SetCookie); {
	case n == 1:
		out.Headers["Set-Cookie"] = resp.SetCookie[0]
	case n > 1:
		out.MultiValueHeaders = map[string][]string{"Set-Cookie": resp.SetCookie}
	}
	return out, nil
}

// fromV1 keeps every header copy, from Headers and MultiValueHeaders
// alike, for Header.Get to weigh.
func fromV1(ev events.APIGatewayProxyRequest) Request {
	h := make(Header, len(ev.Headers)+len(ev.MultiValueHeaders))
	for k, v := range ev.Headers {
		h[k] = append(h[k], v)
	}
	for k, vs := range ev.MultiValueHeaders {
		h[k] = append(h[k], vs...)
	}
	body, err := eventBody(ev.Body, ev.IsBase64Encoded)
	return Request{
		Method: ev.HTTPMethod, Path: ev.Path, Header: h, Body: body, bodyErr: err,
		SourceIP: ev.RequestContext.Identity.SourceIP, ID: ev.RequestContext.RequestID,
	}
}
