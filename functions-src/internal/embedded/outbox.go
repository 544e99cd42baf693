package embedded

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// Outbox "sends" mail and SMS by writing them to a folder: each email as an
// RFC 5322 .eml file (open it in any mail client), each SMS as a .txt file.
// Names start with a fixed-width UTC timestamp, so sorting by name puts the
// newest last. Files are written to a temporary name and renamed, so a
// reader never sees half a message.
type Outbox struct {
	Dir  string
	From string           // the From header, e.g. "CV access <cv@example.com>"
	Now  func() time.Time // for the Date header
}

var (
	_ access.Mailer    = (*Outbox)(nil)
	_ access.SMSSender = (*Outbox)(nil)
)

// SendEmail implements access.Mailer.
func (o *Outbox) SendEmail(_ context.Context, m access.Email) error {
	raw, err := o.render(m)
	if err != nil {
		return err
	}
	_, err = o.write("email", ".eml", raw)
	return err
}

// SendSMS implements access.SMSSender.
func (o *Outbox) SendSMS(_ context.Context, m access.SMS) error {
	body := fmt.Sprintf("To: %s\nDate: %s\n\n%s\n", m.To, o.Now().UTC().Format(time.RFC1123Z), m.Text)
	_, err := o.write("sms", ".txt", []byte(body))
	return err
}

func (o *Outbox) write(kind, ext string, data []byte) (string, error) {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	// Named by the wall clock, not o.Now: the name records the order files
	// were written in, which must hold even when tests freeze the clock.
	name := fmt.Sprintf("%s-%s-%s%s", time.Now().UTC().Format("20060102T150405.000000000Z"), kind, randomHex(4), ext)
	tmp, err := os.CreateTemp(o.Dir, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", fmt.Errorf("outbox: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	path := filepath.Join(o.Dir, name)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	return path, nil
}

// render builds a multipart/alternative message with CRLF line endings.
// Header values are either validated addresses or Q-encoded, so nothing a
// visitor typed can add a header.
func (o *Outbox) render(m access.Email) ([]byte, error) {
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return nil, fmt.Errorf("outbox: bad recipient address")
	}
	from, err := mail.ParseAddress(o.From)
	if err != nil {
		return nil, fmt.Errorf("outbox: bad sender address %q", o.From)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	h("From", from.String())
	h("To", to.String())
	h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h("Date", o.Now().UTC().Format(time.RFC1123Z))
	h("Message-ID", fmt.Sprintf("<%s@%s>", randomHex(12), domainOf(from.Address)))
	h("MIME-Version", "1.0")
	h("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	buf.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := io.WriteString(qp, strings.ReplaceAll(part.body, "\n", "\r\n")); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Message is an outbox file read back, for the dev outbox page and tests.
type Message struct {
	File    string // base name
	Kind    string // "email" or "sms"
	To      string
	Subject string // emails only
	Date    time.Time
	Text    string // the plain-text body
}

// ReadOutbox returns the newest messages first, at most limit (0 = all).
func ReadOutbox(dir string, limit int) ([]Message, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() && !strings.HasPrefix(n, ".") && (strings.HasSuffix(n, ".eml") || strings.HasSuffix(n, ".txt")) {
			names = append(names, n)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	if limit > 0 && len(names) > limit {
		names = names[:limit]
	}
	out := make([]Message, 0, len(names))
	for _, n := range names {
		m, err := ReadMessage(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// ReadMessage parses one outbox file.
func ReadMessage(path string) (Message, error) {
	f, err := os.Open(path)
	if err != nil {
		return Message{}, err
	}
	defer f.Close()
	msg, err := mail.ReadMessage(f)
	if err != nil {
		return Message{}, fmt.Errorf("outbox %s: %w", filepath.Base(path), err)
	}
	m := Message{File: filepath.Base(path), To: msg.Header.Get("To")}
	m.Date, _ = msg.Header.Date()
	if strings.HasSuffix(path, ".txt") {
		m.Kind = "sms"
		body, err := io.ReadAll(msg.Body)
		m.Text = strings.TrimRight(string(body), "\n")
		return m, err
	}
	m.Kind = "email"
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return Message{}, err
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return Message{}, err
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Message{}, err
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			// multipart.Reader undoes quoted-printable itself.
			body, err := io.ReadAll(p)
			if err != nil {
				return Message{}, err
			}
			m.Text = strings.ReplaceAll(string(body), "\r\n", "\n")
		}
	}
	return m, nil
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "localhost"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
