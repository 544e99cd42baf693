package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/embedded"
)

func TestListAndEraseOnTheEmbeddedStore(t *testing.T) {
	s := localStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	add := func(id, name, email string) {
		r := access.Request{ID: id, Name: name, Email: email, Phone: "+447400900123", Status: access.StatusPending,
			Consent: access.Consent{PolicyVersion: "2026-11-24", At: now}, CreatedAt: now, DeleteAt: now.Add(time.Hour)}
		c := access.Code{RequestID: id, Hash: []byte("h"), ExpiresAt: now.Add(time.Minute), SentAt: now, DeleteAt: now.Add(time.Hour)}
		require.NoError(t, s.CreateRequest(context.Background(), r, c, nil))
	}
	add("6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01", "=HYPERLINK(\"http://evil.example\",\"x\")", "ada@example.com")
	add("0b7e2d1f-5a4c-4e3b-8f2a-9c8d7e6f5a4b", "Grace Hopper", "grace@example.com")
	add("9d3c1b2a-1111-4a2b-8c3d-4e5f6a7b8c9d", "Mallory", "=cmd|'/c calc'!a0@example.com")

	var out bytes.Buffer
	require.NoError(t, run([]string{"list"}, &out))
	var recs []record
	require.NoError(t, json.Unmarshal(out.Bytes(), &recs))
	require.Len(t, recs, 3)
	assert.Equal(t, "2026-11-24", recs[0].PolicyVersion)
	assert.Equal(t, now.Format(time.RFC3339), recs[0].ConsentAt)

	out.Reset()
	require.NoError(t, run([]string{"list", "-format", "csv"}, &out))
	rows, err := csv.NewReader(&out).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 4)
	assert.Equal(t, "name", rows[0][3])
	names := []string{rows[1][3], rows[2][3], rows[3][3]}
	for _, row := range rows[1:] {
		assert.NotRegexp(t, `^[=+\-@]`, row[4], "the email column is defused too")
	}
	assert.Contains(t, names, `'=HYPERLINK("http://evil.example","x")`, "a formula is defused")
	assert.Contains(t, names, "Grace Hopper")

	out.Reset()
	require.NoError(t, run([]string{"erase", "-email", "Ada@EXAMPLE.com"}, &out))
	assert.Contains(t, out.String(), "erased 1 request")
	out.Reset()
	require.NoError(t, run([]string{"list"}, &out))
	assert.NotContains(t, out.String(), "ada@example.com")
	assert.Contains(t, out.String(), "grace@example.com")

	assert.Error(t, run([]string{"erase", "-email", "not an address"}, &out))
	assert.Error(t, run([]string{"list", "-format", "xml"}, &out))
	assert.Error(t, run(nil, &out))
}

func TestCSVDefusesEveryVisitorColumn(t *testing.T) {
	s := localStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	columns := map[string]int{"name": 3, "email": 4, "phone": 5, "company": 6, "location": 7}
	want := map[string]string{} // request id -> the defused cell
	for col := range columns {
		for _, trigger := range []string{"=", "+", "-", "@", "\t", "\r"} {
			id := uuid.NewString()
			v := trigger + "1+1"
			r := access.Request{ID: id, Name: "Ada", Email: "ada@example.com", Status: access.StatusPending,
				Consent: access.Consent{PolicyVersion: "2026-11-24", At: now}, CreatedAt: now, DeleteAt: now.Add(time.Hour)}
			switch col {
			case "name":
				r.Name = v
			case "email":
				r.Email = v
			case "phone":
				r.Phone = v
			case "company":
				r.Company = v
			case "location":
				r.Location = v
			}
			c := access.Code{RequestID: id, Hash: []byte("h"), ExpiresAt: now.Add(time.Minute), SentAt: now, DeleteAt: now.Add(time.Hour)}
			require.NoError(t, s.CreateRequest(context.Background(), r, c, nil))
			want[id+" "+col] = "'" + v
		}
	}

	var out bytes.Buffer
	require.NoError(t, run([]string{"list", "-format", "csv"}, &out))
	rows, err := csv.NewReader(&out).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 31)
	for _, row := range rows[1:] {
		for col, i := range columns {
			if w, ok := want[row[0]+" "+col]; ok {
				assert.Equal(t, w, row[i], "%s column", col)
			}
		}
	}
}

// localStore points cv-owner at a fresh embedded store and returns it.
func localStore(t *testing.T) *embedded.Store {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("CV_BACKEND", "local")
	t.Setenv("CV_DATA_DIR", dir)
	s, err := embedded.OpenStore(dir + "/cv-access.db")
	require.NoError(t, err)
	return s
}
