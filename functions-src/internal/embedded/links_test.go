package embedded_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
)

func TestLinksCheck(t *testing.T) {
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
			dir := t.TempDir()
			path := filepath.Join(dir, "cv.pdf")
			tc.setup(t, path)
			l := &embedded.Links{Key: []byte("k"), BaseURL: "http://127.0.0.1:8888", Dir: dir, Documents: access.SingleDocument("cv.pdf"), Now: time.Now}
			err := l.Check(context.Background(), l.Documents.Default())
			if tc.sentinel == nil {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.sentinel)
			assert.Contains(t, err.Error(), path, "the error says which file")
		})
	}
}

// A link opens its own document only: the document is inside the
// signature, so neither another slug nor a second one in the query opens
// anything, and a slug taken off the list opens nothing.
func TestLinksOpenTheirOwnDocumentOnly(t *testing.T) {
	dir := t.TempDir()
	docs, err := access.ParseDocuments([]byte(`{"documents":[{"slug":"cv","title":"CV"},{"slug":"talk","title":"talk","key":"talks/one.pdf","link_seconds":60}]}`))
	require.NoError(t, err)
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	l := &embedded.Links{Key: []byte("k"), BaseURL: "http://127.0.0.1:8888", Dir: dir, Documents: docs, Now: func() time.Time { return now }}
	require.NoError(t, embedded.EnsureSamples(l))

	get := func(link string) (int, string) {
		u, err := url.Parse(link)
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		l.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u.RequestURI(), nil))
		return rec.Code, rec.Body.String() + rec.Header().Get("Content-Disposition")
	}
	talk, _ := docs.Find("talk")
	link, err := l.Presign(context.Background(), talk)
	require.NoError(t, err)
	code, body := get(link)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "Sample document: talk")
	assert.Contains(t, body, `attachment; filename="one.pdf"`)

	cvLink, err := l.Presign(context.Background(), docs.Default())
	require.NoError(t, err)
	code, body = get(cvLink)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, string(embedded.SampleCV)+`attachment; filename="cv.pdf"`, body)

	for name, forged := range map[string]string{
		"another slug":  strings.Replace(link, "doc=talk", "doc=cv", 1),
		"two slugs":     link + "&doc=cv",
		"no slug":       strings.Replace(link, "doc=talk&", "", 1),
		"unlisted slug": strings.Replace(link, "doc=talk", "doc=secret", 1),
	} {
		code, _ := get(forged)
		assert.Equal(t, http.StatusForbidden, code, name)
	}

	now = now.Add(61 * time.Second)
	code, body = get(link)
	assert.Equal(t, http.StatusForbidden, code, "the document's own lifetime: 60 s")
	assert.Contains(t, body, "expired")
	code, _ = get(cvLink)
	assert.Equal(t, http.StatusOK, code, "the CV's link lives its 2 minutes")

	// Off the list, its links die at once.
	l.Documents = access.SingleDocument("cv.pdf")
	now = now.Add(-61 * time.Second)
	code, _ = get(link)
	assert.Equal(t, http.StatusForbidden, code)
}
