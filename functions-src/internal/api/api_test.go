package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/api"
)

// fakeService records the inputs it got and answers as told.
type fakeService struct {
	gotAccess access.AccessInput
	gotResend string
	gotVerify access.VerifyInput
	calls     int
	err       error
	panic     bool
}

func (f *fakeService) RequestAccess(_ context.Context, in access.AccessInput) (access.Issued, error) {
	f.calls++
	f.gotAccess = in
	if f.panic {
		panic("boom with ada@example.com")
	}
	if f.err != nil {
		return access.Issued{}, f.err
	}
	return access.Issued{RequestID: "6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01", ExpiresIn: 10 * time.Minute}, nil
}

func (f *fakeService) Resend(_ context.Context, id, _ string) (access.Issued, error) {
	f.calls++
	f.gotResend = id
	if f.err != nil {
		return access.Issued{}, f.err
	}
	return access.Issued{RequestID: id, ExpiresIn: 10 * time.Minute}, nil
}

func (f *fakeService) VerifyAccess(_ context.Context, in access.VerifyInput) (access.Grant, error) {
	f.calls++
	f.gotVerify = in
	if f.err != nil {
		return access.Grant{}, f.err
	}
	return access.Grant{URL: "https://files.example/cv.pdf?sig=x", ExpiresIn: 2 * time.Minute}, nil
}

const site = "https://cv.example.com"

var jsonHeader = map[string]string{"Content-Type": "application/json; charset=utf-8", "Origin": site}

func cfg(log *slog.Logger) api.Config {
	return api.Config{Log: log, Origins: []string{site}, Admit: admitAll}
}

func post(body string) events.APIGatewayProxyRequest {
	return events.APIGatewayProxyRequest{
		HTTPMethod: "POST",
		Headers:    map[string]string{"content-type": "application/json", "origin": site},
		Body:       body,
	}
}

type errorBody struct {
	Error        string            `json:"error"`
	Message      string            `json:"message"`
	Fields       map[string]string `json:"fields"`
	AttemptsLeft *int              `json:"attemptsLeft"`
}

func decodeError(t *testing.T, resp events.APIGatewayProxyResponse) errorBody {
	t.Helper()
	var b errorBody
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &b), resp.Body)
	assert.NotEmpty(t, b.Error)
	assert.NotEmpty(t, b.Message)
	return b
}

const validForm = `{"name":"Ada Lovelace","email":"ada@example.com","consent":true}`

func TestRequestAccessSuccessShape(t *testing.T) {
	svc := &fakeService{}
	resp, err := api.RequestAccess(svc, cfg(nil)).V1(context.Background(), post(
		`{"name":"Ada","email":"ada@example.com","phone":"+447400900123","company":"E","location":"L","consent":true,"document":"portfolio"}`))
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.JSONEq(t, `{"message":"OTP sent","requestId":"6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01","expiresIn":600}`, resp.Body)
	assertSecurityHeaders(t, v1Answer(resp))
	assert.Equal(t, access.AccessInput{Name: "Ada", Email: "ada@example.com", Phone: "+447400900123",
		Company: "E", Location: "L", Consent: true, Document: "portfolio"}, svc.gotAccess)
}

func TestResendShape(t *testing.T) {
	svc := &fakeService{}
	h := api.RequestAccess(svc, cfg(nil)).V1
	resp, _ := h(context.Background(), post(`{"requestId":"6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01","resend":true}`))
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01", svc.gotResend)

	for _, body := range []string{
		`{"requestId":"6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01"}`,
		`{"requestId":"6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01","resend":true,"email":"x@example.com"}`,
		`{"resend":true}`,
	} {
		svc.calls = 0
		resp, _ := h(context.Background(), post(body))
		assert.Equal(t, 422, resp.StatusCode, body)
		assert.Equal(t, "invalid_input", decodeError(t, resp).Error)
		assert.Zero(t, svc.calls, "a malformed resend reaches no service")
	}
}

func TestVerifyAccessSuccessShape(t *testing.T) {
	svc := &fakeService{}
	resp, err := api.VerifyAccess(svc, cfg(nil)).V1(context.Background(), post(`{"requestId":"r","otp":"123456","document":"cv"}`))
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.JSONEq(t, `{"redirectUrl":"https://files.example/cv.pdf?sig=x","expiresIn":120}`, resp.Body)
	assertSecurityHeaders(t, v1Answer(resp))
	assert.Equal(t, access.VerifyInput{RequestID: "r", OTP: "123456", Document: "cv"}, svc.gotVerify)
}

func TestRequestShapeRefusals(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name   string
		ev     events.APIGatewayProxyRequest
		status int
		code   string
	}{
		{"GET", events.APIGatewayProxyRequest{HTTPMethod: "GET"}, 405, "method_not_allowed"},
		{"OPTIONS", events.APIGatewayProxyRequest{HTTPMethod: "OPTIONS"}, 405, "method_not_allowed"},
		{"no content type", events.APIGatewayProxyRequest{HTTPMethod: "POST", Body: validForm}, 415, "unsupported_media_type"},
		{"text/plain (a cross-site simple request)", events.APIGatewayProxyRequest{HTTPMethod: "POST",
			Headers: map[string]string{"Content-Type": "text/plain"}, Body: validForm}, 415, "unsupported_media_type"},
		{"case-variant key", post(`{"NAME":"Ada","email":"ada@example.com","consent":true}`), 400, "invalid_json"},
		{"duplicate key", post(`{"name":"Ada","email":"ada@example.com","consent":true,"consent":false}`), 400, "invalid_json"},
		{"form encoded", events.APIGatewayProxyRequest{HTTPMethod: "POST",
			Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, Body: "name=a"}, 415, "unsupported_media_type"},
		{"garbage content type", events.APIGatewayProxyRequest{HTTPMethod: "POST",
			Headers: map[string]string{"content-type": ";;;"}, Body: validForm}, 415, "unsupported_media_type"},
		{"oversized", post(`{"name":"` + strings.Repeat("a", 4096) + `"}`), 413, "body_too_large"},
		{"oversized base64", events.APIGatewayProxyRequest{HTTPMethod: "POST", IsBase64Encoded: true, Headers: jsonHeader,
			Body: b64(strings.Repeat(" ", 4106))}, 413, "body_too_large"},
		{"bad base64", events.APIGatewayProxyRequest{HTTPMethod: "POST", IsBase64Encoded: true, Headers: jsonHeader, Body: "!!!"}, 400, "invalid_json"},
		{"empty", post(""), 400, "invalid_json"},
		{"blank", post(" \n "), 400, "invalid_json"},
		{"not json", post("name=ada"), 400, "invalid_json"},
		{"truncated", post(`{"name":"Ada"`), 400, "invalid_json"},
		{"array", post(`[1,2]`), 400, "invalid_json"},
		{"string", post(`"hello"`), 400, "invalid_json"},
		{"null", post(`null`), 400, "invalid_json"},
		{"two objects", post(validForm + validForm), 400, "invalid_json"},
		{"unknown field", post(`{"name":"Ada","email":"ada@example.com","consent":true,"admin":true}`), 400, "invalid_json"},
		{"consent as string", post(`{"name":"Ada","email":"ada@example.com","consent":"yes"}`), 400, "invalid_json"},
		{"name as number", post(`{"name":5,"email":"ada@example.com","consent":true}`), 400, "invalid_json"},
		{"deep nesting", post(`{"name":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`), 400, "invalid_json"},
		{"invalid utf-8", post("{\"name\":\"\xff\xfe\",\"email\":\"ada@example.com\",\"consent\":true}"), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &fakeService{}
			resp, err := api.RequestAccess(svc, cfg(nil)).V1(context.Background(), tt.ev)
			require.NoError(t, err, "handlers never return an error to the runtime")
			assert.Equal(t, tt.status, resp.StatusCode, resp.Body)
			assertSecurityHeaders(t, v1Answer(resp))
			if tt.code == "" {
				return
			}
			assert.Equal(t, tt.code, decodeError(t, resp).Error)
			if tt.status != 422 {
				assert.Zero(t, svc.calls, "a refused request reaches no service")
			}
			if tt.status == 405 {
				assert.Equal(t, "POST", resp.Headers["Allow"])
			}
		})
	}
}

func TestWrongTypeNamesTheField(t *testing.T) {
	resp, _ := api.RequestAccess(&fakeService{}, cfg(nil)).V1(context.Background(),
		post(`{"name":"Ada","email":"ada@example.com","consent":"yes"}`))
	assert.Contains(t, decodeError(t, resp).Message, `"consent"`)
}

func TestBase64BodyIsDecoded(t *testing.T) {
	svc := &fakeService{}
	resp, _ := api.RequestAccess(svc, cfg(nil)).V1(context.Background(), events.APIGatewayProxyRequest{
		HTTPMethod: "POST", IsBase64Encoded: true, Headers: jsonHeader, Body: base64.StdEncoding.EncodeToString([]byte(validForm)),
	})
	assert.Equal(t, 200, resp.StatusCode, resp.Body)
	assert.Equal(t, "Ada Lovelace", svc.gotAccess.Name)
}

func TestErrorMapping(t *testing.T) {
	two := 2
	tests := []struct {
		err     error
		status  int
		code    string
		headers map[string]string
	}{
		{&access.Error{Kind: access.KindInvalid, Code: "invalid_input", Message: "m", Fields: map[string]string{"email": "bad"}}, 422, "invalid_input", nil},
		{&access.Error{Kind: access.KindIncorrect, Code: "otp_incorrect", Message: "m", AttemptsLeft: &two}, 400, "otp_incorrect", nil},
		{&access.Error{Kind: access.KindNotFound, Code: "request_not_found", Message: "m"}, 404, "request_not_found", nil},
		{&access.Error{Kind: access.KindExpired, Code: "otp_expired", Message: "m"}, 410, "otp_expired", nil},
		{&access.Error{Kind: access.KindUsed, Code: "otp_used", Message: "m"}, 409, "otp_used", nil},
		{&access.Error{Kind: access.KindLocked, Code: "otp_locked", Message: "m"}, 403, "otp_locked", nil},
		{&access.Error{Kind: access.KindConflict, Code: "resend_limit_reached", Message: "m"}, 409, "resend_limit_reached", nil},
		{&access.Error{Kind: access.KindRateLimited, Code: "resend_too_soon", Message: "m", RetryAfter: 1500 * time.Millisecond}, 429, "resend_too_soon",
			map[string]string{"Retry-After": "2"}},
		{&access.Error{Kind: access.KindUnavailable, Code: "delivery_failed", Message: "m"}, 502, "delivery_failed", nil},
		{&access.Error{Kind: access.KindBusy, Code: "busy", Message: "m", RetryAfter: 5 * time.Second}, 503, "busy",
			map[string]string{"Retry-After": "5"}},
		{&access.Error{Kind: access.KindNotReady, Code: "download_unavailable", Message: "m", AttemptsLeft: &two, RetryAfter: 30 * time.Second},
			503, "download_unavailable", map[string]string{"Retry-After": "30"}},
		{errors.New("dynamodb: secret-table-name exploded"), 500, "internal", nil},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			resp, _ := api.VerifyAccess(&fakeService{err: tt.err}, cfg(nil)).V1(context.Background(), post(`{"requestId":"r","otp":"1"}`))
			assert.Equal(t, tt.status, resp.StatusCode)
			b := decodeError(t, resp)
			assert.Equal(t, tt.code, b.Error)
			assert.NotContains(t, resp.Body, "secret-table-name", "internals never reach the client")
			for k, v := range tt.headers {
				assert.Equal(t, v, resp.Headers[k])
			}
			if tt.code == "otp_incorrect" || tt.code == "download_unavailable" {
				require.NotNil(t, b.AttemptsLeft)
				assert.Equal(t, 2, *b.AttemptsLeft)
			}
			if tt.code == "invalid_input" {
				assert.Equal(t, map[string]string{"email": "bad"}, b.Fields)
			}
		})
	}
}

func TestPanicBecomesInternalErrorWithoutLeaking(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	resp, err := api.RequestAccess(&fakeService{panic: true}, cfg(log)).V1(context.Background(), post(validForm))
	require.NoError(t, err)
	assert.Equal(t, 500, resp.StatusCode)
	assert.Equal(t, "internal", decodeError(t, resp).Error)
	assert.NotContains(t, resp.Body, "boom")
	assert.NotContains(t, logs.String(), "ada@example.com", "the panic value is not logged")
	assert.Contains(t, logs.String(), `"msg":"panic"`)
}

func TestLogLinesCarryTheInvocationAndOutcome(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "inv-123"})
	_, _ = api.VerifyAccess(&fakeService{err: &access.Error{Kind: access.KindExpired, Code: "otp_expired", Message: "m"}}, cfg(log)).V1(
		ctx, post(`{"requestId":"r","otp":"654321"}`))
	var line map[string]any
	require.NoError(t, json.Unmarshal(logs.Bytes(), &line), logs.String())
	assert.Equal(t, "inv-123", line["invocation"])
	assert.Equal(t, "verify-access", line["fn"])
	assert.EqualValues(t, 410, line["status"])
	assert.Equal(t, "otp_expired", line["error"])
	assert.NotContains(t, logs.String(), "654321")
}

func TestClientRequestIDHeaderCannotInjectText(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	ev := post(`{"requestId":"r","otp":"1"}`)
	ev.Headers["x-nf-request-id"] = "ada@example.com"
	_, _ = api.VerifyAccess(&fakeService{}, cfg(log)).V1(context.Background(), ev)
	assert.NotContains(t, logs.String(), "ada@example.com")
}
