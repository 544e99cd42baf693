package awsbackend

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/cv-access/cv-access/functions-src/internal/access"
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
	return wrap("ses send email", err)
}

// SNSAPI is the part of the SNS client the SMS sender uses.
type SNSAPI interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// SMSSender sends the code by SMS through SNS, as a transactional message
// (higher delivery priority than promotional).
type SMSSender struct {
	sns      SNSAPI
	senderID string
	warm     func() // opens SNS's connection ahead; nil does nothing
}

var _ access.SMSSender = (*SMSSender)(nil)

// NewSMSSender returns an SMS sender; senderID is optional and only shown
// in countries that support alphanumeric sender ids.
func NewSMSSender(client SNSAPI, senderID string) *SMSSender {
	return &SMSSender{sns: client, senderID: senderID}
}

// Prepare implements access.Preparer, as Mailer's does for SNS.
func (s *SMSSender) Prepare() {
	if s.warm != nil {
		s.warm()
	}
}

// SendSMS implements access.SMSSender.
func (s *SMSSender) SendSMS(ctx context.Context, m access.SMS) error {
	attrs := map[string]snstypes.MessageAttributeValue{
		"AWS.SNS.SMS.SMSType": {DataType: aws.String("String"), StringValue: aws.String("Transactional")},
	}
	if s.senderID != "" {
		attrs["AWS.SNS.SMS.SenderID"] = snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s.senderID)}
	}
	_, err := s.sns.Publish(ctx, &sns.PublishInput{
		PhoneNumber:       aws.String(m.To),
		Message:           aws.String(m.Text),
		MessageAttributes: attrs,
	})
	return wrap("sns publish", err)
}
