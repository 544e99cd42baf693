package embedded

import (
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// The stored shapes, kept apart from the domain types so the file format is
// explicit. Times are Unix seconds, as in the DynamoDB tables.

type requestRecord struct {
	Name          string `json:"name"`
	Email         string `json:"email"`
	Phone         string `json:"phone,omitempty"`
	Company       string `json:"company,omitempty"`
	Location      string `json:"location,omitempty"`
	Document      string `json:"document,omitempty"`
	PolicyVersion string `json:"consent_policy_version"`
	ConsentAt     int64  `json:"consent_at"`
	Status        string `json:"otp_status"`
	CreatedAt     int64  `json:"timestamp"`
	VerifiedAt    int64  `json:"verified_at,omitempty"`
	NotifiedAt    int64  `json:"notified_at,omitempty"`
	DeleteAt      int64  `json:"delete_at"`
}

type codeRecord struct {
	Document  string `json:"document,omitempty"`
	Hash      []byte `json:"otp_hash"`
	ExpiresAt int64  `json:"expires"`
	Attempts  int    `json:"attempts"`
	Used      bool   `json:"used"`
	SentAt    int64  `json:"sent_at"`
	Resends   int    `json:"resends"`
	DeleteAt  int64  `json:"delete_at"`
}

func toRequestRecord(r access.Request) requestRecord {
	return requestRecord{
		Name: r.Name, Email: r.Email, Phone: r.Phone, Company: r.Company, Location: r.Location,
		Document: r.Document, PolicyVersion: r.Consent.PolicyVersion, ConsentAt: r.Consent.At.Unix(),
		Status: string(r.Status), CreatedAt: r.CreatedAt.Unix(),
		VerifiedAt: unixOrZero(r.VerifiedAt), NotifiedAt: unixOrZero(r.NotifiedAt), DeleteAt: r.DeleteAt.Unix(),
	}
}

func (rec requestRecord) request(id string) access.Request {
	return access.Request{
		ID: id, Name: rec.Name, Email: rec.Email, Phone: rec.Phone,
		Company: rec.Company, Location: rec.Location, Document: rec.Document,
		Consent:    access.Consent{PolicyVersion: rec.PolicyVersion, At: unix(rec.ConsentAt)},
		Status:     access.Status(rec.Status),
		CreatedAt:  unix(rec.CreatedAt),
		VerifiedAt: unixOrZeroTime(rec.VerifiedAt),
		NotifiedAt: unixOrZeroTime(rec.NotifiedAt),
		DeleteAt:   unix(rec.DeleteAt),
	}
}

func toCodeRecord(c access.Code) codeRecord {
	return codeRecord{
		Document: c.Document, Hash: c.Hash, ExpiresAt: c.ExpiresAt.Unix(), Attempts: c.Attempts, Used: c.Used,
		SentAt: c.SentAt.Unix(), Resends: c.Resends, DeleteAt: c.DeleteAt.Unix(),
	}
}

func (rec codeRecord) code(id string) access.Code {
	return access.Code{
		RequestID: id, Document: rec.Document, Hash: rec.Hash, ExpiresAt: unix(rec.ExpiresAt), Attempts: rec.Attempts,
		Used: rec.Used, SentAt: unix(rec.SentAt), Resends: rec.Resends, DeleteAt: unix(rec.DeleteAt),
	}
}

func unix(s int64) time.Time { return time.Unix(s, 0).UTC() }

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func unixOrZeroTime(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return unix(s)
}
