package proxysign_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/proxysign"
)

// The tokens netlify-cli mints are accepted: signed by its own
// sign-redirect.js, and by jsonwebtoken called the way it calls it.
// Skipped without Node or node_modules, unless CV_REQUIRE_NETLIFY is set.
func TestVerifyAcceptsNetlifyCLITokens(t *testing.T) {
	signRedirect, jsonwebtoken := netlifyModules(t)
	secret := strings.Repeat("k", 48)
	want := proxysign.Expect{SiteID: "0d3f6b9e-site", SiteURL: "https://cv.example"}

	t.Run("sign-redirect.js", func(t *testing.T) {
		// An ES module: imported as netlify-cli imports it, so jsonwebtoken
		// resolves from netlify-cli's own place in node_modules.
		tok := node(t, secret, "--input-type=module", "-e", `
const { signRedirect } = await import(process.argv[1]);
process.stdout.write(signRedirect({ deployContext: 'production', secret: process.env.SECRET, siteID: process.argv[2], siteURL: process.argv[3] }));
`, "file://"+signRedirect, want.SiteID, want.SiteURL)
		c, err := proxysign.Verify(tok, [][]byte{[]byte(secret)}, want, time.Now())
		require.NoError(t, err)
		assert.Equal(t, proxysign.Claims{
			SiteID: want.SiteID, SiteURL: want.SiteURL, DeployContext: "production",
			IssuedAt: c.IssuedAt, ExpiresAt: c.IssuedAt.Add(proxysign.Lifetime),
		}, c)
		assert.WithinDuration(t, time.Now(), c.IssuedAt, time.Minute)
	})

	// jsonwebtoken.sign as sign-redirect.js calls it, with the options
	// varied to see Verify refuse what netlify-cli would never send.
	const script = `
const jwt = require(process.argv[1]);
const claims = { deploy_context: 'deploy-preview', netlify_id: process.argv[2], site_url: process.argv[3] };
process.stdout.write(jwt.sign(claims, process.env.SECRET, JSON.parse(process.argv[4])));
`
	tests := []struct {
		name    string
		options string
		secrets [][]byte
		err     error
	}{
		{"as netlify-cli signs", `{"expiresIn":"5 minutes","issuer":"netlify"}`, nil, nil},
		{"rotated: the old secret listed second", `{"expiresIn":"5 minutes","issuer":"netlify"}`, [][]byte{[]byte(strings.Repeat("n", 48)), []byte(secret)}, nil},
		{"another secret", `{"expiresIn":"5 minutes","issuer":"netlify"}`, [][]byte{[]byte(strings.Repeat("n", 48))}, proxysign.ErrSignature},
		{"a day's lifetime", `{"expiresIn":"1 day","issuer":"netlify"}`, nil, proxysign.ErrLifetime},
		{"no issuer", `{"expiresIn":"5 minutes"}`, nil, proxysign.ErrIssuer},
		{"no expiry", `{"issuer":"netlify"}`, nil, proxysign.ErrExpired},
		{"HS512", `{"expiresIn":"5 minutes","issuer":"netlify","algorithm":"HS512"}`, nil, proxysign.ErrAlgorithm},
		{"a key id", `{"expiresIn":"5 minutes","issuer":"netlify","keyid":"1"}`, nil, proxysign.ErrHeader},
	}
	for _, tt := range tests {
		t.Run("jsonwebtoken "+tt.name, func(t *testing.T) {
			tok := node(t, secret, "-e", script, jsonwebtoken, want.SiteID, want.SiteURL, tt.options)
			secrets := tt.secrets
			if secrets == nil {
				secrets = [][]byte{[]byte(secret)}
			}
			c, err := proxysign.Verify(tok, secrets, want, time.Now())
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "deploy-preview", c.DeployContext)
			assert.Equal(t, proxysign.Lifetime, c.ExpiresAt.Sub(c.IssuedAt))
		})
	}
}

// netlifyModules finds sign-redirect.js and jsonwebtoken in the
// repository's node_modules, and node on PATH.
func netlifyModules(t *testing.T) (signRedirect, jsonwebtoken string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CV_REQUIRE_NETLIFY") != "" {
			t.Fatalf(format+" (CV_REQUIRE_NETLIFY is set)", args...)
		}
		t.Skipf(format, args...)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("node is not on PATH: the netlify-cli interop test needs Node.js")
	}
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.mod above the test")
		dir = parent
	}
	signRedirect = filepath.Join(dir, "node_modules", "netlify-cli", "dist", "utils", "sign-redirect.js")
	jsonwebtoken = filepath.Join(dir, "node_modules", "jsonwebtoken")
	for _, p := range []string{signRedirect, filepath.Join(jsonwebtoken, "package.json")} {
		if _, err := os.Stat(p); err != nil {
			missing("%s is missing: run `npm ci`", p)
		}
	}
	return signRedirect, jsonwebtoken
}

// node runs node with args, the secret in its environment, and returns
// what it printed.
func node(t *testing.T, secret string, args ...string) string {
	t.Helper()
	cmd := exec.Command("node", args...)
	cmd.Env = append(os.Environ(), "SECRET="+secret)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "node: %s", stderr.String())
	return string(out)
}
