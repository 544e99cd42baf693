// Package phone is what cv-access knows of phone numbers, from
// libphonenumber: which numbers exist, where they belong, and which can
// take a text. Only the commands that take a visitor's phone wire it in
// (request-access and cv-dev): its metadata and the protobuf runtime it
// brings cost every process that links them, and verify-access has no
// phone to read.
package phone

import (
	"regexp"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

// maxPhoneLen bounds what is handed to the parser: a written-out number
// with spacing and an international prefix fits in well under this.
const maxPhoneLen = 40

// Field messages for "phone". The field is optional, so each one says it
// may be left empty.
const (
	phoneNeedsCountryCode = "Enter the number with its country code, like +44 7400 900123, or leave the phone empty."
	phoneNotValid         = "This is not a valid phone number. Check it, or leave the phone empty to get the code by email only."
	phoneCannotText       = "This number cannot receive text messages. Enter a mobile number, or leave the phone empty to get the code by email only."
	phoneDigitsOnly       = "Use digits only, starting with the country code, like +44 7400 900123, or leave the phone empty."
)

// nonGeographic is libphonenumber's region code for numbers that belong
// to no country.
const nonGeographic = "001"

// nationalTrunkZero is the "(0)" written between a country code and the
// number, as in "+44 (0)7400 900123": it means "dial 0 from inside the
// country only". The parser drops a trunk 0 where the country uses one,
// but in Italy, where a leading 0 belongs to fixed-line numbers, it would
// keep it and turn a mobile into a landline; removing it first makes the
// notation mean what its writers intend everywhere.
var nationalTrunkZero = regexp.MustCompile(`^(\+|00)([1-9][0-9]{0,2})[\s\-.]*\(\s*0\s*\)`)

// Numbers implements access.Phones with libphonenumber.
type Numbers struct{}

var _ access.Phones = Numbers{}

// Parse turns a number as a visitor writes it into its canonical E.164
// form, so one number counts once against the per-phone limit however it
// is spaced or prefixed. It returns a field message instead when the
// number cannot take a text.
func (Numbers) Parse(raw string) (string, string) {
	s := strings.TrimSpace(raw)
	if len([]rune(s)) > maxPhoneLen {
		return "", phoneNotValid
	}
	// The parser reads letters as keypad digits and skips text around a
	// number; a visitor who typed either meant something we should not guess.
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9', unicode.IsSpace(r), strings.ContainsRune("-.()/", r):
		case r == '+' && i == 0:
		default:
			return "", phoneDigitsOnly
		}
	}
	s = nationalTrunkZero.ReplaceAllString(s, "$1$2 ")
	// No default region: a number without its country code could belong to
	// any country, and guessing one would text a stranger. "00" is the
	// international prefix almost everywhere; the parser only knows it
	// relative to a home region, so it is turned into "+" here.
	if rest, ok := strings.CutPrefix(s, "00"); ok {
		s = "+" + rest
	}
	if !strings.HasPrefix(s, "+") {
		return "", phoneNeedsCountryCode
	}
	num, err := phonenumbers.Parse(s, "")
	if err != nil {
		return "", phoneNotValid
	}
	// E.164 has no room for an extension; a number with one is a desk
	// phone behind a switchboard, not a phone that takes texts.
	if num.GetExtension() != "" || !phonenumbers.IsValidNumber(num) {
		return "", phoneNotValid
	}
	// Non-geographic "regions" (001: satellite networks such as Iridium and
	// Inmarsat, global services) are classic SMS-pumping destinations at
	// a price their operators set; no visitor needs one to read a CV.
	if !textable(phonenumbers.GetNumberType(num)) || phonenumbers.GetRegionCodeForNumber(num) == nonGeographic {
		return "", phoneCannotText
	}
	return phonenumbers.Format(num, phonenumbers.E164), ""
}

// textable reports whether numbers of this type take an SMS. Where a
// country's ranges do not separate mobiles from landlines (the US, Canada)
// the library says FIXED_LINE_OR_MOBILE, and those must pass or no North
// American could give a phone. Pagers, personal numbers (UK 070, which look
// like mobiles), universal access and VoIP numbers may forward a text at a
// price set by whoever holds the range: that is what SMS pumping lives on,
// and no visitor needs one to read a CV.
func textable(t phonenumbers.PhoneNumberType) bool {
	return t == phonenumbers.MOBILE || t == phonenumbers.FIXED_LINE_OR_MOBILE
}

// Region names the ISO 3166 region of an E.164 number, e.g. "GB" for
// +44 7400 900123 but "JE" for a Jersey mobile under the same +44; it is
// empty when the number does not parse.
func (Numbers) Region(e164 string) string {
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return ""
	}
	return phonenumbers.GetRegionCodeForNumber(num)
}

// KnownRegion reports whether code is an ISO 3166 alpha-2 region that
// phone numbers can belong to, e.g. "GB" (upper case only).
func (Numbers) KnownRegion(code string) bool {
	return phonenumbers.GetSupportedRegions()[code]
}
