package app_test

import (
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
	"github.com/cv-access/cv-access/functions-src/internal/phone"
)

// The AWS backend runs the same check in internal/awsbackend.
func TestLogHygieneOnTheEmbeddedBackend(t *testing.T) {
	c, err := app.LoadConfig(envOf(map[string]string{"CV_DATA_DIR": t.TempDir(), "CV_SITE_URL": "https://cv.example.com"}))
	require.NoError(t, err)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a, err := app.New(c, app.Options{Phones: phone.Numbers{}, Now: clock})
	require.NoError(t, err)
	logs := &flowtest.Buffer{}
	cfg := a.API(slog.New(slog.NewJSONHandler(logs, nil)))
	code := regexp.MustCompile(`\b[0-9]{6}\b`)

	flowtest.LogHygiene(t, flowtest.Env{
		RequestAccess: api.RequestAccess(a.Service, cfg).V1,
		VerifyAccess:  api.VerifyAccess(a.Service, cfg).V1,
		Origin:        "https://cv.example.com",
		Code: func(t *testing.T, email string) string {
			msgs, err := embedded.ReadOutbox(c.OutboxDir, 0)
			require.NoError(t, err)
			for _, m := range msgs {
				if m.Kind == "email" && strings.Contains(m.To, email) {
					return code.FindString(m.Text)
				}
			}
			t.Fatalf("no email to %s", email)
			return ""
		},
		Advance: func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) },
		Logs:    logs.String,
	})
}
