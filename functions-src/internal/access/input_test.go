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

func TestAccessInputValidate(t *testing.T) {
	valid := access.AccessInput{Name: "Ada Lovelace", Email: "ada@example.com", Consent: true}
	with := func(f func(*access.AccessInput)) access.AccessInput {
		in := valid
		f(&in)
		return in
	}
	tests := []struct {
		name   string
		in     access.AccessInput
		want   access.Visitor // when no field errors
		fields []string       // fields expected to be reported
	}{
		{name: "minimal", in: valid, want: access.Visitor{Name: "Ada Lovelace", Email: "ada@example.com"}},
		{name: "all fields cleaned", in: access.AccessInput{
			Name: "  Ada \t Lovelace ", Email: " Ada.L+cv@Example.COM ", Phone: "+44 (7400) 900-123",
			Company: " Analytical  Engines ", Location: "London", Consent: true,
		}, want: access.Visitor{Name: "Ada Lovelace", Email: "ada.l+cv@example.com", Phone: "+447400900123",
			Company: "Analytical Engines", Location: "London"}},
		{name: "00 international prefix", in: with(func(in *access.AccessInput) { in.Phone = "0044 7400 900123" }),
			want: access.Visitor{Name: "Ada Lovelace", Email: "ada@example.com", Phone: "+447400900123"}},
		{name: "unicode name", in: with(func(in *access.AccessInput) { in.Name = "Zoë Ñúñez 李雷" }),
			want: access.Visitor{Name: "Zoë Ñúñez 李雷", Email: "ada@example.com"}},
		{name: "everything missing", in: access.AccessInput{}, fields: []string{"name", "email", "consent"}},
		{name: "no consent", in: with(func(in *access.AccessInput) { in.Consent = false }), fields: []string{"consent"}},
		{name: "whitespace name", in: with(func(in *access.AccessInput) { in.Name = " \t " }), fields: []string{"name"}},
		{name: "name too long", in: with(func(in *access.AccessInput) { in.Name = strings.Repeat("é", 101) }), fields: []string{"name"}},
		{name: "name at limit", in: with(func(in *access.AccessInput) { in.Name = strings.Repeat("é", 100) }),
			want: access.Visitor{Name: strings.Repeat("é", 100), Email: "ada@example.com"}},
		{name: "CRLF in name", in: with(func(in *access.AccessInput) { in.Name = "Ada\r\nBcc: x@evil.test" }),
			// Fields() folds CR/LF as whitespace; the cleaned name is one line.
			want: access.Visitor{Name: "Ada Bcc: x@evil.test", Email: "ada@example.com"}},
		{name: "NUL in name", in: with(func(in *access.AccessInput) { in.Name = "Ada\x00" }), fields: []string{"name"}},
		{name: "bidi override in company", in: with(func(in *access.AccessInput) { in.Company = "Evil\u202eCorp" }), fields: []string{"company"}},
		{name: "invalid utf-8 in location", in: with(func(in *access.AccessInput) { in.Location = "Lon\xffdon" }), fields: []string{"location"}},
		{name: "company too long", in: with(func(in *access.AccessInput) { in.Company = strings.Repeat("x", 101) }), fields: []string{"company"}},
		{name: "email with display name", in: with(func(in *access.AccessInput) { in.Email = "Ada <ada@example.com>" }), fields: []string{"email"}},
		{name: "email with CRLF", in: with(func(in *access.AccessInput) { in.Email = "ada@example.com\r\nBcc: x@evil.test" }), fields: []string{"email"}},
		{name: "email without domain dot", in: with(func(in *access.AccessInput) { in.Email = "ada@localhost" }), fields: []string{"email"}},
		{name: "email two ats", in: with(func(in *access.AccessInput) { in.Email = "a@b@example.com" }), fields: []string{"email"}},
		{name: "email too long", in: with(func(in *access.AccessInput) { in.Email = strings.Repeat("a", 250) + "@x.io" }), fields: []string{"email"}},
		{name: "email local part too long", in: with(func(in *access.AccessInput) { in.Email = strings.Repeat("a", 65) + "@example.com" }), fields: []string{"email"}},
		{name: "email comma list", in: with(func(in *access.AccessInput) { in.Email = "a@example.com,b@example.com" }), fields: []string{"email"}},
		// SES takes 7-bit ASCII local parts only: such an address would fail every send.
		{name: "email non-ASCII local part", in: with(func(in *access.AccessInput) { in.Email = "ü@example.com" }), fields: []string{"email"}},
		{name: "email CJK local part", in: with(func(in *access.AccessInput) { in.Email = "測試@example.com" }), fields: []string{"email"}},
		{name: "email internationalised domain goes to Punycode", in: with(func(in *access.AccessInput) { in.Email = "Ada@BÜCHER.example" }),
			want: access.Visitor{Name: "Ada Lovelace", Email: "ada@xn--bcher-kva.example"}},
		{name: "email Punycode domain kept", in: with(func(in *access.AccessInput) { in.Email = "ada@xn--bcher-kva.example" }),
			want: access.Visitor{Name: "Ada Lovelace", Email: "ada@xn--bcher-kva.example"}},
		{name: "email ideographic full stop at the end", in: with(func(in *access.AccessInput) { in.Email = "victim@gmail.com\u3002" }), fields: []string{"email"}},
		{name: "email full-width full stop first", in: with(func(in *access.AccessInput) { in.Email = "a@\uff61b.com" }), fields: []string{"email"}},
		{name: "email ideographic full stop inside", in: with(func(in *access.AccessInput) { in.Email = "ada@example\u3002com" }),
			want: access.Visitor{Name: "Ada Lovelace", Email: "ada@example.com"}},
		{name: "email empty Punycode label", in: with(func(in *access.AccessInput) { in.Email = "0@Xn--.0" }), fields: []string{"email"}},
		{name: "email label longer than DNS allows", in: with(func(in *access.AccessInput) { in.Email = "ada@" + strings.Repeat("a", 64) + ".example" }), fields: []string{"email"}},
		{name: "email label at the DNS limit", in: with(func(in *access.AccessInput) { in.Email = "ada@" + strings.Repeat("a", 63) + ".example" }),
			want: access.Visitor{Name: "Ada Lovelace", Email: "ada@" + strings.Repeat("a", 63) + ".example"}},
		{name: "email broken Punycode", in: with(func(in *access.AccessInput) { in.Email = "ada@xn--a.example" }), fields: []string{"email"}},
		{name: "email hyphen-led label", in: with(func(in *access.AccessInput) { in.Email = "ada@-bad.example" }), fields: []string{"email"}},
		{name: "phone without country code", in: with(func(in *access.AccessInput) { in.Phone = "07400 900123" }), fields: []string{"phone"}},
		{name: "phone letters", in: with(func(in *access.AccessInput) { in.Phone = "+44 CALL ME" }), fields: []string{"phone"}},
		{name: "phone too long", in: with(func(in *access.AccessInput) { in.Phone = "+1234567890123456" }), fields: []string{"phone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Validate(phone.Numbers{})
			if len(tt.fields) == 0 {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			var e *access.Error
			require.True(t, errors.As(err, &e), "want *access.Error, got %v", err)
			assert.Equal(t, access.KindInvalid, e.Kind)
			assert.Equal(t, "invalid_input", e.Code)
			var keys []string
			for k, msg := range e.Fields {
				keys = append(keys, k)
				assert.NotEmpty(t, msg)
			}
			assert.ElementsMatch(t, tt.fields, keys)
		})
	}
}

func TestVerifyInputValidate(t *testing.T) {
	id := "6f1c8a53-93a4-4c8e-9a43-1d7c1f6e1a01"
	tests := []struct {
		name   string
		in     access.VerifyInput
		fields []string
	}{
		{name: "valid", in: access.VerifyInput{RequestID: id, OTP: "012345"}},
		{name: "valid with spaces around", in: access.VerifyInput{RequestID: " " + id + " ", OTP: " 012345 "}},
		{name: "empty", in: access.VerifyInput{}, fields: []string{"requestId", "otp"}},
		{name: "uppercase id", in: access.VerifyInput{RequestID: strings.ToUpper(id), OTP: "012345"}, fields: []string{"requestId"}},
		{name: "braced id", in: access.VerifyInput{RequestID: "{" + id + "}", OTP: "012345"}, fields: []string{"requestId"}},
		{name: "five digits", in: access.VerifyInput{RequestID: id, OTP: "01234"}, fields: []string{"otp"}},
		{name: "seven digits", in: access.VerifyInput{RequestID: id, OTP: "0123456"}, fields: []string{"otp"}},
		{name: "non-ascii digits", in: access.VerifyInput{RequestID: id, OTP: "٠١٢٣٤٥"}, fields: []string{"otp"}},
		{name: "letters", in: access.VerifyInput{RequestID: id, OTP: "12a456"}, fields: []string{"otp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Validate()
			if len(tt.fields) == 0 {
				require.NoError(t, err)
				assert.Equal(t, id, got.RequestID)
				assert.Equal(t, "012345", got.OTP)
				return
			}
			var e *access.Error
			require.ErrorAs(t, err, &e)
			var keys []string
			for k := range e.Fields {
				keys = append(keys, k)
			}
			assert.ElementsMatch(t, tt.fields, keys)
		})
	}
}

// FuzzNormalizeEmail: an address as stored reads back as itself, so the
// owner can erase what the list shows, and the limits count one form.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"ada@example.com", "Ada@BÜCHER.example", "victim@gmail.com\u3002", "0@Xn--.0",
		"a@\uff61b.com", "x@例え.テスト", "a+b@googlemail.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		once, err := access.NormalizeEmail(raw)
		if err != nil {
			return
		}
		twice, err := access.NormalizeEmail(once)
		require.NoError(t, err, "%q became %q, which is refused", raw, once)
		assert.Equal(t, once, twice)
		assert.Equal(t, access.InboxOf(once), access.InboxOf(twice))
	})
}
