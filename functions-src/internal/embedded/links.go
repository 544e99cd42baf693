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
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// DownloadPath is where the embedded mode serves the private CV.
const DownloadPath = "/_cv/download"

// Links signs and checks local download links to the private CV, the
// embedded stand-in for S3 presigned URLs: the link carries its expiry and
// an HMAC over it, so it cannot be extended or reused after it dies.
type Links struct {
	Key      []byte // derived from the OTP secret; see app.deriveKey
	BaseURL  string // the site origin, e.g. http://127.0.0.1:8888
	File     string // the private CV, outside any served folder
	FileName string // the name the browser saves it as; plain ASCII, no quotes
	Now      func() time.Time
}

var _ access.Presigner = (*Links)(nil)

var (
	errLinkMalformed = errors.New("malformed link")
	errLinkExpired   = errors.New("link expired")
	errLinkSignature = errors.New("bad signature")
)

// PresignCV implements access.Presigner.
func (l *Links) PresignCV(_ context.Context, ttl time.Duration) (string, error) {
	exp := strconv.FormatInt(l.Now().Add(ttl).Unix(), 10)
	q := url.Values{"expires": {exp}, "signature": {l.sign(exp)}}
	return strings.TrimRight(l.BaseURL, "/") + DownloadPath + "?" + q.Encode(), nil
}

// CheckCV implements access.Presigner: the file ServeHTTP would send is a
// file there, and this process may read it.
func (l *Links) CheckCV(context.Context) error {
	f, err := os.Open(l.File)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: there is no file at %s (CV_LOCAL_CV_FILE)", access.ErrCVMissing, l.File)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %w", access.ErrCVDenied, err)
	case err != nil:
		return fmt.Errorf("cv check: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	switch {
	case err != nil:
		return fmt.Errorf("cv check: %w", err)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file (CV_LOCAL_CV_FILE)", access.ErrCVMissing, l.File)
	}
	return nil
}

func (l *Links) sign(expires string) string {
	m := hmac.New(sha256.New, l.Key)
	m.Write([]byte("GET\n" + DownloadPath + "\n" + l.FileName + "\n" + expires))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Check validates a link's query against the clock and the key.
func (l *Links) Check(q url.Values) error {
	exp, sig := q.Get("expires"), q.Get("signature")
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || sig == "" || len(q) != 2 {
		return errLinkMalformed
	}
	// Compare the signature before looking at the time, so a forged link
	// learns nothing from which check failed.
	if !access.EqualMAC([]byte(sig), []byte(l.sign(exp))) {
		return errLinkSignature
	}
	if !l.Now().Before(time.Unix(sec, 0)) {
		return errLinkExpired
	}
	return nil
}

// ServeHTTP serves the CV for a valid link and refuses anything else with
// 403, as S3 does, and a short plain-text reason.
func (l *Links) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch err := l.Check(r.URL.Query()); {
	case errors.Is(err, errLinkExpired):
		http.Error(w, "This download link has expired. Links live for two minutes; please verify again.", http.StatusForbidden)
		return
	case err != nil:
		http.Error(w, "This download link is not valid.", http.StatusForbidden)
		return
	}
	f, err := os.Open(l.File)
	if err != nil {
		http.Error(w, "The CV file is missing on this server.", http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "The CV file cannot be read.", http.StatusInternalServerError)
		return
	}
	ctype := mime.TypeByExtension(filepath.Ext(l.FileName))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="`+l.FileName+`"`)
	http.ServeContent(w, r, "", st.ModTime(), f)
}
