// Command notify-access emails the owner when a visitor gets a download
// link. It runs on AWS Lambda only, fed by the requests table's DynamoDB
// stream (on either target: the table is on AWS), never on Netlify: it
// lives outside functions-src/<name>/ so that Netlify and netlify dev do
// not take it for one of the site's functions. verify-access's answer
// waits for none of it. Wiring only: the rules live in
// internal/access (Notifier), the stream's edge in internal/streams.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsmail"
	"github.com/cv-access/cv-access/functions-src/internal/streams"
)

func main() {
	log := app.Logger()
	c, err := app.LoadNotifierConfig(os.Getenv)
	if err != nil {
		log.Error("notify-access cannot start", "error", err.Error())
		os.Exit(1)
	}
	n, err := app.NewNotifier(c, nil, awsbase.Parts{Mail: awsmail.Part})
	if err != nil {
		log.Error("notify-access cannot start", "error", err.Error())
		os.Exit(1)
	}
	var notifier streams.Notifier = n
	if !c.Notify {
		log.Info("CV_NOTIFY=off: stream records are read and skipped")
		notifier = streams.Off{}
	}
	lambda.Start(streams.Handler(notifier, log))
}
