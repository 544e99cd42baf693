// Command cv-setup prepares and checks the AWS side of cv-access. It reads
// the same CV_ variables as the functions (CV_BACKEND=aws and the CV_AWS_*,
// table, bucket and mail settings), but not the functions' own secrets.
//
//	cv-setup [-cv path | -sample]          create what is missing (`make aws-setup`)
//	cv-setup check [-default-credentials]  test the functions' permissions (`make aws-check`)
//
// Setup creates, idempotently, the cv-requests, otps and cv-rate-limits
// tables (TTL, encryption at rest, point-in-time recovery) and the private
// CV bucket (public access blocked, default encryption, owner-enforced
// object ownership, TLS only), and uploads the CV. Run it with your
// administrator credentials; run it again at any time, it changes only
// what is missing.
//
// Check runs with the functions' keys after a deploy: it tries each AWS
// permission the functions use, prints one line per permission and exits
// non-zero if any is not granted. It changes nothing. It needs the
// functions' key in CV_AWS_ACCESS_KEY_ID and CV_AWS_SECRET_ACCESS_KEY, as
// set in Netlify, and refuses to run without it: the SDK's default
// credentials are usually the administrator's, who may do everything, so
// all would read as granted. -default-credentials runs it with the SDK's
// default credentials instead, for a deploy where the functions get
// theirs from a role (run it as that role); it cannot be combined with
// CV_AWS_ACCESS_KEY_ID.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsdefault"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
)

func main() { os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr)) }

// run is the command with its arguments, environment and outputs, so tests
// can run it; it returns the exit status.
func run(args []string, env app.Getenv, stdout, stderr io.Writer) int {
	var err error
	if len(args) > 0 && args[0] == "check" {
		err = check(args[1:], env, stdout, stderr)
	} else {
		err = setup(args, env, stdout, stderr)
	}
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
		fmt.Fprintln(stderr, "usage: cv-setup [-cv path | -sample]          create the tables and bucket, upload the CV")
		fmt.Fprintln(stderr, "       cv-setup check [-default-credentials]  test the functions' AWS permissions with their keys")
		fs.PrintDefaults()
	}
	cvPath := fs.String("cv", "", "upload this file as the first listed document, the CV (to CV_S3_BUCKET at its key)")
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
	b, err := awsdefault.New(ctx, cfg, time.Now)
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
		first := cfg.Documents.Default()
		fmt.Fprintf(stdout, "cv-setup: done. Nothing uploaded: run again with -cv path/to/file to upload document %q as s3://%s/%s\n",
			first.Slug, cfg.Bucket, first.Key)
		return nil
	}
	fmt.Fprintln(stdout, "cv-setup: done")
	return nil
}

func check(args []string, env app.Getenv, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cv-setup check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultCreds := fs.Bool("default-credentials", false,
		"run with the SDK's default credentials, not CV_AWS_ACCESS_KEY_ID (for functions that get theirs from a role)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("check takes no arguments but -default-credentials (it reads the CV_ settings from the environment)")
	}
	cfg, err := app.LoadSetupConfig(env)
	if err != nil {
		return err
	}
	if cfg.MailFrom == "" {
		return errors.New("CV_MAIL_FROM is not set: check sends a test email from the functions' sender, e.g. CV <cv@example.com>")
	}
	switch {
	case cfg.AccessKeyID == "" && !*defaultCreds:
		// The SDK's default credentials are most often the administrator's:
		// everything would be granted, and the check would prove nothing.
		return errors.New("CV_AWS_ACCESS_KEY_ID is not set: check tests the functions' permissions with their key; " +
			"set CV_AWS_ACCESS_KEY_ID and CV_AWS_SECRET_ACCESS_KEY to the functions' key, as in Netlify " +
			"(or, if the functions get their credentials from a role, run check -default-credentials as that role)")
	case cfg.AccessKeyID != "" && *defaultCreds:
		return errors.New("-default-credentials: CV_AWS_ACCESS_KEY_ID is set; unset CV_AWS_ACCESS_KEY_ID and " +
			"CV_AWS_SECRET_ACCESS_KEY to use the SDK's default credentials, or drop -default-credentials to use the key")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := awsdefault.New(ctx, cfg, time.Now)
	if err != nil {
		return err
	}
	keys := "the functions' keys in CV_AWS_ACCESS_KEY_ID"
	if *defaultCreds {
		keys = "the SDK's default credentials (-default-credentials): the results are the functions' only if these are theirs"
	}
	fmt.Fprintf(stdout, "cv-setup check: region %s, with %s\n", b.DynamoDB.Options().Region, keys)
	results := awsbackend.Check(ctx, b, cfg, time.Now())
	for _, r := range results {
		fmt.Fprintln(stdout, r)
	}
	return summary(stdout, results)
}

// summary ends the check with what to fix; an error when anything is not ok.
func summary(w io.Writer, results []awsbackend.CheckResult) error {
	var fixes []string
	refused := false
	for _, r := range results {
		switch {
		case r.Allowed():
		case r.CredentialsRefused():
			if !refused {
				fixes = append(fixes, "AWS refused the keys themselves: check CV_AWS_ACCESS_KEY_ID, CV_AWS_SECRET_ACCESS_KEY and CV_AWS_REGION")
			}
			refused = true
		case r.Status == awsbackend.CheckDenied:
			fixes = append(fixes, fmt.Sprintf("allow %s %s in the functions' IAM policy", r.Action, r.Target))
		default:
			fixes = append(fixes, fmt.Sprintf("%s %s: %s", r.Action, r.Target, r.Reason))
		}
	}
	if len(fixes) == 0 {
		fmt.Fprintf(w, "cv-setup check: all %d permissions the functions use are granted\n", len(results))
		return nil
	}
	fmt.Fprintf(w, "cv-setup check: %d of %d not ok. To fix:\n  - %s\n", len(results)-okCount(results), len(results),
		strings.Join(fixes, "\n  - "))
	return fmt.Errorf("%d of %d permissions not ok", len(results)-okCount(results), len(results))
}

func okCount(results []awsbackend.CheckResult) int {
	n := 0
	for _, r := range results {
		if r.Allowed() {
			n++
		}
	}
	return n
}
