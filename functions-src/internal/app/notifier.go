package app

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
)

// NotifierConfig is what the owner's notifier (notify-access, fed by the
// requests table's stream) reads: where the requests are, who to tell,
// and the site for the owner page's link. It needs neither the code
// secret nor the documents' objects (only the list, for their titles).
type NotifierConfig struct {
	AWS        awsbase.Config
	SiteURL    string
	OwnerEmail string
	Notify     bool
}

// LoadNotifierConfig reads and checks the notifier's settings: the AWS
// backend's region and tables, CV_MAIL_FROM, CV_SITE_URL, CV_OWNER_EMAIL
// and CV_NOTIFY. Every problem names the variable.
func LoadNotifierConfig(env Getenv) (NotifierConfig, error) {
	if b := strings.TrimSpace(env("CV_BACKEND")); b != BackendAWS {
		return NotifierConfig{}, fmt.Errorf("CV_BACKEND=%q: the owner's notifier runs on AWS only, beside the requests table's stream; set CV_BACKEND=aws", b)
	}
	var errs []error
	var c NotifierConfig
	c.SiteURL = strings.TrimRight(strings.TrimSpace(env("CV_SITE_URL")), "/")
	if u, err := url.Parse(c.SiteURL); c.SiteURL == "" || err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.Path != "" {
		errs = append(errs, fmt.Errorf("CV_SITE_URL=%q: want the site's origin, e.g. https://cv.example.com (the owner page's link)", c.SiteURL))
	}
	mailFrom := strings.TrimSpace(env("CV_MAIL_FROM"))
	if mailFrom == "" {
		errs = append(errs, errors.New("CV_MAIL_FROM is not set: the verified SES sender, e.g. CV <cv@example.com>"))
	}
	var err error
	if c.OwnerEmail, c.Notify, err = loadNotify(env, false); err != nil {
		errs = append(errs, err)
	} else if c.OwnerEmail == "" {
		errs = append(errs, errors.New("CV_OWNER_EMAIL is not set: where the owner's email about each download goes"))
	}
	if c.AWS, err = loadAWS(env, mailFrom, false); err != nil {
		errs = append(errs, err)
	}
	// The list names each request's document by its title.
	if c.AWS.Documents, err = loadDocuments(env); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// NewNotifier builds the owner's notifier on the AWS backend, sending
// through parts.Mail (awsmail.Part): the notifier's main hands it in, so
// that only what sends email links SES. Without it the notifier does not
// start. It makes no network call.
func NewNotifier(c NotifierConfig, now func() time.Time, parts awsbase.Parts) (*access.Notifier, error) {
	if parts.Mail == nil {
		return nil, errors.New("the notifier sends email: its main.go must hand in awsbase.Parts{Mail: awsmail.Part}")
	}
	if now == nil {
		now = time.Now
	}
	b, err := awsbase.New(c.AWS, now, parts)
	if err != nil {
		return nil, err
	}
	return &access.Notifier{Store: b.Store, Mail: b.Mailer, To: c.OwnerEmail, SiteURL: c.SiteURL, Now: now, Documents: c.AWS.Documents}, nil
}
