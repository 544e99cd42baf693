package awsbackend_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/awsbackend"
	"github.com/cv-access/cv-access/functions-src/internal/emulators"
)

// setupOn runs Setup for a fresh configuration (its own tables and bucket)
// on the given endpoints and returns what it said.
func setupOn(t *testing.T, cfg awsbackend.Config) []string {
	t.Helper()
	b, err := awsbackend.New(context.Background(), cfg, time.Now)
	require.NoError(t, err)
	var said []string
	require.NoError(t, awsbackend.Setup(context.Background(), b, cfg, nil, func(s string) { said = append(said, s) }))
	return said
}

func freshConfig(t *testing.T, suffix string) awsbackend.Config {
	t.Helper()
	if stack == nil {
		t.Skip("the emulator stack is not running (see TestMain output); `make test` starts it")
	}
	return awsbackend.Config{
		Region: emulators.Region, AccessKeyID: emulators.AccessKeyID, SecretAccessKey: emulators.SecretAccessKey,
		Tables: awsbackend.Tables{
			Requests: "cv-requests" + suffix, OTPs: "otps" + suffix, Limits: "cv-rate-limits" + suffix,
		},
		Bucket: "cv-private" + suffix, Documents: access.SingleDocument("cv.pdf"),
		Endpoints: stack.Endpoints(), Emulated: true,
	}
}

// pitrDynamoDB stands in front of DynamoDB Local with the point-in-time
// recovery calls it lacks, as AWS answers them: a new table's first
// UpdateContinuousBackups is refused while its backups are being prepared.
type pitrDynamoDB struct {
	mu      sync.Mutex
	enabled map[string]bool
	updates map[string]int
}

func (p *pitrDynamoDB) answer(w http.ResponseWriter, r *http.Request, body []byte) bool {
	op, table := emulators.DynamoDBOperation(r, body)
	p.mu.Lock()
	defer p.mu.Unlock()
	status := "DISABLED"
	switch op {
	case "DescribeContinuousBackups":
	case "UpdateContinuousBackups":
		p.updates[table]++
		if p.updates[table] == 1 {
			emulators.DynamoDBError(w, http.StatusBadRequest, "ContinuousBackupsUnavailableException",
				"Backups are being enabled for the table: "+table+". Please retry later")
			return true
		}
		var in struct {
			PointInTimeRecoverySpecification struct{ PointInTimeRecoveryEnabled bool }
		}
		_ = json.Unmarshal(body, &in)
		p.enabled[table] = in.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled
	default:
		return false
	}
	if p.enabled[table] {
		status = "ENABLED"
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	fmt.Fprintf(w, `{"ContinuousBackupsDescription":{"ContinuousBackupsStatus":"ENABLED","PointInTimeRecoveryDescription":{"PointInTimeRecoveryStatus":%q}}}`, status)
	return true
}

func TestSetupTurnsOnPointInTimeRecovery(t *testing.T) {
	cfg := freshConfig(t, "-pitr")
	defer awsbackend.SetPITRRetry(10*time.Millisecond, time.Second)()
	fake := &pitrDynamoDB{enabled: map[string]bool{}, updates: map[string]int{}}
	cfg.Endpoints.DynamoDB = emulators.StandIn(t, stack.DynamoDB, fake.answer)

	said := strings.Join(setupOn(t, cfg), "\n")
	for _, table := range []string{cfg.Tables.Requests, cfg.Tables.OTPs, cfg.Tables.Limits} {
		assert.Contains(t, said, "point-in-time recovery on "+table+" enabled")
		assert.True(t, fake.enabled[table], table)
		assert.Equal(t, 2, fake.updates[table], "asked again after AWS said the new table's backups were not ready")
	}

	said = strings.Join(setupOn(t, cfg), "\n")
	assert.NotContains(t, said, "point-in-time recovery", "already on: nothing to say")
	for _, table := range []string{cfg.Tables.Requests, cfg.Tables.OTPs, cfg.Tables.Limits} {
		assert.Equal(t, 2, fake.updates[table], "already on: not asked again")
	}
}

func TestSetupSkipsPointInTimeRecoveryOnDynamoDBLocal(t *testing.T) {
	said := strings.Join(setupOn(t, freshConfig(t, "-pitr-local")), "\n")
	assert.Contains(t, said, "table otps-pitr-local: this endpoint does not implement point-in-time recovery (an emulator); skipped")
}

// bucketS3 stands in front of gofakes3 with the bucket settings it lacks,
// kept in memory and answered as S3 does.
type bucketS3 struct {
	mu       sync.Mutex
	settings map[string][]byte // sub-resource -> the document last put
	puts     map[string]int
}

var notConfigured = map[string]string{
	"encryption":        "ServerSideEncryptionConfigurationNotFoundError",
	"ownershipControls": "OwnershipControlsNotFoundError",
	"policy":            "NoSuchBucketPolicy",
	"publicAccessBlock": "NoSuchPublicAccessBlockConfiguration",
}

func (s *bucketS3) answer(w http.ResponseWriter, r *http.Request, body []byte) bool {
	q := r.URL.Query()
	for sub, missing := range notConfigured {
		if !q.Has(sub) {
			continue
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			s.settings[sub] = body
			s.puts[sub]++
		case http.MethodGet:
			doc, ok := s.settings[sub]
			if !ok {
				emulators.S3Error(w, r, http.StatusNotFound, missing, "not configured")
				return true
			}
			_, _ = w.Write(doc)
		}
		return true
	}
	return false
}

func TestSetupSecuresTheBucket(t *testing.T) {
	cfg := freshConfig(t, "-secured")
	fake := &bucketS3{settings: map[string][]byte{}, puts: map[string]int{}}
	cfg.Endpoints.S3 = emulators.StandIn(t, stack.S3, fake.answer)
	arn := "arn:aws:s3:::" + cfg.Bucket
	// The owner's own statement, which setup must keep.
	theirs := `{"Sid":"OwnersOwn","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:GetObject","Resource":"` + arn + `/*"}`
	fake.settings["policy"] = []byte(`{"Version":"2012-10-17","Statement":[` + theirs + `]}`)

	said := strings.Join(setupOn(t, cfg), "\n")
	assert.Contains(t, said, "bucket "+cfg.Bucket+": public access blocked")
	assert.Contains(t, said, "bucket "+cfg.Bucket+": default encryption SSE-S3 (AES256) set")
	assert.Contains(t, said, "bucket "+cfg.Bucket+": object ownership BucketOwnerEnforced (ACLs off)")
	assert.Contains(t, said, "bucket "+cfg.Bucket+": policy denies requests without TLS")
	assert.Contains(t, string(fake.settings["encryption"]), "<SSEAlgorithm>AES256</SSEAlgorithm>")
	assert.Contains(t, string(fake.settings["ownershipControls"]), "<ObjectOwnership>BucketOwnerEnforced</ObjectOwnership>")
	assert.Contains(t, string(fake.settings["publicAccessBlock"]), "<RestrictPublicBuckets>true</RestrictPublicBuckets>")
	assert.JSONEq(t, `{"Version":"2012-10-17","Statement":[`+theirs+`,
		{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*",
		 "Resource":["`+arn+`","`+arn+`/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`,
		string(fake.settings["policy"]))

	said = strings.Join(setupOn(t, cfg), "\n")
	assert.NotContains(t, said, "encryption")
	assert.NotContains(t, said, "ownership")
	assert.NotContains(t, said, "policy")
	assert.Equal(t, map[string]int{"encryption": 1, "ownershipControls": 1, "policy": 1, "publicAccessBlock": 2}, fake.puts,
		"a second run changes only the public access block, which it always puts")
}

func TestSetupSkipsWhatGofakes3LacksWithAMessage(t *testing.T) {
	cfg := freshConfig(t, "-gofakes3")
	said := strings.Join(setupOn(t, cfg), "\n")
	for _, what := range []string{"public access blocks", "default encryption", "object ownership controls", "bucket policies"} {
		assert.Contains(t, said, "bucket "+cfg.Bucket+": this endpoint does not implement "+what+" (an emulator); skipped")
	}
}
