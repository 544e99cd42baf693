package awsbackend_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsdefault"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
	"github.com/cv-access/cv-access/functions-src/internal/phone"
	"github.com/cv-access/cv-access/functions-src/internal/storetest"
)

var stack *emulators.Stack

func TestMain(m *testing.M) { emulators.RunTests(m, func(s *emulators.Stack) { stack = s }) }

// callCounter counts AWS calls (retries included: it sits after the retry
// middleware) by operation, and the round trips a caller
// waits for: a call that starts while none is in flight begins a new one,
// and calls sent side by side share it. Each call is held for delay, so
// calls that are concurrent surely overlap and sequential ones cannot.
type callCounter struct {
	mu       sync.Mutex
	calls    map[string]int
	inFlight int
	trips    int
	delay    time.Duration
}

func (c *callCounter) middleware(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("countCalls",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			c.calls[awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx)]++
			if c.inFlight == 0 {
				c.trips++
			}
			c.inFlight++
			delay := c.delay
			c.mu.Unlock()
			defer func() {
				c.mu.Lock()
				c.inFlight--
				c.mu.Unlock()
			}()
			time.Sleep(delay)
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// reset returns the calls and round trips since the last reset.
func (c *callCounter) reset() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out, trips := c.calls, c.trips
	c.calls, c.trips = map[string]int{}, 0
	return out, trips
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// fixture is a backend on the emulators with its own tables and bucket.
type fixture struct {
	cfg     awsbackend.Config
	backend *awsbackend.Backend
	counter *callCounter
	clock   *clock
}

var (
	setupOnce sync.Once
	shared    *fixture
	setupErr  error
)

// testCVKey is where the fixture's deployment keeps its CV.
const testCVKey = "cv/alex-sample.pdf"

// cvAt is the CV document kept at key, whose links live ttl.
func cvAt(key string, ttl time.Duration) access.Document {
	return access.Document{Slug: "cv", Title: "CV", Key: key, Page: "/cv/", LinkTTL: ttl}
}

func backend(t *testing.T) *fixture {
	t.Helper()
	if stack == nil {
		t.Skip("the emulator stack is not running (see TestMain output); `make test` starts it")
	}
	setupOnce.Do(func() {
		f := &fixture{counter: &callCounter{calls: map[string]int{}}, clock: &clock{t: time.Now()}}
		f.cfg = awsbackend.Config{
			Region: emulators.Region, AccessKeyID: emulators.AccessKeyID, SecretAccessKey: emulators.SecretAccessKey,
			Tables:    awsbackend.Tables{Requests: "cv-requests-test", OTPs: "otps-test", Limits: "cv-rate-limits-test"},
			Bucket:    "cv-private-test",
			Documents: access.SingleDocument(testCVKey),
			MailFrom:  "CV <cv@example.com>", Endpoints: stack.Endpoints(), Emulated: true,
			APIOptions: []func(*middleware.Stack) error{f.counter.middleware},
		}
		f.backend, setupErr = awsbackend.New(context.Background(), f.cfg, f.clock.Now)
		if setupErr != nil {
			return
		}
		setupErr = awsbackend.Setup(context.Background(), f.backend, f.cfg, embedded.SampleCV, func(string) {})
		shared = f
	})
	require.NoError(t, setupErr)
	shared.clock.Set(time.Now())
	return shared
}

func TestDynamoDBStoreContract(t *testing.T) {
	f := backend(t)
	storetest.Run(t, func(t *testing.T) access.Store { return f.backend.Store })
}

func TestDynamoDBNotificationContract(t *testing.T) {
	f := backend(t)
	storetest.RunNotifications(t, func(t *testing.T) storetest.NotifyingStore { return f.backend.Store })
}

func TestSetupIsIdempotent(t *testing.T) {
	f := backend(t)
	var said []string
	require.NoError(t, awsbackend.Setup(context.Background(), f.backend, f.cfg, nil, func(s string) { said = append(said, s) }))
	joined := strings.Join(said, "\n")
	assert.Contains(t, joined, "table cv-requests-test exists")
	assert.Contains(t, joined, "table otps-test exists")
	assert.Contains(t, joined, "bucket cv-private-test exists")
	assert.NotContains(t, joined, "created")
}

// service wires the domain over the AWS adapters, as production does.
func service(t *testing.T, f *fixture) *access.Service {
	t.Helper()
	return serviceWith(t, f, f.backend.Links)
}

// serviceWith is service with links of its own.
// serviceWith is the domain on f's backend with links, gating docs (f's
// own when none are given).
func serviceWith(t *testing.T, f *fixture, links access.Presigner, docs ...access.Documents) *access.Service {
	t.Helper()
	codes, err := access.NewCodes(rand.Reader, []byte(strings.Repeat("k", 32)))
	require.NoError(t, err)
	svc, err := access.NewService(access.Deps{
		Store: f.backend.Store, Mailer: f.backend.Mailer, SMS: f.backend.SMS, Links: links, Phones: phone.Numbers{},
		Codes: codes, Rand: rand.Reader, Now: f.clock.Now, LimitKeys: [][]byte{[]byte("limit-key")},
		Documents: append(docs, f.cfg.Documents)[0],
	}, access.DefaultPolicy(), access.Sender{OwnerName: "Alex Sample", SiteURL: "https://cv.example.com"})
	require.NoError(t, err)
	return svc
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

func TestFlowOnAWSCountsRoundTrips(t *testing.T) {
	f := backend(t)
	svc := service(t, f)
	ctx := context.Background()
	email := fmt.Sprintf("visitor-%d@example.com", time.Now().UnixNano())
	f.counter.reset()
	f.counter.delay = 50 * time.Millisecond
	defer func() { f.counter.delay = 0 }()

	out, err := svc.RequestAccess(ctx, access.AccessInput{Name: "Ada Lovelace", Email: email, Phone: "+447400900123",
		Consent: true, ClientIP: "198.51.100.30"})
	require.NoError(t, err)
	calls, trips := f.counter.reset()
	assert.Equal(t, map[string]int{"DynamoDB.TransactWriteItems": 1, "SESv2.SendEmail": 1, "SNS.Publish": 1}, calls,
		"request-access: one DynamoDB call, one email, one SMS")
	assert.Equal(t, 2, trips, "request-access: the transaction, then email and SMS side by side")

	mails, err := stack.EmailsTo(ctx, email)
	require.NoError(t, err)
	require.Len(t, mails, 1)
	code := sixDigits.FindString(mails[0].Body.Text)
	require.NotEmpty(t, code)
	assert.Contains(t, mails[0].Subject, code)
	assert.Contains(t, mails[0].Body.HTML, code)
	assert.Equal(t, "CV <cv@example.com>", mails[0].From)

	var sms *emulators.SentSMS
	for _, m := range stack.SNSFake.Messages() {
		if strings.Contains(m.Message, code) {
			sms = &m
		}
	}
	require.NotNil(t, sms, "the SMS carries the same code")
	assert.Equal(t, "+447400900123", sms.PhoneNumber)
	assert.Equal(t, "Transactional", sms.Attributes["AWS.SNS.SMS.SMSType"])

	g, err := svc.VerifyAccess(ctx, access.VerifyInput{RequestID: out.RequestID, OTP: code, ClientIP: "198.51.100.30"})
	require.NoError(t, err)
	calls, trips = f.counter.reset()
	assert.Equal(t, map[string]int{"DynamoDB.GetItem": 1, "DynamoDB.TransactWriteItems": 2, "S3.HeadObject": 1}, calls,
		"first verify-access: the attempt with the network's guess counters, the code read beside it, and the used flip; "+
			"the CV check; presigning calls nothing")
	assert.Equal(t, 2, trips, "first verify-access: two round trips (the code read and the CV check beside the attempt)")

	warm, err := svc.RequestAccess(ctx, access.AccessInput{Name: "Ada Lovelace", Email: "warm-" + email, Consent: true, ClientIP: "198.51.100.32"})
	require.NoError(t, err)
	mails, err = stack.EmailsTo(ctx, "warm-"+email)
	require.NoError(t, err)
	require.Len(t, mails, 1)
	f.counter.reset()
	_, err = svc.VerifyAccess(ctx, access.VerifyInput{RequestID: warm.RequestID, OTP: sixDigits.FindString(mails[0].Body.Text), ClientIP: "198.51.100.32"})
	require.NoError(t, err)
	calls, trips = f.counter.reset()
	assert.Equal(t, map[string]int{"DynamoDB.GetItem": 1, "DynamoDB.TransactWriteItems": 2}, calls,
		"warm verify-access: the CV check passed before, so nothing but the store is called")
	assert.Equal(t, 2, trips, "warm verify-access: two DynamoDB round trips")

	resp, body := download(t, g.URL)
	assert.Equal(t, 200, resp.StatusCode, string(body))
	assert.Equal(t, embedded.SampleCV, body, "the presigned link downloads the exact bytes")
	assert.Equal(t, `attachment; filename="alex-sample.pdf"`, resp.Header.Get("Content-Disposition"))

	req, err := f.backend.Store.GetRequest(ctx, out.RequestID, time.Now())
	require.NoError(t, err)
	assert.Equal(t, access.StatusVerified, req.Status)
	assert.Equal(t, email, req.Email)

	again, err := svc.RequestAccess(ctx, access.AccessInput{Name: "Ada Lovelace", Email: "again-" + email,
		Phone: "+447400900124", Consent: true, ClientIP: "198.51.100.31"})
	require.NoError(t, err)
	f.clock.Set(time.Now().Add(61 * time.Second))
	defer f.clock.Set(time.Now())
	f.counter.reset()
	_, err = svc.Resend(ctx, again.RequestID, "198.51.100.31")
	require.NoError(t, err)
	calls, trips = f.counter.reset()
	assert.Equal(t, map[string]int{"DynamoDB.TransactGetItems": 1, "DynamoDB.TransactWriteItems": 1,
		"SESv2.SendEmail": 1, "SNS.Publish": 1}, calls, "resend: read request and code, then one transaction")
	assert.Equal(t, 3, trips, "resend: two DynamoDB round trips, then email and SMS side by side")
}

func TestPresignedLinks(t *testing.T) {
	f := backend(t)
	ctx := context.Background()
	link, err := f.backend.Links.Presign(ctx, cvAt(testCVKey, 120*time.Second))
	require.NoError(t, err)
	u, err := url.Parse(link)
	require.NoError(t, err)
	q := u.Query()
	assert.Equal(t, "120", q.Get("X-Amz-Expires"))
	assert.Equal(t, `attachment; filename="alex-sample.pdf"`, q.Get("response-content-disposition"))
	assert.Contains(t, q.Get("X-Amz-Credential"), emulators.AccessKeyID+"/")

	resp, body := download(t, link)
	require.Equal(t, 200, resp.StatusCode, string(body))
	assert.Equal(t, embedded.SampleCV, body)

	with := func(change func(url.Values)) string {
		v := u.Query()
		change(v)
		c := *u
		c.RawQuery = v.Encode()
		return c.String()
	}
	sig := q.Get("X-Amz-Signature")
	flipped := "0"
	if sig[0] == '0' {
		flipped = "1"
	}
	refused := map[string]string{
		"tampered signature":   with(func(v url.Values) { v.Set("X-Amz-Signature", flipped+sig[1:]) }),
		"longer expiry":        with(func(v url.Values) { v.Set("X-Amz-Expires", "604800") }),
		"other disposition":    with(func(v url.Values) { v.Set("response-content-disposition", "inline") }),
		"anonymous (unsigned)": u.Scheme + "://" + u.Host + u.Path,
	}
	f.clock.Set(time.Now().Add(-121 * time.Second))
	refused["expired"], err = f.backend.Links.Presign(ctx, cvAt(testCVKey, 120*time.Second))
	require.NoError(t, err)
	for name, link := range refused {
		t.Run(name, func(t *testing.T) {
			resp, body := download(t, link)
			assert.Equal(t, 403, resp.StatusCode, string(body))
			assert.NotEqual(t, embedded.SampleCV, body)
		})
	}
}

func TestMessagingErrorsCarryNoMessageText(t *testing.T) {
	f := backend(t)
	stack.SNSFake.FailNext("InvalidParameter")
	err := f.backend.SMS.SendSMS(context.Background(), access.SMS{To: "+447400900123", Text: "123456 is your code"})
	require.Error(t, err)
	assert.Equal(t, "sns publish: InvalidParameter", err.Error())

	// aws-ses-v2-local refuses a message without a subject, as SES does.
	err = f.backend.Mailer.SendEmail(context.Background(), access.Email{To: "ada@example.com", Text: "x"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "ada@example.com")
}

func download(t *testing.T, link string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(link)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// misbehaving serves a DynamoDB endpoint that throttles every call, or
// hangs until the caller gives up, and counts the attempts it saw.
func misbehaving(t *testing.T, hang bool) (string, *atomic.Int32) {
	t.Helper()
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		// Read the body first: only then does the server watch the
		// connection and cancel r.Context() when the client hangs up.
		_, _ = io.Copy(io.Discard, r.Body)
		if hang {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &attempts
}

// serviceOn wires the service with a DynamoDB client built from the
// production configuration (retries, timeouts) but pointed at endpoint.
func serviceOn(t *testing.T, f *fixture, endpoint string) *access.Service {
	t.Helper()
	cfg, err := awsdefault.LoadAWSConfig(context.Background(), f.cfg)
	require.NoError(t, err)
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.DisableValidateResponseChecksum = true // the fakes send no CRC32
	})
	codes, err := access.NewCodes(rand.Reader, []byte(strings.Repeat("k", 32)))
	require.NoError(t, err)
	svc, err := access.NewService(access.Deps{
		Store: awsbackend.NewStore(db, f.cfg.Tables), Mailer: f.backend.Mailer, SMS: f.backend.SMS, Links: f.backend.Links,
		Phones: phone.Numbers{}, Codes: codes, Rand: rand.Reader, Now: time.Now, LimitKeys: [][]byte{[]byte("limit-key")},
	}, access.DefaultPolicy(), access.Sender{OwnerName: "Alex Sample", SiteURL: "https://cv.example.com"})
	require.NoError(t, err)
	return svc
}

func post(body string) events.APIGatewayProxyRequest {
	return events.APIGatewayProxyRequest{HTTPMethod: "POST", Body: body,
		Headers: map[string]string{"content-type": "application/json", "origin": "https://cv.example.com"}}
}

func TestThrottlingIsRetriedBrieflyThenBusy(t *testing.T) {
	f := backend(t)
	endpoint, attempts := misbehaving(t, false)
	h := api.RequestAccess(serviceOn(t, f, endpoint), api.Config{Origins: []string{"https://cv.example.com"}}).V1
	start := time.Now()
	resp, err := h(context.Background(), post(`{"name":"Ada","email":"throttle@example.com","consent":true}`))
	require.NoError(t, err)
	assert.Equal(t, 503, resp.StatusCode, resp.Body)
	assert.Contains(t, resp.Body, `"error":"busy"`)
	assert.Equal(t, "5", resp.Headers["Retry-After"])
	assert.EqualValues(t, awsbackend.RetryMaxAttempts, attempts.Load(), "throttling is retried, a bounded number of times")
	t.Logf("throttled request answered after %d attempts in %s", attempts.Load(), time.Since(start).Round(time.Millisecond))
	emails, err := stack.EmailsTo(context.Background(), "throttle@example.com")
	require.NoError(t, err)
	assert.Empty(t, emails, "no code goes out when it could not be stored")
}

func TestAHangingDependencyEndsTheRequestAtTheDeadline(t *testing.T) {
	f := backend(t)
	endpoint, _ := misbehaving(t, true)
	h := api.VerifyAccess(serviceOn(t, f, endpoint), api.Config{Origins: []string{"https://cv.example.com"}, Timeout: 300 * time.Millisecond}).V1
	start := time.Now()
	resp, err := h(context.Background(), post(`{"requestId":"6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01","otp":"123456"}`))
	require.NoError(t, err)
	assert.Equal(t, 503, resp.StatusCode, resp.Body)
	assert.Contains(t, resp.Body, `"error":"busy"`)
	// Not a speed test: without the deadline this call would hang for the
	// SDK's 3 attempts of 5 s each.
	assert.Less(t, time.Since(start), 3*time.Second, "the invocation's deadline ended the hanging call")
}

func TestSetupWarnsWhenTheCVIsMissing(t *testing.T) {
	f := backend(t)
	cfg := f.cfg
	cfg.Documents = access.SingleDocument("no/such/cv.pdf")
	var said []string
	require.NoError(t, awsbackend.Setup(context.Background(), f.backend, cfg, nil, func(s string) { said = append(said, s) }))
	assert.Contains(t, strings.Join(said, "\n"), `WARNING: document "cv" is not at s3://cv-private-test/no/such/cv.pdf`)
}

// The embedded backend runs the same check in internal/app.
func TestLogHygieneOnTheAWSBackend(t *testing.T) {
	f := backend(t)
	svc := service(t, f)
	logs := &flowtest.Buffer{}
	cfg := api.Config{Log: slog.New(slog.NewJSONHandler(logs, nil)), Origins: []string{"https://cv.example.com"}}
	flowtest.LogHygiene(t, flowtest.Env{
		RequestAccess: api.RequestAccess(svc, cfg).V1,
		VerifyAccess:  api.VerifyAccess(svc, cfg).V1,
		Origin:        "https://cv.example.com",
		Code: func(t *testing.T, email string) string {
			mails, err := stack.EmailsTo(context.Background(), email)
			require.NoError(t, err)
			require.NotEmpty(t, mails)
			return sixDigits.FindString(mails[len(mails)-1].Body.Text)
		},
		Advance: func(d time.Duration) { f.clock.Set(f.clock.Now().Add(d)) },
		Logs:    logs.String,
	})
}

func TestDynamoDBOwnerStoreContract(t *testing.T) {
	f := backend(t)
	storetest.RunOwner(t, func(t *testing.T) access.OwnerStore { return f.backend.Owner })
}

func TestDynamoDBOwnerCodesContract(t *testing.T) {
	f := backend(t)
	storetest.RunOwnerCodes(t, func(t *testing.T) storetest.OwnerCodesStore { return f.backend.Store })
}
