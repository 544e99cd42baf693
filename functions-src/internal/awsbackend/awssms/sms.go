// Package awssms is the SMS part of a function's AWS backend: the sender
// over SNS (awsbase.Parts.SMS). Only request-access texts codes, so only
// it, of the functions, links SNS's SDK.
package awssms

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
)

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

// Part is SMS through SNS, for awsbase.Parts.SMS.
func Part(b awsbase.Build) access.SMSSender { return FromClient(b, NewClient(b)) }

// NewClient is the SNS client over b: at Config.Endpoints.SNS, else
// AWS_ENDPOINT_URL_SNS or AWS_ENDPOINT_URL when set.
func NewClient(b awsbase.Build) *sns.Client {
	return sns.NewFromConfig(b.AWS, func(o *sns.Options) {
		if v := b.Endpoint(b.Config.Endpoints.SNS, "SNS"); v != nil {
			o.BaseEndpoint = v
		}
	})
}

// FromClient is the SMS sender over client, with b's Config.SMSSenderID.
// Its Prepare opens SNS's connection through b's Preconnector.
func FromClient(b awsbase.Build, client *sns.Client) *SMSSender {
	s := NewSMSSender(client, b.Config.SMSSenderID)
	if b.Preconnector != nil {
		s.warm = b.Preconnector.Warmer(func(ctx context.Context) (string, error) {
			o := client.Options()
			ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, sns.EndpointParameters{Region: &o.Region, Endpoint: o.BaseEndpoint,
				UseFIPS:      aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
				UseDualStack: aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled)})
			return ep.URI.String(), err
		})
	}
	return s
}

// Prepare implements access.Preparer, as awsmail.Mailer's does for SNS.
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
	return awsbase.Wrap("sns publish", err)
}
