// Package devtest runs the dev server in a test on a real port, with its
// own data folder and a clock the test moves: for the HTTP and the
// browser tests alike.
package devtest

import (
	"log/slog"
	"maps"
	"net"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/devserver"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
	"github.com/cv-access/cv-access/functions-src/internal/phone"
)

// Clock is a settable clock for the server's service and links.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock on.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// Env is a running dev server.
type Env struct {
	URL    string
	Config app.Config
	Clock  *Clock
	Logs   *flowtest.Buffer
	// Notifications are the owner's emails in flight: Wait for them
	// before counting the outbox.
	Notifications *app.Background
}

// Start runs the dev server over siteDir until the test ends.
func Start(t testing.TB, siteDir string) *Env { return StartWith(t, siteDir, nil) }

// StartWith is Start with more settings, e.g. CV_DOCUMENTS_FILE.
func StartWith(t testing.TB, siteDir string, settings map[string]string) *Env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	origin := "http://" + ln.Addr().String()
	env := map[string]string{"CV_DATA_DIR": t.TempDir(), "CV_SITE_URL": origin}
	maps.Copy(env, settings)
	cfg, err := app.LoadConfig(func(k string) string { return env[k] })
	require.NoError(t, err)
	clk := &Clock{t: time.Now().UTC()}
	bg := &app.Background{}
	a, err := app.New(cfg, app.Options{Phones: phone.Numbers{}, Now: clk.Now, Notifier: bg.Hook})
	require.NoError(t, err)
	logs := &flowtest.Buffer{}
	srv := httptest.NewUnstartedServer(devserver.New(a, siteDir, slog.New(slog.NewJSONHandler(logs, nil))))
	require.NoError(t, srv.Listener.Close())
	srv.Listener = ln
	srv.Start()
	// The server stops taking requests, then the emails under way finish,
	// before the data folder goes (cleanups run last first).
	t.Cleanup(func() { srv.Close(); bg.Wait() })
	return &Env{URL: origin, Config: cfg, Clock: clk, Logs: logs, Notifications: bg}
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

// LastCode reads the code in the newest email in the outbox, as a person
// would read their mail.
func (e *Env) LastCode(t testing.TB) string {
	t.Helper()
	msgs, err := embedded.ReadOutbox(e.Config.OutboxDir, 0)
	require.NoError(t, err)
	for _, m := range msgs {
		if m.Kind == "email" && m.To != "<"+e.Config.OwnerEmail+">" {
			code := sixDigits.FindString(m.Text)
			require.NotEmpty(t, code, m.Text)
			return code
		}
	}
	t.Fatal("no email in the outbox")
	return ""
}

// OwnerCode reads the code in the newest sign-in email to the owner's
// address, as the owner would read their mail.
func (e *Env) OwnerCode(t testing.TB) string {
	t.Helper()
	msgs, err := embedded.ReadOutbox(e.Config.OutboxDir, 0)
	require.NoError(t, err)
	for _, m := range msgs {
		if m.Kind == "email" && m.To == "<"+e.Config.OwnerEmail+">" && m.Subject == access.OwnerCodeSubject {
			code := sixDigits.FindString(m.Text)
			require.NotEmpty(t, code, m.Text)
			return code
		}
	}
	t.Fatal("no sign-in email to the owner in the outbox")
	return ""
}
