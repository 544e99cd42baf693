package access_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/phone"
)

func TestPhoneValidation(t *testing.T) {
	const (
		needsCode = "Enter the number with its country code, like +44 7400 900123, or leave the phone empty."
		notValid  = "This is not a valid phone number. Check it, or leave the phone empty to get the code by email only."
		noTexts   = "This number cannot receive text messages. Enter a mobile number, or leave the phone empty to get the code by email only."
		digits    = "Use digits only, starting with the country code, like +44 7400 900123, or leave the phone empty."
	)
	tests := []struct {
		name  string
		phone string
		want  string // the stored form, when accepted
		msg   string // the field message, when refused
	}{
		// One number, however it is written, is one value.
		{name: "E.164", phone: "+447400900123", want: "+447400900123"},
		{name: "spaced", phone: "+44 7400 900123", want: "+447400900123"},
		{name: "00 international prefix", phone: "0044 7400 900123", want: "+447400900123"},
		{name: "(0) trunk prefix", phone: "+44 (0)7400 900123", want: "+447400900123"},
		{name: "(0) with spaces inside", phone: "+44 ( 0 ) 7400 900123", want: "+447400900123"},
		{name: "(0) after 00", phone: "0044 (0) 7400 900123", want: "+447400900123"},
		{name: "0 kept after the country code", phone: "+44 07400 900123", want: "+447400900123"},
		{name: "dashes, dots and brackets", phone: "+44-(7400)-900.123", want: "+447400900123"},
		{name: "surrounding and inner white space", phone: " \t+44\u00a07400 900123 ", want: "+447400900123"},
		{name: "Irish mobile", phone: "+353 85 012 3456", want: "+353850123456"},
		{name: "Irish mobile with (0)", phone: "+353 (0)85 012 3456", want: "+353850123456"},
		{name: "German mobile with (0)", phone: "+49 (0)151 23456789", want: "+4915123456789"},
		// In Italy a leading 0 belongs to fixed lines; "(0)" is still the
		// writer's trunk prefix, so the mobile survives.
		{name: "Italian mobile with (0)", phone: "+39 (0)312 345 6789", want: "+393123456789"},
		{name: "US number (fixed line or mobile)", phone: "+1 201 555 0123", want: "+12015550123"},
		{name: "US number, 00 prefix", phone: "001 (201) 555-0123", want: "+12015550123"},
		{name: "Jersey mobile under +44", phone: "+44 7797 123456", want: "+447797123456"},

		{name: "national form", phone: "07400 900123", msg: needsCode},
		{name: "(0) without a country code", phone: "(0)7400 900123", msg: needsCode},
		{name: "digits only, no prefix", phone: "447400900123", msg: needsCode},
		{name: "letters", phone: "+44 CALL ME", msg: digits},
		{name: "keypad letters", phone: "+44 7400 CALLME", msg: digits},
		{name: "text around the number", phone: "call +44 7400 900123", msg: digits},
		{name: "plus inside", phone: "44+7400900123", msg: digits},
		{name: "extension", phone: "+44 7400 900123 ext. 12", msg: digits},
		{name: "extension as #", phone: "+44 7400 900123#12", msg: digits},
		{name: "unknown country code", phone: "+999 7400 900123", msg: notValid},
		{name: "too long", phone: "+1234567890123456", msg: notValid},
		{name: "too long for its country", phone: "+44 7400 900 1234", msg: notValid},
		{name: "too short for its country", phone: "+44 7400 12345", msg: notValid},
		{name: "Ofcom drama mobile range", phone: "+44 7700 900123", msg: notValid},
		{name: "only a plus", phone: "+", msg: notValid},
		{name: "very long input", phone: "+44 " + strings.Repeat("1", 60), msg: notValid},
		{name: "(0) on a NANP number", phone: "+1 (0)201 555 0123", want: "+12015550123"},
		{name: "UK landline", phone: "+44 20 7946 0958", msg: noTexts},
		{name: "(0) away from the country code stays", phone: "+44 (7400) (0) 900123", msg: notValid},
		{name: "Iridium satellite mobile", phone: "+881 631 234 567", msg: noTexts},
		{name: "Inmarsat", phone: "+870 773 111 632", msg: noTexts},
		{name: "Italian landline", phone: "+39 06 1234 5678", msg: noTexts},
		{name: "UK pager", phone: "+44 7640 123456", msg: noTexts},
		{name: "UK personal number", phone: "+44 70 1234 5678", msg: noTexts},
		{name: "US premium rate", phone: "+1 900 555 1234", msg: noTexts},
		{name: "US toll free", phone: "+1 800 555 0123", msg: noTexts},
		{name: "UK freephone", phone: "+44 800 123 4567", msg: noTexts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := access.AccessInput{Name: "Ada Lovelace", Email: "ada@example.com", Phone: tt.phone, Consent: true}
			got, err := in.Validate(phone.Numbers{})
			if tt.msg == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got.Phone)
				return
			}
			var e *access.Error
			require.True(t, errors.As(err, &e), "want *access.Error, got %v", err)
			assert.Equal(t, map[string]string{"phone": tt.msg}, e.Fields)
		})
	}
}

func TestRegions(t *testing.T) {
	for _, r := range []string{"GB", "IE", "US", "JE", "JM"} {
		assert.True(t, phone.Numbers{}.KnownRegion(r), r)
	}
	for _, r := range []string{"", "UK", "gb", "EU", "001", "ZZ", "XX"} {
		assert.False(t, phone.Numbers{}.KnownRegion(r), r)
	}
}
