package awsbase

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Preconnector lets a fresh process open its connection to an endpoint
// while it waits for another: request-access opens SES's (and SNS's) while
// its DynamoDB transaction is in flight, so its cold path pays one
// connection set-up (TCP and TLS), not two in a row; and the site's
// functions open DynamoDB's as the last step of their init
// (Adapters.Preconnect), beside the runtime's hand-over and the first
// event's handling. It is the HTTP
// transport's dialer: a connection it opened ahead is handed to the
// transport's next dial to that endpoint. It opens one only when no
// connection to the endpoint is open, so a warm process (whose pool holds
// one) dials nothing more; and it sends nothing on it: no request leaves
// before the caller makes it, limits counted and all.
type Preconnector struct {
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	tls   *tls.Config // the transport's TLS settings, for connections opened ahead
	proxy func(*http.Request) (*url.URL, error)
	// handshake bounds a TLS handshake, as the transport's
	// TLSHandshakeTimeout does for the handshakes it makes itself.
	handshake time.Duration

	mu      sync.Mutex
	live    map[string]int           // open connections per scheme://host:port
	ready   map[string]*readyConn    // a connection opened ahead, per endpoint
	pending map[string]chan struct{} // closed when a connection opened ahead is ready (or failed)
}

type readyConn struct {
	conn net.Conn
	at   time.Time // when its opening began (monotonic and wall clock)
}

// fresh says whether a connection opened ahead is still young enough to
// carry a call: by both clocks, so that a process frozen between init and
// its first invocation (Lambda freezes a container it started ahead)
// takes no connection the server may have dropped meanwhile.
func (r *readyConn) fresh(now time.Time) bool {
	return now.Sub(r.at) < readyFor && now.Round(0).Sub(r.at.Round(0)) < readyFor
}

// readyFor is how long a connection opened ahead waits to be used before
// it is closed (or, in a process frozen meanwhile, refused when it is
// taken, and closed when the process thaws). Nothing reads it meanwhile, so a close by the server goes
// unnoticed until a request fails on it (the SDK then retries on a new
// connection, at the cost of an attempt): it is meant for the call that
// follows within a second or so, the write it was opened beside or the
// invocation that started the container.
const readyFor = 5 * time.Second

// preconnectTimeout bounds opening a connection ahead of time.
const preconnectTimeout = 5 * time.Second

// pendingWait bounds how long a call waits for a connection being opened
// ahead before it dials one of its own: a handshake to AWS takes tens of
// milliseconds, so one still opening after a second is stuck (an address
// that does not answer), and the call must not spend its attempt on it.
const pendingWait = time.Second

// NewPreconnector returns a preconnector; Install puts it in a transport.
func NewPreconnector() *Preconnector {
	return &Preconnector{live: map[string]int{}, ready: map[string]*readyConn{}, pending: map[string]chan struct{}{}}
}

// Install makes tr dial through p, for plain and TLS connections alike,
// with tr's own dialer underneath. The TLS handshake is p's, with tr's
// settings (roots, minimum version, curves; h2 offered when tr tries it)
// and its handshake timeout, so a connection opened ahead is ready to
// carry a request. Install it last, once every other option has shaped
// tr (the SDK adds AWS_CA_BUNDLE's roots as an option of its own). A
// transport cloned from one p is installed in keeps p's first dialer.
func (p *Preconnector) Install(tr *http.Transport) {
	if p.dial == nil {
		p.dial = tr.DialContext
		if p.dial == nil {
			p.dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		}
	}
	p.proxy = tr.Proxy
	p.handshake = tr.TLSHandshakeTimeout
	if p.handshake <= 0 {
		p.handshake = 10 * time.Second
	}
	cfg := &tls.Config{}
	if tr.TLSClientConfig != nil {
		cfg = tr.TLSClientConfig.Clone()
	}
	if len(cfg.NextProtos) == 0 && tr.ForceAttemptHTTP2 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	p.tls = cfg
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return p.take(ctx, "http", addr)
	}
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return p.take(ctx, "https", addr)
	}
}

// Warm opens a connection to endpoint (a URL) in the background, unless
// one is open, opening or ready. It returns at once. A preconnector no
// transport dials through (never Installed) opens nothing.
func (p *Preconnector) Warm(endpoint string) {
	if p.dial == nil {
		return
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	if p.proxy != nil {
		// A proxied endpoint is reached through the proxy, never directly.
		if via, err := p.proxy(&http.Request{Method: http.MethodPost, URL: u, Header: http.Header{}}); err != nil || via != nil {
			return
		}
	}
	key := u.Scheme + "://" + addr
	p.mu.Lock()
	if p.live[key] > 0 || p.ready[key] != nil || p.pending[key] != nil {
		p.mu.Unlock()
		return
	}
	done := make(chan struct{})
	p.pending[key] = done
	p.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), preconnectTimeout)
		defer cancel()
		began := time.Now()
		c, err := p.open(ctx, u.Scheme, addr)
		p.mu.Lock()
		delete(p.pending, key)
		if err == nil {
			p.ready[key] = &readyConn{conn: c, at: began}
		}
		p.mu.Unlock()
		close(done)
		if err == nil {
			time.AfterFunc(readyFor, func() { p.expire(key, c) })
		}
	}()
}

// take is the transport's dial: the connection opened ahead if there is a
// fresh one (waiting for one being opened, up to pendingWait, rather than
// opening another), else a new one.
func (p *Preconnector) take(ctx context.Context, scheme, addr string) (net.Conn, error) {
	key := scheme + "://" + addr
	p.mu.Lock()
	pending := p.pending[key]
	p.mu.Unlock()
	if pending != nil {
		wait := time.NewTimer(pendingWait)
		select {
		case <-pending:
			wait.Stop()
		case <-wait.C:
			// Stuck: dial a connection of our own. The one being opened,
			// if it ever opens, is closed unused.
			return p.open(ctx, scheme, addr)
		case <-ctx.Done():
			wait.Stop()
			return nil, ctx.Err()
		}
	}
	p.mu.Lock()
	r := p.ready[key]
	delete(p.ready, key)
	p.mu.Unlock()
	if r != nil {
		if r.fresh(time.Now()) {
			return r.conn, nil
		}
		_ = r.conn.Close()
	}
	return p.open(ctx, scheme, addr)
}

// expire closes a connection opened ahead that nobody took in time.
func (p *Preconnector) expire(key string, c net.Conn) {
	p.mu.Lock()
	r := p.ready[key]
	if r != nil && r.conn == c {
		delete(p.ready, key)
	} else {
		r = nil
	}
	p.mu.Unlock()
	if r != nil {
		_ = c.Close()
	}
}

// open dials addr and, for https, completes the TLS handshake. The raw
// connection is counted while open, so Warm can tell a warm endpoint.
func (p *Preconnector) open(ctx context.Context, scheme, addr string) (net.Conn, error) {
	raw, err := p.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	key := scheme + "://" + addr
	p.mu.Lock()
	p.live[key]++
	p.mu.Unlock()
	c := &countedConn{Conn: raw, done: func() {
		p.mu.Lock()
		p.live[key]--
		p.mu.Unlock()
	}}
	if scheme != "https" {
		return c, nil
	}
	cfg := p.tls.Clone()
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, p.handshake)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	// Unwrapped, so the transport sees the TLS state (and h2, if agreed).
	return tc, nil
}

// countedConn calls done once, when it is closed.
type countedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.done)
	return err
}

// Warmer returns a Prepare for a sender: it opens a connection to the
// endpoint resolve names. The endpoint is resolved once, on the first
// Prepare and off the caller's path (the SDK's endpoint rules are a
// computation, no call, but not free, and init is on every cold start);
// if it cannot be resolved, Prepare does nothing.
func (p *Preconnector) Warmer(resolve func(context.Context) (string, error)) func() {
	endpoint := sync.OnceValues(func() (string, error) { return resolve(context.Background()) })
	return func() {
		go func() {
			if e, err := endpoint(); err == nil && e != "" {
				p.Warm(e)
			}
		}()
	}
}
