package access

import (
	"fmt"
	"html"
	"net/url"
	"strings"
	"time"
)

// Sender describes who is asking the visitor for proof, as shown in
// messages. Visitor-supplied text never goes into a message: the address
// owner may not be the person who filled in the form, and the form must
// not become a way to send them words of a stranger's choosing.
type Sender struct {
	OwnerName string // whose CV it is, e.g. "Ada Lovelace"
	SiteURL   string // e.g. "https://ada.example"
}

// Host is the site's host name, used in messages and the WebOTP line.
func (s Sender) Host() string {
	if u, err := url.Parse(s.SiteURL); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "localhost"
}

type messageData struct {
	Code      string
	Owner     string
	Document  string // the document's title
	Host      string
	PageURL   string
	Minutes   int
	Retention int
}

// emailHTML is filled with fmt and html.EscapeString rather than
// html/template: the template package looks methods up by name through
// reflection, which stops the linker from dropping unused code and nearly
// doubles the function binary. Every value is escaped; none is
// visitor-supplied.
const emailHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your code</title></head>
<body style="font-family:system-ui,sans-serif;line-height:1.5;color:#1a1a1a">
<p>Your one-time code to download %[2]s&#39;s %[7]s is:</p>
<p style="font-size:28px;font-weight:bold;letter-spacing:6px;font-family:monospace">%[1]s</p>
<p>Enter it on <a href="%[4]s">%[3]s</a> within %[5]d minutes. It works once.</p>
<p style="color:#555">Someone, hopefully you, asked for this code on %[3]s with this email address.
If it was not you, ignore this message: nothing is shared without the code, and the request
is deleted after %[6]d days.</p>
</body></html>
`

const emailText = `Your one-time code to download %[2]s's %[7]s is:

    %[1]s

Enter it on %[4]s within %[5]d minutes. It works once.

Someone, hopefully you, asked for this code on %[3]s with this email address.
If it was not you, ignore this message: nothing is shared without the code,
and the request is deleted after %[6]d days.
`

func (s *Service) data(doc Document, code string) messageData {
	return messageData{
		Code:      code,
		Owner:     s.sender.OwnerName,
		Document:  doc.Title,
		Host:      s.sender.Host(),
		PageURL:   strings.TrimRight(s.sender.SiteURL, "/") + doc.Page,
		Minutes:   int(s.policy.CodeTTL / time.Minute),
		Retention: int(s.policy.Retention / (24 * time.Hour)),
	}
}

func (s *Service) codeEmail(doc Document, to, code string) Email {
	d := s.data(doc, code)
	esc := html.EscapeString
	return Email{
		To:      to,
		Subject: fmt.Sprintf("%s is your code for %s's %s", code, d.Owner, d.Document),
		Text:    fmt.Sprintf(emailText, d.Code, d.Owner, d.Host, d.PageURL, d.Minutes, d.Retention, d.Document),
		HTML:    fmt.Sprintf(emailHTML, esc(d.Code), esc(d.Owner), esc(d.Host), esc(d.PageURL), d.Minutes, d.Retention, esc(d.Document)),
	}
}

// codeSMS ends with the WebOTP line "@host #code" so a phone's browser can
// offer to fill the code in on that site only.
func (s *Service) codeSMS(doc Document, to, code string) SMS {
	d := s.data(doc, code)
	return SMS{
		To: to,
		Text: fmt.Sprintf("%s is your code to download %s's %s. It expires in %d minutes.\n\n@%s #%s",
			code, d.Owner, d.Document, d.Minutes, d.Host, code),
	}
}
