package embedded_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
)

func TestLinksCheckCV(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T, path string)
		sentinel error // nil: passes
		root     bool  // whether the case holds for root, who reads anything
	}{
		{"the CV is there", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, embedded.SampleCV, 0o600))
		}, nil, true},
		{"no file", func(*testing.T, string) {}, access.ErrCVMissing, true},
		{"a folder in its place", func(t *testing.T, path string) {
			require.NoError(t, os.Mkdir(path, 0o700))
		}, access.ErrCVMissing, true},
		{"not readable", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, embedded.SampleCV, 0o000))
		}, access.ErrCVDenied, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.root && os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			path := filepath.Join(t.TempDir(), "cv.pdf")
			tc.setup(t, path)
			l := &embedded.Links{Key: []byte("k"), BaseURL: "http://127.0.0.1:8888", File: path, FileName: "cv.pdf", Now: time.Now}
			err := l.CheckCV(context.Background())
			if tc.sentinel == nil {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.sentinel)
			assert.Contains(t, err.Error(), path, "the error says which file")
		})
	}
}
