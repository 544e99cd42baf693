// Package ownercsv is the owner's export of the requests: as CSV that is
// safe to open in a spreadsheet, whatever separator the spreadsheet
// splits on, and as JSON records (Record). cv-owner and the owner page
// write the same.
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

// Record is the JSON shape of a request, in `cv-owner list` and on the
// owner page. Times are RFC 3339 UTC; verifiedAt is left out while unset.
type Record struct {
	RequestID     string `json:"requestId"`
	CreatedAt     string `json:"createdAt"`
	Status        string `json:"status"`
	Name          string `json:"name"`
	Email         string `json:"email"`
	Phone         string `json:"phone,omitempty"`
	Company       string `json:"company,omitempty"`
	Location      string `json:"location,omitempty"`
	PolicyVersion string `json:"consentPolicyVersion"`
	ConsentAt     string `json:"consentAt"`
	VerifiedAt    string `json:"verifiedAt,omitempty"`
	DeleteAt      string `json:"deleteAt"`
	// Document is the slug of the document asked for; "cv" for a
	// request made before there were several.
	Document string `json:"document"`
}

// ToRecord is a request's Record.
func ToRecord(r access.Request) Record {
	rec := Record{
		RequestID: r.ID, CreatedAt: ts(r.CreatedAt), Status: string(r.Status),
		Name: r.Name, Email: r.Email, Phone: r.Phone, Company: r.Company, Location: r.Location,
		PolicyVersion: r.Consent.PolicyVersion, ConsentAt: ts(r.Consent.At),
		VerifiedAt: ts(r.VerifiedAt), DeleteAt: ts(r.DeleteAt), Document: r.Document,
	}
	if rec.Document == "" {
		rec.Document = "cv"
	}
	return rec
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
