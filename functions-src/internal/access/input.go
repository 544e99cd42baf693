package access

import (
	"errors"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/net/idna"
)

// Field limits. Generous for real people, small enough that a record stays
// a few hundred bytes.
const (
	MaxNameLen     = 100 // runes
	MaxCompanyLen  = 100
	MaxLocationLen = 100
	MaxEmailLen    = 254 // RFC 5321 path limit
	maxLocalLen    = 64
)

// AccessInput is what a visitor submits on the form. Values arrive
// untrusted; Validate returns the cleaned form or field errors.
type AccessInput struct {
	Name     string
	Email    string
	Phone    string
	Company  string
	Location string
	Consent  bool
	// Document is the slug of the document asked for; empty asks for the
	// site's default.
	Document string

	// Honeypot is a form field people never see; bots fill it in.
	Honeypot string
	// ClientIP is the caller's address as the platform saw it (never what
	// the client claims); it is only ever stored as a keyed hash.
	ClientIP string
}

// Visitor is a validated AccessInput.
type Visitor struct {
	Name     string
	Email    string
	Phone    string // canonical E.164 of a number that takes texts, or empty
	Company  string
	Location string
}

// Validate checks every field and reports all problems at once, so a form
// can show them together. phones reads the phone number; without it a
// phone is refused.
func (in AccessInput) Validate(phones Phones) (Visitor, error) {
	fields := map[string]string{}
	var v Visitor

	v.Name = cleanText(in.Name)
	switch {
	case v.Name == "":
		fields["name"] = "Enter your name."
	case !plainText(v.Name):
		fields["name"] = "Use letters, spaces and punctuation only."
	case utf8.RuneCountInString(v.Name) > MaxNameLen:
		fields["name"] = "Use at most 100 characters."
	}

	email, msg := validateEmail(in.Email)
	if msg != "" {
		fields["email"] = msg
	}
	v.Email = email

	switch {
	case strings.TrimSpace(in.Phone) == "":
	case phones == nil:
		fields["phone"] = phoneNotTaken
	default:
		phone, msg := phones.Parse(in.Phone)
		if msg != "" {
			fields["phone"] = msg
		}
		v.Phone = phone
	}

	optional := func(name, val string, max int) string {
		s := cleanText(val)
		switch {
		case !plainText(s):
			fields[name] = "Use letters, spaces and punctuation only."
		case utf8.RuneCountInString(s) > max:
			fields[name] = "Use at most 100 characters."
		}
		return s
	}
	v.Company = optional("company", in.Company, MaxCompanyLen)
	v.Location = optional("location", in.Location, MaxLocationLen)

	if !in.Consent {
		fields["consent"] = "Please accept the privacy policy to continue."
	}
	if len(fields) > 0 {
		return Visitor{}, invalid(fields)
	}
	return v, nil
}

// NormalizeEmail returns an address in the form requests store it (lower
// case), or an error if it is not a valid address.
func NormalizeEmail(raw string) (string, error) {
	email, msg := validateEmail(raw)
	if msg != "" {
		return "", errors.New(msg)
	}
	return email, nil
}

func validateEmail(raw string) (string, string) {
	s := strings.TrimSpace(raw)
	const bad = "Enter an email address like name@example.com."
	if s == "" {
		return "", "Enter your email address."
	}
	if len(s) > MaxEmailLen {
		return "", "Use an email address of at most 254 characters."
	}
	if !plainText(s) || strings.ContainsAny(s, " <>\"(),;:\\[]") {
		return "", bad
	}
	addr, err := mail.ParseAddress(s)
	// ParseAddress accepts "Name <a@b>" forms; we want the bare address only.
	if err != nil || addr.Address != s || addr.Name != "" {
		return "", bad
	}
	at := strings.LastIndexByte(s, '@')
	local := s[:at]
	if len(local) > maxLocalLen {
		return "", bad
	}
	// SES (like most mail systems) delivers only to 7-bit ASCII local
	// parts. An address it must refuse would fail every send to it.
	for i := 0; i < len(local); i++ {
		if local[i] >= utf8.RuneSelf {
			return "", "Use an address whose part before the @ has only Latin letters, digits and ASCII punctuation."
		}
	}
	// An internationalised domain is sent, stored and counted in its
	// ASCII (Punycode) form, so bücher.example and xn--bcher-kva.example
	// are one domain. The shape is checked on that form: the conversion
	// turns ideographic and full-width full stops into dots.
	domain, ok := asciiDomain(s[at+1:])
	if !ok || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.Contains(domain, "..") || len(local)+1+len(domain) > MaxEmailLen {
		return "", bad
	}
	// Stored in lower case: mail providers treat local parts case-blind in
	// practice, and one person must not become two for the rate limits or
	// escape an erasure by a capital letter.
	return strings.ToLower(local + "@" + domain), ""
}

// mailDomains converts domains as a resolver would look them up (UTS 46
// mapping, the bidi rule), and refuses an empty label or one longer than
// DNS allows, which idna.Lookup alone lets through.
var mailDomains = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true))

// asciiDomain is a mail domain in its ASCII (Punycode) form, lower case.
func asciiDomain(domain string) (string, bool) {
	ascii, err := mailDomains.ToASCII(domain)
	return strings.ToLower(ascii), err == nil
}

// cleanText trims and folds runs of whitespace to one space, so "  Ada \t
// Lovelace " is stored as "Ada Lovelace".
func cleanText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// plainText refuses control and format characters (CR/LF header injection,
// bidi overrides, NUL) and invalid UTF-8. Call after cleanText.
func plainText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// Field messages for "phone" that are the domain's, not the parser's.
const (
	phoneNotTaken      = "Codes are not sent by SMS here. Leave the phone empty to get the code by email."
	phoneRegionRefused = "Codes cannot be sent by SMS to numbers in this country. Leave the phone empty to get the code by email."
)

// VerifyInput is what the verify step submits.
type VerifyInput struct {
	RequestID string
	OTP       string
	// Document is the page's word for which document the request is for:
	// a hint only, naming the document to check beside the attempt. The
	// request itself decides which document the link is for.
	Document string
	// ClientIP is the caller's address as the platform saw it, for the
	// per-network limit on guesses; only ever stored as a keyed hash.
	ClientIP string
}

// Validate checks the shape only: a canonical UUID and six ASCII digits.
func (in VerifyInput) Validate() (VerifyInput, error) {
	return in.validate(func(s string) (string, bool) {
		id, err := parseRequestID(s)
		return id, err == nil
	}, "This request id is not valid. Please start again.")
}

// validate checks the shape of a code step: an id as parse reads it (or
// badID for its field) and six ASCII digits.
func (in VerifyInput) validate(parse func(string) (string, bool), badID string) (VerifyInput, error) {
	fields := map[string]string{}
	id, ok := parse(in.RequestID)
	if !ok {
		fields["requestId"] = badID
	}
	otp := strings.TrimSpace(in.OTP)
	if !isCode(otp) {
		fields["otp"] = "Enter the 6-digit code."
	}
	if len(fields) > 0 {
		return VerifyInput{}, invalid(fields)
	}
	return VerifyInput{RequestID: id, OTP: otp, ClientIP: in.ClientIP}, nil
}

// parseRequestID accepts only the canonical lowercase 36-character form our
// ids are issued in, so one request cannot be named two ways.
func parseRequestID(s string) (string, error) {
	s = strings.TrimSpace(s)
	u, err := uuid.Parse(s)
	if err != nil || u.String() != s {
		return "", errInvalidRequestID
	}
	return s, nil
}

func isCode(s string) bool {
	if len(s) != CodeDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
