package lambdatest_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// timeline records when things happened, by name (the first time), and
// how often.
type timeline struct {
	mu    sync.Mutex
	at    map[string]time.Time
	count map[string]int
}

func (tl *timeline) mark(name string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if _, ok := tl.at[name]; !ok {
		tl.at[name] = time.Now()
	}
	tl.count[name]++
}

func (tl *timeline) times(name string) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.count[name]
}

func (tl *timeline) get(name string) time.Time {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.at[name]
}

type markingListener struct {
	net.Listener
	tl   *timeline
	name string
}

func (l markingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.tl.mark(l.name + " connection")
	}
	return c, err
}

// The compiled request-access, fresh: SES's connection is opened while
// DynamoDB's transaction is in flight, not after it (on the warm path it
// opens none). DynamoDB is held 300 ms so the order cannot be luck.
func TestAFreshRequestAccessOpensSESWhileTheTransactionIsInFlight(t *testing.T) {
	tl := &timeline{at: map[string]time.Time{}, count: map[string]int{}}
	env := prodEnv(t)
	for i, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		var name string
		switch k {
		case "AWS_ENDPOINT_URL_DYNAMODB":
			name = "dynamodb"
		case "AWS_ENDPOINT_URL_SESV2":
			name = "ses"
		default:
			continue
		}
		target, err := url.Parse(v)
		require.NoError(t, err)
		proxy := httputil.NewSingleHostReverseProxy(target)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if name == "dynamodb" && strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".TransactWriteItems") {
				time.Sleep(300 * time.Millisecond)
				proxy.ServeHTTP(w, r)
				tl.mark("transaction answered")
				return
			}
			if name == "ses" {
				tl.mark("email sent")
			}
			proxy.ServeHTTP(w, r)
		}))
		srv.Listener = markingListener{srv.Listener, tl, name}
		srv.Start()
		t.Cleanup(srv.Close)
		env[i] = k + "=" + srv.URL
	}
	f := start(t, "request-access", env)
	resp := f.post(t, fmt.Sprintf(`{"name":"Ada","email":"pre-%d@example.com","consent":true}`, time.Now().UnixNano()))
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	require.False(t, tl.get("ses connection").IsZero(), "SES was called")
	assert.True(t, tl.get("ses connection").Before(tl.get("transaction answered")),
		"SES's connection (%s) opened before the transaction's answer (%s)", tl.get("ses connection").Format(time.StampMicro), tl.get("transaction answered").Format(time.StampMicro))
	assert.True(t, tl.get("email sent").After(tl.get("transaction answered")), "and nothing sent before the limits were counted")
	assert.Equal(t, 1, tl.times("ses connection"), "the email went over the connection opened ahead, not a second one")
}

// The compiled request-access, fresh: DynamoDB's connection is opened
// before any invocation (its init asks for it last), and nothing is sent
// on it until the invocation's transaction, which then rides it.
func TestAFreshFunctionOpensDynamoDBsConnectionBeforeItsFirstInvocation(t *testing.T) {
	tl := &timeline{at: map[string]time.Time{}, count: map[string]int{}}
	env := prodEnv(t)
	for i, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k != "AWS_ENDPOINT_URL_DYNAMODB" {
			continue
		}
		target, err := url.Parse(v)
		require.NoError(t, err)
		proxy := httputil.NewSingleHostReverseProxy(target)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tl.mark("dynamodb called")
			proxy.ServeHTTP(w, r)
		}))
		srv.Listener = markingListener{srv.Listener, tl, "dynamodb"}
		srv.Start()
		t.Cleanup(srv.Close)
		env[i] = k + "=" + srv.URL
	}
	f := start(t, "request-access", env)
	select {
	case <-f.rt.Polled():
	case <-time.After(10 * time.Second):
		t.Fatalf("request-access did not finish its init: %s", f.stderr)
	}
	require.Eventually(t, func() bool { return tl.times("dynamodb connection") == 1 }, 5*time.Second, 5*time.Millisecond,
		"DynamoDB's connection is opened with no invocation yet")
	time.Sleep(100 * time.Millisecond)
	assert.Zero(t, tl.times("dynamodb called"), "and nothing is sent on it before an invocation asks")

	resp := f.post(t, fmt.Sprintf(`{"name":"Ada","email":"init-%d@example.com","consent":true}`, time.Now().UnixNano()))
	require.Equal(t, 200, resp.StatusCode, resp.Body)
	assert.Equal(t, 1, tl.times("dynamodb called"), "one transaction")
	assert.Equal(t, 1, tl.times("dynamodb connection"), "over the connection opened during init, not a second one")
}
