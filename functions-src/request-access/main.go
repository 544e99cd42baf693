// Command request-access is the Netlify function that takes a visitor's
// details and consent and sends them a one-time code. Wiring only: the
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
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsmail"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awssms"
	"github.com/cv-access/cv-access/functions-src/internal/phone"
)

func main() {
	log := app.Logger()
	// Email and SMS: no S3, which only verify-access calls.
	a, err := app.FromEnv(app.Options{Phones: phone.Numbers{},
		AWS: awsbase.Parts{Mail: awsmail.Part, SMS: awssms.Part}})
	if err != nil {
		log.Error("request-access cannot start", "error", err.Error())
		os.Exit(1)
	}
	a.Preconnect()
	lambda.Start(api.RequestAccess(a.Service, a.API(log)).Lambda)
}
