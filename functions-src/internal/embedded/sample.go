package embedded

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SampleCV is the placeholder CV the embedded mode serves until the owner
// puts their own file in its place.
//
//go:embed sample-cv.pdf
var SampleCV []byte

// EnsureSamples writes a placeholder for each document whose file is not
// there yet: the sample CV for "cv", and for any other a one-page PDF
// naming the document, so `make dev` downloads something for every slug.
func EnsureSamples(l *Links) error {
	for _, doc := range l.Documents.All() {
		path := l.File(doc)
		if _, err := os.Stat(path); err == nil {
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("document %q at %s: %w", doc.Slug, path, err)
		}
		body := SampleCV
		if doc.Slug != "cv" {
			body = SamplePDF("Sample document: " + doc.Title)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("document %q at %s: %w", doc.Slug, path, err)
		}
		if err := os.WriteFile(path, body, 0o600); err != nil {
			return fmt.Errorf("document %q at %s: %w", doc.Slug, path, err)
		}
	}
	return nil
}

// SamplePDF is a valid one-page PDF showing one line of text (ASCII; any
// other character is shown as "?").
func SamplePDF(line string) []byte {
	var text strings.Builder
	for _, r := range line {
		switch {
		case r == '(' || r == ')' || r == '\\':
			text.WriteByte('\\')
			text.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			text.WriteRune(r)
		default:
			text.WriteByte('?')
		}
	}
	stream := fmt.Sprintf("BT /F1 18 Tf 72 720 Td (%s) Tj ET", text.String())
	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(stream), stream),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objects))
	for i, o := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}
