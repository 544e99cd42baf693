// Command owner is the function behind the owner page (/owner/): the
// owner signs in with a code sent to CV_OWNER_EMAIL, then lists the
// requests held, downloads them as CSV and erases a person's. Without
// CV_OWNER_EMAIL it answers every call 404 owner_page_off. Wiring only: the rules live in internal/access (Owner), the HTTP edge in
// internal/api. Function.Lambda serves both event shapes it may be
// handed, as the visitors' functions do.
package main

import (
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsmail"
)

func main() {
	log := app.Logger()
	// Email alone, for the sign-in code: the page texts nobody and gives
	// out no link.
	a, err := app.FromEnv(app.Options{AWS: awsbase.Parts{Mail: awsmail.Part}})
	if err != nil {
		log.Error("owner cannot start", "error", err.Error())
		os.Exit(1)
	}
	owner, err := a.Owner()
	switch {
	case errors.Is(err, app.ErrNoOwnerEmail):
		// Deployed beside the visitors' functions on a site that has not
		// set the page up: every call is told so, in words.
		log.Warn("the owner page is off", "error", err.Error())
		lambda.Start(api.OwnerOff(a.API(log)).Lambda)
	case err != nil:
		log.Error("owner cannot start", "error", err.Error())
		os.Exit(1)
	default:
		a.Preconnect()
		lambda.Start(api.Owner(owner, a.API(log)).Lambda)
	}
}
