package app_test

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/app"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend/awsbase"
	"github.com/cv-access/cv-access/functions-src/internal/phone"
)

func envOf(m map[string]string) app.Getenv { return func(k string) string { return m[k] } }

var strongSecret = strings.Repeat("s", 32)

func TestLocalDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := app.LoadConfig(envOf(map[string]string{"CV_DATA_DIR": dir}))
	require.NoError(t, err)
	assert.Equal(t, app.BackendLocal, c.Backend)
	assert.Equal(t, "http://127.0.0.1:8888", c.SiteURL)
	assert.Equal(t, filepath.Join(dir, "outbox"), c.OutboxDir)
	assert.Equal(t, filepath.Join(dir, "private"), c.DocumentsDir)
	assert.Equal(t, access.SingleDocument("cv.pdf"), c.Documents, "no list: the CV alone")
	assert.Equal(t, filepath.Join(dir, "cv-access.db"), c.StorePath())
	assert.Equal(t, 180*24*time.Hour, c.Policy.Retention)

	// The generated dev secret is kept, private, and reused.
	require.Len(t, c.OTPSecrets, 1)
	st, err := os.Stat(filepath.Join(dir, "otp-secret"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	again, err := app.LoadConfig(envOf(map[string]string{"CV_DATA_DIR": dir}))
	require.NoError(t, err)
	assert.Equal(t, c.OTPSecrets, again.OTPSecrets)

	c, err = app.LoadConfig(envOf(map[string]string{"CV_DATA_DIR": dir, "PORT": "9000"}))
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:9000", c.SiteURL)
}

func TestOverrides(t *testing.T) {
	c, err := app.LoadConfig(envOf(map[string]string{
		"CV_DATA_DIR": t.TempDir(), "CV_OUTBOX_DIR": "/tmp/out", "CV_LOCAL_DOCUMENTS_DIR": "/tmp/docs",
		"CV_SITE_URL": "HTTPS://CV.Example.com/", "CV_OWNER_NAME": "Ada", "CV_RETENTION_DAYS": "30",
		"CV_POLICY_VERSION": "2027-01-01", "CV_OTP_SECRET": strongSecret + "," + strings.Repeat("o", 40),
	}))
	require.NoError(t, err)
	assert.Equal(t, "/tmp/out", c.OutboxDir)
	assert.Equal(t, "/tmp/docs", c.DocumentsDir)
	assert.Equal(t, "https://cv.example.com", c.SiteURL, "an origin as browsers send it: lower case, no slash")
	assert.Equal(t, "Ada", c.OwnerName)
	assert.Equal(t, 30*24*time.Hour, c.Policy.Retention)
	assert.Equal(t, "2027-01-01", c.Policy.PolicyVersion)
	assert.Equal(t, [][]byte{[]byte(strongSecret), []byte(strings.Repeat("o", 40))}, c.OTPSecrets)
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"on Lambda without a backend", map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "verify-access"}, []string{"CV_BACKEND is not set"}},
		{"on the Lambda runtime API without a backend", map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}, []string{"CV_BACKEND is not set"}},
		{"unknown backend", map[string]string{"CV_BACKEND": "s3"}, []string{`CV_BACKEND="s3"`}},
		{"short secret", map[string]string{"CV_OTP_SECRET": "short"}, []string{"CV_OTP_SECRET", "at least 32"}},
		{"bad retention", map[string]string{"CV_RETENTION_DAYS": "forever"}, []string{"CV_RETENTION_DAYS"}},
		{"site URL with a path", map[string]string{"CV_SITE_URL": "https://x.example/cv"}, []string{"CV_SITE_URL"}},
		{"aws lists every missing setting", map[string]string{"CV_BACKEND": "aws"},
			[]string{"CV_SITE_URL is not set", "CV_OWNER_NAME is not set", "CV_MAIL_FROM is not set", "CV_OTP_SECRET is not set", "CV_S3_BUCKET is not set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env["CV_DATA_DIR"] == "" {
				tt.env["CV_DATA_DIR"] = t.TempDir()
			}
			_, err := app.LoadConfig(envOf(tt.env))
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestAWSConfig(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"CV_BACKEND": "aws", "CV_DATA_DIR": dir, "CV_SITE_URL": "https://cv.example.com",
		"CV_OWNER_NAME": "Ada", "CV_MAIL_FROM": "cv@example.com", "CV_OTP_SECRET": strongSecret,
		"CV_AWS_REGION": "eu-west-2", "CV_AWS_ACCESS_KEY_ID": "AKID", "CV_AWS_SECRET_ACCESS_KEY": "secret",
		"CV_S3_BUCKET": "my-cv", "AWS_LAMBDA_FUNCTION_NAME": "verify-access",
	}
	c, err := app.LoadConfig(envOf(env))
	require.NoError(t, err)
	assert.Equal(t, app.BackendAWS, c.Backend)
	assert.Equal(t, "eu-west-2", c.AWS.Region)
	assert.Equal(t, "cv-requests", c.AWS.Tables.Requests)
	assert.Equal(t, "otps", c.AWS.Tables.OTPs)
	assert.Equal(t, access.SingleDocument("cv.pdf"), c.AWS.Documents)
	assert.False(t, c.AWS.Emulated)
	_, statErr := os.Stat(filepath.Join(dir, "otp-secret"))
	assert.True(t, os.IsNotExist(statErr), "no dev secret is made outside local mode")

	a, err := app.New(c, app.Options{})
	require.NoError(t, err, "wiring makes no network call, so it works offline")
	assert.Nil(t, a.Links)
	_, statErr = os.Stat(c.StorePath())
	assert.True(t, os.IsNotExist(statErr), "the AWS backend never touches the embedded store")

	delete(env, "CV_S3_BUCKET")
	env["CV_AWS_SECRET_ACCESS_KEY"] = ""
	_, err = app.LoadConfig(envOf(env))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CV_S3_BUCKET is not set")
	assert.Contains(t, err.Error(), "CV_AWS_SECRET_ACCESS_KEY")
}

func TestNewWiresTheLocalBackend(t *testing.T) {
	dir := t.TempDir()
	c, err := app.LoadConfig(envOf(map[string]string{"CV_DATA_DIR": dir}))
	require.NoError(t, err)
	a, err := app.New(c, app.Options{})
	require.NoError(t, err)
	require.NotNil(t, a.Service)
	require.NotNil(t, a.Links)
	_, err = os.Stat(filepath.Join(dir, "private", "cv.pdf"))
	assert.NoError(t, err, "the sample CV is put in place")
	_, err = os.Stat(c.StorePath())
	assert.NoError(t, err)

	// Every listed document gets a placeholder, at its key.
	list := filepath.Join(dir, "documents.json")
	require.NoError(t, os.WriteFile(list, []byte(`{"documents":[{"slug":"cv","title":"CV"},{"slug":"talk","title":"talk slides","key":"talks/2026.pdf"}]}`), 0o600))
	c, err = app.LoadConfig(envOf(map[string]string{"CV_DATA_DIR": dir, "CV_DOCUMENTS_FILE": list}))
	require.NoError(t, err)
	_, err = app.New(c, app.Options{})
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "private", "talks", "2026.pdf"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "Sample document: talk slides")
}

func TestDocumentList(t *testing.T) {
	list := `{"documents":[{"slug":"cv","title":"CV","key":"me/cv.pdf"},{"slug":"portfolio","title":"portfolio"}]}`
	file := filepath.Join(t.TempDir(), "cv_access.json")
	require.NoError(t, os.WriteFile(file, []byte(list), 0o600))
	badFile := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(badFile, []byte(`{"documents":[{"slug":"CV","title":"CV"}]}`), 0o600))
	want, err := access.ParseDocuments([]byte(list))
	require.NoError(t, err)
	for _, env := range []map[string]string{{"CV_DOCUMENTS": list}, {"CV_DOCUMENTS_FILE": file}} {
		env["CV_DATA_DIR"] = t.TempDir()
		c, err := app.LoadConfig(envOf(env))
		require.NoError(t, err)
		assert.Equal(t, want, c.Documents)
	}
	c, err := app.LoadConfig(envOf(map[string]string{"CV_DATA_DIR": t.TempDir(), "CV_S3_KEY": "cv/ada.pdf"}))
	require.NoError(t, err)
	assert.Equal(t, access.SingleDocument("cv/ada.pdf"), c.Documents, "no list: the CV alone, at CV_S3_KEY as before")

	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"both lists", map[string]string{"CV_DOCUMENTS": list, "CV_DOCUMENTS_FILE": file}, "CV_DOCUMENTS and CV_DOCUMENTS_FILE are both set"},
		{"a key beside the list", map[string]string{"CV_DOCUMENTS": list, "CV_S3_KEY": "cv.pdf"}, "CV_S3_KEY is set beside the document list"},
		{"a bad list", map[string]string{"CV_DOCUMENTS": `{"documents":[{"slug":"CV","title":"CV"}]}`}, `CV_DOCUMENTS: document 1: "slug" "CV"`},
		{"no such file", map[string]string{"CV_DOCUMENTS_FILE": "/no/such/file.json"}, "CV_DOCUMENTS_FILE: open /no/such/file.json"},
		{"a bad file", map[string]string{"CV_DOCUMENTS_FILE": badFile}, "CV_DOCUMENTS_FILE " + badFile + `: document 1: "slug" "CV"`},
		{"a key beside the file", map[string]string{"CV_DOCUMENTS_FILE": file, "CV_S3_KEY": "cv.pdf"}, "CV_S3_KEY is set beside the document list"},
		{"a list too big for Lambda's environment", map[string]string{"CV_DOCUMENTS": `{"documents":[` + strings.Repeat(" ", 2500) + `]}`}, "CV_DOCUMENTS is 2516 bytes"},
		{"a wildcard key", map[string]string{"CV_S3_KEY": "cv*.pdf"}, `CV_S3_KEY="cv*.pdf"`},
		{"the old local file", map[string]string{"CV_LOCAL_CV_FILE": "/tmp/me.pdf"}, "CV_LOCAL_CV_FILE is replaced by CV_LOCAL_DOCUMENTS_DIR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["CV_DATA_DIR"] = t.TempDir()
			_, err := app.LoadConfig(envOf(tc.env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestSMSRegions(t *testing.T) {
	load := func(t *testing.T, env map[string]string) (app.Config, error) {
		env["CV_DATA_DIR"] = t.TempDir()
		return app.LoadConfig(envOf(env))
	}
	c, err := load(t, map[string]string{})
	require.NoError(t, err)
	assert.Empty(t, c.Policy.Limits.SMSRegions, "unset: every region")

	c, err = load(t, map[string]string{"CV_SMS_REGIONS": " gb, IE,,GB "})
	require.NoError(t, err)
	assert.Equal(t, []string{"GB", "IE"}, c.Policy.Limits.SMSRegions)

	_, err = load(t, map[string]string{"CV_SMS_REGIONS": "GB,UK,G1,GBR"})
	require.Error(t, err)
	assert.Equal(t, `CV_SMS_REGIONS: "UK" is not an ISO 3166 code; the United Kingdom is GB`+"\n"+
		`CV_SMS_REGIONS: "G1" is not an ISO 3166 alpha-2 code; use codes like GB,IE`+"\n"+
		`CV_SMS_REGIONS: "GBR" is not an ISO 3166 alpha-2 code; use codes like GB,IE`, err.Error())

	// Whether numbers belong to a code is the phone rules' to say, where
	// they are wired: request-access and cv-dev.
	c, err = load(t, map[string]string{"CV_SMS_REGIONS": "GB,XX,EU"})
	require.NoError(t, err)
	_, err = app.New(c, app.Options{Phones: phone.Numbers{}})
	require.Error(t, err)
	assert.Equal(t, `CV_SMS_REGIONS: "XX" is not a region phone numbers belong to; use ISO 3166 alpha-2 codes like GB,IE`+"\n"+
		`CV_SMS_REGIONS: "EU" is not a region phone numbers belong to; use ISO 3166 alpha-2 codes like GB,IE`, err.Error())
	_, err = app.New(c, app.Options{})
	assert.NoError(t, err, "verify-access reads no phone and needs no regions")
}

func TestSMSCountriesIsRefusedWithItsReplacement(t *testing.T) {
	for _, v := range []string{"+44", "+44, +1", "abc"} {
		// Set beside its replacement too: the old name must never be ignored.
		_, err := app.LoadConfig(envOf(map[string]string{
			"CV_DATA_DIR": t.TempDir(), "CV_SMS_COUNTRIES": v, "CV_SMS_REGIONS": "GB",
		}))
		require.Error(t, err)
		assert.Equal(t, "CV_SMS_COUNTRIES is replaced by CV_SMS_REGIONS, ISO 3166 regions rather than calling codes "+
			"(+1 is the US, Canada and some twenty Caribbean countries; +44 is GB, GG, IM and JE): "+
			"list the regions you mean, e.g. CV_SMS_REGIONS=GB,IE, and unset CV_SMS_COUNTRIES", err.Error())
	}
}

func TestSetupConfigNeedsOnlyWhatSetupUses(t *testing.T) {
	env := map[string]string{
		"CV_BACKEND": "aws", "CV_AWS_REGION": "eu-west-2", "CV_S3_BUCKET": "my-cv", "CV_TABLE_LIMITS": "limits",
	}
	c, err := app.LoadSetupConfig(envOf(env))
	require.NoError(t, err, "no CV_OTP_SECRET, CV_SITE_URL, CV_OWNER_NAME or CV_MAIL_FROM needed")
	assert.Equal(t, "eu-west-2", c.Region)
	assert.Equal(t, "my-cv", c.Bucket)
	assert.Equal(t, access.SingleDocument("cv.pdf"), c.Documents)
	assert.Equal(t, "limits", c.Tables.Limits)
	assert.Empty(t, c.MailFrom)

	env["CV_MAIL_FROM"] = "CV <cv@example.com>"
	c, err = app.LoadSetupConfig(envOf(env))
	require.NoError(t, err)
	assert.Equal(t, "CV <cv@example.com>", c.MailFrom, "read when set: cv-setup check sends from it")

	delete(env, "CV_S3_BUCKET")
	env["CV_AWS_ACCESS_KEY_ID"] = "AKID"
	_, err = app.LoadSetupConfig(envOf(env))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CV_S3_BUCKET is not set")
	assert.Contains(t, err.Error(), "CV_AWS_SECRET_ACCESS_KEY")

	_, err = app.LoadSetupConfig(envOf(map[string]string{"CV_S3_BUCKET": "my-cv"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "set CV_BACKEND=aws")

	// The functions' own start stays strict.
	_, err = app.LoadConfig(envOf(map[string]string{"CV_BACKEND": "aws", "CV_AWS_REGION": "eu-west-2", "CV_S3_BUCKET": "my-cv"}))
	require.Error(t, err)
	for _, v := range []string{"CV_OTP_SECRET", "CV_SITE_URL", "CV_OWNER_NAME", "CV_MAIL_FROM"} {
		assert.Contains(t, err.Error(), v+" is not set")
	}
}

func TestOwnerConfigNeedsOnlyWhatOwnerEnvGives(t *testing.T) {
	// Terraform's owner_env output, line for line.
	env := map[string]string{
		"CV_BACKEND": "aws", "CV_AWS_REGION": "eu-west-2", "CV_S3_BUCKET": "my-cv", "CV_S3_KEY": "cv.pdf",
		"CV_TABLE_REQUESTS": "requests", "CV_TABLE_OTPS": "codes", "CV_TABLE_LIMITS": "limits",
		"CV_AWS_ACCESS_KEY_ID": "AKIDOWNER", "CV_AWS_SECRET_ACCESS_KEY": "owner-secret",
	}
	c, err := app.LoadOwnerConfig(envOf(env))
	require.NoError(t, err, "no CV_OTP_SECRET, CV_SITE_URL, CV_OWNER_NAME or CV_MAIL_FROM needed")
	assert.Equal(t, app.BackendAWS, c.Backend)
	assert.Equal(t, "eu-west-2", c.AWS.Region)
	assert.Equal(t, "AKIDOWNER", c.AWS.AccessKeyID)
	assert.Equal(t, "owner-secret", c.AWS.SecretAccessKey)
	assert.Equal(t, awsbase.Tables{Requests: "requests", OTPs: "codes", Limits: "limits"}, c.AWS.Tables)

	delete(env, "CV_S3_BUCKET")
	_, err = app.LoadOwnerConfig(envOf(env))
	assert.NoError(t, err, "the owner's tool never reads the bucket")

	delete(env, "CV_AWS_SECRET_ACCESS_KEY")
	_, err = app.LoadOwnerConfig(envOf(env))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CV_AWS_SECRET_ACCESS_KEY")

	_, err = app.LoadOwnerConfig(envOf(map[string]string{"CV_BACKEND": "gcp"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `CV_BACKEND="gcp"`)
	_, err = app.LoadOwnerConfig(envOf(map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "f"}))
	require.Error(t, err, "never the embedded store by accident on Lambda")

	// Local: the data folder, and nothing of the functions' checked or made.
	dir := t.TempDir()
	c, err = app.LoadOwnerConfig(envOf(map[string]string{"CV_DATA_DIR": dir, "CV_OTP_SECRET": "short", "CV_SITE_URL": "nope"}))
	require.NoError(t, err)
	assert.Equal(t, app.BackendLocal, c.Backend)
	assert.Equal(t, filepath.Join(dir, "cv-access.db"), c.StorePath())
	_, err = os.Stat(filepath.Join(dir, "otp-secret"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no dev secret made")
	c, err = app.LoadOwnerConfig(envOf(map[string]string{}))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(".local", "cv-access.db"), c.StorePath())
}

func TestOwnerNotificationSettings(t *testing.T) {
	aws := map[string]string{"CV_BACKEND": "aws", "CV_SITE_URL": "https://cv.example.com", "CV_OWNER_NAME": "Ada",
		"CV_MAIL_FROM": "cv@example.com", "CV_OTP_SECRET": strongSecret, "CV_AWS_REGION": "eu-west-2", "CV_S3_BUCKET": "my-cv"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := maps.Clone(base)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		env    map[string]string
		to     string
		notify bool
	}{
		{"local: owner@example.com, into the outbox", map[string]string{"CV_DATA_DIR": t.TempDir()}, "owner@example.com", true},
		{"local, off", map[string]string{"CV_DATA_DIR": t.TempDir(), "CV_NOTIFY": "off"}, "owner@example.com", false},
		{"aws without an owner address: off", aws, "", false},
		{"aws with one: each", with(aws, "CV_OWNER_EMAIL", " Ada@Example.com "), "ada@example.com", true},
		{"aws with one, off", with(aws, "CV_OWNER_EMAIL", "ada@example.com", "CV_NOTIFY", "off"), "ada@example.com", false},
	} {
		c, err := app.LoadConfig(envOf(tc.env))
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.to, c.OwnerEmail, tc.name)
		assert.Equal(t, tc.notify, c.Notify, tc.name)
	}
	for env, says := range map[string]string{
		"CV_NOTIFY=each":                              "CV_NOTIFY=each needs CV_OWNER_EMAIL",
		"CV_NOTIFY=always":                            `CV_NOTIFY="always": want each`,
		"CV_OWNER_EMAIL=not an address":               "CV_OWNER_EMAIL=",
		"CV_OWNER_EMAIL=a@example.com, b@example.com": "want one email address",
		"CV_OWNER_EMAIL=Ada <a@example.com>":          "want one email address",
	} {
		k, v, _ := strings.Cut(env, "=")
		_, err := app.LoadConfig(envOf(with(aws, k, v)))
		assert.ErrorContains(t, err, says, env)
	}
}
