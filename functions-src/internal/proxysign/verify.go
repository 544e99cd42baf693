package proxysign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cv-access/cv-access/functions-src/internal/access"
)

const (
	// Header is the request header Netlify puts the token in.
	Header = "x-nf-sign"
	// Issuer is the iss claim Netlify sets.
	Issuer = "netlify"
	// Lifetime is how long Netlify's tokens live (exp - iat).
	Lifetime = 5 * time.Minute
	// ClockSkew is the slack allowed between Netlify's clock and ours, on
	// exp, on iat and nbf in the future, and on the lifetime.
	ClockSkew = 30 * time.Second
	// MaxTokenLen bounds the token before anything is decoded. Netlify's
	// are about 300 bytes.
	MaxTokenLen = 4 << 10
	// MinSecretLen is the shortest secret Verify accepts, in bytes.
	MinSecretLen = 32
)

// Refusals. Verify wraps them with a short detail that never contains the
// token or a value from it; match them with errors.Is.
var (
	ErrConfig    = errors.New("proxysign: bad configuration") // a fault on our side, not the request's
	ErrMissing   = errors.New("proxysign: no token")
	ErrMalformed = errors.New("proxysign: malformed token")
	ErrAlgorithm = errors.New("proxysign: algorithm is not HS256")
	ErrHeader    = errors.New("proxysign: unexpected header parameter")
	ErrSignature = errors.New("proxysign: signature does not verify")
	ErrClaimType = errors.New("proxysign: claim of the wrong type")
	ErrIssuer    = errors.New("proxysign: issuer is not netlify")
	ErrExpired   = errors.New("proxysign: expired or no expiry")
	ErrNotYet    = errors.New("proxysign: issued in the future or not yet valid")
	ErrLifetime  = errors.New("proxysign: lifetime longer than Netlify's")
	ErrSite      = errors.New("proxysign: not signed for this site")
	ErrSiteURL   = errors.New("proxysign: not signed for this site URL")
)

// Expect says which site's tokens to accept.
type Expect struct {
	// SiteID is the site's API ID (Site configuration > Site details), the
	// netlify_id claim. Required.
	SiteID string
	// SiteURL, if set, must equal the site_url claim exactly. Optional:
	// Netlify may send the primary domain or the netlify.app URL.
	SiteURL string
}

// Claims are what a verified token says.
type Claims struct {
	SiteID        string // netlify_id
	SiteURL       string // site_url; may be empty
	DeployContext string // deploy_context, e.g. "production"; may be empty
	IssuedAt      time.Time
	ExpiresAt     time.Time
}

// Verify checks a token from the x-nf-sign header against secrets (newest
// first) and the expected site, at time now, and returns its claims. Any
// refusal wraps one of the Err values above.
func Verify(token string, secrets [][]byte, want Expect, now time.Time) (Claims, error) {
	if len(secrets) == 0 {
		return Claims{}, fmt.Errorf("%w: no secret", ErrConfig)
	}
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			return Claims{}, fmt.Errorf("%w: secret %d is %d bytes; need at least %d", ErrConfig, i+1, len(s), MinSecretLen)
		}
	}
	if want.SiteID == "" {
		return Claims{}, fmt.Errorf("%w: no site id to expect", ErrConfig)
	}
	if token == "" {
		return Claims{}, ErrMissing
	}
	if len(token) > MaxTokenLen {
		return Claims{}, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(token), MaxTokenLen)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("%w: %d parts, not 3", ErrMalformed, len(parts))
	}
	// The header is read first, so a token with the wrong algorithm is
	// refused as such whatever its other parts hold.
	header, err := decodeSegment(parts[0])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if err := checkHeader(header); err != nil {
		return Claims{}, err
	}
	payload, err := decodeSegment(parts[1])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	mac, err := decodeSegment(parts[2])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	// The header only gets to say it is HS256; the method is fixed here.
	if len(mac) != sha256.Size {
		return Claims{}, fmt.Errorf("%w: signature is %d bytes, HS256 makes %d", ErrMalformed, len(mac), sha256.Size)
	}
	// The claims are parsed only once they are known to be Netlify's.
	if !verifies(parts[0]+"."+parts[1], mac, secrets) {
		return Claims{}, ErrSignature
	}
	return checkClaims(payload, want, now)
}

// decodeSegment decodes one base64url part: unpadded, and canonical (no
// stray bits), so each signature has exactly one spelling. Go's decoder
// skips CR and LF, so the alphabet is checked first.
func decodeSegment(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	for _, c := range s {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, errors.New("not base64url without padding")
		}
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// verifies reports whether mac is the HMAC-SHA-256 of input under any of
// the secrets, trying all of them so the time taken does not say which.
func verifies(input string, mac []byte, secrets [][]byte) bool {
	ok := false
	for _, s := range secrets {
		m := hmac.New(sha256.New, s)
		m.Write([]byte(input))
		if access.EqualMAC(m.Sum(nil), mac) {
			ok = true
		}
	}
	return ok
}

// checkHeader accepts {"alg":"HS256"} with an optional "typ":"JWT" and
// nothing else.
func checkHeader(data []byte) error {
	fields, err := parseObject(data)
	if err != nil {
		return fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	// A missing alg is no string and is refused with the rest.
	if name, err := stringValue(fields["alg"]); err != nil || name != "HS256" {
		return ErrAlgorithm
	}
	if typ, ok := fields["typ"]; ok {
		if name, err := stringValue(typ); err != nil || name != "JWT" {
			return fmt.Errorf("%w: typ is not JWT", ErrHeader)
		}
	}
	for name := range fields {
		if name != "alg" && name != "typ" {
			// crit included: any extension we do not know is refused. The
			// name is the sender's and unverified, so it is not echoed.
			return fmt.Errorf("%w: a parameter other than alg and typ", ErrHeader)
		}
	}
	return nil
}

// checkClaims reads the signed claims and checks issuer, time and site.
func checkClaims(data []byte, want Expect, now time.Time) (Claims, error) {
	fields, err := parseObject(data)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	var c Claims
	var iss string
	var iat, exp, nbf *int64
	for _, f := range []struct {
		name string
		str  *string
		num  **int64
	}{
		{"netlify_id", &c.SiteID, nil},
		{"site_url", &c.SiteURL, nil},
		{"deploy_context", &c.DeployContext, nil},
		{"iss", &iss, nil},
		{"iat", nil, &iat},
		{"exp", nil, &exp},
		{"nbf", nil, &nbf},
	} {
		v, ok := fields[f.name]
		if !ok {
			continue
		}
		if f.str != nil {
			if *f.str, err = stringValue(v); err != nil {
				return Claims{}, fmt.Errorf("%w: %s is not a string", ErrClaimType, f.name)
			}
			continue
		}
		n, err := numericDate(v)
		if err != nil {
			return Claims{}, fmt.Errorf("%w: %s: %v", ErrClaimType, f.name, err)
		}
		*f.num = &n
	}

	if iss != Issuer {
		return Claims{}, ErrIssuer
	}
	if exp == nil {
		return Claims{}, fmt.Errorf("%w: no exp", ErrExpired)
	}
	if iat == nil {
		return Claims{}, fmt.Errorf("%w: no iat, so no bound on it", ErrLifetime)
	}
	c.IssuedAt, c.ExpiresAt = time.Unix(*iat, 0), time.Unix(*exp, 0)
	if now.After(c.ExpiresAt.Add(ClockSkew)) {
		return Claims{}, ErrExpired
	}
	if c.IssuedAt.After(now.Add(ClockSkew)) {
		return Claims{}, fmt.Errorf("%w: iat", ErrNotYet)
	}
	if nbf != nil && time.Unix(*nbf, 0).After(now.Add(ClockSkew)) {
		return Claims{}, fmt.Errorf("%w: nbf", ErrNotYet)
	}
	if life := c.ExpiresAt.Sub(c.IssuedAt); life < 0 || life > Lifetime+ClockSkew {
		return Claims{}, fmt.Errorf("%w: exp - iat is %v", ErrLifetime, life)
	}
	// want.SiteID is never empty (ErrConfig), so no netlify_id is refused here.
	if c.SiteID != want.SiteID {
		return Claims{}, ErrSite
	}
	if want.SiteURL != "" && c.SiteURL != want.SiteURL {
		return Claims{}, ErrSiteURL
	}
	return c, nil
}
