package app_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
)

// Rotating CV_OTP_SECRET ("new,old", later "new") must reset no rate
// limit and break no code already sent.
func TestSecretRotationResetsNoLimitAndBreaksNoCode(t *testing.T) {
	dir := t.TempDir()
	// The real day: opening the store purges what is past its time.
	now := time.Now().UTC().Truncate(time.Hour)
	oldSecret, newSecret := strings.Repeat("o", 32), strings.Repeat("n", 32)
	open := func(secrets string) *access.Service {
		cfg, err := app.LoadConfig(envOf(map[string]string{"CV_DATA_DIR": dir, "CV_OTP_SECRET": secrets}))
		require.NoError(t, err)
		a, err := app.New(cfg, app.Options{Now: func() time.Time { return now }})
		require.NoError(t, err)
		return a.Service
	}
	ctx := context.Background()
	ask := func(svc *access.Service, i int) error {
		_, err := svc.RequestAccess(ctx, access.AccessInput{Name: "Ada", Email: fmt.Sprintf("r%d@example.com", i),
			Consent: true, ClientIP: "198.51.100.99"})
		return err
	}

	before := open(oldSecret)
	first, err := before.RequestAccess(ctx, access.AccessInput{Name: "Ada", Email: "held@example.com",
		Consent: true, ClientIP: "198.51.100.99"})
	require.NoError(t, err)
	heldCode := newestCode(t, dir)
	for i := range 4 {
		require.NoError(t, ask(before, i))
	}

	during := open(newSecret + "," + oldSecret)
	for i := 4; i < 9; i++ {
		require.NoError(t, ask(during, i))
	}
	assert.Equal(t, "rate_limited_ip", errCode(t, ask(during, 9)), "the old key's counter still holds this hour's count")
	_, err = during.VerifyAccess(ctx, access.VerifyInput{RequestID: first.RequestID, OTP: heldCode, ClientIP: "198.51.100.98"})
	assert.NoError(t, err, "a code sent under the old secret still works")

	// The documented procedure: the old secret stays listed for a whole
	// window (a day for the daily limits; an hour is the window here), so
	// the new key's counters are complete when it goes.
	now = now.Add(time.Hour)
	for i := 10; i < 19; i++ {
		require.NoError(t, ask(during, i))
	}
	after := open(newSecret)
	require.NoError(t, ask(after, 19), "the tenth request of the new hour")
	assert.Equal(t, "rate_limited_ip", errCode(t, ask(after, 20)), "the eleventh is refused although the old secret is gone")
}

func errCode(t *testing.T, err error) string {
	t.Helper()
	var e *access.Error
	require.ErrorAs(t, err, &e)
	return e.Code
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

func newestCode(t *testing.T, dir string) string {
	t.Helper()
	msgs, err := embedded.ReadOutbox(dir+"/outbox", 1)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	return sixDigits.FindString(msgs[0].Text)
}
