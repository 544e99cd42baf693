// Command cv-owner is the CV owner's privacy tool, on either backend:
//
//	cv-owner list [-format json|csv]   every request held, oldest first
//	cv-owner erase -email ADDRESS      delete everything held about an inbox
//
// It reads CV_BACKEND and, on AWS, the region, tables and keys: exactly the
// lines of Terraform's owner_env output (CV_BACKEND=aws, CV_AWS_REGION,
// CV_S3_BUCKET, CV_S3_KEY, CV_TABLE_REQUESTS, CV_TABLE_OTPS,
// CV_TABLE_LIMITS, CV_AWS_ACCESS_KEY_ID, CV_AWS_SECRET_ACCESS_KEY); on the
// local backend, CV_DATA_DIR. It needs none of the functions' own settings
// (CV_OTP_SECRET, CV_SITE_URL, CV_OWNER_NAME, CV_MAIL_FROM). On AWS it
// needs dynamodb:Scan and dynamodb:DeleteItem, which the visitors'
// functions' policy lacks (without the owner page, on target netlify; on
// target aws always): run it with the owner's keys.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsdefault"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/ownercsv"
)

const usage = `usage:
  cv-owner list [-format json|csv]
  cv-owner erase -email ADDRESS`

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cv-owner:", err)
		os.Exit(1)
	}
}

// run is the command with its arguments, environment and output, so tests
// can run it.
func run(args []string, env app.Getenv, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("cv-owner "+args[0], flag.ContinueOnError)
	format := fs.String("format", "json", "list output: json or csv")
	email := fs.String("email", "", "erase: the address whose requests go")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, err := openStore(ctx, env)
	if err != nil {
		return err
	}
	switch args[0] {
	case "list":
		reqs, err := store.ListRequests(ctx, time.Now())
		if err != nil {
			return err
		}
		switch *format {
		case "json":
			return writeJSON(out, reqs)
		case "csv":
			return ownercsv.Write(out, reqs)
		}
		return fmt.Errorf("-format %q: use json or csv", *format)
	case "erase":
		addr, err := access.NormalizeEmail(*email)
		if err != nil {
			return fmt.Errorf("-email: %v", err)
		}
		n, err := store.EraseEmail(ctx, addr)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "erased %d request(s) made with that inbox, in any spelling\n", n)
		return nil
	}
	return errors.New(usage)
}

func openStore(ctx context.Context, env app.Getenv) (access.OwnerStore, error) {
	cfg, err := app.LoadOwnerConfig(env)
	if err != nil {
		return nil, err
	}
	if cfg.Backend == app.BackendAWS {
		b, err := awsdefault.New(ctx, cfg.AWS, time.Now)
		if err != nil {
			return nil, err
		}
		return b.Owner, nil
	}
	return embedded.OpenStore(cfg.StorePath())
}

func writeJSON(out io.Writer, reqs []access.Request) error {
	recs := make([]ownercsv.Record, 0, len(reqs))
	for _, r := range reqs {
		recs = append(recs, ownercsv.ToRecord(r))
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(recs)
}
