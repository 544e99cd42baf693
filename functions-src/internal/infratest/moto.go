// Package infratest applies infra/ with Terraform to moto, an AWS
// look-alike run with IAM enforcement on, and drives the compiled
// functions against what it made, with only the keys Terraform gave them.
//
// moto (../shared notes, and what was seen here with moto 5.2.1):
//   - with INITIAL_NO_AUTH_ACTION_COUNT=N the first N calls are free (they
//     make the administrator), and every later call is authenticated and
//     authorised against the caller's IAM identity policies;
//   - DynamoDB, SES and SNS statements match only with Resource "*", it
//     authorises a transaction as dynamodb:TransactWriteItems or
//     dynamodb:TransactGetItems, and it ignores Condition (so it would read
//     the bucket's TLS-only Deny as "deny everything"). infra/ keeps those
//     differences behind local.emulator_compat, which only the override
//     file written here sets; the plan test checks the real policy;
//   - a presigned GET under auth makes it answer 500: POST
//     /moto-api/reset-auth lets the next N calls through unauthenticated.
package infratest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
)

// ErrMissing means a tool these tests need is not installed.
var ErrMissing = errors.New("missing tool")

// Region is where the stack is applied.
const Region = "us-east-2"

// freeCalls is how many unauthenticated calls moto allows: the three that
// make the administrator.
const freeCalls = 3

// Moto is a running moto_server with IAM enforcement on.
type Moto struct {
	URL   string      // http://127.0.0.1:port
	Admin Credentials // the administrator made by the free calls

	cmd    *exec.Cmd
	done   chan struct{}
	log    *flowtest.Buffer
	docker net.Listener
}

// Credentials is an access key pair, and the session token of temporary
// credentials (an assumed role's).
type Credentials struct{ ID, Secret, Token string }

// Provider gives the pair to the AWS SDK.
func (c Credentials) Provider() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(c.ID, c.Secret, c.Token)
}

// StartMoto runs moto_server on a free loopback port, with IAM enforcement
// after the calls that make its administrator.
func StartMoto(ctx context.Context) (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("%w: moto_server is not on PATH (the machine image ships moto with the AWS CLI)", ErrMissing)
	}
	port, err := emulators.FreePort()
	if err != nil {
		return nil, err
	}

	m := &Moto{URL: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{}), log: &flowtest.Buffer{}}
	m.cmd = exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	docker, err := versionOnlyDocker()
	if err != nil {
		return nil, err
	}
	m.docker = docker
	started := false
	defer func() {
		if !started {
			_ = docker.Close()
		}
	}()
	m.cmd.Env = append(m.cmd.Environ(), "INITIAL_NO_AUTH_ACTION_COUNT="+strconv.Itoa(freeCalls),
		"DOCKER_HOST=tcp://"+docker.Addr().String())
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		// moto's own API (/moto-api/) is not counted as a call and needs
		// no credentials. Any answer means it is up.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/moto-api/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-m.done:
			return nil, fmt.Errorf("moto_server exited: %s", m.log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.Stop()
			return nil, fmt.Errorf("moto_server did not answer within 30 s: %s", m.log)
		}
	}
	if err := m.makeAdmin(ctx); err != nil {
		m.Stop()
		return nil, fmt.Errorf("make moto's administrator: %w", err)
	}
	started = true
	return m, nil
}

func (m *Moto) makeAdmin(ctx context.Context) error {
	c := m.IAM(Credentials{ID: "AKIDBOOTSTRAP", Secret: "bootstrap"})
	if _, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("admin")}); err != nil {
		return err
	}
	_, err := c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{
		UserName: aws.String("admin"), PolicyName: aws.String("admin"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`),
	})
	if err != nil {
		return err
	}
	key, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("admin")})
	if err != nil {
		return err
	}
	m.Admin = Credentials{ID: aws.ToString(key.AccessKey.AccessKeyId), Secret: aws.ToString(key.AccessKey.SecretAccessKey)}
	return nil
}

// Config is an SDK configuration for moto with the given keys.
func (m *Moto) Config(c Credentials) aws.Config {
	return aws.Config{Region: Region, Credentials: c.Provider(), BaseEndpoint: aws.String(m.URL)}
}

// IAM is an IAM client for moto with the given keys.
func (m *Moto) IAM(c Credentials) *iam.Client { return iam.NewFromConfig(m.Config(c)) }

// versionOnlyDocker answers Docker's version call and nothing else.
// moto's own API (/moto-api/data.json, which Sent reads) lists every
// model's attributes, and once a Lambda function exists one of them
// connects to Docker and fails the whole listing when none runs. Nothing
// here invokes a function through moto: the tests run them themselves.
func versionOnlyDocker() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ApiVersion":"1.41","Version":"none: moto's data listing only"}`)
	})
	go func() { _ = http.Serve(ln, mux) }()
	return ln, nil
}

// Stop ends moto; its state goes with it.
func (m *Moto) Stop() {
	if m.docker != nil {
		_ = m.docker.Close()
	}
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}

// Sent is what moto recorded as sent.
type Sent struct {
	Emails []struct {
		Source       string `json:"source"`
		Subject      string `json:"subject"`
		Body         string `json:"body"`
		Destinations struct {
			ToAddresses []string `json:"ToAddresses"`
		} `json:"destinations"`
	}
	SMS []struct {
		PhoneNumber string `json:"phone_number"`
		Message     string `json:"message"`
	}
}

// Sent reads the mail and texts moto has recorded, from its own API.
func (m *Moto) Sent(ctx context.Context) (Sent, error) {
	var data struct {
		SES struct {
			Message json.RawMessage `json:"Message"`
		} `json:"ses"`
		SNS struct {
			SMS json.RawMessage `json:"SMS"`
		} `json:"sns"`
	}
	if err := m.api(ctx, http.MethodGet, "/moto-api/data.json", "", &data); err != nil {
		return Sent{}, err
	}
	var s Sent
	if len(data.SES.Message) > 0 {
		if err := json.Unmarshal(data.SES.Message, &s.Emails); err != nil {
			return Sent{}, fmt.Errorf("moto's ses.Message: %w", err)
		}
	}
	if len(data.SNS.SMS) > 0 {
		if err := json.Unmarshal(data.SNS.SMS, &s.SMS); err != nil {
			return Sent{}, fmt.Errorf("moto's sns.SMS: %w", err)
		}
	}
	return s, nil
}

// LetThrough lets the next n calls in unauthenticated (moto answers a
// presigned GET with 500 while auth is on).
func (m *Moto) LetThrough(ctx context.Context, n int) error {
	return m.api(ctx, http.MethodPost, "/moto-api/reset-auth", strconv.Itoa(n), nil)
}

func (m *Moto) api(ctx context.Context, method, path, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, m.URL+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("moto %s %s: %s: %s", method, path, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// AdminEndpoint serves moto for the administrator's tools (Terraform and
// the tests' own reads) with one difference: moto 5.2.1 cannot check the
// signature of a body-less call (GET, DELETE) to a REST-JSON service under
// auth (it signs the request's headers as if they were its body, so
// Lambda's GetFunction and API Gateway's GetApi and DeleteRoute answer
// SignatureDoesNotMatch), so each such call to Lambda or API Gateway is
// let through unauthenticated. Those are the administrator's reads and
// deletions of what Terraform made; every call the functions make goes to
// moto directly, with full enforcement. Requests through it are passed
// one at a time, so a let-through is never taken by another of them; a
// call that reaches moto directly at that moment could take it instead,
// so the tests use this endpoint only while no function is calling moto
// (Terraform's apply and destroy, and the reads between flows). The server
// closes with the test.
func (m *Moto) AdminEndpoint(t testing.TB) string {
	t.Helper()
	target, err := url.Parse(m.URL)
	if err != nil {
		t.Fatal(err)
	}
	// The Host header is left as the client sent it, so SigV4
	// signatures over it still verify behind the proxy.
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.ContentLength <= 0 && restJSONService(r.Header.Get("Authorization")) {
			if err := m.LetThrough(r.Context(), 1); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// restJSONService reports whether a SigV4 Authorization header is scoped
// to a service whose reads moto cannot authenticate.
func restJSONService(authorization string) bool {
	_, scope, _ := strings.Cut(authorization, "Credential=")
	parts := strings.Split(scope, "/")
	return len(parts) > 3 && (parts[3] == "lambda" || parts[3] == "apigateway")
}

// Logs is what moto wrote so far.
func (m *Moto) Logs() string { return m.log.String() }
