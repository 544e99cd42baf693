// Command cv-emulators runs the local AWS stand-ins on fixed ports, sets
// them up like production (tables, TTL, bucket, the sample CV) and prints
// the environment that points cv-access at them, for `netlify dev` or any
// CV_BACKEND=aws run. `make emulators` starts it; Ctrl+C stops everything.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/emulators"
)

// Fixed ports, so the printed environment stays valid between runs.
const (
	dynamoDBPort = 8000
	sesPort      = 8005
	snsPort      = 8006
	s3Port       = 8007
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cv-emulators:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := emulators.FindRoot()
	if err != nil {
		return err
	}
	logPath := filepath.Join(root, ".local", "emulators.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()

	fmt.Println("cv-emulators: starting DynamoDB Local, aws-ses-v2-local, S3 (gofakes3) and the SNS fake...")
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	stack, err := emulators.Start(startCtx, emulators.Options{
		Root: root, Log: logf,
		DynamoDBPort: dynamoDBPort, SESPort: sesPort, SNSPort: snsPort, S3Port: s3Port,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("%w (emulator output: %s)", err, logPath)
	}
	defer stack.Stop()

	dep, err := stack.Deploy(ctx, "", func(s string) { fmt.Println("  " + s) })
	if err != nil {
		return err
	}
	env := dep.Env

	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lines strings.Builder
	for _, k := range keys {
		// Quoted, so the file works both as a dotenv file (netlify dev reads
		// .env) and with `set -a; . .local/emulators.env` in a shell.
		fmt.Fprintf(&lines, "%s=%q\n", k, env[k])
	}
	envPath := filepath.Join(root, ".local", "emulators.env")
	if err := os.WriteFile(envPath, []byte(lines.String()), 0o600); err != nil {
		return err
	}
	fmt.Printf("\nEmulators ready. This environment points cv-access at them (also in %s):\n\n%s\n", envPath, lines.String())
	fmt.Printf("Also set CV_SITE_URL and CV_OTP_SECRET (`openssl rand -hex 32`).\n")
	fmt.Printf("Sent mail: %s/store   Sent SMS: %s/_messages   Emulator output: %s\n", stack.SES, stack.SNS, logPath)
	fmt.Println("Press Ctrl+C to stop.")
	<-ctx.Done()
	fmt.Println("\ncv-emulators: stopping")
	return nil
}
