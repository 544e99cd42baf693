package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Lambda is the handler lambda.Start takes: it reads each event's shape
// from its "version" and serves it with V1 or V2, so one binary runs on
// Netlify (REST v1 events, which carry no version) and behind a Function
// URL or HTTP API (payload format 2.0, "version":"2.0"). The platform
// builds the event, a client cannot add top-level fields to it. An event
// of any other shape is logged and answered with an error: it comes from
// no HTTP front door this code knows, so there is no visitor to answer.
func (f *Function) Lambda(ctx context.Context, event json.RawMessage) (any, error) {
	var probe struct {
		Version string `json:"version"`
	}
	err := json.Unmarshal(event, &probe)
	if err == nil {
		switch probe.Version {
		case "", "1.0": // REST APIs and Netlify send none; HTTP API payload 1.0 is the REST shape
			var ev events.APIGatewayProxyRequest
			if err = json.Unmarshal(event, &ev); err == nil {
				return f.V1(ctx, ev)
			}
		case "2.0":
			var ev events.LambdaFunctionURLRequest
			if err = json.Unmarshal(event, &ev); err == nil {
				return f.V2(ctx, ev)
			}
		default:
			err = ErrUnknownEventShape
		}
	}
	log := f.log.With("fn", f.name)
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		log = log.With("invocation", lc.AwsRequestID)
	}
	version := probe.Version
	if !isToken(version) {
		version = fmt.Sprintf("(%d bytes)", len(version))
	}
	// The error is encoding/json's or ours: it names types, not contents.
	log.Error("unknown event shape", "version", version, "error", err.Error())
	return nil, ErrUnknownEventShape
}

// ErrUnknownEventShape is what the runtime gets for an event that is
// neither an API Gateway REST (v1) event nor a payload format 2.0 one.
var ErrUnknownEventShape = errors.New(`api: unknown event shape: want an API Gateway REST (v1) event or payload format 2.0 ("version":"2.0")`)
