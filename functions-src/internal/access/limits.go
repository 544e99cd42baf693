package access

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Limit is one fixed-window counter that a send must fit in. Lambda
// instances share no memory, so counters live in the store and are bumped
// inside the same atomic write as the request they guard.
type Limit struct {
	// Key names the counter and its window, e.g. "email:<hmac>:1764000000".
	// Values are keyed hashes: the store never holds an IP or address here.
	Key   string
	Kind  LimitKind
	Max   int
	Until time.Time // the window's end; the counter may be deleted then
}

// LimitKind says what a limit protects.
type LimitKind string

const (
	LimitIP       LimitKind = "ip"        // requests from one client address
	LimitEmail    LimitKind = "email"     // codes sent to one address (mail bombing)
	LimitPhone    LimitKind = "phone"     // texts to one number
	LimitSMSDaily LimitKind = "sms-daily" // all texts, against SMS pumping
)

// soft limits drop the SMS and let the email through; hard ones refuse.
func (k LimitKind) soft() bool { return k == LimitPhone || k == LimitSMSDaily }

// LimitError is returned by a store when a counter is full. Nothing was
// written: the whole atomic step failed.
type LimitError struct{ Limit Limit }

func (e *LimitError) Error() string { return fmt.Sprintf("rate limit %s reached", e.Limit.Kind) }

// ErrRateLimited matches any *LimitError with errors.Is.
var ErrRateLimited = errors.New("rate limited")

func (e *LimitError) Is(target error) bool { return target == ErrRateLimited }

// Limits are the numbers behind the rate limits. Zero disables one.
type Limits struct {
	IPPerHour   int
	EmailPerDay int
	PhonePerDay int
	SMSPerDay   int      // for the whole site
	SMSRegions  []string // ISO 3166 regions whose numbers may get an SMS, e.g. "GB"; empty allows all
}

// DefaultLimits are generous for people and tight for scripts: a visitor
// needs one request and perhaps a resend or two.
func DefaultLimits() Limits {
	return Limits{IPPerHour: 10, EmailPerDay: 5, PhonePerDay: 3, SMSPerDay: 50}
}

// limiter makes the counters for one send.
type limiter struct {
	key    []byte // HMAC key: counters hold no raw IP, address or number
	limits Limits
}

func (l limiter) hash(kind LimitKind, value string) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(string(kind) + "\x00" + strings.ToLower(value)))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func window(now time.Time, size time.Duration) (start, end time.Time) {
	start = now.UTC().Truncate(size)
	return start, start.Add(size)
}

// forSend lists the counters one send of a code bumps: the client's
// address (if known), the email, and for an SMS the number and the daily
// budget.
func (l limiter) forSend(now time.Time, ip, email, phone string) []Limit {
	var out []Limit
	add := func(kind LimitKind, value string, max int, size time.Duration) {
		if max <= 0 {
			return
		}
		start, end := window(now, size)
		key := fmt.Sprintf("%s:%d", kind, start.Unix())
		if value != "" {
			key = fmt.Sprintf("%s:%s:%d", kind, l.hash(kind, value), start.Unix())
		}
		out = append(out, Limit{Key: key, Kind: kind, Max: max, Until: end})
	}
	if ip != "" {
		add(LimitIP, network(ip), l.limits.IPPerHour, time.Hour)
	}
	add(LimitEmail, mailbox(email), l.limits.EmailPerDay, 24*time.Hour)
	if phone != "" {
		add(LimitPhone, phone, l.limits.PhonePerDay, 24*time.Hour)
		add(LimitSMSDaily, "", l.limits.SMSPerDay, 24*time.Hour)
	}
	return out
}

// mailbox names the inbox an address delivers to, so that "+tags" (and
// Gmail's ignored dots) do not make one inbox many for the limits.
func mailbox(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return email
	}
	local, domain := strings.ToLower(email[:at]), strings.ToLower(email[at+1:])
	if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	if domain == "gmail.com" || domain == "googlemail.com" {
		local, domain = strings.ReplaceAll(local, ".", ""), "gmail.com"
	}
	return local + "@" + domain
}

// network names the client for the per-address limit: an IPv4 address, or
// an IPv6 /64, which is what one household or server is handed and could
// otherwise rotate through freely. Text that is no address counts under
// one shared name rather than escaping the limit.
func network(ip string) string {
	addr, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return "invalid"
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return addr.String()
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return "invalid"
	}
	return p.String()
}

// smsAllowed reports whether texts may go to this E.164 number's region.
// Regions, not calling codes: +1 alone spans the US, Canada and some
// twenty Caribbean countries whose ranges are favourites of SMS pumping.
func (l limiter) smsAllowed(phone string) bool {
	if len(l.limits.SMSRegions) == 0 {
		return true
	}
	return slices.Contains(l.limits.SMSRegions, phoneRegion(phone))
}

// withoutSoft drops the SMS counters, for a send that goes by email only.
func withoutSoft(ls []Limit) []Limit {
	var out []Limit
	for _, l := range ls {
		if !l.Kind.soft() {
			out = append(out, l)
		}
	}
	return out
}

func rateLimited(l Limit, now time.Time, cause error) *Error {
	wait := max(l.Until.Sub(now), time.Second)
	msg := "Too many requests from your network. Please try again later."
	code := "rate_limited_ip"
	if l.Kind == LimitEmail {
		msg = "Too many codes were sent to this email address today. Please try again tomorrow."
		code = "rate_limited_email"
	}
	return &Error{Kind: KindRateLimited, Code: code, Message: msg, RetryAfter: wait, cause: cause}
}
