// Package proxysign checks the x-nf-sign header that Netlify adds to a
// request it proxies to the functions.
//
// # What Netlify signs
//
// A netlify.toml redirect rule with status = 200 and signed = "ENV_VAR"
// proxies the request to its target and adds the header x-nf-sign: a
// compact JWS, HS256 (HMAC-SHA-256), keyed with the value of that
// environment variable as UTF-8 bytes. netlify-cli 26 mints it with
// jsonwebtoken (dist/utils/sign-redirect.js); Netlify's documentation
// ("Rewrites and proxies", "Signed proxy redirects") describes the same:
//
//	header: {"alg":"HS256","typ":"JWT"}
//	claims: {"deploy_context":..., "netlify_id":<site id>, "site_url":...,
//	         "iat":<now>, "exp":<now + 300>, "iss":"netlify"}
//
// Verify accepts exactly that shape and refuses anything else with a
// sentinel error naming the reason, so the edge can log why without
// logging the token. The header is strict: alg must be "HS256" (and the
// verification method is fixed here, never taken from the header), typ,
// if present, "JWT", and no other parameter (no crit, kid, jku...).
// Claims other than the ones above are signed by the same secret and are
// ignored, except nbf, which is honoured if present.
//
// Which site: netlify_id, the site's API ID, is required to match. The
// site_url claim may be the primary custom domain or the netlify.app name
// depending on how the site is set up and may change when a domain is
// added, so matching it is optional (Expect.SiteURL).
//
// Time: the clock of Netlify's edge and Lambda's may differ by a little,
// so exp and nbf/iat are checked with ClockSkew (30 s) of slack either
// way. A token whose exp - iat is longer than Lifetime + ClockSkew is
// refused even when still within it: only Netlify's 5-minute tokens are
// accepted, so a token that escapes (in a log, say) is worth at most 5½
// minutes. It does nothing against a leaked secret: whoever holds it
// mints fresh tokens; rotate it.
//
// # What the token does NOT bind
//
// The claims say which site and when; nothing else. The token does not
// cover the method, the path or query, the body, or any header, in
// particular not x-nf-client-connection-ip, which is where Netlify puts
// the visitor's address. It carries no nonce either: the same token is
// valid for any number of requests until it expires. So anyone who sees
// one token on its way (in between Netlify and the origin, or in a log of
// request headers) can, for the rest of its lifetime, send any request to
// the origin with it and with a client-IP header of their choosing, which
// defeats per-IP limits and makes the request look like it came through
// Netlify.
//
// What bounds that: the proxy target must be https://, so the token is
// under TLS from Netlify to the origin and is not seen on the way; the
// origin must never log the header; and the token lives 5 minutes (plus
// the skew), which Verify enforces. A valid token says "Netlify forwarded
// some request for this site recently", not "this request is the one
// Netlify forwarded"; the edge decides what more to require.
//
// # Secrets
//
// Verify takes several secrets, newest first, and accepts a signature
// under any of them, so the secret can be rotated: set the new value in
// Netlify's environment variable and add it first in the functions'
// list, keep the old one until every token signed with it has expired
// (Lifetime + ClockSkew after the deploy that switched), then drop it.
// Each secret must be at least MinSecretLen bytes: one captured token is
// enough to guess a short secret offline.
package proxysign
