package awsbase_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
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
func transport(s *connServer) (*http.Transport, *awsbase.Preconnector) {
	tr := &http.Transport{ForceAttemptHTTP2: true, DialContext: (&net.Dialer{}).DialContext}
	if s.TLS != nil {
		tr.TLSClientConfig = s.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	}
	pc := awsbase.NewPreconnector()
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

func TestACallRacingAConnectionBeingOpenedWaitsForIt(t *testing.T) {
	s := newConnServer(t, false)
	release := make(chan struct{})
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			<-release // the connection opened ahead is slow to open
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	pc := awsbase.NewPreconnector()
	pc.Install(tr)
	pc.Warm(s.URL)
	require.Eventually(t, func() bool { return dials.Load() == 1 }, 5*time.Second, time.Millisecond)
	done := make(chan string)
	go func() { done <- get(t, tr, s.URL) }()
	time.Sleep(100 * time.Millisecond) // the call is now waiting in the dial
	close(release)
	<-done
	assert.EqualValues(t, 1, dials.Load(), "the call took the connection being opened instead of dialling its own")
	assert.EqualValues(t, 1, s.conns.Load())
}

func TestWarmIgnoresWhatIsNotAnEndpoint(t *testing.T) {
	var dials atomic.Int32
	pc := awsbase.NewPreconnector()
	pc.Install(&http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("no dial expected")
	}})
	for _, u := range []string{"", "::", "ftp://example.com", "/relative"} {
		pc.Warm(u)
	}
	time.Sleep(50 * time.Millisecond)
	assert.Zero(t, dials.Load())
}

func TestAPreconnectorNoTransportDialsThroughOpensNothing(t *testing.T) {
	s := newConnServer(t, false)
	awsbase.NewPreconnector().Warm(s.URL) // never Installed: no dialer to open with
	time.Sleep(100 * time.Millisecond)
	assert.Zero(t, s.conns.Load())
}

func TestAProxiedEndpointIsNotOpenedAhead(t *testing.T) {
	s := newConnServer(t, false)
	proxy, err := url.Parse("http://127.0.0.1:9") // never dialled: Warm must not go around it
	require.NoError(t, err)
	tr := &http.Transport{Proxy: http.ProxyURL(proxy), DialContext: (&net.Dialer{}).DialContext}
	pc := awsbase.NewPreconnector()
	pc.Install(tr)
	pc.Warm(s.URL)
	time.Sleep(100 * time.Millisecond)
	assert.Zero(t, s.conns.Load(), "an endpoint the transport reaches through a proxy is never opened directly")
}

func TestTheHandshakeIsBoundedAndVerified(t *testing.T) {
	// A server that accepts and never answers the handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	tr := &http.Transport{TLSHandshakeTimeout: 200 * time.Millisecond, DialContext: (&net.Dialer{}).DialContext}
	pc := awsbase.NewPreconnector()
	pc.Install(tr)
	start := time.Now()
	_, err = (&http.Client{Transport: tr}).Get("https://" + ln.Addr().String())
	require.Error(t, err)
	assert.Less(t, time.Since(start), 2*time.Second, "the transport's handshake timeout holds: %v", err)

	// Certificates are checked: a server this transport does not trust,
	// and a name its certificate does not hold, are refused.
	s := newConnServer(t, true)
	untrusted := &http.Transport{ForceAttemptHTTP2: true, DialContext: (&net.Dialer{}).DialContext}
	awsbase.NewPreconnector().Install(untrusted)
	_, err = (&http.Client{Transport: untrusted, Timeout: 5 * time.Second}).Get(s.URL)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")
	trusted, _ := transport(s)
	_, err = (&http.Client{Transport: trusted, Timeout: 5 * time.Second}).Get(strings.Replace(s.URL, "127.0.0.1", "localhost", 1))
	require.Error(t, err, "the certificate is for 127.0.0.1 and example.com, not localhost")
	assert.Contains(t, err.Error(), "certificate")
}

// A connection being opened ahead that is stuck (an address that does not
// answer) holds the call back a second at most: the call then dials its
// own rather than spend its attempt waiting.
func TestACallDoesNotWaitLongForAStuckConnectionBeingOpened(t *testing.T) {
	s := newConnServer(t, false)
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			<-ctx.Done() // the connection opened ahead: never answered
			return nil, ctx.Err()
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	pc := awsbase.NewPreconnector()
	pc.Install(tr)
	pc.Warm(s.URL)
	require.Eventually(t, func() bool { return dials.Load() == 1 }, time.Second, time.Millisecond)
	began := time.Now()
	assert.Equal(t, "HTTP/1.1", get(t, tr, s.URL))
	took := time.Since(began)
	assert.Less(t, took, 3*time.Second, "the call waited %s for the stuck connection", took)
	assert.GreaterOrEqual(t, took, 900*time.Millisecond, "it waited its second for the one being opened first")
}
