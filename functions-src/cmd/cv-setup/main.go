// Command cv-setup prepares the AWS side of cv-access (`make aws-setup`).
// It reads the same CV_ variables as the functions (CV_BACKEND=aws and the
// CV_AWS_*, table and bucket settings), but not the functions' own secrets.
//
// It creates, idempotently, the cv-requests, otps and cv-rate-limits
// tables (TTL, encryption at rest, point-in-time recovery) and the private
// CV bucket (public access blocked, default encryption, owner-enforced
// object ownership, TLS only), and uploads the CV. Run it with your
// administrator credentials; run it again at any time, it changes only
// what is missing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
)

func main() { os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr)) }

// run is the command with its arguments, environment and outputs, so tests
// can run it; it returns the exit status.
func run(args []string, env app.Getenv, stdout, stderr io.Writer) int {
	err := setup(args, env, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "cv-setup:", err)
		return 1
	}
	return 0
}

func setup(args []string, env app.Getenv, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cv-setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cv-setup [-cv path | -sample]   create the tables and bucket, upload the CV")
		fs.PrintDefaults()
	}
	cvPath := fs.String("cv", "", "upload this file as the CV (to CV_S3_BUCKET/CV_S3_KEY)")
	sample := fs.Bool("sample", false, "upload the bundled sample CV (for emulators and trials)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := app.LoadSetupConfig(env)
	if err != nil {
		return err
	}
	var cv []byte
	switch {
	case *cvPath != "" && *sample:
		return fmt.Errorf("use -cv or -sample, not both")
	case *cvPath != "":
		if cv, err = os.ReadFile(*cvPath); err != nil {
			return err
		}
	case *sample:
		cv = embedded.SampleCV
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := awsbackend.New(ctx, cfg, time.Now)
	if err != nil {
		return err
	}
	say := func(s string) { fmt.Fprintln(stdout, "  "+s) }
	fmt.Fprintf(stdout, "cv-setup: region %s, tables %s, %s and %s, bucket %s\n",
		b.DynamoDB.Options().Region, cfg.Tables.Requests, cfg.Tables.OTPs, cfg.Tables.Limits, cfg.Bucket)
	if err := awsbackend.Setup(ctx, b, cfg, cv, say); err != nil {
		if cfg.AccessKeyID != "" && awsbackend.IsAccessDenied(err) {
			return fmt.Errorf("%w\ncv-setup runs with CV_AWS_ACCESS_KEY_ID (the functions' keys, which may not create tables); "+
				"unset CV_AWS_ACCESS_KEY_ID and CV_AWS_SECRET_ACCESS_KEY to use your administrator credentials", err)
		}
		return err
	}
	if cv == nil {
		fmt.Fprintf(stdout, "cv-setup: done. No CV uploaded: run again with -cv path/to/cv.pdf to upload yours as s3://%s/%s\n",
			cfg.Bucket, cfg.Key)
		return nil
	}
	fmt.Fprintln(stdout, "cv-setup: done")
	return nil
}
