package awsbackend_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awslinks"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsmail"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awssms"
	"github.com/cv-access/cv-access/functions-src/internal/phone"
)

// Each function wires the parts it calls (its main.go's awsbase.Parts),
// and the domain over them: a call that reaches a part the function was
// built without fails with the error naming it, never a panic, and the
// parts it has work. request-access never presigns; verify-access never
// sends email.
func TestAFunctionWithoutAPartFailsThatCallClearly(t *testing.T) {
	f := backend(t)
	ctx := context.Background()
	wire := func(p awsbase.Parts) *access.Service {
		t.Helper()
		b, err := awsbase.New(f.cfg, f.clock.Now, p)
		require.NoError(t, err)
		codes, err := access.NewCodes(rand.Reader, []byte(strings.Repeat("k", 32)))
		require.NoError(t, err)
		svc, err := access.NewService(access.Deps{
			Store: b.Store, Mailer: b.Mailer, SMS: b.SMS, Links: b.Links, Phones: phone.Numbers{},
			Codes: codes, Rand: rand.Reader, Now: f.clock.Now, LimitKeys: [][]byte{[]byte("limit-key")},
			Documents: f.cfg.Documents,
		}, access.DefaultPolicy(), access.Sender{OwnerName: "Alex Sample", SiteURL: "https://cv.example.com"})
		require.NoError(t, err)
		return svc
	}
	email := fmt.Sprintf("parts-%d@example.com", time.Now().UnixNano())
	in := access.AccessInput{Name: "Ada Lovelace", Email: email, Consent: true, ClientIP: "198.51.100.61"}

	// verify-access's wiring, asked to send a code.
	_, err := wire(awsbase.Parts{Links: awslinks.Part}).RequestAccess(ctx, in)
	require.ErrorIs(t, err, awsbase.ErrMissingPart)
	assert.ErrorContains(t, err, "delivery_failed: this function was built without email (SES v2)")

	// request-access's wiring sends it, and is asked for the link.
	request := wire(awsbase.Parts{Mail: awsmail.Part, SMS: awssms.Part})
	out, err := request.RequestAccess(ctx, in)
	require.NoError(t, err)
	mails, err := stack.EmailsTo(ctx, email)
	require.NoError(t, err)
	require.Len(t, mails, 1, "the email the first wiring could not send was never sent")
	code := sixDigits.FindString(mails[0].Body.Text)
	_, err = request.VerifyAccess(ctx, access.VerifyInput{RequestID: out.RequestID, OTP: code, ClientIP: "198.51.100.61"})
	require.ErrorIs(t, err, awsbase.ErrMissingPart)
	assert.ErrorContains(t, err, "this function was built without document links (S3)")
}
