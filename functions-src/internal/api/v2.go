package api

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
)

// V2 serves a payload format 2.0 event, what Lambda Function URLs and API
// Gateway HTTP APIs send (the HTTP API's event has more fields, none read
// here). It never returns an error. Cookies arrive apart from the headers,
// and leave apart from them too.
func (f *Function) V2(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	resp := f.Serve(ctx, fromV2(ev))
	return events.LambdaFunctionURLResponse{StatusCode: resp.Status, Headers: resp.Header, Body: string(resp.Body), Cookies: resp.SetCookie}, nil
}

// fromV2 hands each header over as its one value: the platform has
// already joined repeated headers with commas, which Header.Get reads as
// copies.
func fromV2(ev events.LambdaFunctionURLRequest) Request {
	h := make(Header, len(ev.Headers))
	for k, v := range ev.Headers {
		h[k] = append(h[k], v)
	}
	body, err := eventBody(ev.Body, ev.IsBase64Encoded)
	return Request{
		Method: ev.RequestContext.HTTP.Method, Path: ev.RawPath, Header: h, Body: body, bodyErr: err,
		SourceIP: ev.RequestContext.HTTP.SourceIP, ID: ev.RequestContext.RequestID, Cookies: ev.Cookies, public: true,
	}
}
