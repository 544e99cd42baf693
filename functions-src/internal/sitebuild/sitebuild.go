// Package sitebuild builds the Hugo site the way `make site` does, into a
// folder of the caller's choosing and with the environment the caller
// gives, so tests can build it for either deploy target without touching
// site/public (which other tests read while they run). Its tests check the
// _redirects file that switches the target (site/layouts/home.redirects).
package sitebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrNoHugo means neither a Hugo of the pinned version on PATH nor the
// copy `make site` builds into .local/bin is there.
var ErrNoHugo = errors.New("hugo is not installed: run `make site` (it builds the pinned version into .local/bin)")

var pinned = regexp.MustCompile(`(?m)^\s*HUGO_VERSION\s*=\s*"([0-9.]+)"`)

// Hugo finds the Hugo `make site` would run: the one on PATH if it is
// exactly the version netlify.toml pins, else .local/bin/hugo.
func Hugo(root string) (string, error) {
	toml, err := os.ReadFile(filepath.Join(root, "netlify.toml"))
	if err != nil {
		return "", err
	}
	m := pinned.FindSubmatch(toml)
	if m == nil {
		return "", errors.New("netlify.toml pins no HUGO_VERSION")
	}
	if p, err := exec.LookPath("hugo"); err == nil {
		if out, err := exec.Command(p, "version").Output(); err == nil && strings.Contains(string(out), "v"+string(m[1])) {
			return p, nil
		}
	}
	p := filepath.Join(root, ".local", "bin", "hugo")
	if _, err := os.Stat(p); err != nil {
		return "", ErrNoHugo
	}
	return p, nil
}

// Build runs Hugo over root/site into dest with `make site`'s flags, and
// the environment variables in env added to (or replacing) the process's
// own. It takes no build lock and keeps its cache under dest's parent, so
// several builds can run at once beside `make site`. The error carries
// Hugo's output.
func Build(ctx context.Context, root, dest string, env map[string]string) error {
	return BuildSite(ctx, root, filepath.Join(root, "site"), dest, env)
}

// BuildSite is Build for any Hugo site: the one in the folder source (a
// second site that imports the cv-access module, say), built with the
// Hugo `make site` runs.
func BuildSite(ctx context.Context, root, source, dest string, env map[string]string) error {
	hugo, err := Hugo(root)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, hugo, "--source", source, "--destination", dest,
		"--cacheDir", dest+".cache", "--minify", "--noBuildLock", "--logLevel", "error")
	for _, kv := range os.Environ() {
		if _, ok := env[strings.SplitN(kv, "=", 2)[0]]; !ok {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hugo: %w\n%s", err, out.String())
	}
	return nil
}
