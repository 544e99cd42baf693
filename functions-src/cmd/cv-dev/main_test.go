package main_test

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDevCommand builds and runs cv-dev as `make dev` does, on a free port,
// and checks it announces itself, serves the site and the functions,
// writes to the outbox, and stops cleanly on SIGINT.
func TestDevCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cv-dev")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	site := filepath.Join(dir, "site")
	require.NoError(t, os.MkdirAll(filepath.Join(site, "cv"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(site, "index.html"), []byte("<!doctype html><title>home</title>"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(site, "cv", "index.html"), []byte("<!doctype html><title>cv</title>"), 0o644))

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT=0", "CV_DATA_DIR="+filepath.Join(dir, "data"), "CV_SITE_DIR="+site,
		"CV_BACKEND=", "CV_OTP_SECRET=", "CV_SITE_URL=", "CV_OUTBOX_DIR=", "CV_LOCAL_CV_FILE=")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = io.Discard
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	lines := make(chan string, 32)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	openLine := regexp.MustCompile(`open\s+(http://127\.0\.0\.1:[0-9]+)/cv/`)
	var origin string
	var banner []string
	deadline := time.After(30 * time.Second)
	for origin == "" {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "cv-dev exited early: %v", banner)
			banner = append(banner, l)
			if m := openLine.FindStringSubmatch(l); m != nil {
				origin = m[1]
			}
		case <-deadline:
			t.Fatalf("no address announced: %v", banner)
		}
	}
	for l := range lines {
		banner = append(banner, l)
		if strings.HasPrefix(l, "Press Ctrl+C") {
			break
		}
	}
	assert.Contains(t, strings.Join(banner, "\n"), "/_dev/outbox")

	resp, err := http.Get(origin + "/cv/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)

	req, err := http.NewRequest(http.MethodPost, origin+"/api/request-access",
		strings.NewReader(`{"name":"Ada","email":"ada@example.com","consent":true}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, string(body))
	mail, err := filepath.Glob(filepath.Join(dir, "data", "outbox", "*-email-*.eml"))
	require.NoError(t, err)
	assert.Len(t, mail, 1)

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "cv-dev exits 0 on Ctrl+C")
	case <-time.After(10 * time.Second):
		t.Fatal("cv-dev did not stop on SIGINT")
	}
}
