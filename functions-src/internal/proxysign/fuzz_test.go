package proxysign_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cv-access/cv-access/functions-src/internal/access"
	"github.com/cv-access/cv-access/functions-src/internal/proxysign"
)

// FuzzVerify: Verify never panics, and accepts a token only if its
// signature is the HMAC of its first two parts under the secret, with
// claims that meet what was expected. With resign set, the input's first
// two parts are signed afresh, so the fuzzer reaches the claims checks.
func FuzzVerify(f *testing.F) {
	f.Add(good(), false)
	f.Add(good(), true)
	f.Add(sign(testSecret, `{"alg":"HS256"}`, netlifyClaims(map[string]any{"nbf": 1})), true)
	f.Add(sign(testSecret, `{"alg":"none"}`, `{"exp":1.5,"iat":"1","netlify_id":null}`), true)
	f.Add(b64(`{"alg":"HS256","crit":["x"]}`)+"."+b64(`[]`)+".", true)
	f.Add("..", false)
	f.Fuzz(func(t *testing.T, tok string, resign bool) {
		if resign {
			if i := strings.LastIndexByte(tok, '.'); i >= 0 {
				m := hmac.New(sha256.New, testSecret)
				m.Write([]byte(tok[:i]))
				tok = tok[:i+1] + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
			}
		}
		c, err := proxysign.Verify(tok, [][]byte{testSecret}, testExpect, testNow)
		if err != nil {
			assert.Zero(t, c)
			return
		}
		parts := strings.Split(tok, ".")
		require.Len(t, parts, 3)
		got, derr := base64.RawURLEncoding.DecodeString(parts[2])
		require.NoError(t, derr)
		m := hmac.New(sha256.New, testSecret)
		m.Write([]byte(parts[0] + "." + parts[1]))
		assert.True(t, access.EqualMAC(m.Sum(nil), got), "accepted a token whose signature does not verify")
		assert.Equal(t, testExpect.SiteID, c.SiteID)
		assert.False(t, testNow.After(c.ExpiresAt.Add(proxysign.ClockSkew)), "accepted an expired token")
		assert.False(t, c.IssuedAt.After(testNow.Add(proxysign.ClockSkew)), "accepted a token from the future")
		assert.LessOrEqual(t, c.ExpiresAt.Sub(c.IssuedAt), proxysign.Lifetime+proxysign.ClockSkew)
	})
}
