// Package api is the HTTP edge: it turns requests into domain calls and
// domain results into responses with stable error codes: JSON, and for
// the owner function a session cookie and a CSV file (owner.go).
//
// The rules live once, in Function.Serve, on a shape-neutral Request and
// Response (request.go). Thin adapters carry each host's shape in and out:
// API Gateway REST v1 events, what Netlify hands a Go function (v1.go);
// payload format 2.0 events from Lambda Function URLs and HTTP APIs
// (v2.go); the choice between the two per event (lambda.go); and net/http
// for the dev server (http.go). No adapter returns a Go error to the
// runtime, which would become an opaque 502 for the visitor.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/google/uuid"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/logctx"
)

// MaxBodyBytes bounds a request body. The largest valid form is well under
// 1 KiB; anything near this is not a visitor.
const MaxBodyBytes = 4096

// Service is what the edge needs from the domain.
type Service interface {
	RequestAccess(context.Context, access.AccessInput) (access.Issued, error)
	Resend(ctx context.Context, requestID, clientIP string) (access.Issued, error)
	VerifyAccess(context.Context, access.VerifyInput) (access.Grant, error)
}

var _ Service = (*access.Service)(nil)

// requestAccessBody is the request-access JSON. A body holding only
// requestId and "resend": true asks for the code to be sent again.
type requestAccessBody struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Phone    string `json:"phone"`
	Company  string `json:"company"`
	Location string `json:"location"`
	Consent  bool   `json:"consent"`
	// Document is the slug of the document asked for; absent, the
	// site's first listed.
	Document  string `json:"document"`
	RequestID string `json:"requestId"`
	Resend    bool   `json:"resend"`
	// Website is the honeypot: hidden from people, filled in by bots.
	Website string `json:"website"`
}

type verifyAccessBody struct {
	RequestID string `json:"requestId"`
	OTP       string `json:"otp"`
	// Document is the page's hint of which document the request is for
	// (access.VerifyInput.Document); the request decides.
	Document string `json:"document"`
}

type issuedResponse struct {
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
	ExpiresIn int    `json:"expiresIn"`
}

type grantResponse struct {
	RedirectURL string `json:"redirectUrl"`
	ExpiresIn   int    `json:"expiresIn"`
}

// Config is what every function shares.
type Config struct {
	Log *slog.Logger
	// Origins are exactly the sites allowed to call (scheme://host[:port]).
	// A request whose Origin header is missing or not listed is refused.
	Origins []string
	// Timeout bounds each invocation, AWS calls included; the platform's
	// own deadline, less a margin, wins when it is sooner.
	Timeout time.Duration
	// ClientIP names the caller's address for the domain's per-address
	// limits. Nil means NetlifyClientIP, the rule on every target: on the
	// AWS target Admit makes Netlify's header trustworthy.
	ClientIP ClientIPRule
	// Admit, when set, decides before anything else whether a request may
	// be served at all: on the AWS target, only what Netlify's signed
	// proxy forwarded. A refusal is logged with Admit's reason and
	// answered 403 proxy_signature_invalid, whatever else the request
	// holds, so a direct call learns nothing of the function's rules.
	// Nil admits what Netlify and the dev server hand over, and refuses
	// every payload 2.0 event (ErrNoGate): a Function URL is public, so it
	// is served only behind a gate (app sets one from CV_PROXY_SIGN_SECRET).
	Admit func(Request) error
	// SecureCookies marks every cookie a function sets Secure: true on
	// any site served over https, false on a local one (a browser keeps
	// no Secure cookie from plain http).
	SecureCookies bool
}

// DefaultTimeout fits inside Netlify's 10 s synchronous function limit.
const DefaultTimeout = 8 * time.Second

// LocalOrigins are the dev origins of `make dev` and `netlify dev` on their
// default port. The edge does not add them itself: only a local backend
// lists them in Config.Origins, so a production function never answers a
// page served from a visitor's own machine.
func LocalOrigins() []string { return []string{"http://127.0.0.1:8888", "http://localhost:8888"} }

// RequestAccess serves POST request-access.
func RequestAccess(svc Service, cfg Config) *Function {
	return newFunction("request-access", cfg, func(ctx context.Context, call input) (any, error) {
		clientIP := call.clientIP
		var in requestAccessBody
		if err := decode(call.body, &in); err != nil {
			return nil, err
		}
		var (
			out access.Issued
			err error
		)
		if in.Resend || in.RequestID != "" {
			if in.RequestID == "" || in != (requestAccessBody{RequestID: in.RequestID, Resend: true}) {
				return nil, &access.Error{Kind: access.KindInvalid, Code: "invalid_input",
					Message: `A resend takes only "requestId" and "resend": true.`}
			}
			out, err = svc.Resend(ctx, in.RequestID, clientIP)
		} else {
			out, err = svc.RequestAccess(ctx, access.AccessInput{
				Name: in.Name, Email: in.Email, Phone: in.Phone,
				Company: in.Company, Location: in.Location, Consent: in.Consent, Document: in.Document,
				Honeypot: in.Website, ClientIP: clientIP,
			})
		}
		if err != nil {
			return nil, err
		}
		return issuedResponse{Message: "OTP sent", RequestID: out.RequestID, ExpiresIn: seconds(out.ExpiresIn)}, nil
	})
}

// VerifyAccess serves POST verify-access.
func VerifyAccess(svc Service, cfg Config) *Function {
	return newFunction("verify-access", cfg, func(ctx context.Context, call input) (any, error) {
		var in verifyAccessBody
		if err := decode(call.body, &in); err != nil {
			return nil, err
		}
		g, err := svc.VerifyAccess(ctx, access.VerifyInput{RequestID: in.RequestID, OTP: in.OTP, Document: in.Document, ClientIP: call.clientIP})
		if err != nil {
			return nil, err
		}
		return grantResponse{RedirectURL: g.URL, ExpiresIn: seconds(g.ExpiresIn)}, nil
	})
}

// Function is one function's rules, whatever carries its requests: the
// adapters V1, V2, Lambda and ServeHTTP all end in Serve.
type Function struct {
	name     string
	log      *slog.Logger
	timeout  time.Duration
	origins  map[string]bool
	clientIP ClientIPRule
	admit    func(Request) error
	op       func(ctx context.Context, in input) (any, error)
}

// input is what an operation reads from a request that passed every
// rule: the caller's address, the JSON body, and its cookies by name.
type input struct {
	clientIP string
	body     []byte
	cookies  func(name string) []string
}

func newFunction(name string, cfg Config, op func(context.Context, input) (any, error)) *Function {
	f := &Function{name: name, log: cfg.Log, timeout: cfg.Timeout, origins: map[string]bool{}, clientIP: cfg.ClientIP, admit: cfg.Admit, op: op}
	if f.log == nil {
		f.log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if f.timeout <= 0 {
		f.timeout = DefaultTimeout
	}
	if f.clientIP == nil {
		f.clientIP = NetlifyClientIP
	}
	for _, o := range cfg.Origins {
		f.origins[strings.TrimRight(o, "/")] = true
	}
	return f
}

// Serve is everything every function does, in one place: one log line per
// invocation with its id and outcome, method, media type and size checks,
// the origin check, the client address, panic recovery, and the error
// mapping.
func (f *Function) Serve(ctx context.Context, r Request) (resp Response) {
	start := time.Now()
	log := f.log.With("fn", f.name, "invocation", invocationID(ctx, r))
	ctx = logctx.With(ctx, log)
	ctx, cancel := withDeadline(ctx, f.timeout)
	defer cancel()
	var outcome string // the stable error code, empty on success
	defer func() {
		if p := recover(); p != nil {
			// The panic value may hold request data: log where, not what.
			log.Error("panic", "stack", string(debug.Stack()))
			resp, outcome = errorResponse(errors.New("panic"))
		}
		log.Info("done", "status", resp.Status, "error", outcome, "ms", time.Since(start).Milliseconds())
	}()

	admit := f.admit
	if admit == nil && r.public {
		// Fail closed: a Function URL without the signed-proxy settings
		// would serve anyone, and trust any client address it was sent.
		admit = refuseUngated
	}
	if admit != nil {
		if reason := admit(r); reason != nil {
			log.Warn("refused: not through the site's signed proxy", "reason", reason.Error())
			resp, outcome = errorResponse(&access.Error{Kind: kindOrigin, Code: "proxy_signature_invalid",
				Message: "Requests reach this function through its site only."})
			return resp
		}
	}
	body, err := readBody(r)
	if err == nil && !f.origins[r.Header.Get("origin")] {
		err = &access.Error{Kind: kindOrigin, Code: "origin_not_allowed",
			Message: "Requests are accepted from this site's own pages only."}
	}
	if err == nil {
		var out any
		if out, err = f.op(ctx, input{clientIP: f.clientIP(r), body: body, cookies: r.Cookie}); err == nil {
			return f.reply(out)
		}
	}
	var e *access.Error
	switch {
	case !errors.As(err, &e):
		log.Error("internal error", "error", err.Error())
	case e.Kind == access.KindInternal && e.Unwrap() != nil:
		log.Error("internal error", "error", e.Unwrap().Error())
	}
	resp, outcome = errorResponse(err)
	return resp
}

// ErrNoGate is the refusal of a payload 2.0 event (a Function URL or an
// HTTP API, reachable by anyone) by a function given no Config.Admit.
var ErrNoGate = errors.New("a payload 2.0 event (Function URL or HTTP API) reached a function without the signed-proxy settings " +
	"(CV_PROXY_SIGN_SECRET, CV_NETLIFY_SITE_ID): refused, as anyone can call such a URL")

func refuseUngated(Request) error { return ErrNoGate }

// readBody applies the method, media type and size rules, in that order,
// and returns the raw JSON.
func readBody(r Request) ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, &access.Error{Kind: kindMethod, Code: "method_not_allowed",
			Message: "Use POST with a JSON body."}
	}
	// JSON only, and said so: a cross-site page can POST text/plain or a
	// form without asking the browser first, but not application/json.
	mt, _, err := mime.ParseMediaType(r.Header.Get("content-type"))
	if err != nil || mt != "application/json" {
		return nil, &access.Error{Kind: kindMediaType, Code: "unsupported_media_type",
			Message: "Send the body as application/json."}
	}
	if r.bodyErr != nil {
		return nil, r.bodyErr
	}
	if len(r.Body) > MaxBodyBytes {
		return nil, tooLarge()
	}
	switch trimmed := bytes.TrimSpace(r.Body); {
	case len(trimmed) == 0:
		return nil, badJSON("The request body is empty; send a JSON object.")
	case trimmed[0] != '{':
		return nil, badJSON("The request body must be a JSON object.")
	}
	return r.Body, nil
}

// decode parses exactly one JSON object with only known fields, each named
// exactly and at most once. encoding/json alone would match "EMAIL" to
// "email" and let a repeated key win silently; other parsers in front of us
// could read such a body differently.
func decode(body []byte, v any) error {
	if err := checkKeys(body, jsonNames(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			// Field is one of our own field names, never visitor text.
			return badJSON(fmt.Sprintf("The field %q has the wrong type.", typeErr.Field))
		case errors.As(err, &typeErr):
			return badJSON("The request body must be a JSON object.")
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return badJSON("The request has a field this endpoint does not accept.")
		default:
			return badJSON("The request body is not valid JSON.")
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return badJSON("The request body must hold a single JSON object.")
	}
	return nil
}

// checkKeys walks the top-level object's keys.
func checkKeys(body []byte, allowed map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return badJSON("The request body must be a JSON object.")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return badJSON("The request body is not valid JSON.")
		}
		key, _ := tok.(string)
		switch {
		case !allowed[key]:
			return badJSON("The request has a field this endpoint does not accept.")
		case seen[key]:
			return badJSON("The request names a field more than once.")
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return badJSON("The request body is not valid JSON.")
		}
	}
	return nil
}

// jsonNames lists a struct's JSON field names, from its tags.
func jsonNames(v any) map[string]bool {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	names := map[string]bool{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names[name] = true
	}
	return names
}

// Edge-only kinds, beyond the domain's.
const (
	kindMethod access.Kind = 100 + iota
	kindMediaType
	kindTooLarge
	kindBadJSON
	kindOrigin
)

// withDeadline bounds the invocation by timeout, or by the platform's
// deadline less a margin to write the answer, whichever is sooner.
func withDeadline(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Add(-500*time.Millisecond).Before(deadline) {
		deadline = d.Add(-500 * time.Millisecond)
	}
	return context.WithDeadline(ctx, deadline)
}

func tooLarge() error {
	return &access.Error{Kind: kindTooLarge, Code: "body_too_large",
		Message: fmt.Sprintf("The request body is larger than %d bytes.", MaxBodyBytes)}
}

func badJSON(msg string) error {
	return &access.Error{Kind: kindBadJSON, Code: "invalid_json", Message: msg}
}

func status(k access.Kind) int {
	switch k {
	case access.KindInvalid:
		return http.StatusUnprocessableEntity
	case kindBadJSON, access.KindIncorrect:
		return http.StatusBadRequest
	case access.KindNotFound:
		return http.StatusNotFound
	case access.KindExpired:
		return http.StatusGone
	case access.KindUsed, access.KindConflict:
		return http.StatusConflict
	case access.KindLocked:
		return http.StatusForbidden
	case access.KindRateLimited:
		return http.StatusTooManyRequests
	case access.KindUnavailable:
		return http.StatusBadGateway
	case access.KindBusy, access.KindNotReady:
		return http.StatusServiceUnavailable
	case kindMethod:
		return http.StatusMethodNotAllowed
	case kindOrigin:
		return http.StatusForbidden
	case access.KindUnauthorized:
		return http.StatusUnauthorized
	case kindMediaType:
		return http.StatusUnsupportedMediaType
	case kindTooLarge:
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusInternalServerError
	}
}

type errorBody struct {
	Error        string            `json:"error"`
	Message      string            `json:"message"`
	Fields       map[string]string `json:"fields,omitempty"`
	AttemptsLeft *int              `json:"attemptsLeft,omitempty"`
}

// errorResponse is the one place an error becomes a response. Anything
// that is not an *access.Error is an internal fault and says nothing.
func errorResponse(err error) (Response, string) {
	var e *access.Error
	if !errors.As(err, &e) {
		e = &access.Error{Kind: access.KindInternal, Code: "internal",
			Message: "Something went wrong on our side. Please try again in a minute."}
	}
	code := status(e.Kind)
	resp := jsonResponse(code, errorBody{Error: e.Code, Message: e.Message, Fields: e.Fields, AttemptsLeft: e.AttemptsLeft})
	switch {
	case code == http.StatusTooManyRequests, code == http.StatusServiceUnavailable:
		resp.Header["Retry-After"] = strconv.Itoa(max(1, int((e.RetryAfter+time.Second-1)/time.Second)))
	case code == http.StatusMethodNotAllowed:
		resp.Header["Allow"] = "POST"
	}
	return resp, e.Code
}

// reply is an operation's answer beyond a plain JSON 200: cookies to set
// beside the JSON, or a file to download instead of it.
type reply struct {
	json      any
	setCookie []string
	file      []byte // when set, the body, sent as fileType named fileName
	fileType  string
	fileName  string
}

// reply turns an operation's result into its 200 response.
func (f *Function) reply(out any) Response {
	r, ok := out.(reply)
	if !ok {
		return jsonResponse(http.StatusOK, out)
	}
	var resp Response
	if r.file != nil {
		h := SecurityHeaders()
		h["Content-Type"] = r.fileType
		h["Content-Disposition"] = mime.FormatMediaType("attachment", map[string]string{"filename": r.fileName})
		resp = Response{Status: http.StatusOK, Header: h, Body: r.file}
	} else {
		resp = jsonResponse(http.StatusOK, r.json)
	}
	resp.SetCookie = r.setCookie
	return resp
}

func jsonResponse(code int, v any) Response {
	body, err := json.Marshal(v)
	if err != nil {
		code, body = http.StatusInternalServerError, []byte(`{"error":"internal","message":"Something went wrong on our side."}`)
	}
	h := SecurityHeaders()
	h["Content-Type"] = "application/json; charset=utf-8"
	return Response{Status: code, Header: h, Body: body}
}

// SecurityHeaders are set on every function response. Netlify applies
// netlify.toml [[headers]] to pages only, so functions carry their own.
func SecurityHeaders() map[string]string {
	return map[string]string{
		"Cache-Control":                "no-store",
		"Content-Security-Policy":      "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
		"Cross-Origin-Resource-Policy": "same-origin",
		"Referrer-Policy":              "no-referrer",
		"Strict-Transport-Security":    "max-age=63072000; includeSubDomains",
		"X-Content-Type-Options":       "nosniff",
		"X-Frame-Options":              "DENY",
	}
}

// invocationID names this invocation in logs: Lambda's request id when
// there is one, else the proxy's, else a fresh one.
func invocationID(ctx context.Context, r Request) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	if r.ID != "" {
		return r.ID
	}
	if id := r.Header.Get("x-nf-request-id"); isToken(id) {
		return id
	}
	return uuid.NewString()
}

func seconds(d time.Duration) int { return int(d / time.Second) }

// isToken accepts the short id alphabets proxies use, so a client-sent
// header cannot put arbitrary text into logs.
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
