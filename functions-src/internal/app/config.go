// Package app reads the CV_ configuration and wires the service for the
// chosen backend. Both functions and the dev server start here, so the
// three ways cv-access runs cannot drift apart.
package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
	"github.com/cv-access/cv-access/functions-src/internal/proxysign"
)

// Backends.
const (
	BackendLocal = "local" // embedded store, outbox folder, local signed links
	BackendAWS   = "aws"   // DynamoDB, SES, SNS, S3
)

// Config is everything read from the environment.
type Config struct {
	Backend    string
	OTPSecrets [][]byte // newest first
	SiteURL    string
	OwnerName  string
	MailFrom   string
	Policy     access.Policy

	// The owner's email about each download: where it goes
	// (CV_OWNER_EMAIL), and whether to send it (CV_NOTIFY: each, the
	// default when an address is set, or off).
	OwnerEmail string
	Notify     bool

	// The gated documents (CV_DOCUMENTS or CV_DOCUMENTS_FILE; the CV
	// alone when neither is set).
	Documents access.Documents

	// Local backend: the documents live in DocumentsDir, each at its key.
	DataDir      string
	OutboxDir    string
	DocumentsDir string

	// AWS backend.
	AWS awsbase.Config

	// The AWS target: the functions answer only what Netlify's signed
	// proxy forwarded for this site (CV_PROXY_SIGN_SECRET, newest first,
	// and CV_NETLIFY_SITE_ID). Empty on the Netlify target.
	ProxySecrets  [][]byte
	NetlifySiteID string
	// The deploy context whose proxy may call (CV_NETLIFY_DEPLOY_CONTEXT,
	// default production): a deploy preview built from someone's pull
	// request must not mint tokens production accepts.
	NetlifyDeployContext string
}

// StorePath is the embedded store's file.
func (c Config) StorePath() string { return storePath(c.DataDir) }

func storePath(dataDir string) string { return filepath.Join(dataDir, "cv-access.db") }

// Getenv reads one variable; os.Getenv in production, a map in tests.
type Getenv func(string) string

// LoadConfig reads and checks the configuration. Every problem names the
// variable to fix. defaultPort fills in the local site URL when unset.
func LoadConfig(env Getenv) (Config, error) {
	var errs []error
	c := Config{Policy: access.DefaultPolicy()}

	var err error
	if c.Backend, err = loadBackend(env); err != nil {
		return Config{}, err
	}
	local := c.Backend == BackendLocal

	c.DataDir = loadDataDir(env)
	c.OutboxDir = orDefault(env("CV_OUTBOX_DIR"), filepath.Join(c.DataDir, "outbox"))
	c.DocumentsDir = orDefault(env("CV_LOCAL_DOCUMENTS_DIR"), filepath.Join(c.DataDir, "private"))
	if v := strings.TrimSpace(env("CV_LOCAL_CV_FILE")); v != "" {
		errs = append(errs, fmt.Errorf("CV_LOCAL_CV_FILE is replaced by CV_LOCAL_DOCUMENTS_DIR, the folder holding each document at its key: "+
			"put the CV at %s and unset CV_LOCAL_CV_FILE", filepath.Join(c.DocumentsDir, "cv.pdf")))
	}
	if c.Documents, err = loadDocuments(env); err != nil {
		errs = append(errs, err)
	}

	port := orDefault(env("PORT"), "8888")
	c.SiteURL = strings.TrimRight(strings.TrimSpace(env("CV_SITE_URL")), "/")
	switch {
	case c.SiteURL == "" && local:
		c.SiteURL = "http://127.0.0.1:" + port
	case c.SiteURL == "":
		errs = append(errs, errors.New("CV_SITE_URL is not set: the site's public origin, e.g. https://cv.example.com"))
	default:
		u, err := url.Parse(c.SiteURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" {
			errs = append(errs, fmt.Errorf("CV_SITE_URL=%q: want an origin like https://cv.example.com", c.SiteURL))
			break
		}
		// Browsers send the Origin header in lower case, and the edge
		// compares it exactly.
		c.SiteURL = strings.ToLower(u.Scheme + "://" + u.Host)
	}

	c.OwnerName = strings.TrimSpace(env("CV_OWNER_NAME"))
	if c.OwnerName == "" {
		if local {
			c.OwnerName = "Alex Sample"
		} else {
			errs = append(errs, errors.New("CV_OWNER_NAME is not set: whose CV this is, as shown in messages"))
		}
	}

	c.MailFrom = strings.TrimSpace(env("CV_MAIL_FROM"))
	if c.MailFrom == "" {
		if local {
			c.MailFrom = "CV access <cv-access@localhost>"
		} else {
			errs = append(errs, errors.New("CV_MAIL_FROM is not set: the verified SES sender, e.g. CV <cv@example.com>"))
		}
	}

	c.OwnerEmail, c.Notify, err = loadNotify(env, local)
	if err != nil {
		errs = append(errs, err)
	}

	if v := strings.TrimSpace(env("CV_POLICY_VERSION")); v != "" {
		c.Policy.PolicyVersion = v
	}
	if v := strings.TrimSpace(env("CV_RETENTION_DAYS")); v != "" {
		days, err := strconv.Atoi(v)
		if err != nil || days < 1 || days > 3650 {
			errs = append(errs, fmt.Errorf("CV_RETENTION_DAYS=%q: want a whole number of days from 1 to 3650", v))
		} else {
			c.Policy.Retention = time.Duration(days) * 24 * time.Hour
		}
	}

	lim := &c.Policy.Limits
	for _, n := range []struct {
		name string
		dst  *int
	}{
		{"CV_RATE_IP_PER_HOUR", &lim.IPPerHour},
		{"CV_RATE_IP_PER_DAY", &lim.IPPerDay},
		{"CV_RATE_EMAIL_PER_DAY", &lim.EmailPerDay},
		{"CV_RATE_PHONE_PER_DAY", &lim.PhonePerDay},
		{"CV_SMS_DAILY_LIMIT", &lim.SMSPerDay},
		{"CV_EMAIL_DAILY_LIMIT", &lim.SiteEmailsPerDay},
		{"CV_RATE_VERIFY_PER_HOUR", &lim.VerifyPerHour},
	} {
		if v := strings.TrimSpace(env(n.name)); v != "" {
			k, err := strconv.Atoi(v)
			if err != nil || k < 0 || k > 1_000_000 {
				errs = append(errs, fmt.Errorf("%s=%q: want a whole number, 0 to turn the limit off", n.name, v))
				continue
			}
			*n.dst = k
		}
	}
	if v := strings.TrimSpace(env("CV_SMS_COUNTRIES")); v != "" {
		errs = append(errs, smsCountriesReplaced())
	}
	if v := strings.TrimSpace(env("CV_SMS_REGIONS")); v != "" {
		regions, err := smsRegions(v)
		if err != nil {
			errs = append(errs, err)
		}
		lim.SMSRegions = regions
	}

	proxySecrets, siteID, err := loadProxy(env)
	if err != nil {
		errs = append(errs, err)
	}
	c.ProxySecrets, c.NetlifySiteID = proxySecrets, siteID
	c.NetlifyDeployContext = orDefault(env("CV_NETLIFY_DEPLOY_CONTEXT"), "production")

	secrets, err := loadSecrets(env("CV_OTP_SECRET"), local, c.DataDir)
	if err != nil {
		errs = append(errs, err)
	}
	c.OTPSecrets = secrets

	if !local {
		c.AWS, err = loadAWS(env, c.MailFrom, true)
		if err != nil {
			errs = append(errs, err)
		}
		c.AWS.Documents = c.Documents
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

// LoadSetupConfig reads what cv-setup needs: the CV_BACKEND=aws settings
// of the tables, bucket, region and keys, and CV_MAIL_FROM if it is set
// (`cv-setup check` sends from it), and whether the owner page is on
// (CV_OWNER_EMAIL, so check tries its Scan too). It leaves out what only the functions
// use (CV_OTP_SECRET, CV_SITE_URL, CV_OWNER_NAME, the limits), so the owner
// need not hold the functions' secret to create tables. LoadConfig, which
// the functions start with, still demands them all.
func LoadSetupConfig(env Getenv) (awsbase.Config, error) {
	if b := strings.TrimSpace(env("CV_BACKEND")); b != BackendAWS {
		return awsbase.Config{}, fmt.Errorf("CV_BACKEND=%q: set CV_BACKEND=aws and the CV_AWS_* settings "+
			"(see .env.example); cv-setup prepares AWS, not the embedded backend", b)
	}
	c, err := loadAWS(env, strings.TrimSpace(env("CV_MAIL_FROM")), true)
	c.OwnerPage = strings.TrimSpace(env("CV_OWNER_EMAIL")) != ""
	docs, derr := loadDocuments(env)
	c.Documents = docs
	return c, errors.Join(err, derr)
}

// OwnerConfig is what cv-owner reads: which backend holds the requests,
// and where.
type OwnerConfig struct {
	Backend string
	DataDir string         // local backend: the embedded store's folder
	AWS     awsbase.Config // AWS backend: the tables, region and keys
}

// StorePath is the embedded store's file.
func (c OwnerConfig) StorePath() string { return storePath(c.DataDir) }

// LoadOwnerConfig reads what cv-owner needs. On CV_BACKEND=aws that is the
// region, the tables and the owner's keys: exactly what Terraform's
// owner_env output gives (CV_BACKEND, CV_AWS_REGION, CV_S3_BUCKET,
// CV_TABLE_*, CV_AWS_ACCESS_KEY_ID, CV_AWS_SECRET_ACCESS_KEY),
// the bucket being read if set but not required, as cv-owner never touches
// it. On the local backend it is CV_DATA_DIR, as for the functions. It
// leaves out what only the functions use (CV_OTP_SECRET, CV_SITE_URL,
// CV_OWNER_NAME, CV_MAIL_FROM, the limits), and on the local backend
// makes no dev secret.
func LoadOwnerConfig(env Getenv) (OwnerConfig, error) {
	backend, err := loadBackend(env)
	if err != nil {
		return OwnerConfig{}, err
	}
	c := OwnerConfig{Backend: backend, DataDir: loadDataDir(env)}
	if backend == BackendAWS {
		if c.AWS, err = loadAWS(env, "", false); err != nil {
			return OwnerConfig{}, err
		}
	}
	return c, nil
}

// loadBackend reads CV_BACKEND: local when unset, except under a Lambda
// runtime.
func loadBackend(env Getenv) (string, error) {
	b := strings.TrimSpace(env("CV_BACKEND"))
	if b == "" {
		if onLambda(env) {
			// Production must never fall back to the embedded mode by accident.
			return "", errors.New("CV_BACKEND is not set: on Netlify or Lambda set CV_BACKEND=aws " +
				"(or CV_BACKEND=local for `netlify dev` without AWS)")
		}
		return BackendLocal, nil
	}
	if b != BackendLocal && b != BackendAWS {
		return "", fmt.Errorf("CV_BACKEND=%q: use %q or %q", b, BackendLocal, BackendAWS)
	}
	return b, nil
}

// loadDataDir is the local backend's data folder.
func loadDataDir(env Getenv) string { return orDefault(env("CV_DATA_DIR"), ".local") }

// isoRegion is the shape of an ISO 3166 alpha-2 code.
var isoRegion = regexp.MustCompile(`^[A-Z]{2}$`)

// smsRegions parses CV_SMS_REGIONS: ISO 3166 alpha-2 codes, comma
// separated. A typo must stop the start rather than quietly refuse every
// text; whether numbers belong to each code is checked by New, where the
// phone rules are wired.
func smsRegions(v string) ([]string, error) {
	var out []string
	var errs []error
	for _, r := range strings.Split(v, ",") {
		r = strings.ToUpper(strings.TrimSpace(r))
		switch {
		case r == "":
		case r == "UK":
			errs = append(errs, errors.New(`CV_SMS_REGIONS: "UK" is not an ISO 3166 code; the United Kingdom is GB`))
		case !isoRegion.MatchString(r):
			errs = append(errs, fmt.Errorf("CV_SMS_REGIONS: %q is not an ISO 3166 alpha-2 code; use codes like GB,IE", r))
		case !slices.Contains(out, r):
			out = append(out, r)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// smsCountriesReplaced explains the retired CV_SMS_COUNTRIES. Its calling
// codes let far more through than they seemed to, so it is refused rather
// than translated: the owner names the regions they mean.
func smsCountriesReplaced() error {
	return errors.New("CV_SMS_COUNTRIES is replaced by CV_SMS_REGIONS, ISO 3166 regions rather than calling codes " +
		"(+1 is the US, Canada and some twenty Caribbean countries; +44 is GB, GG, IM and JE): " +
		"list the regions you mean, e.g. CV_SMS_REGIONS=GB,IE, and unset CV_SMS_COUNTRIES")
}

// loadAWS reads the AWS backend's settings. Credentials come from CV_AWS_*
// because Netlify reserves the AWS_* names; emulator endpoints come from
// the SDK's own AWS_ENDPOINT_URL_<SERVICE> variables. needBucket says the
// caller uses the CV bucket, so CV_S3_BUCKET must be set.
func loadAWS(env Getenv, mailFrom string, needBucket bool) (awsbase.Config, error) {
	c := awsbase.Config{
		Region:          strings.TrimSpace(env("CV_AWS_REGION")),
		AccessKeyID:     strings.TrimSpace(env("CV_AWS_ACCESS_KEY_ID")),
		SecretAccessKey: strings.TrimSpace(env("CV_AWS_SECRET_ACCESS_KEY")),
		Tables: awsbase.Tables{
			Requests: orDefault(env("CV_TABLE_REQUESTS"), "cv-requests"),
			OTPs:     orDefault(env("CV_TABLE_OTPS"), "otps"),
			Limits:   orDefault(env("CV_TABLE_LIMITS"), "cv-rate-limits"),
		},
		Bucket:              strings.TrimSpace(env("CV_S3_BUCKET")),
		MailFrom:            mailFrom,
		SESConfigurationSet: strings.TrimSpace(env("CV_SES_CONFIGURATION_SET")),
		SMSSenderID:         strings.TrimSpace(env("CV_SMS_SENDER_ID")),
		Emulated:            env("AWS_ENDPOINT_URL_S3") != "" || env("AWS_ENDPOINT_URL_DYNAMODB") != "",
	}
	var errs []error
	if c.Bucket == "" && needBucket {
		errs = append(errs, errors.New("CV_S3_BUCKET is not set: the private bucket holding the CV"))
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, errors.New("set both CV_AWS_ACCESS_KEY_ID and CV_AWS_SECRET_ACCESS_KEY, or neither"))
	}
	return c, errors.Join(errs...)
}

// maxDocumentsEnv bounds CV_DOCUMENTS: AWS Lambda allows 4 KB of
// environment in all, and the other settings take up to about 1.5 KB.
const maxDocumentsEnv = 2500

// loadDocuments reads the gated documents: CV_DOCUMENTS holds the list's
// JSON (Terraform writes it from the site's data/cv_access.json),
// CV_DOCUMENTS_FILE names a file holding it (the dev server's way). With
// neither, the site gates its CV alone, at CV_S3_KEY (default cv.pdf), as
// before there were several.
func loadDocuments(env Getenv) (access.Documents, error) {
	raw, file, key := strings.TrimSpace(env("CV_DOCUMENTS")), strings.TrimSpace(env("CV_DOCUMENTS_FILE")), strings.TrimSpace(env("CV_S3_KEY"))
	name := "CV_DOCUMENTS"
	switch {
	case raw != "" && file != "":
		return access.Documents{}, errors.New("CV_DOCUMENTS and CV_DOCUMENTS_FILE are both set: set one")
	case (raw != "" || file != "") && key != "":
		return access.Documents{}, errors.New("CV_S3_KEY is set beside the document list, which names each document's key: unset CV_S3_KEY")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return access.Documents{}, fmt.Errorf("CV_DOCUMENTS_FILE: %w", err)
		}
		raw, name = string(b), "CV_DOCUMENTS_FILE "+file
	case raw == "":
		docs, err := access.CVOnly(orDefault(key, "cv.pdf"))
		if err != nil {
			return access.Documents{}, fmt.Errorf("CV_S3_KEY=%q: %w", key, err)
		}
		return docs, nil
	}
	if name == "CV_DOCUMENTS" && len(raw) > maxDocumentsEnv {
		return access.Documents{}, fmt.Errorf("CV_DOCUMENTS is %d bytes: at most %d fit beside the other settings in AWS Lambda's 4 KB of environment; "+
			"shorten titles and keys, or list fewer documents", len(raw), maxDocumentsEnv)
	}
	docs, err := access.ParseDocuments([]byte(raw))
	if err != nil {
		return access.Documents{}, fmt.Errorf("%s: %w", name, err)
	}
	return docs, nil
}

// loadNotify reads where the owner's download notifications go and
// whether to send them. Locally the owner is owner@example.com, so `make
// dev` shows the email in the outbox (nothing leaves the machine).
func loadNotify(env Getenv, local bool) (string, bool, error) {
	to := strings.TrimSpace(env("CV_OWNER_EMAIL"))
	if to == "" && local {
		to = "owner@example.com"
	}
	if to != "" {
		norm, err := access.NormalizeEmail(to)
		if err != nil || strings.ContainsAny(to, "<>,;\"\r\n") {
			return "", false, fmt.Errorf("CV_OWNER_EMAIL=%q: want one email address, e.g. ada@example.com", to)
		}
		to = norm
	}
	switch mode := strings.TrimSpace(env("CV_NOTIFY")); mode {
	case "", "each":
		if mode == "each" && to == "" {
			return "", false, errors.New("CV_NOTIFY=each needs CV_OWNER_EMAIL: where to send the owner's email about each download")
		}
		return to, to != "", nil
	case "off":
		return to, false, nil
	default:
		return "", false, fmt.Errorf("CV_NOTIFY=%q: want each (an email to CV_OWNER_EMAIL per download) or off", mode)
	}
}

// loadProxy reads the signed-proxy settings of the AWS target: both or
// neither. The secret is what Netlify signs x-nf-sign with (the
// `Sign=CV_PROXY_SIGN_SECRET` rules that site/layouts/home.redirects
// writes name the same variable on the site).
func loadProxy(env Getenv) ([][]byte, string, error) {
	raw, site := strings.TrimSpace(env("CV_PROXY_SIGN_SECRET")), strings.TrimSpace(env("CV_NETLIFY_SITE_ID"))
	switch {
	case raw == "" && site == "":
		return nil, "", nil
	case raw == "":
		return nil, "", errors.New("CV_NETLIFY_SITE_ID is set but CV_PROXY_SIGN_SECRET is not: set both (the AWS target) or neither (the Netlify target)")
	case site == "":
		return nil, "", errors.New("CV_PROXY_SIGN_SECRET is set but CV_NETLIFY_SITE_ID is not: the proxy signature must name this site (Netlify: Site configuration, Site ID)")
	}
	var out [][]byte
	for i, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if len(part) < proxysign.MinSecretLen {
			return nil, "", fmt.Errorf("CV_PROXY_SIGN_SECRET: secret %d is %d characters; use at least %d (`openssl rand -hex 32`)",
				i+1, len(part), proxysign.MinSecretLen)
		}
		out = append(out, []byte(part))
	}
	return out, site, nil
}

// loadSecrets parses CV_OTP_SECRET: one or more secrets separated by
// commas, newest first, each at least access.MinSecretLen bytes. In local
// mode an unset secret is generated once and kept in the data folder, so
// codes survive a restart of `make dev`.
func loadSecrets(raw string, local bool, dataDir string) ([][]byte, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		if !local {
			return nil, errors.New("CV_OTP_SECRET is not set: generate one with `openssl rand -hex 32`")
		}
		s, err := devSecret(filepath.Join(dataDir, "otp-secret"))
		if err != nil {
			return nil, fmt.Errorf("CV_OTP_SECRET is not set and the dev secret could not be made: %w", err)
		}
		return [][]byte{s}, nil
	}
	var out [][]byte
	for i, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if len(part) < access.MinSecretLen {
			return nil, fmt.Errorf("CV_OTP_SECRET: secret %d is %d characters; use at least %d (`openssl rand -hex 32`)",
				i+1, len(part), access.MinSecretLen)
		}
		out = append(out, []byte(part))
	}
	return out, nil
}

func devSecret(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); len(s) >= access.MinSecretLen {
			return []byte(s), nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return nil, err
	}
	s := hex.EncodeToString(buf)
	// O_EXCL: if two processes race to create it, one wins and the other
	// reads the winner's secret.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		time.Sleep(50 * time.Millisecond)
		b, rerr := os.ReadFile(path)
		if rerr == nil && len(strings.TrimSpace(string(b))) >= access.MinSecretLen {
			return []byte(strings.TrimSpace(string(b))), nil
		}
		return nil, fmt.Errorf("%s exists but holds no usable secret; delete it", path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	return []byte(s), f.Close()
}

// onLambda reports whether we run under a Lambda runtime (Netlify
// Functions, or netlify dev's emulation of one).
func onLambda(env Getenv) bool {
	return env("AWS_LAMBDA_FUNCTION_NAME") != "" || env("AWS_LAMBDA_RUNTIME_API") != "" || env("NETLIFY") == "true"
}

func orDefault(v, def string) string {
	if v = strings.TrimSpace(v); v != "" {
		return v
	}
	return def
}
