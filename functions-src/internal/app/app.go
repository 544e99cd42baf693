package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/logctx"
	"github.com/cv-access/cv-access/functions-src/internal/proxysign"
)

// Options are what a command adds to the configuration: the phone rules
// (internal/phone), only where visitors' phones are read, the AWS
// services it calls, and for tests the clock and randomness.
type Options struct {
	Phones access.Phones
	// AWS are the parts of the AWS backend (CV_BACKEND=aws) the command
	// calls besides DynamoDB: awsmail.Part where it sends email,
	// awssms.Part where it texts, awslinks.Part where it gives out links.
	// A function links only the services its main names (their SDKs'
	// initialisation is on every cold start); one left out answers every
	// call with an error naming it (awsbase.MissingPartError).
	AWS  awsbase.Parts
	Now  func() time.Time
	Rand io.Reader
	// Notifier, if set, sends the owner's email about each download on
	// the local backend: a Background's Hook, the dev server's. The
	// functions leave it nil: on AWS the requests table's stream does it
	// (notify-access), and verify-access links none of the mail code.
	Notifier func(n *access.Notifier, now func() time.Time) func(ctx context.Context, requestID string)
}

// App is a wired service and, in local mode, the download-link server the
// dev server mounts. On AWS, links are S3 presigned URLs and Links is nil.
type App struct {
	Config  Config
	Service *access.Service
	Links   *embedded.Links // nil unless Backend is local

	now   func() time.Time // New's clock, never nil
	owner ownerParts       // what Owner wires, made by New
}

// ownerParts are what the owner page's service is made of, kept by New
// so that only a process that serves the page (Owner) builds it. They are
// kept as concrete types: turning them into the owner's ports here would
// link the owner's store methods into the visitors' functions too.
type ownerParts struct {
	aws       *awsbase.Adapters // the AWS backend, or nil
	store     *embedded.Store   // the local backend's store and outbox
	outbox    *embedded.Outbox
	otp       *access.Codes
	rand      io.Reader
	limitKeys [][]byte
}

// ErrNoOwnerEmail is Owner's answer where CV_OWNER_EMAIL is not set: the
// owner page is off (api.OwnerOff says so to every call).
var ErrNoOwnerEmail = errors.New("CV_OWNER_EMAIL is not set: the owner page signs in with a code sent to that address, so it is off")

// Owner wires the owner page's service over the same store and mailer as
// the visitors' flow. It needs CV_OWNER_EMAIL, where the sign-in code goes
// and nowhere else; without it, it returns ErrNoOwnerEmail.
func (a *App) Owner() (*access.Owner, error) {
	if a.Config.OwnerEmail == "" {
		return nil, ErrNoOwnerEmail
	}
	sessionKeys := make([][]byte, len(a.Config.OTPSecrets))
	for i, secret := range a.Config.OTPSecrets {
		sessionKeys[i] = deriveKey(secret, "cv-access/owner-session/v1")
	}
	p := a.owner
	d := access.OwnerDeps{OTP: p.otp, Rand: p.rand, Now: a.now, LimitKeys: p.limitKeys, SessionKeys: sessionKeys,
		To: a.Config.OwnerEmail, SiteURL: a.Config.SiteURL}
	if p.aws != nil {
		d.Codes, d.Requests, d.Mailer = p.aws.Store, p.aws.Owner, p.aws.Mailer
	} else {
		d.Codes, d.Requests, d.Mailer = p.store, p.store, p.outbox
	}
	return access.NewOwner(d, a.Config.Policy)
}

// FromEnv loads the configuration from the process environment and wires it.
func FromEnv(o Options) (*App, error) {
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		return nil, err
	}
	return New(cfg, o)
}

// Preconnect opens DynamoDB's connection in the background on the AWS
// backend (awsbase.Adapters.Preconnect), and does nothing on the local
// one. A function calls it last in its init, once it knows it will serve:
// Lambda starts a container for an invocation already waiting, whose
// first call is to DynamoDB. Nothing is sent on the connection, and no AWS
// API is called during init.
func (a *App) Preconnect() {
	if a.owner.aws != nil {
		a.owner.aws.Preconnect()
	}
}

// New wires the service for cfg. It makes no network call: on Lambda it
// runs once per container, during init.
func New(cfg Config, o Options) (*App, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Phones != nil {
		var errs []error
		for _, r := range cfg.Policy.Limits.SMSRegions {
			if !o.Phones.KnownRegion(r) {
				errs = append(errs, fmt.Errorf("CV_SMS_REGIONS: %q is not a region phone numbers belong to; "+
					"use ISO 3166 alpha-2 codes like GB,IE", r))
			}
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	codes, err := access.NewCodes(o.Rand, cfg.OTPSecrets...)
	if err != nil {
		return nil, err
	}
	sender := access.Sender{OwnerName: cfg.OwnerName, SiteURL: cfg.SiteURL}
	// Counters are keyed under every secret while one is being rotated,
	// so dropping the old secret later resets no limit.
	limitKeys := make([][]byte, len(cfg.OTPSecrets))
	for i, secret := range cfg.OTPSecrets {
		limitKeys[i] = deriveKey(secret, "cv-access/rate-limit/v1")
	}
	if cfg.Backend == BackendAWS {
		b, err := awsbase.New(cfg.AWS, o.Now, o.AWS)
		if err != nil {
			return nil, err
		}
		svc, err := access.NewService(access.Deps{
			Store: b.Store, Mailer: b.Mailer, SMS: b.SMS, Links: b.Links, Phones: o.Phones, Documents: cfg.Documents,
			Codes: codes, Rand: o.Rand, Now: o.Now, LimitKeys: limitKeys,
		}, cfg.Policy, sender)
		if err != nil {
			return nil, err
		}
		owner := ownerParts{aws: b, otp: codes, rand: o.Rand, limitKeys: limitKeys}
		return &App{Config: cfg, Service: svc, now: o.Now, owner: owner}, nil
	}

	store, err := embedded.OpenStore(cfg.StorePath())
	if err != nil {
		return nil, err
	}
	outbox := &embedded.Outbox{Dir: cfg.OutboxDir, From: cfg.MailFrom, Now: o.Now}
	links := &embedded.Links{
		Key:       deriveKey(cfg.OTPSecrets[0], "cv-access/download-link/v1"),
		BaseURL:   cfg.SiteURL,
		Dir:       cfg.DocumentsDir,
		Documents: cfg.Documents,
		Now:       o.Now,
	}
	if err := embedded.EnsureSamples(links); err != nil {
		return nil, err
	}
	deps := access.Deps{
		Store: store, Mailer: outbox, SMS: outbox, Links: links, Phones: o.Phones, Documents: cfg.Documents,
		Codes: codes, Rand: o.Rand, Now: o.Now, LimitKeys: limitKeys,
	}
	if cfg.Notify && o.Notifier != nil {
		n := &access.Notifier{Store: store, Mail: outbox, To: cfg.OwnerEmail, SiteURL: cfg.SiteURL, Now: o.Now, Documents: cfg.Documents}
		deps.Verified = o.Notifier(n, o.Now)
	}
	svc, err := access.NewService(deps, cfg.Policy, sender)
	if err != nil {
		return nil, err
	}
	owner := ownerParts{store: store, outbox: outbox, otp: codes, rand: o.Rand, limitKeys: limitKeys}
	return &App{Config: cfg, Service: svc, Links: links, now: o.Now, owner: owner}, nil
}

// Background is the local backend's owner notification: there is no
// stream, so the long-running dev server sends the email beside the
// answer, never in its way. Wait waits for the emails in flight (before
// the server, or a test, lets its folders go).
type Background struct{ wg sync.WaitGroup }

// Hook is Options.Notifier. The clock is read before the work is handed
// over.
func (b *Background) Hook(n *access.Notifier, now func() time.Time) func(ctx context.Context, requestID string) {
	return func(ctx context.Context, requestID string) {
		ctx, at := context.WithoutCancel(ctx), now()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			notify(ctx, n, requestID, at)
		}()
	}
}

// Wait returns once every notification started so far is done.
func (b *Background) Wait() { b.wg.Wait() }

// notify sends the owner's email about one download and logs the outcome.
func notify(ctx context.Context, n *access.Notifier, requestID string, now time.Time) {
	log := logctx.From(ctx)
	sent, err := n.NotifyAt(ctx, requestID, now)
	switch {
	case err != nil:
		log.Error("owner notification failed", "error", err.Error())
	case sent:
		log.Info("owner notified")
	default:
		log.Info("owner notification not due")
	}
}

// API is the edge configuration: the site's own origin is the one allowed
// to call the functions. The dev origins join it on the local backend only:
// on AWS the functions hold real visitors' data, and a page on someone's
// localhost is not the site.
func (a *App) API(log *slog.Logger) api.Config {
	origins := []string{a.Config.SiteURL}
	if a.Config.Backend == BackendLocal {
		origins = append(origins, api.LocalOrigins()...)
	}
	cfg := api.Config{Log: log, Origins: origins, SecureCookies: !loopback(a.Config.SiteURL)}
	if len(a.Config.ProxySecrets) > 0 {
		// The AWS target: nothing is served unless Netlify's signed proxy
		// forwarded it for this site, so the x-nf-client-connection-ip the
		// limits count (api.NetlifyClientIP, the default rule) is the one
		// Netlify set, never the caller's own.
		secrets, want, deployContext := a.Config.ProxySecrets, proxysign.Expect{SiteID: a.Config.NetlifySiteID}, a.Config.NetlifyDeployContext
		cfg.Admit = func(r api.Request) error {
			claims, err := proxysign.Verify(r.Header.Get(proxysign.Header), secrets, want, a.now())
			if err == nil && claims.DeployContext != deployContext {
				// A preview's build can add its own signed redirects.
				err = fmt.Errorf("x-nf-sign: signed for the %q deploy context, not %q", claims.DeployContext, deployContext)
			}
			return err
		}
	}
	return cfg
}

// loopback reports whether a site URL names this machine, where cookies
// travel over plain http and so cannot be Secure.
func loopback(siteURL string) bool {
	u, err := url.Parse(siteURL)
	if err != nil {
		return false
	}
	switch u.Hostname() {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// deriveKey gives each use of the OTP secret its own key, so a download
// link signature can never stand in for a code hash or the reverse.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Logger is the JSON logger functions write to stderr, where Netlify and
// CloudWatch collect it.
func Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, nil))
}
