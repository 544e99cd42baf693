package infratest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Terraform runs the terraform CLI on a private copy of infra/, so a test
// never touches the state or .terraform of the owner's own checkout.
type Terraform struct {
	Dir string // the copy
	bin string
	env []string
}

// NewTerraform copies root/infra's configuration (not its state) into dir.
// rc is the CLI configuration naming the provider mirror (`make` writes
// .local/terraformrc); the test never reaches a registry.
func NewTerraform(root, dir, rc string) (*Terraform, error) {
	bin, err := exec.LookPath("terraform")
	if err != nil {
		return nil, fmt.Errorf("%w: terraform is not on PATH (the machine image ships Terraform 1.11)", ErrMissing)
	}
	if _, err := os.Stat(rc); err != nil {
		return nil, fmt.Errorf("%w: no Terraform CLI configuration at %s (`make test` writes it from the provider mirror)", ErrMissing, rc)
	}
	files, err := filepath.Glob(filepath.Join(root, "infra", "*.tf"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no infra/*.tf under %s", root)
	}
	files = append(files, filepath.Join(root, "infra", "example.tfvars"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			return nil, err
		}
	}
	env := append(BaseEnv(), "TF_CLI_CONFIG_FILE="+rc, "TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1")
	return &Terraform{Dir: dir, bin: bin, env: env}, nil
}

// BaseEnv is the environment of a clean shell for the commands these tests
// run: the search path, home and Go's caches, and nothing else (no TF_VAR_*,
// CV_* or MAKEFLAGS from the developer's shell).
func BaseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOCACHE", "GOPATH", "GOMODCACHE", "GOPROXY", "GOTOOLCHAIN", "GOFLAGS"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Override writes a test-only override file (provider endpoints and keys,
// the emulator switches) beside the copy's configuration.
func (tf *Terraform) Override(name, content string) error {
	return os.WriteFile(filepath.Join(tf.Dir, name+"_override.tf"), []byte(content), 0o600)
}

// MotoOverride points the provider at moto's endpoint (AdminEndpoint)
// with the given keys and, when compat is true, turns on the emulator
// switches of infra/main.tf.
func MotoOverride(endpoint string, c Credentials, compat bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `provider "aws" {
  access_key                  = %q
  secret_key                  = %q
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {
`, c.ID, c.Secret)
	for _, svc := range []string{"apigatewayv2", "cloudwatchlogs", "dynamodb", "iam", "lambda", "s3", "ses", "sesv2", "sns", "sts"} {
		fmt.Fprintf(&b, "    %-14s = %q\n", svc, endpoint)
	}
	b.WriteString("  }\n}\n")
	if compat {
		b.WriteString("\nlocals {\n  emulator_compat = true\n}\n")
	}
	return b.String()
}

// Run runs one terraform command in the copy and returns its output;
// an error carries the output.
func (tf *Terraform) Run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tf.bin, append([]string{"-chdir=" + tf.Dir}, args...)...)
	cmd.Env = tf.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("terraform %s (after %s): %w\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), err, out.String())
	}
	return out.String(), nil
}

// ParseEnv reads KEY=VALUE lines as Netlify's .env import (dotenv) and a
// shell both read them: a value may sit in double quotes, or in single
// quotes, which both keep as they are (CV_DOCUMENTS's JSON).
func ParseEnv(s string) (map[string]string, error) {
	env := map[string]string{}
	for i, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.TrimSpace(k) != k {
			return nil, fmt.Errorf("line %d is not KEY=VALUE: %q", i+1, line)
		}
		unsafe := "\"\\$`"
		switch {
		case len(v) >= 2 && strings.HasPrefix(v, `'`) && strings.HasSuffix(v, `'`):
			v, unsafe = v[1:len(v)-1], "'"
		case len(v) >= 2 && strings.HasPrefix(v, `"`) && strings.HasSuffix(v, `"`):
			v = v[1 : len(v)-1]
		}
		if strings.ContainsAny(v, unsafe) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, fmt.Errorf("line %d: %s's value holds a character a shell and dotenv read differently", i+1, k)
		}
		if _, dup := env[k]; dup {
			return nil, fmt.Errorf("line %d repeats %s", i+1, k)
		}
		env[k] = v
	}
	return env, nil
}

// PlanJSON plans with the given arguments and returns `terraform show
// -json` of the plan.
func (tf *Terraform) PlanJSON(ctx context.Context, args ...string) (map[string]any, error) {
	plan := filepath.Join(tf.Dir, "test.tfplan")
	if _, err := tf.Run(ctx, append([]string{"plan", "-no-color", "-out=" + plan}, args...)...); err != nil {
		return nil, err
	}
	out, err := tf.Run(ctx, "show", "-no-color", "-json", plan)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return nil, fmt.Errorf("terraform show -json: %w", err)
	}
	return v, nil
}
