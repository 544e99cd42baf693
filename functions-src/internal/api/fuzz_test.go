package api_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/phone"
)

// countingStore counts the requests that reach storage.
type countingStore struct {
	access.Store
	created atomic.Int64
}

func (c *countingStore) CreateRequest(ctx context.Context, r access.Request, code access.Code, l []access.Limit) error {
	c.created.Add(1)
	return c.Store.CreateRequest(ctx, r, code, l)
}

type discard struct{}

func (discard) SendEmail(context.Context, access.Email) error { return nil }
func (discard) SendSMS(context.Context, access.SMS) error     { return nil }

type nopLinks struct{}

func (nopLinks) Presign(_ context.Context, doc access.Document) (string, error) {
	return "https://files.example/" + doc.Key, nil
}

func (nopLinks) Check(context.Context, access.Document) error { return nil }

// realService is the domain on a real embedded store; only delivery is faked.
func realService(f *testing.F) (*access.Service, *countingStore) {
	store, err := embedded.OpenStore(filepath.Join(f.TempDir(), "cv.db"))
	if err != nil {
		f.Fatal(err)
	}
	cs := &countingStore{Store: store}
	codes, err := access.NewCodes(rand.Reader, []byte(strings.Repeat("f", 32)))
	if err != nil {
		f.Fatal(err)
	}
	svc, err := access.NewService(access.Deps{Store: cs, Mailer: discard{}, SMS: discard{}, Links: nopLinks{}, Phones: phone.Numbers{},
		Codes: codes, Rand: rand.Reader, Now: time.Now, LimitKeys: [][]byte{[]byte("k")}},
		access.DefaultPolicy(), access.Sender{OwnerName: "A", SiteURL: site})
	if err != nil {
		f.Fatal(err)
	}
	return svc, cs
}

var allowed = map[int]bool{200: true, 400: true, 403: true, 404: true, 409: true, 410: true, 413: true, 415: true, 422: true, 429: true}

// bothShapes sends s to f as a v1 and as a v2 event, through the typed
// adapters so that any byte string reaches the edge as it is.
func bothShapes(t *testing.T, f *api.Function, s sent, each func(answer)) {
	r1, err := f.V1(context.Background(), v1Event(s).(events.APIGatewayProxyRequest))
	check(t, v1Answer(r1), err)
	each(v1Answer(r1))
	r2, err := f.V2(context.Background(), v2Event(s).(events.LambdaFunctionURLRequest))
	a2 := answer{StatusCode: r2.StatusCode, Headers: r2.Headers, Body: r2.Body}
	check(t, a2, err)
	each(a2)
}

// check holds for every answer, whatever the input.
func check(t *testing.T, resp answer, err error) {
	if err != nil {
		t.Fatalf("handler returned an error to the runtime: %v", err)
	}
	if !allowed[resp.StatusCode] {
		t.Fatalf("status %d (5xx means a bug or a recovered panic): %s", resp.StatusCode, resp.Body)
	}
	if resp.Headers["X-Content-Type-Options"] != "nosniff" || resp.Headers["Cache-Control"] != "no-store" {
		t.Fatalf("security headers missing: %v", resp.Headers)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatalf("answer is not JSON: %q", resp.Body)
	}
	if resp.StatusCode >= 400 && (body["error"] == "" || body["message"] == "" || body["error"] == nil) {
		t.Fatalf("error answer without a stable code and message: %s", resp.Body)
	}
}

func FuzzRequestAccess(f *testing.F) {
	for _, seed := range []string{
		`{"name":"Ada Lovelace","email":"ada@example.com","consent":true}`,
		`{"name":"Ada","email":"ada@example.com","phone":"+44 7400 900123","company":"E","location":"L","consent":true}`,
		`{"requestId":"6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01","resend":true}`,
		`{"name":"Ada\r\nBcc: x@evil.test","email":"ada@example.com","consent":true}`,
		`{"name":"` + strings.Repeat("é", 200) + `","email":"ada@example.com","consent":true}`,
		`{"name":[[[[[[]]]]]],"email":1,"consent":"yes"}`,
		`{"name":"A","email":"a@b.co","consent":true,"website":"spam"}`,
		`{"NAME":"A","email":"a@b.co","consent":true}`,
		`{"name":"A","email":"a@b.co","consent":true,"document":"cv"}`,
		`{"name":"A","email":"a@b.co","consent":true,"document":"../../etc/passwd"}`,
		`{"name":"A","email":"a@b.co","consent":true,"document":7}`,
		`{}`, `[]`, `null`, `"x"`, ``, `{"name":"\u202e","email":"a@b.co","consent":true}`,
	} {
		f.Add([]byte(seed), "application/json")
	}
	f.Add([]byte("name=a&email=b"), "application/x-www-form-urlencoded")
	svc, store := realService(f)
	h := api.RequestAccess(svc, cfg(nil))
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		before := store.created.Load()
		bothShapes(t, h, sent{method: "POST", body: string(body),
			headers: map[string]string{"content-type": contentType, "origin": site}}, func(resp answer) {
			if resp.StatusCode >= 400 && resp.StatusCode != 429 && store.created.Load() != before {
				t.Fatalf("a refused request (%d) reached storage", resp.StatusCode)
			}
			before = store.created.Load()
		})
	})
}

func FuzzVerifyAccess(f *testing.F) {
	for _, seed := range []string{
		`{"requestId":"6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01","otp":"123456"}`,
		`{"requestId":"6F1C8A53-93A4-4C8E-9A43-1D7C1F6E1A01","otp":"123456"}`,
		`{"requestId":"../../etc/passwd","otp":"٠١٢٣٤٥"}`,
		`{"requestId":"6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01","otp":123456}`,
		`{"requestId":"6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01","otp":"123456","otp":"654321"}`,
		`{"requestId":"6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01","otp":"123456","document":"portfolio"}`,
		`{}`, `{"otp":null}`,
	} {
		f.Add([]byte(seed))
	}
	svc, _ := realService(f)
	h := api.VerifyAccess(svc, cfg(nil))
	f.Fuzz(func(t *testing.T, body []byte) {
		bothShapes(t, h, sent{method: "POST", body: string(body),
			headers: map[string]string{"content-type": "application/json", "origin": site}}, func(resp answer) {
			if resp.StatusCode == 200 {
				t.Fatalf("no request exists, yet verify answered 200: %s", body)
			}
		})
	})
}
