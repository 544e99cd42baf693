// Package ownercsv writes the owner's list of requests as CSV that is safe
// to open in a spreadsheet, whatever separator the spreadsheet splits on.
package ownercsv

import (
	"encoding/csv"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// header is the first row.
var header = []string{"request_id", "created_at", "status", "name", "email", "phone", "company", "location",
	"consent_policy_version", "consent_at", "verified_at", "delete_at"}

// Write writes a header row and one row per request. Times are RFC 3339
// UTC, empty when unset. Every column a visitor typed goes through Text.
func Write(out io.Writer, reqs []access.Request) error {
	w := csv.NewWriter(out)
	if err := w.Write(header); err != nil {
		return err
	}
	for _, r := range reqs {
		if err := w.Write([]string{r.ID, ts(r.CreatedAt), string(r.Status),
			Text(r.Name), Text(r.Email), Text(r.Phone), Text(r.Company), Text(r.Location),
			r.Consent.PolicyVersion, ts(r.Consent.At), ts(r.VerifiedAt), ts(r.DeleteAt)}); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Text makes visitor text inert in a spreadsheet: a cell that starts with
// = + - @, a tab or a carriage return is run as a formula ("=HYPERLINK(...)"),
// so such a start gets an apostrophe in front, which spreadsheets read as
// "this is text".
//
// Where a cell starts is the spreadsheet's choice, not ours. Spreadsheets
// in many European locales split lines on ';' and take no notice of the
// quotes encoding/csv writes for ',', so "x;=1+1" is two cells there, the
// second a formula. Other imports split on tabs, or on raw line breaks. So
// every stretch after , ; tab or a line break counts as the start of a
// cell too, and so do the spaces and double quotes a spreadsheet may trim
// off before it looks at the first character.
func Text(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 1)
	start := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if start {
			switch {
			case strings.ContainsRune("=+-@\t\r", r):
				b.WriteByte('\'')
				start = false
			case r == ' ' || r == '"' || r != '\n' && unicode.IsSpace(r):
				// still before the cell's first character
			default:
				start = false
			}
		}
		b.WriteString(s[i : i+n])
		if strings.ContainsRune(",;\t\r\n", r) {
			start = true
		}
		i += n
	}
	return b.String()
}
