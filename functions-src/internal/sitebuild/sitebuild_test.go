package sitebuild_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/emulators"
	"github.com/cv-access/cv-access/functions-src/internal/sitebuild"
)

// build builds the site with env into a temporary folder, or skips when
// Hugo is missing and the run did not ask for the site (`make test` sets
// CV_REQUIRE_SITE=1 and builds Hugo first).
func build(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	root, err := emulators.FindRoot()
	require.NoError(t, err)
	dest := filepath.Join(t.TempDir(), "public")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = sitebuild.Build(ctx, root, dest, env)
	if errors.Is(err, sitebuild.ErrNoHugo) && os.Getenv("CV_REQUIRE_SITE") == "" {
		t.Skip(err)
	}
	return dest, err
}

// rules is the _redirects file's rules: its lines that are not blank or
// comments.
func rules(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "_redirects"))
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return out
}

func TestWithoutAnAPIOriginNoRuleTakesAPI(t *testing.T) {
	t.Parallel()
	dir, err := build(t, map[string]string{"CV_API_ORIGIN": ""})
	require.NoError(t, err)
	assert.Empty(t, rules(t, dir), "netlify.toml's /api/* rule must apply: _redirects rules come first")
	_, err = os.Stat(filepath.Join(dir, "cv", "index.html"))
	assert.NoError(t, err, "the pages are built as before")
}

func TestAnAPIOriginProxiesEveryFunctionSigned(t *testing.T) {
	t.Parallel()
	for _, origin := range []string{
		"https://abc123.execute-api.us-east-2.amazonaws.com",
		"https://api.cv.example.com",
		"http://127.0.0.1:9321", // local tests only
		"http://localhost:9321",
	} {
		t.Run(origin, func(t *testing.T) {
			t.Parallel()
			dir, err := build(t, map[string]string{"CV_API_ORIGIN": origin})
			require.NoError(t, err)
			assert.Equal(t, []string{
				"/api/request-access " + origin + "/request-access 200! Sign=CV_PROXY_SIGN_SECRET",
				"/api/verify-access " + origin + "/verify-access 200! Sign=CV_PROXY_SIGN_SECRET",
				"/api/owner " + origin + "/owner 200! Sign=CV_PROXY_SIGN_SECRET",
			}, rules(t, dir))
		})
	}
}

func TestABadAPIOriginStopsTheBuild(t *testing.T) {
	t.Parallel()
	for _, origin := range []string{
		"http://abc123.execute-api.us-east-2.amazonaws.com", // not TLS: the token would travel in clear
		"https://abc123.execute-api.us-east-2.amazonaws.com/",
		"https://abc123.execute-api.us-east-2.amazonaws.com/prod",
		"https://abc123.execute-api.us-east-2.amazonaws.com/request-access",
		"abc123.execute-api.us-east-2.amazonaws.com",
		"https://user@abc123.execute-api.us-east-2.amazonaws.com",
		"https://abc123.execute-api.us-east-2.amazonaws.com?x=1",
		"http://127.0.0.1",
		"http://10.0.0.1:8080",
	} {
		t.Run(origin, func(t *testing.T) {
			t.Parallel()
			_, err := build(t, map[string]string{"CV_API_ORIGIN": origin})
			require.Error(t, err)
			assert.Contains(t, err.Error(), `CV_API_ORIGIN="`+origin+`"`)
			assert.Contains(t, err.Error(), "want the HTTP API's origin, https://<host> with no path")
		})
	}
}
