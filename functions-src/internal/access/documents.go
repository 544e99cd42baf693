package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cv-access/cv-access/functions-src/internal/strictjson"
)

// Document is one gated file: what visitors ask for by slug, and what the
// owner's messages call it.
type Document struct {
	Slug  string // names it in requests and records, e.g. "cv"
	Title string // names it in messages: "<owner>'s <title>"
	Key   string // the object it is: S3 key, or file name under the local folder
	// Page is the site path whose form asks for it; the code email links
	// there.
	Page string
	// LinkTTL is how long a download link to it lives.
	LinkTTL time.Duration
}

// Documents is the owner's list of gated documents, in the order given.
// A request that names none is for the CV (LegacyDocument) if it is
// listed, else the first listed, so clients and records made before there
// were several keep meaning the CV. Where the list lives, and why one file
// serves the site, Terraform and the functions: README, "Several
// documents".
type Documents struct {
	list []Document
}

// Document limits: MaxDocuments keeps the list within a function's
// environment (4 KB in all on Lambda) with room for the other settings.
const (
	MaxDocuments   = 20
	maxTitleLen    = 60
	maxKeyLen      = 512
	maxPageLen     = 200
	DefaultLinkTTL = 2 * time.Minute
	minLinkTTL     = 30 * time.Second
	maxLinkTTL     = time.Hour
)

// LegacyDocument is the slug of the one document there was before there
// were several: requests and records that name none are for it.
const LegacyDocument = "cv"

var (
	slugPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	// keyPattern is S3's safe characters, less "*", which IAM would read
	// as a wildcard in the grant naming the object.
	keyPattern  = regexp.MustCompile(`^[A-Za-z0-9!_.'()/-]+$`)
	pagePattern = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$`)
)

// documentsFile is the list's JSON, as in the site's data/cv_access.json.
type documentsFile struct {
	Documents []documentEntry `json:"documents"`
}

// entryKeys are an entry's keys, as documentEntry names them.
var entryKeys = map[string]bool{"slug": true, "title": true, "key": true, "page": true, "link_seconds": true}

type documentEntry struct {
	Slug        string `json:"slug"`
	Title       string `json:"title"`
	Key         string `json:"key"`
	Page        string `json:"page"`
	LinkSeconds *int   `json:"link_seconds"`
}

// ParseDocuments reads the document list's JSON and checks every entry,
// naming each problem by document and field.
func ParseDocuments(raw []byte) (Documents, error) {
	// Keys exactly as named, each once: encoding/json would take "KEY" for
	// "key", or the last of two, where Terraform and Hugo read the same
	// file differently, and the functions would sign links to objects
	// other than those uploaded and granted.
	var entries struct {
		Documents []json.RawMessage `json:"documents"`
	}
	if err := strictjson.CheckKeys(raw, map[string]bool{"documents": true}); err != nil {
		return Documents{}, fmt.Errorf(`want {"documents": [{"slug": "cv", "title": "CV"}, ...]}: %w`, err)
	}
	if err := json.Unmarshal(raw, &entries); err == nil {
		for i, e := range entries.Documents {
			if err := strictjson.CheckKeys(e, entryKeys); err != nil {
				return Documents{}, fmt.Errorf("document %d: %w", i+1, err)
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var f documentsFile
	if err := dec.Decode(&f); err != nil {
		return Documents{}, fmt.Errorf(`want {"documents": [{"slug": "cv", "title": "CV"}, ...]}: %w`, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Documents{}, errors.New("want one JSON object")
	}
	switch n := len(f.Documents); {
	case n == 0:
		return Documents{}, errors.New(`"documents" lists none: list at least one`)
	case n > MaxDocuments:
		return Documents{}, fmt.Errorf(`"documents" lists %d: at most %d fit in a function's environment`, n, MaxDocuments)
	}
	var (
		out  Documents
		errs []error
	)
	slugs, keys := map[string]bool{}, map[string]bool{}
	for i, e := range f.Documents {
		d, err := e.document()
		name := fmt.Sprintf("document %d", i+1)
		if slugPattern.MatchString(e.Slug) {
			name = fmt.Sprintf("document %q", e.Slug)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		if slugs[d.Slug] {
			errs = append(errs, fmt.Errorf("%s: slug listed twice", name))
		}
		if keys[d.Key] {
			errs = append(errs, fmt.Errorf("%s: key %q is another document's too", name, d.Key))
		}
		slugs[d.Slug], keys[d.Key] = true, true
		out.list = append(out.list, d)
	}
	if len(errs) > 0 {
		return Documents{}, errors.Join(errs...)
	}
	return out, nil
}

func (e documentEntry) document() (Document, error) {
	d := Document{Slug: e.Slug, Title: strings.TrimSpace(e.Title), Key: e.Key, Page: e.Page, LinkTTL: DefaultLinkTTL}
	if d.Key == "" {
		d.Key = d.Slug + ".pdf"
	}
	if d.Page == "" {
		d.Page = "/"
	}
	var errs []error
	if !slugPattern.MatchString(d.Slug) {
		errs = append(errs, fmt.Errorf(`"slug" %q: use 1 to 32 lower-case letters, digits and inner hyphens, e.g. "cv"`, d.Slug))
	}
	switch {
	case d.Title == "":
		errs = append(errs, errors.New(`"title" is missing: how messages name it, e.g. "CV"`))
	case utf8.RuneCountInString(d.Title) > maxTitleLen || !plainText(d.Title) || strings.ContainsAny(d.Title, "\r\n\u2028\u2029"):
		errs = append(errs, fmt.Errorf(`"title": use at most %d characters of plain text on one line`, maxTitleLen))
	}
	if len(d.Key) > maxKeyLen || !keyPattern.MatchString(d.Key) || strings.HasPrefix(d.Key, "/") || hasDotSegment(d.Key) {
		errs = append(errs, fmt.Errorf(`"key" %q: use 1 to %d of the characters A-Z a-z 0-9 !_.'()/- (no "*"), not starting with "/" and without "." or ".." segments`, d.Key, maxKeyLen))
	}
	if len(d.Page) > maxPageLen || !pagePattern.MatchString(d.Page) || strings.HasPrefix(d.Page, "//") {
		errs = append(errs, fmt.Errorf(`"page" %q: want a path on the site, e.g. "/cv/" (not "//host/...")`, d.Page))
	}
	if e.LinkSeconds != nil {
		// The range is checked on the number given, before it is made a
		// duration, which a huge number would overflow into range.
		if n := *e.LinkSeconds; n < int(minLinkTTL.Seconds()) || n > int(maxLinkTTL.Seconds()) {
			errs = append(errs, fmt.Errorf(`"link_seconds" %d: want %d to %d`, n, int(minLinkTTL.Seconds()), int(maxLinkTTL.Seconds())))
		} else {
			d.LinkTTL = time.Duration(n) * time.Second
		}
	}
	return d, errors.Join(errs...)
}

// hasDotSegment reports a "." or ".." path segment: S3 keeps such keys
// as they are, but the local backend reads keys as file names.
func hasDotSegment(key string) bool {
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// CVOnly is the list of a site that names none: its CV alone, at key,
// which is checked by the list's own rules.
func CVOnly(key string) (Documents, error) {
	d, err := documentEntry{Slug: LegacyDocument, Title: "CV", Key: key, Page: "/cv/"}.document()
	if err != nil {
		return Documents{}, err
	}
	return Documents{list: []Document{d}}, nil
}

// SingleDocument is CVOnly for a key known to be good; it panics on a
// bad one, as regexp.MustCompile does.
func SingleDocument(key string) Documents {
	ds, err := CVOnly(key)
	if err != nil {
		panic(err)
	}
	return ds
}

// All returns the documents in the order listed.
func (ds Documents) All() []Document { return append([]Document(nil), ds.list...) }

// Default is the document of a request that names none: the CV if it is
// listed, else the first listed (the zero Document for an empty list).
func (ds Documents) Default() Document {
	if d, ok := ds.lookup(LegacyDocument); ok {
		return d
	}
	if len(ds.list) == 0 {
		return Document{}
	}
	return ds.list[0]
}

// Find returns the document with a slug; "" means the default.
func (ds Documents) Find(slug string) (Document, bool) {
	if slug == "" {
		return ds.Default(), len(ds.list) > 0
	}
	return ds.lookup(slug)
}

// lookup finds a slug exactly; "" is never listed.
func (ds Documents) lookup(slug string) (Document, bool) {
	for _, d := range ds.list {
		if d.Slug == slug {
			return d, true
		}
	}
	return Document{}, false
}

// Recorded returns the document a stored request or code names. Records
// made before there were several documents name none: theirs was the CV.
func (ds Documents) Recorded(slug string) (Document, bool) {
	if slug == "" {
		slug = LegacyDocument
	}
	return ds.lookup(slug)
}

// Listed returns the document a slug names exactly; "" names none (unlike
// Find, where it means the default).
func (ds Documents) Listed(slug string) (Document, bool) { return ds.lookup(slug) }

// Title names a recorded document in the owner's messages: its title if
// it is still listed, else its slug.
func (ds Documents) Title(slug string) string {
	if d, ok := ds.Recorded(slug); ok {
		return d.Title
	}
	if slug == "" {
		return "CV"
	}
	return slug
}

// Len is how many documents are listed.
func (ds Documents) Len() int { return len(ds.list) }
