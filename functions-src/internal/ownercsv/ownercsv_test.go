package ownercsv_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/ownercsv"
)

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Ada Lovelace", "Ada Lovelace"},
		{"Smith-Jones", "Smith-Jones"},
		{"ada+cv@example.com", "ada+cv@example.com"},
		{"", ""},
		{"=1+1", "'=1+1"},
		{"+447400900123", "'+447400900123"},
		{"-2", "'-2"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t'=1"},
		{"\r=1", "'\r'=1"},
		{" =1", " '=1"},
		{`"=1"`, `"'=1"`},
		{`x;=1+1`, `x;'=1+1`},
		{`x,=1+1`, `x,'=1+1`},
		{`x; "=1+1"`, `x; "'=1+1"`},
		{"x\n@1", "x\n'@1"},
		{"x\u00a0;\u00a0-1", "x\u00a0;\u00a0'-1"},
		{"a;b,c", "a;b,c"},
		{"'=1", "'=1"},
		{`=HYPERLINK("http://evil.example","x")`, `'=HYPERLINK("http://evil.example","x")`},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ownercsv.Text(tt.in), "%q", tt.in)
	}
}

func TestWriteLayout(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 15, 0, 0, time.FixedZone("CET", 3600))
	var out bytes.Buffer
	require.NoError(t, ownercsv.Write(&out, []access.Request{{
		ID: "6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01", Name: "Ada Lovelace", Email: "ada@example.com",
		Phone: "+447400900123", Company: "Engines, Ltd", Location: "x;=1+1", Status: access.StatusPending,
		Consent: access.Consent{PolicyVersion: "2026-11-24", At: at}, CreatedAt: at, DeleteAt: at.Add(24 * time.Hour),
	}, {
		ID: "7f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a02", Name: "Grace", Email: "grace@example.com", Status: access.StatusVerified,
		Document: "portfolio", Consent: access.Consent{PolicyVersion: "2026-11-30", At: at}, CreatedAt: at, VerifiedAt: at, DeleteAt: at,
	}}))
	assert.Equal(t, "request_id,created_at,status,name,email,phone,company,location,"+
		"consent_policy_version,consent_at,verified_at,delete_at,document\n"+
		`6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01,2026-11-30T08:15:00Z,PENDING,Ada Lovelace,ada@example.com,'+447400900123,`+
		`"Engines, Ltd",x;'=1+1,2026-11-24,2026-11-30T08:15:00Z,,2026-12-01T08:15:00Z,cv`+"\n"+
		`7f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a02,2026-11-30T08:15:00Z,VERIFIED,Grace,grace@example.com,,,,2026-11-30,`+
		`2026-11-30T08:15:00Z,2026-11-30T08:15:00Z,2026-11-30T08:15:00Z,portfolio`+"\n", out.String(), "a request from before names the CV")
	assert.Equal(t, "portfolio", ownercsv.ToRecord(access.Request{Document: "portfolio"}).Document)
	assert.Equal(t, "cv", ownercsv.ToRecord(access.Request{}).Document)
}

// hostile are values meant to become formulas under one separator or another.
func hostile() []string {
	var vals []string
	for _, trigger := range []string{"=", "+", "-", "@", "\t", "\r"} {
		for _, sep := range []string{"", ",", ";", "\t", "\n", "\r", "\r\n", ", ", "; "} {
			for _, pad := range []string{"", " ", `"`, ` "`, `" `, `""`, "\u00a0", `  "  " `} {
				v := pad + trigger + "1+1"
				if sep != "" {
					v = "x" + sep + v
				}
				vals = append(vals, v, v+sep+trigger+"cmd|'/c calc'!A0")
			}
		}
	}
	return append(vals, `a;=1,+2;@3`, `"a";"=1"`, `x"";"=1`, `=1;=2;=3`, `;;;=1`, `,,,-1`)
}

func TestNoCellStartsAFormulaWhicheverTheSeparator(t *testing.T) {
	vals := hostile()
	reqs := make([]access.Request, 0, len(vals))
	for _, v := range vals {
		reqs = append(reqs, access.Request{ID: "6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01",
			Name: v, Email: v, Phone: v, Company: v, Location: v, Status: access.StatusPending})
	}
	var out bytes.Buffer
	require.NoError(t, ownercsv.Write(&out, reqs))
	assertInert(t, out.String())
}

func FuzzText(f *testing.F) {
	for _, v := range hostile() {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		once := ownercsv.Text(v)
		if ownercsv.Text(once) != once {
			t.Fatalf("Text is not stable: %q -> %q -> %q", v, once, ownercsv.Text(once))
		}
		var out bytes.Buffer
		if err := ownercsv.Write(&out, []access.Request{{Name: v, Email: v, Phone: v, Company: v, Location: v}}); err != nil {
			t.Fatal(err)
		}
		assertInert(t, out.String())
	})
}

// assertInert splits the file every way a spreadsheet might, naively and
// as CSV, on ',' ';' and tab, and checks that no cell starts a formula
// once leading spaces and double quotes are trimmed.
func assertInert(t *testing.T, file string) {
	t.Helper()
	check := func(how, cell string) {
		t.Helper()
		trimmed := strings.TrimLeftFunc(cell, func(r rune) bool {
			return r == ' ' || r == '"' || unicode.IsSpace(r) && r != '\t' && r != '\r' && r != '\n'
		})
		if trimmed != "" && strings.ContainsRune("=+-@\t\r", []rune(trimmed)[0]) {
			t.Fatalf("split %s, the cell %q starts a formula", how, cell)
		}
	}
	lines := strings.FieldsFunc(file, func(r rune) bool { return r == '\n' || r == '\r' })
	for _, sep := range []string{",", ";", "\t"} {
		for _, line := range lines {
			for _, cell := range strings.Split(line, sep) {
				check("naively on "+sep, cell)
			}
		}
		r := csv.NewReader(strings.NewReader(file))
		r.Comma, r.LazyQuotes, r.FieldsPerRecord = []rune(sep)[0], true, -1
		rows, err := r.ReadAll()
		require.NoError(t, err)
		for _, row := range rows {
			for _, cell := range row {
				check("as CSV on "+sep, cell)
			}
		}
	}
}
