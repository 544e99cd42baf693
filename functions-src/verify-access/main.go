// Command verify-access is the Netlify function that checks a one-time
// code and answers with a two-minute download link. Wiring only: the
// rules live in internal/access, the HTTP edge in internal/api.
// Function.Lambda serves both event shapes it may be handed: Netlify's
// (API Gateway REST v1) and payload format 2.0 (Function URL, HTTP API).
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awslinks"
)

func main() {
	log := app.Logger()
	// No phone rules: verify-access never reads a phone, so it links none
	// of libphonenumber. Links alone: it sends nothing, so it links
	// neither SES nor SNS.
	a, err := app.FromEnv(app.Options{AWS: awsbase.Parts{Links: awslinks.Part}})
	if err != nil {
		log.Error("verify-access cannot start", "error", err.Error())
		os.Exit(1)
	}
	a.Preconnect()
	lambda.Start(api.VerifyAccess(a.Service, a.API(log)).Lambda)
}
