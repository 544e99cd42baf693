// Package awsbase is what every function's AWS backend is made of: the
// settings (Config), the process's aws.Config from its environment
// (EnvConfig), the one HTTP client with its Preconnector, and DynamoDB
// for requests and codes (Store, OwnerStore). The other services are
// parts a function's main hands in (Parts): awsmail for email (SES v2),
// awssms for SMS (SNS), awslinks for S3 presigned links to the private
// documents. So a function links only the services it calls: Go runs
// the initialisation of every package linked, on every cold start, and
// the SDK's service packages build large tables there. None of them
// calls AWS while being built, so a Lambda container starts without a
// network round trip. The owner's tools wire every part (awsbackend).
package awsbase

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// Build is what a backend's clients are built from.
type Build struct {
	// AWS is the region, credentials, retryer and HTTP client (dialing
	// through Preconnector) every client shares.
	AWS    aws.Config
	Config Config
	// Preconnector is the HTTP client's dialer, which the senders'
	// Prepare opens their connections through; never nil, and one no
	// transport dials through (NewBuild's stand-in for none) opens nothing.
	Preconnector *Preconnector
	// Now is the clock links are signed by; never nil.
	Now func() time.Time
	// getenv reads the SDK's endpoint variables; never nil.
	getenv func(string) string
}

// NewBuild is the Build over cfg, whose HTTP client dials through pc (nil
// for none: Prepare then opens nothing). getenv reads the endpoint
// variables (nil for none: the SDK has read them already into cfg).
func NewBuild(cfg aws.Config, c Config, now func() time.Time, pc *Preconnector, getenv func(string) string) Build {
	if pc == nil {
		pc = NewPreconnector() // not installed: it warms nothing
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if now == nil {
		now = time.Now
	}
	return Build{AWS: cfg, Config: c, Preconnector: pc, Now: now, getenv: getenv}
}

// Endpoint is a client's endpoint override: set (the emulator stack's,
// from Config.Endpoints), else the SDK's AWS_ENDPOINT_URL_<SERVICE>, else
// AWS_ENDPOINT_URL; nil for AWS's. A client sets one only where there is
// one: otherwise it keeps the endpoint AWS resolved (a tool's profile may
// name one).
func (b Build) Endpoint(set, service string) *string {
	getenv := b.getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return endpoint(set, service, getenv)
}

// Parts are the services a function calls besides DynamoDB, each built by
// the package that links it: a function's main names those it needs, and
// links no other. A part left out answers every call with a
// *MissingPartError naming it, never a nil-pointer panic.
type Parts struct {
	Mail  func(Build) access.Mailer    // awsmail.Part: email through SES v2
	SMS   func(Build) access.SMSSender // awssms.Part: SMS through SNS
	Links func(Build) access.Presigner // awslinks.Part: S3 presigned links
}

// Adapters are a function's AWS backend: DynamoDB's adapters, and the
// senders and links of the parts it was built with. Mailer, SMS and Links
// are never nil.
type Adapters struct {
	Store    *Store
	Owner    *OwnerStore // for the owner's list and erasure: the owner page
	DynamoDB *dynamodb.Client
	Mailer   access.Mailer
	SMS      access.SMSSender
	Links    access.Presigner

	preconnect func() // opens DynamoDB's connection ahead
}

// Preconnect opens DynamoDB's connection (TCP and TLS) in the background,
// unless one is open, and returns at once; it sends nothing. A function
// calls it at the end of its init: Lambda starts a container for an
// invocation that is already waiting, and that invocation's first call is
// to DynamoDB, so the connection's set-up runs beside the rest of init and
// the event's handling instead of after them. One nobody takes (an init
// with no invocation behind it) is closed after a few seconds.
func (b *Adapters) Preconnect() {
	if b.preconnect != nil {
		b.preconnect()
	}
}

// New builds the DynamoDB side and the parts p names from c and the
// process environment (EnvConfig): what the functions run with. It makes
// no network call.
func New(c Config, now func() time.Time, p Parts) (*Adapters, error) {
	pc := NewPreconnector()
	cfg, err := EnvConfig(c, os.Getenv, pc)
	if err != nil {
		return nil, err
	}
	return FromBuild(NewBuild(cfg, c, now, pc, os.Getenv), p), nil
}

// FromBuild builds the DynamoDB side and the parts p names over b. It
// makes no network call.
func FromBuild(b Build, p Parts) *Adapters {
	db := NewDynamoDB(b)
	be := &Adapters{
		Store:    NewStore(db, b.Config.Tables),
		Owner:    NewOwnerStore(db, b.Config.Tables),
		DynamoDB: db,
		Mailer:   missing{service: "email (SES v2)", part: "awsmail.Part", field: "Mail"},
		SMS:      missing{service: "SMS (SNS)", part: "awssms.Part", field: "SMS"},
		Links:    missing{service: "document links (S3)", part: "awslinks.Part", field: "Links"},
	}
	// The SDK's own parameters for a call, but AccountId: it sets that
	// only from credentials that carry an account (EnvConfig's static
	// keys never do), so it resolves the same host;
	// TestPreconnectOpensTheHostDynamoDBIsCalledAt holds the two equal.
	be.preconnect = b.Preconnector.Warmer(func(ctx context.Context) (string, error) {
		o := db.Options()
		ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, dynamodb.EndpointParameters{Region: &o.Region, Endpoint: o.BaseEndpoint,
			UseFIPS:      aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
			UseDualStack: aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled)})
		return ep.URI.String(), err
	})
	if p.Mail != nil {
		be.Mailer = p.Mail(b)
	}
	if p.SMS != nil {
		be.SMS = p.SMS(b)
	}
	if p.Links != nil {
		be.Links = p.Links(b)
	}
	return be
}

// NewDynamoDB is the DynamoDB client over b: at Config.Endpoints.DynamoDB
// or AWS_ENDPOINT_URL_DYNAMODB when set, and with the response CRC32
// unchecked when emulated (DynamoDB Local sends a wrong one on some error
// responses).
func NewDynamoDB(b Build) *dynamodb.Client {
	return dynamodb.NewFromConfig(b.AWS, func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = b.Config.Emulated
		if v := b.Endpoint(b.Config.Endpoints.DynamoDB, "DYNAMODB"); v != nil {
			o.BaseEndpoint = v
		}
	})
}

// ErrMissingPart is what a part a function was built without answers
// every call with, inside a *MissingPartError.
var ErrMissingPart = errors.New("a part this function was built without")

// MissingPartError says a call reached a service the function was built
// without (Parts): its main.go hands in no such part, so the service's
// SDK is not even linked.
type MissingPartError struct {
	Service string // e.g. "email (SES v2)"
	Part    string // the part that would have built it, e.g. "awsmail.Part"
	Field   string // Parts' field it goes in, e.g. "Mail"
}

func (e *MissingPartError) Error() string {
	return fmt.Sprintf("this function was built without %s: its main.go must hand in awsbase.Parts{%s: %s} to call it",
		e.Service, e.Field, e.Part)
}

// Unwrap makes the error ErrMissingPart.
func (e *MissingPartError) Unwrap() error { return ErrMissingPart }

// missing stands in for a part left out.
type missing struct{ service, part, field string }

func (m missing) err() error {
	return &MissingPartError{Service: m.service, Part: m.part, Field: m.field}
}

func (m missing) SendEmail(context.Context, access.Email) error { return m.err() }

func (m missing) SendSMS(context.Context, access.SMS) error { return m.err() }

func (m missing) Presign(context.Context, access.Document) (string, error) { return "", m.err() }

func (m missing) Check(context.Context, access.Document) error { return m.err() }
