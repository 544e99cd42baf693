// Package proxysigntest makes x-nf-sign tokens the way Netlify's signed
// proxy does (netlify-cli's utils/sign-redirect.js: an HS256 JWS), for
// tests, including tokens Netlify would never make.
package proxysigntest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"
)

// Sign signs claims under header with secret.
func Sign(header, claims map[string]any, secret string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	in := enc(header) + "." + enc(claims)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Claims are the claims Netlify's proxy signs for a site's deploy context,
// issued at now and valid for five minutes.
func Claims(siteID, siteURL, deployContext string, now time.Time) map[string]any {
	return map[string]any{"iss": "netlify", "netlify_id": siteID, "site_url": siteURL,
		"deploy_context": deployContext, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
}

// HS256 is the header Netlify signs with.
var HS256 = map[string]any{"alg": "HS256", "typ": "JWT"}
