package access_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

const twoDocuments = `{"documents": [
  {"slug": "cv", "title": "CV", "key": "cv.pdf", "page": "/cv/"},
  {"slug": "portfolio", "title": "portfolio", "key": "work/portfolio.pdf", "page": "/portfolio/", "link_seconds": 300}
]}`

func parseDocs(t *testing.T, raw string) access.Documents {
	t.Helper()
	docs, err := access.ParseDocuments([]byte(raw))
	require.NoError(t, err)
	return docs
}

func withDocuments(docs access.Documents) option {
	return func(d *access.Deps, _ *access.Policy, _ *access.Sender) { d.Documents = docs }
}

func TestParseDocumentsFillsDefaults(t *testing.T) {
	docs := parseDocs(t, `{"documents":[{"slug":"reading-list","title":"reading list"},{"slug":"cv","title":"CV","key":"me/cv.pdf","page":"/cv/","link_seconds":30}]}`)
	require.Equal(t, 2, docs.Len())
	assert.Equal(t, access.Document{Slug: "reading-list", Title: "reading list", Key: "reading-list.pdf", Page: "/", LinkTTL: 2 * time.Minute},
		docs.Default(), "the first listed is the default; key, page and lifetime have defaults")
	cv, ok := docs.Find("cv")
	require.True(t, ok)
	assert.Equal(t, access.Document{Slug: "cv", Title: "CV", Key: "me/cv.pdf", Page: "/cv/", LinkTTL: 30 * time.Second}, cv)
	_, ok = docs.Find("CV")
	assert.False(t, ok, "slugs are matched exactly")
	rec, ok := docs.Recorded("")
	require.True(t, ok, "a record from before there were several documents is the CV's")
	assert.Equal(t, "cv", rec.Slug)
}

func TestParseDocumentsRefusesWhatWouldBreak(t *testing.T) {
	many := make([]string, access.MaxDocuments+1)
	for i := range many {
		many[i] = fmt.Sprintf(`{"slug":"d%d","title":"D"}`, i)
	}
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"none", `{"documents":[]}`, "lists none"},
		{"too many", `{"documents":[` + strings.Join(many, ",") + `]}`, "at most 20"},
		{"not json", `documents: []`, "want {"},
		{"unknown field", `{"documents":[{"slug":"cv","title":"CV","file":"/home/me/cv.pdf"}]}`, `unknown field "file"`},
		{"two objects", `{"documents":[{"slug":"cv","title":"CV"}]} {}`, "one JSON object"},
		{"bad slug", `{"documents":[{"slug":"My CV","title":"CV"}]}`, `document 1: "slug" "My CV"`},
		{"slug ends in hyphen", `{"documents":[{"slug":"cv-","title":"CV"}]}`, `"slug" "cv-"`},
		{"slug listed twice", `{"documents":[{"slug":"cv","title":"CV"},{"slug":"cv","title":"CV","key":"b.pdf"}]}`, `document "cv": slug listed twice`},
		{"key shared", `{"documents":[{"slug":"a","title":"A","key":"x.pdf"},{"slug":"b","title":"B","key":"x.pdf"}]}`, `document "b": key "x.pdf" is another document's too`},
		{"no title", `{"documents":[{"slug":"cv"}]}`, `document "cv": "title" is missing`},
		{"title on two lines", `{"documents":[{"slug":"cv","title":"C\nV"}]}`, `"title": use at most 60`},
		{"title too long", `{"documents":[{"slug":"cv","title":"` + strings.Repeat("x", 61) + `"}]}`, `"title": use at most 60`},
		{"wildcard key", `{"documents":[{"slug":"cv","title":"CV","key":"*.pdf"}]}`, `"key" "*.pdf"`},
		{"absolute key", `{"documents":[{"slug":"cv","title":"CV","key":"/cv.pdf"}]}`, `"key" "/cv.pdf"`},
		{"key climbs out", `{"documents":[{"slug":"cv","title":"CV","key":"../secret.pdf"}]}`, `"key" "../secret.pdf"`},
		{"key with empty segment", `{"documents":[{"slug":"cv","title":"CV","key":"a//b.pdf"}]}`, `"key" "a//b.pdf"`},
		{"page not a path", `{"documents":[{"slug":"cv","title":"CV","page":"https://evil.example/"}]}`, `"page" "https://evil.example/"`},
		{"link too short", `{"documents":[{"slug":"cv","title":"CV","link_seconds":5}]}`, `"link_seconds" 5: want 30 to 3600`},
		{"link too long", `{"documents":[{"slug":"cv","title":"CV","link_seconds":86400}]}`, `"link_seconds" 86400`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := access.ParseDocuments([]byte(tc.raw))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// requestFor asks for doc (empty: the default) and returns the request id
// and the code emailed.
func (h *harness) requestFor(t *testing.T, doc string) (string, string) {
	t.Helper()
	in := ada
	in.Document = doc
	out, err := h.svc.RequestAccess(context.Background(), in)
	require.NoError(t, err)
	return out.RequestID, h.mail.lastCode(t)
}

func TestEachDocumentOnlyThroughItsOwnRequest(t *testing.T) {
	h := newHarness(t)
	h.svc = h.build(t, withDocuments(parseDocs(t, twoDocuments)))

	portfolioID, portfolioCode := h.requestFor(t, "portfolio")
	mail := h.mail.emails[len(h.mail.emails)-1]
	assert.Contains(t, mail.Subject, "Alex Sample's portfolio")
	assert.Contains(t, mail.Text, "https://cv.example.com/portfolio/", "the email links to the document's own page")
	sms := h.sms.texts[len(h.sms.texts)-1]
	assert.Contains(t, sms.Text, "download Alex Sample's portfolio.")

	cvID, cvCode := h.requestFor(t, "")
	assert.Contains(t, h.mail.emails[len(h.mail.emails)-1].Subject, "Alex Sample's CV", "no document named: the first listed")

	// The page's hint names the wrong document: the link is still the
	// request's own.
	g, err := h.svc.VerifyAccess(context.Background(), access.VerifyInput{RequestID: portfolioID, OTP: portfolioCode, Document: "cv", ClientIP: "192.0.2.1"})
	require.NoError(t, err)
	assert.Equal(t, "https://files.example/work/portfolio.pdf?ttl=5m0s", g.URL)
	assert.Equal(t, 5*time.Minute, g.ExpiresIn, "the document's own link lifetime")
	assert.Equal(t, []string{"cv", "portfolio"}, h.links.checked, "the hinted document is checked beside the attempt, the request's own before the link")

	g, err = h.verify(cvID, cvCode)
	require.NoError(t, err)
	assert.Equal(t, "https://files.example/cv.pdf?ttl=2m0s", g.URL)
	assert.Equal(t, []string{"cv", "portfolio"}, h.links.checked, "each document is checked once per process")

	req, err := h.store.GetRequest(context.Background(), portfolioID, h.clock.Now())
	require.NoError(t, err)
	assert.Equal(t, "portfolio", req.Document, "the request records its document")
}

func TestUnknownDocumentIsAFieldError(t *testing.T) {
	h := newHarness(t)
	h.svc = h.build(t, withDocuments(parseDocs(t, twoDocuments)))
	in := ada
	in.Document, in.Name = "salaries", ""
	_, err := h.svc.RequestAccess(context.Background(), in)
	var e *access.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, access.KindInvalid, e.Kind)
	assert.Equal(t, map[string]string{"document": "This document is not offered here.", "name": "Enter your name."}, e.Fields,
		"every field's problem at once")
	assert.Empty(t, h.mail.emails, "nothing sent")

	id, code := h.requestFor(t, "cv")
	_, err = h.svc.VerifyAccess(context.Background(), access.VerifyInput{RequestID: id, OTP: code, Document: "salaries"})
	require.ErrorAs(t, err, &e)
	assert.Equal(t, map[string]string{"document": "This document is not offered here."}, e.Fields)
	_, err = h.verify(id, code)
	require.NoError(t, err, "a refused hint spent no attempt")
}

func TestWithdrawnDocumentSpendsNoCode(t *testing.T) {
	h := newHarness(t)
	h.svc = h.build(t, withDocuments(parseDocs(t, twoDocuments)))
	id, code := h.requestFor(t, "portfolio")

	// The owner takes the portfolio off the list and the functions restart.
	h.svc = h.build(t, withDocuments(parseDocs(t, `{"documents":[{"slug":"cv","title":"CV","page":"/cv/"}]}`)))
	_, err := h.verify(id, code)
	assert.Equal(t, "document_withdrawn", errCode(t, err))
	h.clock.Advance(2 * time.Minute)
	_, err = h.svc.Resend(context.Background(), id, "192.0.2.1")
	assert.Equal(t, "document_withdrawn", errCode(t, err), "nor is a code resent for it")
	assert.Zero(t, h.links.calls.Load(), "no link was signed")

	// Listed again: the code still works.
	h.svc = h.build(t, withDocuments(parseDocs(t, twoDocuments)))
	g, err := h.verify(id, code)
	require.NoError(t, err)
	assert.Contains(t, g.URL, "work/portfolio.pdf")
}

func TestOneDocumentsFailedCheckLeavesTheOthers(t *testing.T) {
	h := newHarness(t)
	h.svc = h.build(t, withDocuments(parseDocs(t, twoDocuments)))
	h.links.setCheck(nil, fmt.Errorf("%w: no such object", access.ErrCVMissing))
	id, code := h.requestFor(t, "portfolio")
	_, err := h.svc.VerifyAccess(context.Background(), access.VerifyInput{RequestID: id, OTP: code, Document: "portfolio", ClientIP: "192.0.2.7"})
	assert.Equal(t, "download_unavailable", errCode(t, err))

	h.links.failCheck(nil)
	cvID, cvCode := h.requestFor(t, "cv")
	_, err = h.verify(cvID, cvCode)
	require.NoError(t, err)
	_, err = h.verify(id, code)
	require.NoError(t, err, "a failed check is not remembered: the fixed document downloads")
}

func TestOwnerIsToldWhichDocument(t *testing.T) {
	n := access.Notifier{Documents: parseDocs(t, twoDocuments)}
	assert.Equal(t, "portfolio", n.Documents.Title("portfolio"))
	assert.Equal(t, "CV", n.Documents.Title(""), "a record from before names the CV")
	assert.Equal(t, "old-report", n.Documents.Title("old-report"), "a document since taken off the list is named by its slug")
	assert.Equal(t, "Someone got a link to your portfolio", access.OwnerSubject("portfolio"))
}
