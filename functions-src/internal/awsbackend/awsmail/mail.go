// Package awsmail is the email part of a function's AWS backend: the
// mailer over SES v2 (awsbase.Parts.Mail). Only the functions that send
// email link it, and with it SES's SDK.
package awsmail

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
)

// SESAPI is the part of the SES v2 client the mailer uses.
type SESAPI interface {
	SendEmail(context.Context, *sesv2.SendEmailInput, ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

// Mailer sends the code email through SES v2, as plain text and HTML.
type Mailer struct {
	ses              SESAPI
	from             string
	configurationSet string
	warm             func() // opens SES's connection ahead; nil does nothing
}

var _ access.Mailer = (*Mailer)(nil)

// NewMailer returns a mailer sending from a verified SES identity, with an
// optional configuration set (for bounce and complaint tracking).
func NewMailer(ses SESAPI, from, configurationSet string) *Mailer {
	return &Mailer{ses: ses, from: from, configurationSet: configurationSet}
}

// Part is email through SES v2, for awsbase.Parts.Mail.
func Part(b awsbase.Build) access.Mailer { return FromClient(b, NewClient(b)) }

// NewClient is the SES v2 client over b: at Config.Endpoints.SESv2, else
// AWS_ENDPOINT_URL_SESV2 or AWS_ENDPOINT_URL when set.
func NewClient(b awsbase.Build) *sesv2.Client {
	return sesv2.NewFromConfig(b.AWS, func(o *sesv2.Options) {
		if v := b.Endpoint(b.Config.Endpoints.SESv2, "SESV2"); v != nil {
			o.BaseEndpoint = v
		}
	})
}

// FromClient is the mailer over client, sending from b's Config.MailFrom
// with its SESConfigurationSet. Its Prepare opens SES's connection through
// b's Preconnector.
func FromClient(b awsbase.Build, client *sesv2.Client) *Mailer {
	m := NewMailer(client, b.Config.MailFrom, b.Config.SESConfigurationSet)
	if b.Preconnector != nil {
		m.warm = b.Preconnector.Warmer(func(ctx context.Context) (string, error) {
			o := client.Options()
			ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, sesv2.EndpointParameters{Region: &o.Region, Endpoint: o.BaseEndpoint,
				UseFIPS:      aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
				UseDualStack: aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled)})
			return ep.URI.String(), err
		})
	}
	return m
}

// Prepare implements access.Preparer: it opens the connection to SES, if
// none is open, for a send that may follow. It sends nothing.
func (m *Mailer) Prepare() {
	if m.warm != nil {
		m.warm()
	}
}

// SendEmail implements access.Mailer.
func (m *Mailer) SendEmail(ctx context.Context, e access.Email) error {
	in := &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(m.from),
		Destination:      &sestypes.Destination{ToAddresses: []string{e.To}},
		Content: &sestypes.EmailContent{Simple: &sestypes.Message{
			Subject: &sestypes.Content{Data: aws.String(e.Subject), Charset: aws.String("UTF-8")},
			Body: &sestypes.Body{
				Text: &sestypes.Content{Data: aws.String(e.Text), Charset: aws.String("UTF-8")},
				Html: &sestypes.Content{Data: aws.String(e.HTML), Charset: aws.String("UTF-8")},
			},
		}},
	}
	if m.configurationSet != "" {
		in.ConfigurationSetName = aws.String(m.configurationSet)
	}
	_, err := m.ses.SendEmail(ctx, in)
	return awsbase.Wrap("ses send email", err)
}
