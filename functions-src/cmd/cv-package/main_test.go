package main

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPackageIsOneExecutableBootstrapAndTheSameBytesEachTime(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "request-access")
	require.NoError(t, os.WriteFile(bin, []byte("\x7fELF a function"), 0o755))

	first, second := filepath.Join(dir, "a", "fn.zip"), filepath.Join(dir, "b", "fn.zip")
	require.NoError(t, write(first, bin))
	require.NoError(t, os.Chtimes(bin, time.Now(), time.Now())) // a rebuild touches the binary
	require.NoError(t, write(second, bin))

	a, err := os.ReadFile(first)
	require.NoError(t, err)
	b, err := os.ReadFile(second)
	require.NoError(t, err)
	assert.Equal(t, a, b, "the same binary makes the same package, so Terraform uploads only a change")

	st, err := os.Stat(first)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())

	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	require.NoError(t, err)
	require.Len(t, zr.File, 1)
	f := zr.File[0]
	assert.Equal(t, "bootstrap", f.Name, "provided.al2023 runs bootstrap")
	assert.Equal(t, os.FileMode(0o755), f.Mode().Perm(), "executable")
	rc, err := f.Open()
	require.NoError(t, err)
	body, _ := io.ReadAll(rc)
	assert.Equal(t, "\x7fELF a function", string(body))
}

func TestAMissingBinaryLeavesNoPackage(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "fn.zip")
	assert.Error(t, write(out, filepath.Join(dir, "missing")))
	_, err := os.Stat(out)
	assert.True(t, os.IsNotExist(err))
	left, _ := filepath.Glob(filepath.Join(dir, ".cv-package-*"))
	assert.Empty(t, left, "no temporary file left behind")
}
