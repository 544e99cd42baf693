package app_test

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each function links the AWS services it calls and no other. Go runs the
// initialisation of every package linked into a binary, on every cold
// start, and the SDK's service packages build large tables there (see
// README, Performance: "cold start"). So internal/app imports awsbase
// alone, and each function's main hands in its parts (app.Options.AWS).
// A function that links one more service (an import of awsbackend, or a
// part it never calls) fails here, as does one whose main no longer links
// a part it calls, and one that links the SDK's config package (the
// tools' credential chain: shared files, SSO, STS, IMDS).
func TestEachFunctionLinksOnlyTheAWSServicesItCalls(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CV_REQUIRE_BUILD") != "" {
			t.Fatalf("no go command on PATH to list the functions' packages: %v", err)
		}
		t.Skip("no go command on PATH to list the functions' packages")
	}
	const module = "github.com/cv-access/cv-access/functions-src/"
	// dynamodbstreams is linked with DynamoDB: the SDK's attributevalue
	// package, which the store marshals its items with, converts stream
	// records too.
	want := map[string][]string{
		"request-access":       {"dynamodb", "dynamodbstreams", "sesv2", "sns"}, // stores, emails and texts the code; gives out no link
		"verify-access":        {"dynamodb", "dynamodbstreams", "s3"},           // checks the code, signs the link; sends nothing
		"owner":                {"dynamodb", "dynamodbstreams", "sesv2"},        // lists and erases, emails the sign-in code
		"lambda/notify-access": {"dynamodb", "dynamodbstreams", "sesv2"},        // claims the request, emails the owner
	}
	// Every function is held here: the site's (functions-src/<name>) and
	// the Lambda-only ones (functions-src/lambda/<name>).
	mains, err := filepath.Glob("../../*/main.go")
	require.NoError(t, err)
	lambdas, err := filepath.Glob("../../lambda/*/main.go")
	require.NoError(t, err)
	var functions []string
	for _, m := range append(mains, lambdas...) {
		functions = append(functions, strings.TrimPrefix(filepath.ToSlash(filepath.Dir(m)), "../../"))
	}
	require.ElementsMatch(t, slices.Collect(maps.Keys(want)), functions, "every function's services are listed here")

	args := []string{"list", "-tags", "lambda.norpc", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`}
	for _, fn := range functions {
		args = append(args, module+fn)
	}
	cmd := exec.Command(goCmd, args...)
	// As `make functions` builds them.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.Output()
	var stderr string
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "go list: %s", stderr)

	const services = "github.com/aws/aws-sdk-go-v2/service/"
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		fn := strings.TrimPrefix(fields[0], module)
		linked := map[string]bool{}
		for _, dep := range fields[1:] {
			if rest, ok := strings.CutPrefix(dep, services); ok {
				if name, _, _ := strings.Cut(rest, "/"); name != "internal" {
					linked[name] = true
				}
			}
		}
		seen[fn] = true
		got := slices.Sorted(maps.Keys(linked))
		assert.Equal(t, want[fn], got, "%s links the AWS services %v; want %v: every service linked costs each cold start "+
			"its package initialisation (the SDK builds its tables there), so a function links only what it calls "+
			"(internal/app imports awsbase alone; its main.go hands in awsbase.Parts)", fn, got, want[fn])
		assert.NotContains(t, fields[1:], "github.com/aws/aws-sdk-go-v2/config",
			"%s links the SDK's config package: its credential chain is the tools' (awsdefault); the functions read "+
				"their settings and environment alone (awsbase.EnvConfig)", fn)
	}
	assert.Len(t, seen, len(want), "go list answered for %v", seen)
}
