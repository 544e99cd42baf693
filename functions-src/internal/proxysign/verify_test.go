package proxysign_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/proxysign"
)

var (
	testSecret = []byte(strings.Repeat("s", 40))
	oldSecret  = []byte(strings.Repeat("o", 40))
	otherKey   = []byte(strings.Repeat("x", 40))
	testNow    = time.Unix(1_800_000_000, 0)
	testExpect = proxysign.Expect{SiteID: "site-123"}
)

const netlifyHeader = `{"alg":"HS256","typ":"JWT"}`

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// signWith makes a compact JWS over header and claims as given (raw JSON,
// so malformed and odd ones can be made too).
func signWith(h func() hash.Hash, key []byte, header, claims string) string {
	in := b64(header) + "." + b64(claims)
	m := hmac.New(h, key)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func sign(key []byte, header, claims string) string { return signWith(sha256.New, key, header, claims) }

// netlifyClaims are what Netlify signs, issued 10 s before testNow; edit
// changes them (a nil value removes a claim).
func netlifyClaims(edit map[string]any) string {
	iat := testNow.Unix() - 10
	c := map[string]any{
		"deploy_context": "production",
		"netlify_id":     "site-123",
		"site_url":       "https://cv.example",
		"iat":            iat,
		"exp":            iat + 300,
		"iss":            "netlify",
	}
	for k, v := range edit {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// good is a token as Netlify would send it at testNow.
func good() string { return sign(testSecret, netlifyHeader, netlifyClaims(nil)) }

// withPart replaces part i of a token.
func withPart(tok string, i int, part string) string {
	p := strings.Split(tok, ".")
	p[i] = part
	return strings.Join(p, ".")
}

func TestVerifyAccepts(t *testing.T) {
	now := testNow.Unix()
	tests := []struct {
		name    string
		tok     string
		secrets [][]byte
		want    proxysign.Expect
		at      time.Time
	}{
		{name: "netlify's shape", tok: good()},
		{name: "without typ", tok: sign(testSecret, `{"alg":"HS256"}`, netlifyClaims(nil))},
		{name: "header members in another order, with spaces", tok: sign(testSecret, `{ "typ": "JWT", "alg": "HS256" }`, netlifyClaims(nil))},
		{name: "signed with the older secret", tok: sign(oldSecret, netlifyHeader, netlifyClaims(nil)), secrets: [][]byte{testSecret, oldSecret}},
		{name: "signed with the newer secret", tok: good(), secrets: [][]byte{testSecret, oldSecret}},
		{name: "an unknown claim is ignored", tok: sign(testSecret, netlifyHeader, netlifyClaims(map[string]any{"foo": []int{1}}))},
		{name: "no site_url or deploy_context", tok: sign(testSecret, netlifyHeader, netlifyClaims(map[string]any{"site_url": nil, "deploy_context": nil}))},
		{name: "expired less than the skew ago", tok: good(), at: time.Unix(now-10+300+30, 0)},
		{name: "issued less than the skew ahead", tok: sign(testSecret, netlifyHeader, netlifyClaims(map[string]any{"iat": now + 30, "exp": now + 330}))},
		{name: "lifetime of 5 minutes plus the skew", tok: sign(testSecret, netlifyHeader, netlifyClaims(map[string]any{"exp": now - 10 + 330}))},
		{name: "nbf passed", tok: sign(testSecret, netlifyHeader, netlifyClaims(map[string]any{"nbf": now - 10}))},
		{name: "site URL required and matching", tok: good(), want: proxysign.Expect{SiteID: "site-123", SiteURL: "https://cv.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secrets, want, at := tt.secrets, tt.want, tt.at
			if secrets == nil {
				secrets = [][]byte{testSecret}
			}
			if want.SiteID == "" {
				want = testExpect
			}
			if at.IsZero() {
				at = testNow
			}
			c, err := proxysign.Verify(tt.tok, secrets, want, at)
			require.NoError(t, err)
			assert.Equal(t, "site-123", c.SiteID)
		})
	}
}

func TestVerifyReturnsTheClaims(t *testing.T) {
	c, err := proxysign.Verify(good(), [][]byte{testSecret}, testExpect, testNow)
	require.NoError(t, err)
	assert.Equal(t, proxysign.Claims{
		SiteID:        "site-123",
		SiteURL:       "https://cv.example",
		DeployContext: "production",
		IssuedAt:      time.Unix(testNow.Unix()-10, 0),
		ExpiresAt:     time.Unix(testNow.Unix()+290, 0),
	}, c)
}

func TestVerifyRefuses(t *testing.T) {
	now := testNow.Unix()
	claims := func(edit map[string]any) string { return sign(testSecret, netlifyHeader, netlifyClaims(edit)) }
	withHeader := func(h string) string { return sign(testSecret, h, netlifyClaims(nil)) }
	rawClaims := func(c string) string { return sign(testSecret, netlifyHeader, c) }
	// A signature with a stray bit in its last character: decodes to the
	// same bytes under a lenient decoder, so it must not be accepted.
	stray := func() string {
		tok := good()
		last := tok[len(tok)-1]
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		i := strings.IndexByte(alphabet, last)
		return tok[:len(tok)-1] + string(alphabet[i^1])
	}
	tests := []struct {
		name    string
		tok     string
		secrets [][]byte
		want    proxysign.Expect
		at      time.Time
		err     error
	}{
		{name: "no secret", tok: good(), secrets: [][]byte{}, err: proxysign.ErrConfig},
		{name: "a short secret", tok: good(), secrets: [][]byte{testSecret, []byte("short")}, err: proxysign.ErrConfig},
		{name: "no site to expect", tok: good(), want: proxysign.Expect{SiteURL: "https://cv.example"}, err: proxysign.ErrConfig},

		{name: "empty", tok: "", err: proxysign.ErrMissing},

		{name: "oversize", tok: sign(testSecret, netlifyHeader, netlifyClaims(map[string]any{"pad": strings.Repeat("a", proxysign.MaxTokenLen)})), err: proxysign.ErrMalformed},
		{name: "oversize header", tok: withHeader(`{"alg":"HS256","typ":"JWT","x":"` + strings.Repeat("a", 4<<10) + `"}`), err: proxysign.ErrMalformed},
		{name: "two parts", tok: b64(netlifyHeader) + "." + b64(netlifyClaims(nil)), err: proxysign.ErrMalformed},
		{name: "four parts", tok: good() + ".AAAA", err: proxysign.ErrMalformed},
		{name: "empty signature", tok: withPart(good(), 2, ""), err: proxysign.ErrMalformed},
		{name: "empty claims", tok: withPart(good(), 1, ""), err: proxysign.ErrMalformed},
		{name: "padded signature", tok: good() + "=", err: proxysign.ErrMalformed},
		{name: "padded header", tok: withPart(good(), 0, base64.URLEncoding.EncodeToString([]byte(netlifyHeader+"x"))), err: proxysign.ErrMalformed},
		{name: "standard base64 alphabet", tok: withPart(good(), 2, strings.Repeat("+/", 21)+"A"), err: proxysign.ErrMalformed},
		{name: "stray bits in the signature", tok: stray(), err: proxysign.ErrMalformed},
		{name: "trailing newline", tok: good() + "\n", err: proxysign.ErrMalformed},
		{name: "leading space", tok: " " + good(), err: proxysign.ErrMalformed},
		{name: "newline inside a part", tok: func() string { g := good(); return g[:len(g)-10] + "\r\n" + g[len(g)-10:] }(), err: proxysign.ErrMalformed},
		{name: "signature of the wrong length", tok: withPart(good(), 2, b64(strings.Repeat("s", 31))), err: proxysign.ErrMalformed},
		{name: "header not JSON", tok: withHeader(`alg=HS256`), err: proxysign.ErrMalformed},
		{name: "header a JSON array", tok: withHeader(`["HS256"]`), err: proxysign.ErrMalformed},
		{name: "header followed by more JSON", tok: withHeader(netlifyHeader + `{}`), err: proxysign.ErrMalformed},
		{name: "header with a trailing comma", tok: withHeader(`{"alg":"HS256",}`), err: proxysign.ErrMalformed},
		{name: "header not UTF-8", tok: withHeader("{\"alg\":\"HS256\",\"typ\":\"JWT\xff\"}"), err: proxysign.ErrMalformed},
		{name: "alg given twice", tok: withHeader(`{"alg":"none","alg":"HS256"}`), err: proxysign.ErrMalformed},
		{name: "alg given twice, once escaped", tok: withHeader(`{"alg":"HS256","al\u0067":"none"}`), err: proxysign.ErrMalformed},
		{name: "claims not JSON", tok: rawClaims(`netlify_id=site-123`), err: proxysign.ErrMalformed},
		{name: "claims a JSON string", tok: rawClaims(`"site-123"`), err: proxysign.ErrMalformed},
		{name: "claims truncated", tok: rawClaims(netlifyClaims(nil)[:20]), err: proxysign.ErrMalformed},
		{name: "netlify_id given twice", tok: rawClaims(strings.TrimSuffix(netlifyClaims(nil), "}") + `,"netlify_id":"other"}`), err: proxysign.ErrMalformed},

		{name: "alg none", tok: withHeader(`{"alg":"none","typ":"JWT"}`), err: proxysign.ErrAlgorithm},
		{name: "alg none, no signature", tok: withPart(withHeader(`{"alg":"none"}`), 2, ""), err: proxysign.ErrAlgorithm},
		{name: "alg HS512, signed with HS512 under the secret", tok: signWith(sha512.New, testSecret, `{"alg":"HS512","typ":"JWT"}`, netlifyClaims(nil)), err: proxysign.ErrAlgorithm},
		{name: "alg RS256", tok: withHeader(`{"alg":"RS256","typ":"JWT"}`), err: proxysign.ErrAlgorithm},
		{name: "alg hs256", tok: withHeader(`{"alg":"hs256","typ":"JWT"}`), err: proxysign.ErrAlgorithm},
		{name: "alg HS256 with a space", tok: withHeader(`{"alg":"HS256 ","typ":"JWT"}`), err: proxysign.ErrAlgorithm},
		{name: "alg missing", tok: withHeader(`{"typ":"JWT"}`), err: proxysign.ErrAlgorithm},
		{name: "alg null", tok: withHeader(`{"alg":null}`), err: proxysign.ErrAlgorithm},
		{name: "alg a list", tok: withHeader(`{"alg":["HS256"]}`), err: proxysign.ErrAlgorithm},

		{name: "typ jwt", tok: withHeader(`{"alg":"HS256","typ":"jwt"}`), err: proxysign.ErrHeader},
		{name: "typ JOSE", tok: withHeader(`{"alg":"HS256","typ":"JOSE"}`), err: proxysign.ErrHeader},
		{name: "typ null", tok: withHeader(`{"alg":"HS256","typ":null}`), err: proxysign.ErrHeader},
		{name: "crit", tok: withHeader(`{"alg":"HS256","typ":"JWT","crit":["exp"],"exp":1}`), err: proxysign.ErrHeader},
		{name: "kid", tok: withHeader(`{"alg":"HS256","typ":"JWT","kid":"1"}`), err: proxysign.ErrHeader},
		{name: "b64 false", tok: withHeader(`{"alg":"HS256","b64":false,"crit":["b64"]}`), err: proxysign.ErrHeader},

		{name: "another secret", tok: sign(otherKey, netlifyHeader, netlifyClaims(nil)), err: proxysign.ErrSignature},
		{name: "an old secret no longer listed", tok: sign(oldSecret, netlifyHeader, netlifyClaims(nil)), err: proxysign.ErrSignature},
		{name: "an empty key", tok: sign(nil, netlifyHeader, netlifyClaims(nil)), err: proxysign.ErrSignature},
		{name: "claims changed after signing", tok: withPart(good(), 1, b64(netlifyClaims(map[string]any{"exp": now + 3600}))), err: proxysign.ErrSignature},
		{name: "header changed after signing", tok: withPart(good(), 0, b64(`{"alg":"HS256"}`)), err: proxysign.ErrSignature},
		{name: "a signature byte changed", tok: withPart(good(), 2, b64(strings.Repeat("\x00", 32))), err: proxysign.ErrSignature},

		{name: "iss missing", tok: claims(map[string]any{"iss": nil}), err: proxysign.ErrIssuer},
		{name: "iss Netlify", tok: claims(map[string]any{"iss": "Netlify"}), err: proxysign.ErrIssuer},
		{name: "iss another", tok: claims(map[string]any{"iss": "netlify.evil"}), err: proxysign.ErrIssuer},

		{name: "exp missing", tok: claims(map[string]any{"exp": nil}), err: proxysign.ErrExpired},
		{name: "expired beyond the skew", tok: good(), at: time.Unix(now-10+300+31, 0), err: proxysign.ErrExpired},
		{name: "long expired", tok: claims(map[string]any{"iat": now - 3600, "exp": now - 3300}), err: proxysign.ErrExpired},

		{name: "issued beyond the skew ahead", tok: claims(map[string]any{"iat": now + 31, "exp": now + 331}), err: proxysign.ErrNotYet},
		{name: "nbf ahead", tok: claims(map[string]any{"nbf": now + 60}), err: proxysign.ErrNotYet},

		{name: "iat missing", tok: claims(map[string]any{"iat": nil}), err: proxysign.ErrLifetime},
		{name: "lifetime of an hour", tok: claims(map[string]any{"exp": now - 10 + 3600}), err: proxysign.ErrLifetime},
		{name: "lifetime just over 5 minutes plus the skew", tok: claims(map[string]any{"exp": now - 10 + 331}), err: proxysign.ErrLifetime},
		{name: "exp before iat", tok: claims(map[string]any{"iat": now, "exp": now - 1}), err: proxysign.ErrLifetime},

		{name: "netlify_id missing", tok: claims(map[string]any{"netlify_id": nil}), err: proxysign.ErrSite},
		{name: "netlify_id empty", tok: claims(map[string]any{"netlify_id": ""}), err: proxysign.ErrSite},
		{name: "another site", tok: claims(map[string]any{"netlify_id": "site-456"}), err: proxysign.ErrSite},
		{name: "site id differing in case", tok: claims(map[string]any{"netlify_id": "SITE-123"}), err: proxysign.ErrSite},
		{name: "another site URL, when required", tok: claims(map[string]any{"site_url": "https://other.example"}), want: proxysign.Expect{SiteID: "site-123", SiteURL: "https://cv.example"}, err: proxysign.ErrSiteURL},
		{name: "no site URL, when required", tok: claims(map[string]any{"site_url": nil}), want: proxysign.Expect{SiteID: "site-123", SiteURL: "https://cv.example"}, err: proxysign.ErrSiteURL},

		{name: "exp a string", tok: claims(map[string]any{"exp": "1800000290"}), err: proxysign.ErrClaimType},
		{name: "exp a fraction", tok: claims(map[string]any{"exp": 1800000290.5}), err: proxysign.ErrClaimType},
		{name: "exp with an exponent", tok: rawClaims(`{"iss":"netlify","netlify_id":"site-123","iat":1799999990,"exp":1.80000029e9}`), err: proxysign.ErrClaimType},
		{name: "exp null", tok: rawClaims(`{"iss":"netlify","netlify_id":"site-123","iat":1799999990,"exp":null}`), err: proxysign.ErrClaimType},
		{name: "exp negative", tok: claims(map[string]any{"exp": -1}), err: proxysign.ErrClaimType},
		{name: "exp past year 9999", tok: claims(map[string]any{"exp": int64(1) << 62}), err: proxysign.ErrClaimType},
		{name: "exp beyond int64", tok: rawClaims(`{"iss":"netlify","netlify_id":"site-123","iat":1799999990,"exp":99999999999999999999}`), err: proxysign.ErrClaimType},
		{name: "iat a boolean", tok: claims(map[string]any{"iat": true}), err: proxysign.ErrClaimType},
		{name: "nbf a string", tok: claims(map[string]any{"nbf": "0"}), err: proxysign.ErrClaimType},
		{name: "netlify_id a number", tok: claims(map[string]any{"netlify_id": 123}), err: proxysign.ErrClaimType},
		{name: "netlify_id null", tok: claims(map[string]any{"netlify_id": json.RawMessage("null")}), err: proxysign.ErrClaimType},
		{name: "iss a list", tok: claims(map[string]any{"iss": []string{"netlify"}}), err: proxysign.ErrClaimType},
		{name: "site_url a number", tok: claims(map[string]any{"site_url": 1}), err: proxysign.ErrClaimType},
		{name: "deploy_context an object", tok: claims(map[string]any{"deploy_context": map[string]string{}}), err: proxysign.ErrClaimType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secrets, want, at := tt.secrets, tt.want, tt.at
			if secrets == nil {
				secrets = [][]byte{testSecret}
			}
			if want.SiteID == "" && want.SiteURL == "" {
				want = testExpect
			}
			if at.IsZero() {
				at = testNow
			}
			c, err := proxysign.Verify(tt.tok, secrets, want, at)
			require.ErrorIs(t, err, tt.err)
			assert.Zero(t, c, "no claims with a refusal")
			// The reason is for logs: it never carries the token.
			for _, p := range strings.Split(tt.tok, ".") {
				if len(p) > 3 {
					assert.NotContains(t, err.Error(), p)
				}
			}
		})
	}
}

// Each refusal is its own: a token wrong in one way is refused for that.
func TestVerifyErrorsAreDistinct(t *testing.T) {
	all := []error{
		proxysign.ErrConfig, proxysign.ErrMissing, proxysign.ErrMalformed, proxysign.ErrAlgorithm,
		proxysign.ErrHeader, proxysign.ErrSignature, proxysign.ErrClaimType, proxysign.ErrIssuer,
		proxysign.ErrExpired, proxysign.ErrNotYet, proxysign.ErrLifetime, proxysign.ErrSite, proxysign.ErrSiteURL,
	}
	seen := map[string]bool{}
	for _, e := range all {
		assert.False(t, seen[e.Error()], "%v", e)
		seen[e.Error()] = true
	}
}
