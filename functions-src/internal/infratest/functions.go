package infratest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
	"github.com/cv-access/cv-access/functions-src/internal/lambdatest"
)

// Function is a compiled function running under a Lambda Runtime API.
type Function interface {
	// Invoke hands it one event and returns its answer.
	Invoke(ctx context.Context, event []byte) ([]byte, error)
	// Logs is everything it wrote so far.
	Logs() string
	Stop()
}

// OwnRuntime runs bin under this project's Runtime API (lambdatest).
func OwnRuntime(bin string, env []string) (Function, error) {
	return lambdatest.Run(bin, env)
}

// RIE runs bin under Amazon's Lambda Runtime Interface Emulator, the
// runtime API of Amazon's own base images.
func RIE(rie, bin string, env []string) (Function, error) {
	apiPort, err := emulators.FreePort()
	if err != nil {
		return nil, err
	}
	invokePort, err := emulators.FreePort()
	if err != nil {
		return nil, err
	}
	f := &process{log: &flowtest.Buffer{}}
	f.cmd = exec.Command(rie,
		"--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(invokePort),
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort), bin)
	f.cmd.Env = env
	if err := f.start(); err != nil {
		return nil, err
	}
	return &rieFunction{process: f, url: fmt.Sprintf("http://127.0.0.1:%d/2015-03-31/functions/function/invocations", invokePort)}, nil
}

type rieFunction struct {
	*process
	url string
}

func (f *rieFunction) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	var lastErr error
	// The emulator listens a moment after it starts. Only a refused
	// connection is tried again: an event that may have reached the
	// function is never sent twice.
	for try := 0; try < 50; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(event))
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return nil, err
			}
			lastErr = err
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-f.done:
				return nil, fmt.Errorf("RIE exited: %s", f.Logs())
			case <-time.After(100 * time.Millisecond):
				continue
			}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" {
			return nil, fmt.Errorf("RIE answered %s %s: %s", resp.Status, resp.Header.Get("X-Amz-Function-Error"), b)
		}
		return b, nil
	}
	return nil, fmt.Errorf("RIE did not listen: %w", lastErr)
}

func (f *rieFunction) Stop() { f.process.stop() }

type process struct {
	cmd  *exec.Cmd
	log  *flowtest.Buffer
	done chan struct{}
}

func (p *process) start() error {
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.done = make(chan struct{})
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return nil
}

func (p *process) Logs() string { return p.log.String() }

func (p *process) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}
