package api

import (
	"encoding/base64"
	"strings"
)

// Request is what the edge reads from a request, whatever carried it.
// Adapters fill it in; Serve applies every rule to it.
type Request struct {
	Method string
	Path   string // the raw path, as the platform received it
	Header Header
	// Body is the body after base64 decoding; an adapter that could not
	// decode it (or refused to, being too large) leaves the reason in
	// bodyErr, reported after the method and media type checks.
	Body    []byte
	bodyErr error
	// SourceIP is the address the platform saw the connection from. On
	// Netlify that is Netlify's own proxy, never the visitor; no rule in
	// this package reads it. ClientIP is the visitor's address.
	SourceIP string
	// ID is the platform's request id, for logs; empty when it has none.
	ID string
	// Cookies are the request's cookies as payload format 2.0 hands them
	// over, apart from the headers ("name=value" each). Other shapes
	// leave them in the Cookie header; Cookie reads both.
	Cookies []string
	// public says the platform lets anyone on the internet send this
	// event (a Function URL or HTTP API: payload 2.0), unlike Netlify's
	// own invocations.
	public bool
}

// Response is what the edge answers, whatever carries it back.
type Response struct {
	Status int
	Header map[string]string
	Body   []byte
	// SetCookie holds the Set-Cookie values, one cookie each: apart from
	// Header, since each needs a header line of its own (payload format
	// 2.0 carries them in "cookies").
	SetCookie []string
}

// Cookie returns every value sent for the named cookie, from each Cookie
// header copy in any casing and from payload 2.0's cookies, in the order
// given. A pair that is not name=value is skipped. Several values are all
// returned: a sibling subdomain can add a cookie of the same name, so the
// caller must weigh each (the owner's session takes the first valid one).
func (r Request) Cookie(name string) []string {
	var out []string
	take := func(pairs string) {
		for pair := range strings.SplitSeq(pairs, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && k == name {
				out = append(out, strings.Trim(v, `"`))
			}
		}
	}
	for k, vs := range r.Header {
		if strings.EqualFold(k, "cookie") {
			for _, v := range vs {
				take(v)
			}
		}
	}
	for _, c := range r.Cookies {
		take(c)
	}
	return out
}

// Header holds a request's headers as the platform handed them over:
// names in any casing, every copy kept.
type Header map[string][]string

// Get reads a single-valued header case-insensitively, since proxies
// differ in casing. Every copy counts, under every casing: a client can
// add its own copy of a platform header under another casing, and picking
// one of them would depend on map order, so copies that disagree make the
// header absent. A value holding a comma is a list of copies: payload
// format 2.0 joins repeated headers that way, and HTTP lets any proxy fold
// them so, so "1.2.3.4, 5.6.7.8" is two copies that disagree, on every
// event shape alike. Absent is the safe reading for each header read
// here: a request without Origin or Content-Type is refused, and a caller
// without a client address is counted with every other caller whose
// address is unknown. Headers whose one value may hold commas (Accept,
// User-Agent, dates) are not for Get.
func (h Header) Get(name string) string {
	var (
		value string
		seen  bool
	)
	for k, vs := range h {
		if !strings.EqualFold(k, name) {
			continue
		}
		for _, v := range vs {
			for part := range strings.SplitSeq(v, ",") {
				part = strings.Trim(part, " \t")
				if seen && part != value {
					return ""
				}
				value, seen = part, true
			}
		}
	}
	return value
}

// eventBody decodes a Lambda event's body, base64 or not, refusing one
// larger than MaxBodyBytes before decoding it: both event shapes carry the
// body this way.
func eventBody(body string, isBase64 bool) ([]byte, error) {
	if !isBase64 {
		if len(body) > MaxBodyBytes {
			return nil, tooLarge()
		}
		return []byte(body), nil
	}
	if base64.StdEncoding.DecodedLen(len(body)) > MaxBodyBytes+3 {
		return nil, tooLarge()
	}
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, badJSON("The request body could not be decoded.")
	}
	return raw, nil
}

// ClientIPRule names the caller's address, as something the function
// trusts vouches for it, or "" when nothing does. The domain counts
// per-address limits under it; "" shares one count with every caller
// whose address is unknown.
//
// On the AWS target the address is trusted because Config.Admit has
// already refused every request that Netlify's signed proxy (x-nf-sign)
// did not forward; the rule itself stays NetlifyClientIP. A rule alone
// cannot secure a function reachable directly: Admit is the gate.
type ClientIPRule func(Request) string

// NetlifyClientIP is the caller's address as Netlify saw the connection.
// Netlify sets x-nf-client-connection-ip itself (and cv-dev does the
// same), so a client cannot choose it on the Netlify target; X-Forwarded-For
// could be, and is not read, and neither is the event's source address,
// which on Netlify is Netlify's own.
func NetlifyClientIP(r Request) string {
	ip := r.Header.Get("x-nf-client-connection-ip")
	if len(ip) > 45 { // longer than any IPv6 text form
		return ""
	}
	return ip
}
