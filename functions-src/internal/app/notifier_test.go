package app_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsmail"
)

// The notifier only sends email: built without the mail part it does not
// start, rather than claim and release every stream record for nothing.
func TestTheNotifierDoesNotStartWithoutItsMailPart(t *testing.T) {
	c := app.NotifierConfig{AWS: awsbase.Config{Region: "us-east-2", AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret",
		MailFrom: "cv@example.com"}, SiteURL: "https://cv.example.com", OwnerEmail: "owner@example.com", Notify: true}
	_, err := app.NewNotifier(c, nil, awsbase.Parts{})
	require.ErrorContains(t, err, "awsbase.Parts{Mail: awsmail.Part}")

	n, err := app.NewNotifier(c, nil, awsbase.Parts{Mail: awsmail.Part})
	require.NoError(t, err)
	assert.IsType(t, &awsmail.Mailer{}, n.Mail)
}
