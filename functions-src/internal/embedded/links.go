package embedded

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// DownloadPath is where the embedded mode serves the private documents.
const DownloadPath = "/_cv/download"

// Links signs and checks local download links to the private documents,
// the embedded stand-in for S3 presigned URLs: the link carries the
// document and its expiry and an HMAC over both, so it cannot be pointed
// at another document, extended or reused after it dies.
type Links struct {
	Key     []byte // derived from the OTP secret; see app.deriveKey
	BaseURL string // the site origin, e.g. http://127.0.0.1:8888
	// Dir holds the documents, each at its key, outside any served folder.
	Dir       string
	Documents access.Documents
	Now       func() time.Time
}

var _ access.Presigner = (*Links)(nil)

var (
	errLinkMalformed = errors.New("malformed link")
	errLinkExpired   = errors.New("link expired")
	errLinkSignature = errors.New("bad signature")
)

// File is where a document is kept.
func (l *Links) File(doc access.Document) string {
	return filepath.Join(l.Dir, filepath.FromSlash(doc.Key))
}

// Presign implements access.Presigner.
func (l *Links) Presign(_ context.Context, doc access.Document) (string, error) {
	exp := strconv.FormatInt(l.Now().Add(doc.LinkTTL).Unix(), 10)
	q := url.Values{"doc": {doc.Slug}, "expires": {exp}, "signature": {l.sign(doc, exp)}}
	return strings.TrimRight(l.BaseURL, "/") + DownloadPath + "?" + q.Encode(), nil
}

// Check implements access.Presigner: the file ServeHTTP would send is a
// file there, and this process may read it.
func (l *Links) Check(_ context.Context, doc access.Document) error {
	file := l.File(doc)
	f, err := os.Open(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: there is no file at %s (CV_LOCAL_DOCUMENTS_DIR and the document's key)", access.ErrDocumentMissing, file)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %w", access.ErrDocumentDenied, err)
	case err != nil:
		return fmt.Errorf("document check: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	switch {
	case err != nil:
		return fmt.Errorf("document check: %w", err)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file", access.ErrDocumentMissing, file)
	}
	return nil
}

func (l *Links) sign(doc access.Document, expires string) string {
	m := hmac.New(sha256.New, l.Key)
	m.Write([]byte("GET\n" + DownloadPath + "\n" + doc.Slug + "\n" + doc.Key + "\n" + expires))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkLink validates a link's query against the clock and the key, and
// returns the document it is for.
func (l *Links) checkLink(q url.Values) (access.Document, error) {
	slug, exp, sig := q.Get("doc"), q.Get("expires"), q.Get("signature")
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || sig == "" || len(q) != 3 || len(q["doc"]) != 1 {
		return access.Document{}, errLinkMalformed
	}
	// A slug no longer listed (or none: a link always names its document)
	// signs nothing; compare against a document that cannot match rather
	// than answer sooner.
	doc, listed := l.Documents.Listed(slug)
	// Compare the signature before looking at the time, so a forged link
	// learns nothing from which check failed.
	if !access.EqualMAC([]byte(sig), []byte(l.sign(doc, exp))) || !listed {
		return access.Document{}, errLinkSignature
	}
	if !l.Now().Before(time.Unix(sec, 0)) {
		return access.Document{}, errLinkExpired
	}
	return doc, nil
}

// ServeHTTP serves a document for a valid link and refuses anything else
// with 403, as S3 does, and a short plain-text reason.
func (l *Links) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	doc, err := l.checkLink(r.URL.Query())
	switch {
	case errors.Is(err, errLinkExpired):
		http.Error(w, "This download link has expired. Links live for a few minutes; please verify again.", http.StatusForbidden)
		return
	case err != nil:
		http.Error(w, "This download link is not valid.", http.StatusForbidden)
		return
	}
	f, err := os.Open(l.File(doc))
	if err != nil {
		http.Error(w, "The document is missing on this server.", http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "The document cannot be read.", http.StatusInternalServerError)
		return
	}
	name := path.Base(doc.Key)
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	// The key's characters (access.ParseDocuments) need no quoting but
	// the quote itself, which they exclude.
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	http.ServeContent(w, r, "", st.ModTime(), f)
}
