// Package lambdatest runs compiled Lambda binaries (the `make build`
// outputs, built with -tags lambda.norpc) the way Lambda and netlify dev
// do: under a Runtime API that hands out events and takes back responses.
package lambdatest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Runtime is a minimal Lambda Runtime API (2018-06-01): next invocation,
// response, invocation error and init error.
type Runtime struct {
	Addr string // host:port, for AWS_LAMBDA_RUNTIME_API

	srv     *http.Server
	pending chan invocation
	mu      sync.Mutex
	waiting map[string]chan Result
	closed  chan struct{}
	once    sync.Once

	pollOnce  sync.Once
	firstPoll time.Time     // when the function first asked for work: its init is done
	polled    chan struct{} // closed then
}

type invocation struct {
	id      string
	payload []byte
}

// Result is what the function answered to one invocation.
type Result struct {
	Payload []byte
	Error   bool // posted to /error instead of /response
}

// Start serves a Runtime API on a free loopback port.
func Start() (*Runtime, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Runtime{
		Addr:    ln.Addr().String(),
		pending: make(chan invocation, 16),
		waiting: map[string]chan Result{},
		closed:  make(chan struct{}),
		polled:  make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", r.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, req *http.Request) {
		r.finish(w, req, false)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, req *http.Request) {
		r.finish(w, req, true)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	})
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Close stops the Runtime API; a function waiting for work then fails
// its next poll and exits. Calling it again does nothing.
func (r *Runtime) Close() {
	r.once.Do(func() {
		close(r.closed)
		_ = r.srv.Close()
	})
}

// Invoke queues one event and waits for the function's answer.
func (r *Runtime) Invoke(ctx context.Context, payload []byte) (Result, error) {
	id := uuid.NewString()
	ch := make(chan Result, 1)
	r.mu.Lock()
	r.waiting[id] = ch
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.waiting, id)
		r.mu.Unlock()
	}()
	select {
	case r.pending <- invocation{id: id, payload: payload}:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		return Result{}, fmt.Errorf("no answer to invocation %s: %w", id, ctx.Err())
	}
}

// FirstPoll is when the function first asked for an invocation, which is
// when its init phase ended; zero if it has not asked yet.
func (r *Runtime) FirstPoll() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstPoll
}

// Polled is closed when the function first asks for an invocation.
func (r *Runtime) Polled() <-chan struct{} { return r.polled }

func (r *Runtime) next(w http.ResponseWriter, req *http.Request) {
	r.pollOnce.Do(func() {
		r.mu.Lock()
		r.firstPoll = time.Now()
		r.mu.Unlock()
		close(r.polled)
	})
	select {
	case inv := <-r.pending:
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(30*time.Second).UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:000000000000:function:cv-access")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(inv.payload)
	case <-req.Context().Done():
	case <-r.closed:
		http.Error(w, "runtime closed", http.StatusGone)
	}
}

func (r *Runtime) finish(w http.ResponseWriter, req *http.Request, isErr bool) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	ch, ok := r.waiting[req.PathValue("id")]
	r.mu.Unlock()
	if !ok {
		http.Error(w, "unknown invocation", http.StatusNotFound)
		return
	}
	ch <- Result{Payload: body, Error: isErr}
	w.WriteHeader(http.StatusAccepted)
}

// ErrNoBinary means the `make build` output is not there.
var ErrNoBinary = errors.New("function binary not built")
