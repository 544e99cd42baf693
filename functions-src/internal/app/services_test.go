package app_test

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each function links the AWS services it calls and no other. Go runs the
// initialisation of every package linked into a binary, on every cold
// start, and the SDK's service packages build large tables there (SES
// v2's and DynamoDB's schemas about 3 ms each): verify-access built
// without SES and SNS starts some 4 ms sooner, and is 630 KB smaller.
// So internal/app imports awsbase alone, and each function's main hands
// in its parts (app.Options.AWS). A function that links one more service
// (an import of awsbackend, or a part it never calls) fails here, and so
// does one that lacks a part it calls.
func TestEachFunctionLinksOnlyTheAWSServicesItCalls(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list the functions' packages")
	}
	const module = "github.com/cv-access/cv-access/functions-src/"
	want := map[string][]string{
		"request-access":       {"dynamodb", "sesv2", "sns"}, // stores, emails and texts the code; gives out no link
		"verify-access":        {"dynamodb", "s3"},           // checks the code, signs the link; sends nothing
		"owner":                {"dynamodb", "sesv2"},        // lists and erases, emails the sign-in code
		"lambda/notify-access": {"dynamodb", "sesv2"},        // claims the request, emails the owner
	}
	services := []string{"dynamodb", "s3", "sesv2", "sns"}

	args := []string{"list", "-tags", "lambda.norpc", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`}
	for fn := range want {
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

	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		fn := strings.TrimPrefix(fields[0], module)
		var linked []string
		for _, s := range services {
			if slices.Contains(fields[1:], "github.com/aws/aws-sdk-go-v2/service/"+s) {
				linked = append(linked, s)
			}
		}
		seen[fn] = true
		assert.Equal(t, want[fn], linked, "%s links the AWS services %v; want %v: every service linked costs each cold start "+
			"its package initialisation (the SDK builds its tables there), so a function links only what it calls "+
			"(internal/app imports awsbase alone; its main.go hands in awsbase.Parts)", fn, linked, want[fn])
	}
	assert.Len(t, seen, len(want), "go list answered for %v", seen)
}
