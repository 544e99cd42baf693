package awsbackend_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
)

// connServer is a test server that counts the connections made to it.
type connServer struct {
	*httptest.Server
	conns atomic.Int32
}

func newConnServer(t *testing.T, tlsH2 bool) *connServer {
	s := &connServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if tlsH2 {
		s.EnableHTTP2 = true
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// transport is an SDK-like transport (keep-alive, h2 attempted) dialing
// through a preconnector.
func transport(s *connServer) (*http.Transport, *awsbackend.Preconnector) {
	tr := &http.Transport{ForceAttemptHTTP2: true, DialContext: (&net.Dialer{}).DialContext}
	if s.TLS != nil {
		tr.TLSClientConfig = s.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	}
	pc := awsbackend.NewPreconnector()
	pc.Install(tr)
	return tr, pc
}

func get(t *testing.T, tr *http.Transport, url string) string {
	t.Helper()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestAConnectionOpenedAheadCarriesTheFirstCall(t *testing.T) {
	for name, tlsH2 := range map[string]bool{"http": false, "https with h2": true} {
		t.Run(name, func(t *testing.T) {
			s := newConnServer(t, tlsH2)
			tr, pc := transport(s)
			pc.Warm(s.URL)
			require.Eventually(t, func() bool { return s.conns.Load() == 1 }, 5*time.Second, 5*time.Millisecond,
				"the connection opens before any call")
			proto := get(t, tr, s.URL)
			assert.EqualValues(t, 1, s.conns.Load(), "the call went over it: no second connection")
			if tlsH2 {
				assert.Equal(t, "HTTP/2.0", proto, "the handshake done ahead agreed h2, and the transport used it")
			}
		})
	}
}

func TestNoConnectionIsOpenedAheadOfAWarmOne(t *testing.T) {
	s := newConnServer(t, false)
	tr, pc := transport(s)
	get(t, tr, s.URL) // the pool now holds one
	pc.Warm(s.URL)
	pc.Warm(s.URL)
	get(t, tr, s.URL)
	time.Sleep(50 * time.Millisecond)
	assert.EqualValues(t, 1, s.conns.Load(), "the warm path dials nothing more")

	tr.CloseIdleConnections()
	require.Eventually(t, func() bool { pc.Warm(s.URL); return s.conns.Load() == 2 }, 5*time.Second, 10*time.Millisecond,
		"once the pool's connection is closed, a new one is opened ahead")
}

func TestCallsRacingAConnectionBeingOpenedShareIt(t *testing.T) {
	s := newConnServer(t, false)
	tr, pc := transport(s)
	pc.Warm(s.URL)
	get(t, tr, s.URL) // may arrive while the connection is still being opened: it waits for it
	assert.EqualValues(t, 1, s.conns.Load())

	// Many calls at once still get their own connections when they need
	// them: only one is ever opened ahead.
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { get(t, tr, s.URL) })
	}
	wg.Wait()
	assert.LessOrEqual(t, s.conns.Load(), int32(6))
}

func TestWarmIgnoresWhatIsNotAnEndpoint(t *testing.T) {
	pc := awsbackend.NewPreconnector()
	pc.Install(&http.Transport{})
	for _, u := range []string{"", "::", "ftp://example.com", "/relative"} {
		pc.Warm(u) // no panic, no dial
	}
}
