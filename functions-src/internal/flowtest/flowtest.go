// Package flowtest drives the visitor flow through the two function
// handlers, for checks that must hold on every backend alike.
package flowtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/api"
)

// Env is one backend's handlers and the ways to observe it.
type Env struct {
	RequestAccess, VerifyAccess api.V1Handler
	Origin                      string                                  // an allowed Origin
	Code                        func(t *testing.T, email string) string // the newest code sent to email
	Advance                     func(time.Duration)                     // moves the service's clock
	Logs                        func() string                           // everything logged so far
}

// Person is personal data no log line may hold.
type Person struct {
	Name, Email, Phone, Company, Location, IP string
}

// NewPerson returns distinctive details, unique per call.
func NewPerson() Person {
	n := time.Now().UnixNano()
	return Person{
		Name:     "Zelda Quixote-Marlowe",
		Email:    fmt.Sprintf("zq.%d@example.org", n),
		Phone:    fmt.Sprintf("+44 7400 9%05d", n%100000),
		Company:  "Quixotic Holdings",
		Location: "Llanfairpwllgwyngyll",
		IP:       fmt.Sprintf("203.0.113.%d", 1+n%250),
	}
}

func (e Env) call(t *testing.T, h api.V1Handler, ip, body string) (int, map[string]any) {
	t.Helper()
	resp, err := h(context.Background(), events.APIGatewayProxyRequest{
		HTTPMethod: "POST", Body: body,
		Headers: map[string]string{"content-type": "application/json", "origin": e.Origin, "x-nf-client-connection-ip": ip},
	})
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &out), resp.Body)
	return resp.StatusCode, out
}

func (e Env) request(t *testing.T, p Person) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": p.Name, "email": p.Email, "phone": p.Phone,
		"company": p.Company, "location": p.Location, "consent": true})
	return e.call(t, e.RequestAccess, p.IP, string(body))
}

func (e Env) verify(t *testing.T, ip, id, code string) (int, map[string]any) {
	t.Helper()
	return e.call(t, e.VerifyAccess, ip, fmt.Sprintf(`{"requestId":%q,"otp":%q}`, id, code))
}

func wrong(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

// LogHygiene runs every path a visitor or an attacker can take (success,
// wrong, replayed, locked and expired codes, resends, rate limits,
// refused input) and then searches all logs for each piece of personal
// data, every code and every signed link.
func LogHygiene(t *testing.T, e Env) {
	p := NewPerson()
	var secrets []string

	status, out := e.request(t, p)
	require.Equal(t, 200, status, out)
	id := out["requestId"].(string)
	code := e.Code(t, p.Email)
	secrets = append(secrets, code, wrong(code))
	status, _ = e.verify(t, p.IP, id, wrong(code))
	assert.Equal(t, 400, status)
	status, out = e.verify(t, p.IP, id, code)
	require.Equal(t, 200, status, out)
	secrets = append(secrets, out["redirectUrl"].(string))
	status, _ = e.verify(t, p.IP, id, code)
	assert.Equal(t, 409, status, "replayed")

	// Locked: five wrong guesses, then the right code.
	status, out = e.request(t, p)
	require.Equal(t, 200, status, out)
	locked := out["requestId"].(string)
	lockedCode := e.Code(t, p.Email)
	secrets = append(secrets, lockedCode)
	for range 5 {
		_, _ = e.verify(t, p.IP, locked, wrong(lockedCode))
	}
	status, _ = e.verify(t, p.IP, locked, lockedCode)
	assert.Equal(t, 403, status, "locked")

	// A resend too soon, then one after the cooldown, then expiry.
	status, out = e.request(t, p)
	require.Equal(t, 200, status, out)
	third := out["requestId"].(string)
	secrets = append(secrets, e.Code(t, p.Email))
	status, _ = e.call(t, e.RequestAccess, p.IP, fmt.Sprintf(`{"requestId":%q,"resend":true}`, third))
	assert.Equal(t, 429, status, "resend too soon")
	e.Advance(61 * time.Second)
	status, out = e.call(t, e.RequestAccess, p.IP, fmt.Sprintf(`{"requestId":%q,"resend":true}`, third))
	require.Equal(t, 200, status, out)
	resent := e.Code(t, p.Email)
	secrets = append(secrets, resent)
	e.Advance(11 * time.Minute)
	status, _ = e.verify(t, p.IP, third, resent)
	assert.Equal(t, 410, status, "expired")

	// Four codes so far today: the fifth goes out, the sixth is refused.
	status, out = e.request(t, p)
	require.Equal(t, 200, status, out)
	secrets = append(secrets, e.Code(t, p.Email))
	status, _ = e.request(t, p)
	assert.Equal(t, 429, status, "rate limited")

	// Refused input that carries personal data.
	bad := p
	bad.Phone = "call " + p.Phone
	body, _ := json.Marshal(map[string]any{"name": bad.Name, "email": bad.Email, "phone": bad.Phone, "consent": true})
	status, _ = e.call(t, e.RequestAccess, p.IP, string(body))
	assert.Equal(t, 422, status)
	status, _ = e.call(t, e.RequestAccess, p.IP, `{"name":"`+p.Name+`","email":"`+p.Email+`","consent":"yes"}`)
	assert.Equal(t, 400, status)

	logs := e.Logs()
	require.Contains(t, logs, id, "logs do name the request")
	digits := strings.NewReplacer(" ", "", "+", "").Replace(p.Phone)
	AssertAbsent(t, logs, append(secrets, p.Name, "Zelda", "Quixote", p.Email, strings.Split(p.Email, "@")[0],
		digits, digits[len(digits)-6:], p.Company, p.Location, p.IP, "X-Amz-Signature", "signature=")...)
}

// AssertAbsent checks that none of secrets occurs in logs. A secret made
// of digits (a code, part of a phone number) is looked for as a whole
// number, not inside a nanosecond timestamp where it can occur by chance.
func AssertAbsent(t *testing.T, logs string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if isDigits(s) {
			assert.NotRegexp(t, `(^|[^0-9])`+s+`([^0-9]|$)`, logs)
			continue
		}
		assert.NotContains(t, logs, s)
	}
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
