package emulators

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// StandIn serves an endpoint in front of target (one of the stack's
// endpoints) that hands each request to answer first: answer writes a
// response and returns true to take the request, or returns false to let
// the emulator behind answer it. It is how tests make AWS refuse one
// action (an AccessDenied the emulators never send), or implement a call
// an emulator lacks. Requests reach answer with their body readable, and
// still readable by the emulator when answer passes. The server closes at
// the end of the test.
func StandIn(t testing.TB, target string, answer func(w http.ResponseWriter, r *http.Request, body []byte) bool) string {
	t.Helper()
	var proxy http.Handler = http.NotFoundHandler()
	if target != "" {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatalf("stand-in target %q: %v", target, err)
		}
		// The Host header is left as the client sent it, so SigV4
		// signatures over it still verify behind the proxy.
		proxy = httputil.NewSingleHostReverseProxy(u)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if answer(w, r, body) {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// DynamoDBOperation is the operation of a DynamoDB request (from its
// X-Amz-Target header, e.g. "PutItem"), and the table it names, if one.
func DynamoDBOperation(r *http.Request, body []byte) (op, table string) {
	op = strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	var in struct{ TableName string }
	_ = json.Unmarshal(body, &in)
	return op, in.TableName
}

// DynamoDBError answers as DynamoDB does, e.g. with AccessDeniedException.
func DynamoDBError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Requestid", uuid.NewString())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.dynamodb.v20120810#" + code, "message": msg})
}

// SESError answers as SES v2 (REST-JSON) does.
func SESError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", code)
	w.Header().Set("X-Amzn-Requestid", uuid.NewString())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// SNSError answers as SNS (the query protocol) does.
func SNSError(w http.ResponseWriter, status int, code, msg string) {
	snsError(w, status, "Sender", code, msg)
}

// S3Error answers as S3 does: an XML error body, except to HEAD, which S3
// answers with the status alone.
func S3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("X-Amz-Request-Id", strings.ToUpper(strings.ReplaceAll(uuid.NewString(), "-", "")[:16]))
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	var esc strings.Builder
	_ = xml.EscapeText(&esc, []byte(msg))
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>%s</Code><Message>%s</Message><RequestId>%s</RequestId></Error>`, code, esc.String(), uuid.NewString())
}
