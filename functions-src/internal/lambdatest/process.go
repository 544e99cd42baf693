package lambdatest

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"

	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
)

// Process is a compiled function (a `make functions` output) running
// under its own Runtime, one warm container. infratest runs the same
// beside Amazon's RIE.
type Process struct {
	rt   *Runtime
	cmd  *exec.Cmd
	log  *flowtest.Buffer
	done chan struct{}
}

// Run starts bin with env (and AWS_LAMBDA_RUNTIME_API pointing at a new
// Runtime). Stop ends both.
func Run(bin string, env []string) (*Process, error) {
	rt, err := Start()
	if err != nil {
		return nil, err
	}
	p := &Process{rt: rt, log: &flowtest.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(append([]string(nil), env...), "AWS_LAMBDA_RUNTIME_API="+rt.Addr)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		rt.Close()
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// Invoke hands the function one event and returns its answer; an answer
// posted to the runtime's error endpoint is an error.
func (p *Process) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	select {
	case <-p.done:
		return nil, fmt.Errorf("the function exited: %s", p.log)
	default:
	}
	res, err := p.rt.Invoke(ctx, event)
	if err != nil {
		return nil, err
	}
	if res.Error {
		return nil, fmt.Errorf("the handler returned an error to the runtime: %s", res.Payload)
	}
	return res.Payload, nil
}

// Logs is everything the function wrote so far.
func (p *Process) Logs() string { return p.log.String() }

// Stop ends the function and its Runtime.
func (p *Process) Stop() {
	p.rt.Close()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}
