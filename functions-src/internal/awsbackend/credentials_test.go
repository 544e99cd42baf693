package awsbackend_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/api"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/flowtest"
)

// issuer is a credentials provider that hands out the sets it is given in
// turn (the last one from then on) and counts the retrievals.
type issuer struct {
	mu    sync.Mutex
	sets  []aws.Credentials
	calls int
}

func (p *issuer) Retrieve(context.Context) (aws.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.sets[min(p.calls, len(p.sets)-1)]
	p.calls++
	return c, nil
}

func (p *issuer) retrievals() int { p.mu.Lock(); defer p.mu.Unlock(); return p.calls }

// temporary is a set of temporary credentials valid until expires.
// secret signs, so the set must be one the S3 endpoint knows when the link
// is to be downloaded; token tells sets with one key id apart.
func temporary(keyID, secret, token string, expires time.Time) aws.Credentials {
	return aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret, SessionToken: token,
		Source: "test issuer", CanExpire: true, Expires: expires}
}

// presignerWith is the production presigner over an S3 client whose
// credentials come from p. cached wraps p as production's configuration
// does (config.LoadDefaultConfig puts every provider in an
// aws.CredentialsCache); otherwise the client asks p on every signing.
func presignerWith(t *testing.T, p aws.CredentialsProvider, cached bool, endpoint, bucket string, now func() time.Time) *awsbackend.Presigner {
	t.Helper()
	var creds aws.CredentialsProvider = p
	if cached {
		cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(emulators.Region),
			config.WithCredentialsProvider(p))
		require.NoError(t, err)
		_, isCache := cfg.Credentials.(*aws.CredentialsCache)
		require.True(t, isCache, "the SDK's configuration caches the provider, as in production")
		creds = cfg.Credentials
	}
	client := s3.New(s3.Options{Region: emulators.Region, Credentials: creds, BaseEndpoint: aws.String(endpoint), UsePathStyle: true})
	return awsbackend.NewPresigner(client, bucket, now)
}

// linkCredentials returns the key id and session token a link was signed
// with, and its expiry in seconds.
func linkCredentials(t *testing.T, link string) (keyID, token, expires string) {
	t.Helper()
	u, err := url.Parse(link)
	require.NoError(t, err)
	q := u.Query()
	keyID, _, _ = strings.Cut(q.Get("X-Amz-Credential"), "/")
	return keyID, q.Get("X-Amz-Security-Token"), q.Get("X-Amz-Expires")
}

// A link must not outlive the credentials that sign it. Credentials that
// would die within the link's lifetime plus the margin are refreshed once
// and the link is signed with the fresh set; if the fresh set is no
// better, no link is given out.
func TestLinksAreSignedOnlyWithCredentialsThatOutliveThem(t *testing.T) {
	const ttl = 120 * time.Second
	now := time.Now()
	clock := func() time.Time { return now }
	short := temporary("ASIASHORTLIVED", "short-secret", "short-token", now.Add(60*time.Second))
	long := temporary("ASIAFRESH", "fresh-secret", "fresh-token", now.Add(time.Hour))
	static := aws.Credentials{AccessKeyID: "AKIASTATIC", SecretAccessKey: "static-secret", Source: "StaticCredentials"}
	// Just enough, and a second short of it.
	edge := temporary("ASIAEDGE", "edge-secret", "edge-token", now.Add(ttl+awsbackend.LinkCredentialsMargin))
	under := temporary("ASIAUNDER", "under-secret", "under-token", now.Add(ttl+awsbackend.LinkCredentialsMargin-time.Second))

	// Production's providers are always cached (see presignerWith). An S3
	// client given a bare provider asks it more than once per signing, so
	// there only the outcome is checked, not the count.
	for _, cached := range []bool{true, false} {
		for _, tc := range []struct {
			name  string
			sets  []aws.Credentials
			keyID string // the key id the link is signed with; "" when refused
			calls int    // retrievals for the first link, when cached
		}{
			{"near expiry, then fresh: signed with the fresh set", []aws.Credentials{short, long}, "ASIAFRESH", 2},
			{"near expiry every time: refused", []aws.Credentials{short}, "", 2},
			{"static keys: signed as they are", []aws.Credentials{static}, "AKIASTATIC", 1},
			{"expiring exactly at the link's end plus the margin: signed", []aws.Credentials{edge}, "ASIAEDGE", 1},
			{"a second short of it: refreshed", []aws.Credentials{under, long}, "ASIAFRESH", 2},
		} {
			t.Run(fmt.Sprintf("%s (cached=%v)", tc.name, cached), func(t *testing.T) {
				p := &issuer{sets: tc.sets}
				links := presignerWith(t, p, cached, "http://127.0.0.1:1", "cv-bucket", clock)
				link, err := links.Presign(context.Background(), cvAt("cv/ada.pdf", ttl))
				if cached {
					assert.Equal(t, tc.calls, p.retrievals(), "retrievals for the first link")
				}
				if tc.keyID == "" {
					require.ErrorIs(t, err, access.ErrLinkCredentialsExpiring)
					assert.Empty(t, link, "no link that would die early")
					t.Log(err)
					for _, s := range []string{"test issuer", short.Expires.UTC().Format(time.RFC3339), "margin", "after a refresh"} {
						assert.Contains(t, err.Error(), s)
					}
					flowtest.AssertAbsent(t, err.Error(), short.AccessKeyID, short.SecretAccessKey, short.SessionToken)
					return
				}
				require.NoError(t, err)
				keyID, _, expires := linkCredentials(t, link)
				assert.Equal(t, tc.keyID, keyID, "X-Amz-Credential names the signing key")
				assert.Equal(t, "120", expires)

				// The next link is signed from the same credentials: a
				// cache is not asked again while they last.
				link, err = links.Presign(context.Background(), cvAt("cv/ada.pdf", ttl))
				require.NoError(t, err)
				keyID, _, _ = linkCredentials(t, link)
				assert.Equal(t, tc.keyID, keyID)
				if cached {
					assert.Equal(t, tc.calls, p.retrievals(), "warm: no retrieval while the cached credentials outlive the link")
				}
			})
		}
	}
}

// A link signed with credentials that were near expiry and then refreshed
// downloads from the SigV4-checking S3 emulator. gofakes3 knows one key
// pair, so the two sets share it and differ by session token, which is
// signed into the link.
func TestLinkSignedWithRefreshedCredentialsDownloads(t *testing.T) {
	f := backend(t)
	now := time.Now()
	p := &issuer{sets: []aws.Credentials{
		temporary(emulators.AccessKeyID, emulators.SecretAccessKey, "first-token", now.Add(60*time.Second)),
		temporary(emulators.AccessKeyID, emulators.SecretAccessKey, "second-token", now.Add(time.Hour)),
	}}
	links := presignerWith(t, p, true, stack.S3, f.cfg.Bucket, func() time.Time { return now })
	link, err := links.Presign(context.Background(), cvAt(testCVKey, 120*time.Second))
	require.NoError(t, err)
	assert.Equal(t, 2, p.retrievals())
	_, token, _ := linkCredentials(t, link)
	assert.Equal(t, "second-token", token, "signed with the refreshed set")

	resp, body := download(t, link)
	require.Equal(t, 200, resp.StatusCode, string(body))
	assert.Equal(t, embedded.SampleCV, body)
}

// Through the service and the edge, credentials that cannot outlive a
// link are a 503 download_unavailable, as a failed CV check is: the code
// is not spent, and the log says why without a key, code or address.
func TestVerifyWithShortLivedSigningCredentialsOnAWS(t *testing.T) {
	f := backend(t)
	ctx := context.Background()
	now := time.Now()
	p := &issuer{sets: []aws.Credentials{
		temporary(emulators.AccessKeyID, emulators.SecretAccessKey, "always-short", now.Add(60*time.Second)),
	}}
	links := presignerWith(t, p, true, stack.S3, f.cfg.Bucket, time.Now)
	svc := serviceWith(t, f, links)
	logs := &flowtest.Buffer{}
	h := api.VerifyAccess(svc, api.Config{Log: slog.New(slog.NewJSONHandler(logs, nil)), Origins: []string{"https://cv.example.com"}}).V1

	email := fmt.Sprintf("short-creds-%d@example.com", time.Now().UnixNano())
	out, err := svc.RequestAccess(ctx, access.AccessInput{Name: "Ada Lovelace", Email: email, Consent: true, ClientIP: "198.51.100.50"})
	require.NoError(t, err)
	mails, err := stack.EmailsTo(ctx, email)
	require.NoError(t, err)
	require.Len(t, mails, 1)
	code := sixDigits.FindString(mails[0].Body.Text)

	resp, err := h(ctx, post(fmt.Sprintf(`{"requestId":%q,"otp":%q}`, out.RequestID, code)))
	require.NoError(t, err)
	assert.Equal(t, 503, resp.StatusCode, resp.Body)
	assert.Contains(t, resp.Body, `"error":"download_unavailable"`)
	assert.NotContains(t, resp.Body, "X-Amz")

	req, err := f.backend.Store.GetRequest(ctx, out.RequestID, time.Now())
	require.NoError(t, err)
	assert.NotEqual(t, access.StatusVerified, req.Status, "the code is not spent")
	assert.Contains(t, logs.String(), "signing credentials")
	flowtest.AssertAbsent(t, logs.String(), email, code, "always-short", emulators.SecretAccessKey, "X-Amz-Signature")

	_, err = svc.VerifyAccess(ctx, access.VerifyInput{RequestID: out.RequestID, OTP: code, ClientIP: "198.51.100.50"})
	var ae *access.Error
	require.True(t, errors.As(err, &ae), "%v", err)
	assert.Equal(t, access.KindNotReady, ae.Kind)
	assert.ErrorIs(t, err, access.ErrLinkCredentialsExpiring)
}

// On AWS Lambda the execution role's credentials arrive as AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, which the SDK's environment
// provider reads with no expiry: with CV_AWS_* unset, links are signed with
// them as they are, session token included.
func TestLambdaEnvironmentCredentialsSignAsBefore(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "ASIALAMBDAROLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "lambda-role-secret")
	t.Setenv("AWS_SESSION_TOKEN", "lambda-role-token")
	// The functions' own backend, as on Lambda: no CV_AWS_* key.
	b, err := awsbackend.New(context.Background(), awsbackend.Config{Region: emulators.Region, Bucket: "cv-bucket",
		Emulated: true, Endpoints: awsbackend.Endpoints{S3: "http://127.0.0.1:1"}}, time.Now)
	require.NoError(t, err)
	creds, err := b.S3.Options().Credentials.Retrieve(context.Background())
	require.NoError(t, err)
	require.False(t, creds.CanExpire, "no expiry is known for environment credentials")
	link, err := b.Links.Presign(context.Background(), cvAt("cv/ada.pdf", 120*time.Second))
	require.NoError(t, err)
	keyID, token, expires := linkCredentials(t, link)
	assert.Equal(t, "ASIALAMBDAROLE", keyID)
	assert.Equal(t, "lambda-role-token", token)
	assert.Equal(t, "120", expires)
}
