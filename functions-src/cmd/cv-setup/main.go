// Command cv-setup creates what the AWS backend needs, idempotently: the
// cv-requests table (with TTL), the otps table (with TTL), the
// cv-rate-limits table (with TTL) and the private CV bucket (public access blocked), and uploads the
// CV. It reads the same CV_ variables as the functions. `make aws-setup`
// runs it; run it again at any time, it changes only what is missing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
)

func main() {
	cvPath := flag.String("cv", "", "upload this file as the CV (to CV_S3_BUCKET/CV_S3_KEY)")
	sample := flag.Bool("sample", false, "upload the bundled sample CV (for emulators and trials)")
	flag.Parse()
	if err := run(*cvPath, *sample); err != nil {
		fmt.Fprintln(os.Stderr, "cv-setup:", err)
		os.Exit(1)
	}
}

func run(cvPath string, sample bool) error {
	cfg, err := app.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	if cfg.Backend != app.BackendAWS {
		return fmt.Errorf("set CV_BACKEND=aws and the CV_AWS_* settings (see .env.example); cv-setup prepares AWS, not the embedded backend")
	}
	var cv []byte
	switch {
	case cvPath != "" && sample:
		return fmt.Errorf("use -cv or -sample, not both")
	case cvPath != "":
		if cv, err = os.ReadFile(cvPath); err != nil {
			return err
		}
	case sample:
		cv = embedded.SampleCV
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := awsbackend.New(ctx, cfg.AWS, time.Now)
	if err != nil {
		return err
	}
	say := func(s string) { fmt.Println("  " + s) }
	fmt.Printf("cv-setup: region %s, tables %s and %s, bucket %s\n",
		b.DynamoDB.Options().Region, cfg.AWS.Tables.Requests, cfg.AWS.Tables.OTPs, cfg.AWS.Bucket)
	if err := awsbackend.Setup(ctx, b, cfg.AWS, cv, say); err != nil {
		return err
	}
	if cv == nil {
		fmt.Printf("cv-setup: done. No CV uploaded: run again with -cv path/to/cv.pdf to upload yours as s3://%s/%s\n",
			cfg.AWS.Bucket, cfg.AWS.Key)
		return nil
	}
	fmt.Println("cv-setup: done")
	return nil
}
